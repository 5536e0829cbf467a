"""Control as a CityModel component: the scenario's signal and charging policies on the clock.

Signal decisions run every ``[control] signal_interval`` before the traffic block of the same
instant (they see the vehicles at that instant and their requests hold from it); charging
decisions run every ``charging_interval`` after the energy tick of the same instant, so a
decision at ``t`` sets the EVs' power over ``[t, t + interval)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.clock import Process
from twin.errors import ScenarioError
from twin.rng import stream

if TYPE_CHECKING:
    from twin.model import CityModel
    from twin.results import Results

SIGNAL_DECISION_ORDER = 50  # before the traffic block (100) at the same instant
CHARGING_DECISION_ORDER = 250  # after the energy tick (200) at the same instant


def _whole_multiple(what: str, value_s: float, of: str, step_s: float) -> None:
    ratio = value_s / step_s
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise ScenarioError(
            f"control.{what} ({value_s:g} s) must be a whole number of {of} ({step_s:g} s)"
        )


class ControlComponent:
    """The policies that decide the signals and the EV charging of a run."""

    def __init__(self, model: CityModel) -> None:
        from twin.control.registry import load_policy

        self.model = model
        cfg = model.scenario.control
        self.signals = None
        self.charging = None
        if cfg.controls_signals:
            from twin.control.signals import SignalControl

            _whole_multiple("signal_interval", cfg.signal_interval, "traffic steps",
                            model.scenario.traffic.step)  # fmt: skip
            policy = load_policy("signals", cfg.signals)
            policy.reset(int(stream(model.scenario.seed, "policy.signals").integers(2**31)))
            self.signals = SignalControl(
                model.traffic.sim,
                policy,
                min_green_s=cfg.min_green,
                max_green_s=cfg.max_green,
                detector_m=cfg.detector_m,
            )
            model.clock.register(
                Process("signal-decisions", cfg.signal_interval, self._decide_signals,
                        order=SIGNAL_DECISION_ORDER)
            )  # fmt: skip
        if cfg.controls_charging:
            from twin.control.charging import ChargingControl

            _whole_multiple("charging_interval", cfg.charging_interval, "energy ticks",
                            model.scenario.energy.tick)  # fmt: skip
            policy = load_policy("charging", cfg.charging)
            policy.reset(int(stream(model.scenario.seed, "policy.charging").integers(2**31)))
            self.charging = ChargingControl(model, policy)
            model.clock.register(
                Process("charging-decisions", cfg.charging_interval, self._decide_charging,
                        order=CHARGING_DECISION_ORDER)
            )  # fmt: skip

    def connect(self) -> None:
        """Nothing to read from later components."""

    def _decide_signals(self, t_s: float) -> None:
        self.model.traffic.sync(t_s)
        self.signals.decide()

    def _decide_charging(self, t_s: float) -> None:
        self.charging.decide(t_s)

    def sync(self, t_s: float) -> None:
        """Decisions are made on the clock; nothing to catch up."""

    def add_results(self, results: Results) -> None:
        """How many decisions each policy made."""
        if self.signals is not None:
            results.add_kpi("control.signal_decisions", self.signals.decisions, "count")
            results.add_kpi(
                "control.signal_requests_changed", self.signals.requests_changed, "count"
            )
            results.add_kpi("control.controlled_signals", self.signals.n, "count")
        if self.charging is not None:
            self.charging.add_results(results)
