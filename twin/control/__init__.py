"""Control: the policy contract, baselines, ONNX policies and training environments.

A signal policy maps a :class:`SignalObs` batch (one row per signalised intersection) to a
phase per row; a charging policy maps a :class:`ChargingObs` batch (one row per plugged-in EV)
to a set-point in kW per row. Name one in a scenario (``[control] signals = "max_pressure"``),
register your own with :func:`register` (in-process) or the ``twin.policies`` entry-point
group (packages), or give an ONNX model file.
"""

from twin.control.charging import CHARGING_SPEC, ChargingObs
from twin.control.policy import Policy, PolicyError
from twin.control.registry import known, load_policy, register
from twin.control.signals import SIGNAL_SPEC, SignalObs

__all__ = [
    "CHARGING_SPEC",
    "SIGNAL_SPEC",
    "ChargingObs",
    "Policy",
    "PolicyError",
    "SignalObs",
    "known",
    "load_policy",
    "register",
]
