"""The what-ifs as a CityModel component: each intervention starts and ends on the clock.

Road closures and speed limits act on the traffic engine (the kernel's closed-link flags and
limits, the router's closures): at a closure, every vehicle whose route ahead uses a closed
link gets the fastest route around it (running ones from where they are, the others from
their origin), and again every :data:`DETOUR_PERIOD_S` while a closure lasts for those that
could not change then; a vehicle already on a closed link drives out of it. At a reopening,
or a change of speed limit, the trips not yet due are routed again. Transformer outages act
on the energy component. Demand and setting-like what-ifs were applied when the model was
built (see :mod:`twin.interventions.apply`, :func:`twin.interventions.config.apply_settings`);
here they are only listed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.clock import Process
from twin.control.component import SIGNAL_DECISION_ORDER
from twin.errors import ScenarioError
from twin.interventions.config import (
    CloseRoad,
    Event,
    Intervention,
    RemoveSignal,
    SignalControlChange,
    SpeedLimit,
    Tariff,
    TransformerOutage,
    TransformerRating,
)
from twin.interventions.targets import junction_node, road_links, transformers
from twin.rng import stream
from twin.timefmt import format_clock
from twin.traffic.state import SCHEDULED

if TYPE_CHECKING:
    from twin.model import CityModel
    from twin.results import Results

log = logging.getLogger(__name__)

INTERVENTION_ORDER = 80  # before re-routing (90) and the traffic block (100) at an instant
DETOUR_PERIOD_S = 30.0  # while a closure lasts, vehicles still routed through it try again
ONCE_S = 1e12  # the period of a one-off process
#: a grid outage at time t acts after the energy tick of t, which records the minute before t
OUTAGE_ORDER = 210


def _describe(item: Intervention, currency: str) -> str:
    """The report's label of an intervention (a tariff's price in the run's currency)."""
    return item.describe(currency) if isinstance(item, Tariff) else item.describe()


