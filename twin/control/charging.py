"""EV charging control: what a charging policy observes, and the decision loop that applies it.

Every ``[control] charging_interval`` (default 15 min) :meth:`ChargingControl.decide` builds one
observation row per plugged-in EV (:class:`ChargingObs`; its float32 ``features`` follow
:data:`CHARGING_SPEC`), asks the policy for one charging set-point per EV (kW, grid side),
checks them (:func:`~twin.control.policy.check_actions`: a number per row, finite, in
``[0, the EV's charger kW]``; anything else stops the run with a PolicyError naming the policy,
the simulated time and the EV) and writes them to ``EVFleet.p_set_kw``. The engine enforces
the rest: the charging kernel (:func:`twin.energy.ev.charge_step`) never exceeds the charger,
stops at the session's target and at departure.

Timing: the decision at ``t`` runs after the energy tick at ``t`` (clock order
:data:`CHARGING_ORDER` = 250 > 200), so it sees the draws of ``[t - tick, t)`` and the EVs
plugged in before ``t``, and its set-points apply to ``[t, t + interval)``. The transformer
columns come from a power flow of that last tick, solved at each decision (one snapshot, well
under a millisecond), so a policy sees the loading the energy component reports.

EVs that plug in between two decisions start their session at the policy's ``plug_in_kw``
(an optional policy attribute, written to ``Consumers.session_p_set_kw``) until the next
decision:

- NaN, the charger's full power, for the uncontrolled baseline: an EV charges from the moment
  it plugs in, exactly as without control (a run with it is bit-identical to one without);
- 0 kW for every other policy (the default when a policy has no ``plug_in_kw``): the EV waits
  for the next decision, at most one interval. This is what ACN-Sim's schedulers expect (an
  EVSE missing from the schedule gets a zero pilot signal until the scheduler runs again;
  ACN-Sim re-runs it at each plug-in, here it runs on the interval), and it keeps a limit the
  policy enforced (a transformer's rating) from being broken by arrivals between decisions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.clock import Process
from twin.control.policy import Policy, check_actions
from twin.control.spec import Feature, ObsSpec
from twin.energy.powerflow import solve

if TYPE_CHECKING:
    from twin.model import CityModel
    from twin.results import Results

CHARGING_ORDER = 250  # after the energy tick (200) at the same instant
#: hours of tariff look-ahead in an observation row: 12 h covers an evening plug-in to the
#: next morning's departure (US home arrivals peak 17:00-19:00, departures 07:00-08:00, NHTS
#: 2017), so an off-peak window that starts later tonight is visible on arrival
TARIFF_HOURS_AHEAD = 12
#: cap of ``hours_to_departure``: an EV with no further departure planned today reads this
DEPARTURE_CAP_H = 24.0
#: relative slack at the charger limit: a float32 rounding of the charger power (ONNX models
#: compute in float32) counts as the charger power
_HIGH_RTOL = 1e-6

CHARGING_SPEC = ObsSpec(
    kind="charging",
    version=1,
    features=(
        Feature("time_of_day_h", "h", "simulated clock time of the decision, [0, 24)"),
        Feature(
            "tariff_now_usd_per_kwh",
            "USD/kWh",
            "electricity price in force now ([energy] price_per_kwh, hourly)",
        ),
        *(
            Feature(
                f"tariff_next_{k}h_usd_per_kwh",
                "USD/kWh",
                f"electricity price in force {k} h from now",
            )
            for k in range(1, TARIFF_HOURS_AHEAD + 1)
        ),
        Feature("soc_kwh", "kWh", "energy in the battery now"),
        Feature("battery_kwh", "kWh", "usable battery capacity"),
        Feature(
            "energy_needed_kwh",
            "kWh",
            "grid energy still needed to reach the session's "
            "target: (target - soc) / charging efficiency, >= 0",
        ),
        Feature(
            "hours_to_departure",
            "h",
            "time to the EV's next planned departure from home, "
            f">= 0; {DEPARTURE_CAP_H:g} when none is planned (or further away)",
        ),
        Feature("max_p_kw", "kW", "charger power limit (grid side); the highest set-point"),
        Feature(
            "trafo_load_kva",
            "kVA",
            "loading of the EV's MV/LV transformer over the last energy tick, EV charging "
            "included: power-flow loading % x rating / 100 (losses and voltage drop count)",
        ),
        Feature("trafo_ev_kw", "kW", "EV charging on that transformer over the last energy tick"),
        Feature(
            "trafo_headroom_kw",
            "kW",
            "EV power that transformer can take in all before its loading reaches its "
            "rating, given its non-EV load of the last tick (ChargingControl.trafo_state), >= 0",
        ),
        Feature("trafo_rating_kva", "kVA", "rating of that transformer (all units in parallel)"),
    ),
    n_outputs=1,
    output_doc="charging set-point of the EV, kW (grid side), in [0, max_p_kw]",
)


@dataclass(frozen=True, eq=False)
class ChargingObs:
    """The EVs plugged in at a decision, one entry per EV (row), plus the decision's context.

    Named arrays (float64 unless noted) carry the same values as the float32 ``features``
    matrix a model reads (columns as in :data:`CHARGING_SPEC`).
    """

    t_s: float  # simulated time of the decision
    interval_s: float  # the set-points hold until the next decision, this much later
    tariff_day_usd_per_kwh: np.ndarray  # (24,) the day's hourly price
    ev: np.ndarray  # int64 EV index (row of the EVFleet)
    household: np.ndarray  # int64 household index
    transformer: np.ndarray  # int64 MV/LV transformer index
    time_of_day_h: np.ndarray
    tariff_now_usd_per_kwh: np.ndarray
    tariff_next_usd_per_kwh: np.ndarray  # (rows, TARIFF_HOURS_AHEAD): 1 h, 2 h, ... ahead
    soc_kwh: np.ndarray
    battery_kwh: np.ndarray
    energy_needed_kwh: np.ndarray
    hours_to_departure: np.ndarray
    max_p_kw: np.ndarray
    trafo_load_kva: np.ndarray
    trafo_ev_kw: np.ndarray
    trafo_headroom_kw: np.ndarray
    trafo_rating_kva: np.ndarray
    features: np.ndarray  # float32 (rows, CHARGING_SPEC.width)

    def __len__(self) -> int:
        return len(self.ev)

    def labels(self) -> list[str]:
        """How errors name each row: "EV 12 (household 345)"."""
        return [f"EV {e} (household {h})" for e, h in zip(self.ev, self.household, strict=True)]


class ChargingControl:
    """A charging policy deciding the set-points of the model's plugged-in EVs.

    ``decide(t_s)`` is meant for a clock process at ``charging_interval`` and order
    :data:`CHARGING_ORDER` (see :meth:`process`); call ``policy.reset(seed)`` before the run.
    """

    def __init__(self, model: CityModel, policy: Policy) -> None:
        energy = model.energy
        if energy is None:
            raise ValueError("charging control needs the energy model (energy.enabled)")
        self.model = model
        self.policy = policy
        self.interval_s = float(model.scenario.control.charging_interval)
        cfg = model.scenario.energy
        self.consumers = energy.consumers
        self.evs = energy.consumers.evs
        city = energy.city
        price = cfg.price_per_kwh
        self.tariff_day = np.broadcast_to(np.asarray(price, dtype=np.float64), (24,)).copy()
        self.power_factor = float(cfg.grid.power_factor)
        self._tan_phi = float(np.tan(np.arccos(self.power_factor)))
        self.grid = energy.grid
        self._hh_load = np.asarray(city.household_load, dtype=np.int64)
        self._trafo_of_load = np.full(self.grid.n_load, -1, dtype=np.int64)
        self._trafo_of_load[self._hh_load] = city.household_transformer
        self._trafo_branch = np.asarray(city.trafo_branch, dtype=np.int64)
        self._n_trafo = len(city.trafo_branch)
        self.trafo_rating_kva = np.asarray(city.trafo_kva * city.trafo_parallel, dtype=float)
        self._ev_trafo = np.asarray(
            city.household_transformer[self.consumers.ev_household], dtype=np.int64
        )
        #: set-point of a session that starts between decisions (see the module docstring)
        self.plug_in_kw = float(getattr(policy, "plug_in_kw", 0.0))
        self.consumers.session_p_set_kw = self.plug_in_kw
        self.decisions = 0
        self.ev_decisions = 0
        self.act_wall_s = 0.0
        self._log: list[tuple[float, int, float, float]] = []

    def process(self) -> Process:
        """The clock process that calls :meth:`decide` every interval from the start."""
        return Process("charging-control", self.interval_s, self.decide, order=CHARGING_ORDER)

    # -- observation -------------------------------------------------------------------------

    def trafo_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per MV/LV transformer, over the last energy tick: (loading kVA, EV kW, headroom kW).

        The loading comes from a power flow of the tick's household draws (one snapshot, as
        the energy component solves it): loading % x rating, so losses and a voltage below
        1 pu count. The headroom is the EV power the transformer can take in all before its
        loading reaches its rating: ``(rating / r - non-EV kVA) x power factor``, the non-EV
        kVA metered (the households' draw less their EV charging, at the loads' power factor)
        and ``r`` = loading / metered kVA of the tick (>= 1; 1 below 5 % of the rating), the
        share losses and voltage add, taken as proportional to the load.
        """
        c = self.consumers
        n_load = len(self._trafo_of_load)
        p_load = np.bincount(self._hh_load, c.last_net_kw, minlength=n_load)
        ev_load = np.bincount(self._hh_load, c.last_ev_kw, minlength=n_load)
        on = self._trafo_of_load >= 0
        tr = self._trafo_of_load[on]

        def metered_kva(p_kw: np.ndarray) -> np.ndarray:
            # each load draws q = tan(phi) * max(p, 0), as the energy component sets it
            p = np.bincount(tr, p_kw[on], minlength=self._n_trafo)
            q = np.bincount(tr, np.maximum(p_kw[on], 0.0), minlength=self._n_trafo)
            return np.hypot(p, self._tan_phi * q)

        p_mw = p_load[None, :] / 1000.0
        res = solve(self.grid, p_mw=p_mw, q_mvar=self._tan_phi * np.maximum(p_mw, 0.0))
        loading_kva = res.branch_loading_percent[0, self._trafo_branch] / 100.0
        loading_kva = loading_kva * self.trafo_rating_kva
        meter_kva = metered_kva(p_load)
        big = meter_kva >= 0.05 * self.trafo_rating_kva
        r = np.ones(self._n_trafo)
        r[big] = np.maximum(loading_kva[big] / meter_kva[big], 1.0)
        non_ev_kva = metered_kva(p_load - ev_load)
        headroom_kw = np.maximum(self.trafo_rating_kva / r - non_ev_kva, 0.0) * self.power_factor
        ev_kw = np.bincount(tr, ev_load[on], minlength=self._n_trafo)
        return loading_kva, ev_kw, headroom_kw

    def observe(self, t_s: float) -> ChargingObs:
        """The observation of the EVs plugged in at ``t_s`` (plugged, plug-in time <= t_s)."""
        evs, c = self.evs, self.consumers
        ev = np.flatnonzero(evs.plugged & (evs.plug_s <= t_s)).astype(np.int64)
        n = len(ev)
        tr = self._ev_trafo[ev]
        load_kva, ev_kw, headroom_kw = self.trafo_state()
        hour = int(t_s // 3600.0)
        ahead = self.tariff_day[(hour + np.arange(1, TARIFF_HOURS_AHEAD + 1)) % 24]
        soc = evs.soc_kwh[ev].copy()
        to_go_h = (evs.departure_s[ev] - t_s) / 3600.0
        cols = {
            "time_of_day_h": np.full(n, (t_s % 86400.0) / 3600.0),
            "tariff_now_usd_per_kwh": np.full(n, self.tariff_day[hour % 24]),
            "tariff_next_usd_per_kwh": np.tile(ahead, (n, 1)),
            "soc_kwh": soc,
            "battery_kwh": evs.battery_kwh[ev].copy(),
            "energy_needed_kwh": np.maximum(evs.target_kwh[ev] - soc, 0.0) / evs.efficiency[ev],
            "hours_to_departure": np.clip(to_go_h, 0.0, DEPARTURE_CAP_H),
            "max_p_kw": evs.max_p_kw[ev].copy(),
            "trafo_load_kva": load_kva[tr],
            "trafo_ev_kw": ev_kw[tr],
            "trafo_headroom_kw": headroom_kw[tr],
            "trafo_rating_kva": self.trafo_rating_kva[tr],
        }
        # the named columns in the spec's order (tariff_next_*: one column per hour ahead)
        features = np.column_stack(list(cols.values())).astype(np.float32)
        return ChargingObs(
            t_s=float(t_s),
            interval_s=self.interval_s,
            tariff_day_usd_per_kwh=self.tariff_day.copy(),
            ev=ev,
            household=c.ev_household[ev].astype(np.int64),
            transformer=tr,
            features=features,
            **cols,
        )

    # -- decisions ---------------------------------------------------------------------------

    def decide(self, t_s: float) -> np.ndarray:
        """Set every EV's charging set-point for ``[t_s, t_s + interval)``; returns them.

        The plugged-in EVs get the policy's (checked) actions; the others the policy's
        ``plug_in_kw`` (what a session starting before the next decision charges at). With
        no EV plugged in the policy is not asked.
        """
        obs = self.observe(t_s)
        p_set = np.full(len(self.evs), self.plug_in_kw)
        rows = len(obs)
        if rows:
            wall0 = time.perf_counter()
            raw = self.policy.act(obs)
            self.act_wall_s += time.perf_counter() - wall0
            p_set[obs.ev] = self.check(obs, raw)
        self.evs.p_set_kw[:] = p_set
        self.decisions += 1
        self.ev_decisions += rows
        kw = p_set[obs.ev]
        self._log.append((float(t_s), rows, float(kw.sum()), float(obs.energy_needed_kwh.sum())))
        return p_set

    def check(self, obs: ChargingObs, raw: object) -> np.ndarray:
        """The policy's actions for ``obs`` as kW per row, or a PolicyError (see the module).

        A ``(rows, 1)`` array (an ONNX model's output) is taken as ``(rows,)``.
        """
        rows = len(obs)
        try:
            a = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            a = raw  # check_actions says what is wrong
        else:
            if a.shape == (rows, 1):
                a = a[:, 0]
            if a.shape == (rows,):  # float32 rounding of the charger power is the charger power
                near = np.abs(a - obs.max_p_kw) <= _HIGH_RTOL * obs.max_p_kw
                a = np.where(near, obs.max_p_kw, a)
        return check_actions(
            self.policy,
            a,
            rows=rows,
            t_s=obs.t_s,
            labels=obs.labels(),
            low=0.0,
            high=obs.max_p_kw,
            integer=False,
        )

    # -- results -----------------------------------------------------------------------------

    def add_results(self, results: Results) -> None:
        """Charging-control KPIs and the per-decision table ``charging_decisions``."""
        add = results.add_kpi
        add("control.charging_decisions", self.decisions, "count")
        add("control.charging_ev_decisions", self.ev_decisions, "count")
        add("control.charging_policy_wall_s", self.act_wall_s, "s")
        log = pd.DataFrame(
            self._log, columns=["t_s", "plugged_evs", "set_point_kw", "energy_needed_kwh"]
        )
        mean = log["set_point_kw"].sum() / max(int(log["plugged_evs"].sum()), 1)
        add("control.charging_mean_set_point_kw", float(mean), "kW")
        results.tables["charging_decisions"] = log
