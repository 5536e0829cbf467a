"""Scenario section ``[control]``: which policy decides signals and EV charging, and how often.

A policy is named the same way for both kinds of decision: a built-in baseline
(``"fixed_time"``, ``"max_pressure"``, ``"uncontrolled"``, ``"llf"``, ...), a policy a package
registers in the ``twin.policies`` entry-point group, or an ONNX model file (``*.onnx``,
relative to the scenario file setting it).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from twin.timefmt import PositiveDurationS, Section

#: the baselines that leave the engine as it runs without control
NO_SIGNAL_CONTROL = "fixed_time"
NO_CHARGING_CONTROL = "uncontrolled"


class ControlConfig(Section):
    """``[control]``: the signal and charging policies and their decision intervals."""

    #: signal policy: a baseline name, a ``twin.policies`` entry point or a ``.onnx`` file;
    #: default "fixed_time" (Webster plans, no decisions)
    signals: str = Field(NO_SIGNAL_CONTROL, min_length=1, json_schema_extra={"policy": True})
    #: how often the signal policy decides, a whole number of traffic steps; default "5s"
    signal_interval: PositiveDurationS = 5.0
    #: engine-enforced minimum green of a controlled phase, s; default 7 (HCM / MUTCD practice)
    min_green: PositiveDurationS = 7.0
    #: engine-enforced maximum green: a phase held this long is ended; default "60s"
    max_green: PositiveDurationS = 60.0
    #: detector range upstream of the stop line for counts and speeds, m; default 50
    detector_m: float = Field(50.0, gt=0)
    #: charging policy: a baseline name, a ``twin.policies`` entry point or a ``.onnx`` file;
    #: default "uncontrolled" (full power on arrival)
    charging: str = Field(NO_CHARGING_CONTROL, min_length=1, json_schema_extra={"policy": True})
    #: how often the charging policy decides, a whole number of energy ticks; default "15min"
    charging_interval: PositiveDurationS = 900.0

    @model_validator(mode="after")
    def _green_bounds(self) -> ControlConfig:
        if self.max_green < self.min_green:
            raise ValueError(
                f"max_green ({self.max_green:g} s) must be >= min_green ({self.min_green:g} s)"
            )
        return self

    @property
    def controls_signals(self) -> bool:
        return self.signals != NO_SIGNAL_CONTROL

    @property
    def controls_charging(self) -> bool:
        return self.charging != NO_CHARGING_CONTROL

    @property
    def active(self) -> bool:
        """Whether any policy makes decisions (the defaults make none)."""
        return self.controls_signals or self.controls_charging