class InterventionsComponent:
    """The scenario's ``[[intervention]]`` tables, started and ended on the model's clock."""

    def __init__(self, model: CityModel) -> None:
        self.model = model
        sc = model.scenario
        self.items: tuple[Intervention, ...] = sc.intervention
        self.rows: list[dict] = []
        n_links = model.network.n_links
        self._closed = np.zeros(n_links, dtype=np.int64)  # closures in force per link
        self._speed0: np.ndarray | None = None
        self._limits: list[tuple[int, np.ndarray, float]] = []  # speed limits in force
        self._detoured = 0
        self._without: set[int] = set()
        self._detour_process: Process | None = None
        self._signals = None  # signal control run here (the scenario's own has none)
        self._policy0: tuple | None = None  # the scenario's signal policy, to return to
        for i, item in enumerate(self.items, start=1):
            where = f"{sc.source or sc.name}: intervention {i} ({item.kind})"
            t0 = model.start_s if item.at is None else item.at
            t1 = model.end_s if item.until is None else min(item.until, model.end_s)
            if not model.start_s <= t0 < model.end_s:
                raise ScenarioError(
                    f"{where}: at {format_clock(t0)} is outside the run "
                    f"({format_clock(model.start_s)} to {format_clock(model.end_s)}; times "
                    "past midnight continue the clock: 24:30)"
                )
            if item.until is not None and item.until <= t0:
                raise ScenarioError(
                    f"{where}: until {format_clock(item.until)} is not after the start "
                    f"{format_clock(t0)} (times past midnight continue the clock: 24:30)"
                )
            links = np.empty(0, dtype=np.int64)
            trafos = np.empty(0, dtype=np.int64)
            if isinstance(item, CloseRoad | SpeedLimit):
                if model.traffic is None:
                    raise ScenarioError(f"{where}: needs the traffic engine (traffic.enabled)")
                links = road_links(model.network, item, where)
                begin, end = self._road_actions(item, links)
            elif isinstance(item, TransformerOutage | TransformerRating):
                if model.energy is None:
                    raise ScenarioError(f"{where}: needs the energy model (energy.enabled)")
                trafos = transformers(model.energy.city, item, where)
                if isinstance(item, TransformerRating):  # scaled when the grid was built
                    begin = end = None
                else:
                    begin = lambda t, ids=trafos: self._outage(ids, True, t)  # noqa: E731
                    end = lambda t, ids=trafos: self._outage(ids, False, t)  # noqa: E731
            elif isinstance(item, SignalControlChange):
                if model.traffic is None:
                    raise ScenarioError(f"{where}: needs the traffic engine (traffic.enabled)")
                from twin.control.registry import load_policy

                policy = load_policy("signals", item.policy)  # unknown names fail now
                begin = lambda t, p=policy: self._signal_policy(p, t)  # noqa: E731
                end = lambda t: self._signal_policy(None, t)  # noqa: E731
            else:
                begin = end = None
            lon, lat = item.place if isinstance(item, Event) else (np.nan, np.nan)
            if isinstance(item, RemoveSignal):  # applied to the network as it was loaded
                node = junction_node(model.network, item.junction)
                lon, lat = model.network.node_lon[node], model.network.node_lat[node]
            self.rows.append(
                {
                    "intervention": i,
                    "kind": item.kind,
                    "start_s": t0,
                    "end_s": np.nan if item.until is None else float(item.until),
                    "label": item.label or _describe(item, model.scenario.energy.currency),
                    "links": links.astype(int).tolist(),
                    "transformers": trafos.astype(int).tolist(),
                    "lon": float(lon),
                    "lat": float(lat),
                }
            )
            order = OUTAGE_ORDER if isinstance(item, TransformerOutage) else INTERVENTION_ORDER
            if begin is not None:
                model.clock.register(
                    Process(f"intervention-{i}", ONCE_S, begin, order=order,
                            offset_s=t0 - model.start_s)
                )  # fmt: skip
            if end is not None and t1 < model.end_s:
                model.clock.register(
                    Process(f"intervention-{i}-end", ONCE_S, end, order=order,
                            offset_s=t1 - model.start_s)
                )  # fmt: skip

    def connect(self) -> None:
        """Nothing to read from later components."""

    def sync(self, t_s: float) -> None:
        """Nothing to catch up: interventions act at their instants."""

    # -- roads ---------------------------------------------------------------------------------

    def _road_actions(self, item: CloseRoad | SpeedLimit, links: np.ndarray):
        if isinstance(item, CloseRoad):
            return (lambda t: self._close(links, t)), (lambda t: self._reopen(links, t))
        key, speed_mps = id(item), item.speed_kmh / 3.6
        return (lambda t: self._set_speed(links, key, speed_mps, t)), (
            lambda t: self._set_speed(links, key, None, t)
        )

    def _close(self, links: np.ndarray, t_s: float) -> None:
        traffic = self.model.traffic
        traffic.sync(t_s)
        sim = traffic.sim
        self._closed[links] += 1
        sim.arrays.link_closed[links] = True
        sim.router.close_links(links)
        log.info("%s: %d links closed", format_clock(t_s), len(links))
        self._detour(t_s)
        if self._detour_process is None:
            self._detour_process = self.model.clock.register(
                Process("closure-detours", DETOUR_PERIOD_S, self._detour,
                        order=INTERVENTION_ORDER + 1, offset_s=DETOUR_PERIOD_S)
            )  # fmt: skip

    def _detour(self, t_s: float) -> None:
        closed = np.flatnonzero(self._closed > 0)
        if len(closed) == 0:
            return
        traffic = self.model.traffic
        traffic.sync(t_s)
        sim = traffic.sim
        vehicles = sim.routes_through(closed)
        if len(vehicles) == 0:
            return
        done, _ = sim.detour(vehicles)
        self._detoured += done
        still = sim.routes_through(closed)
        self._without.difference_update(vehicles.tolist())  # the last try of each counts
        self._without.update(still.tolist())

    def _reopen(self, links: np.ndarray, t_s: float) -> None:
        traffic = self.model.traffic
        traffic.sync(t_s)
        sim = traffic.sim
        self._closed[links] -= 1
        opened = links[self._closed[links] == 0]
        sim.arrays.link_closed[opened] = False
        sim.router.open_links(opened)
        self._replan(sim)

    def _set_speed(self, links: np.ndarray, key: int, speed_mps: float | None, t_s: float) -> None:
        """Start (``speed_mps``) or end (None) limit ``key`` on ``links``; where limits
        overlap, the one started last holds, and the earlier one again when it ends."""
        traffic = self.model.traffic
        traffic.sync(t_s)
        sim = traffic.sim
        if self._speed0 is None:
            self._speed0 = sim.arrays.link_speed_mps.copy()
        if speed_mps is None:
            self._limits = [lim for lim in self._limits if lim[0] != key]
        else:
            self._limits.append((key, links, speed_mps))
        speed = self._speed0.copy()
        for _, on, v in self._limits:  # in start order: the latest wins
            speed[on] = v
        sim.arrays.link_speed_mps[:] = speed
        net = self.model.network
        sim.router.set_link_times(net.link_length_m / sim.arrays.link_speed_mps)
        self._replan(sim)

    @staticmethod
    def _replan(sim) -> None:
        """Route the trips not yet due again (closures and limits as they are now)."""
        pending = np.flatnonzero(sim.fleet.state == SCHEDULED)
        if len(pending):
            sim.detour(pending)

    # -- signals -------------------------------------------------------------------------------

    def _signal_policy(self, policy, t_s: float) -> None:
        """Hand the signals to ``policy`` from now (None: back to the scenario's own)."""
        from twin.control.signals import SignalControl

        model = self.model
        model.traffic.sync(t_s)
        own = model.control.signals if model.control is not None else None
        control = own or self._signals
        if control is None:  # the scenario's signals run fixed plans: decide here
            cfg = model.scenario.control
            control = self._signals = SignalControl(
                model.traffic.sim, None, min_green_s=cfg.min_green, max_green_s=cfg.max_green,
                detector_m=cfg.detector_m,
            )  # fmt: skip
            model.clock.register(
                Process("intervention-signal-decisions", cfg.signal_interval,
                        self._decide_signals, order=SIGNAL_DECISION_ORDER)
            )  # fmt: skip
        if self._policy0 is None:
            self._policy0 = (control.policy,)
        new = self._policy0[0] if policy is None else policy
        if new is not None and not getattr(new, "engine_plan", False):
            new.reset(int(stream(model.scenario.seed, "policy.signals.intervention")
                          .integers(2**31)))  # fmt: skip
            model.traffic.sim.plans.take_control(control.layout.signals)
        else:
            model.traffic.sim.plans.release_control(control.layout.signals)
        control.policy = new

    def _decide_signals(self, t_s: float) -> None:
        if self._signals is not None:
            self.model.traffic.sync(t_s)
            self._signals.decide()

    # -- grid ----------------------------------------------------------------------------------

    def _outage(self, trafos: np.ndarray, out: bool, t_s: float) -> None:
        energy = self.model.energy
        n = energy.set_out_of_service(trafos, out)
        log.info("%s: %d transformers %s; %d households unserved", format_clock(t_s),
                 len(trafos), "out of service" if out else "back", n)  # fmt: skip

    # -- results -------------------------------------------------------------------------------

    def table(self) -> pd.DataFrame:
        """One row per intervention: kind, start and end, label, links and transformers."""
        return pd.DataFrame(
            self.rows,
            columns=["intervention", "kind", "start_s", "end_s", "label", "links",
                     "transformers", "lon", "lat"],
        )  # fmt: skip

    def add_results(self, results: Results) -> None:
        results.add_kpi("interventions.count", len(self.items), "count")
        if any(isinstance(i, CloseRoad) for i in self.items):
            results.add_kpi("interventions.vehicles_detoured", self._detoured, "count")
            results.add_kpi("interventions.vehicles_without_detour", len(self._without), "count")
        if self._signals is not None:
            results.add_kpi("interventions.signal_decisions", self._signals.decisions, "count")
        results.tables["interventions"] = self.table()
