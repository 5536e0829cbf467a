"""The traffic engine as a CityModel component: demand, the vehicle tick, link bins, KPIs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.clock import Process
from twin.timefmt import format_clock
from twin.traffic.demand import Trips, random_trips, read_trips_csv
from twin.traffic.sim import TrafficSim
from twin.traffic.state import Params

if TYPE_CHECKING:
    from twin.model import CityModel
    from twin.results import Results

log = logging.getLogger(__name__)

REROUTE_ORDER = 90  # route changes take effect in the traffic block that follows
TRAFFIC_ORDER = 100  # after interventions and policy decisions, before the recorders
LINK_BIN_ORDER = 900  # after every component, before the model recorder (1000)
REPORTED = (
    "vehicles_running",
    "vehicles_waiting",
    "trips_completed",
    "vehicles_teleported",
    "vehicle_km",
    "vehicle_hours",
)


def scenario_trips(model: CityModel) -> Trips:
    """The trip table the scenario's ``[demand]`` asks for."""
    demand, net = model.scenario.demand, model.network
    if demand.kind == "population":
        return model.population.trips
    if demand.kind == "csv":
        trips, report = read_trips_csv(demand.file, net, snap_max_m=demand.snap_max_m)
        log.info(
            "read %d trips from %s (%d skipped: same origin and destination node)",
            report.trips,
            demand.file,
            report.same_node_skipped,
        )
        if report.too_far_skipped:
            log.warning(
                "%s: %d of %d trips skipped: a point farther than snap_max_m = %g m from the "
                "network, e.g. %s",
                demand.file, report.too_far_skipped, report.rows, demand.snap_max_m,
                "; ".join(report.too_far_examples),
            )  # fmt: skip
        return in_window(trips, model.start_s, model.end_s, str(demand.file))
    return random_trips(
        net,
        rng=model.stream("demand"),
        start_s=model.start_s,
        end_s=model.end_s,
        trips_per_hour=demand.trips_per_hour,
        demand_scale=demand.demand_scale,
        profile=demand.profile,
        min_trip_m=demand.min_trip_m,
    )


def in_window(trips: Trips, start_s: float, end_s: float, source: str) -> Trips:
    """The trips departing in [start_s, end_s); the others are reported (count, examples) and
    skipped, not driven late from the start. A kept trip whose previous leg was skipped starts
    free."""
    keep = (trips.depart_s >= start_s) & (trips.depart_s < end_s)
    if keep.all():
        return trips
    out = np.flatnonzero(~keep)
    examples = ", ".join(
        f"trip {trips.trip_id[i]} at {format_clock(trips.depart_s[i])}" for i in out[:3]
    )
    log.warning(
        "%s: %d of %d trips depart outside the run (%s to %s) and are skipped, e.g. %s",
        source, len(out), len(trips), format_clock(start_s), format_clock(end_s), examples,
    )  # fmt: skip
    kept_ids = trips.trip_id[keep]
    after = trips.after_trip_id[keep]
    return Trips(
        trip_id=kept_ids,
        origin_node=trips.origin_node[keep],
        dest_node=trips.dest_node[keep],
        depart_s=trips.depart_s[keep],
        after_trip_id=np.where(np.isin(after, kept_ids), after, -1),
        min_dwell_s=np.where(np.isin(after, kept_ids), trips.min_dwell_s[keep], 0.0),
    )


class TrafficComponent:
    """Vehicles on the model's road network, stepped every ``[traffic] step`` seconds."""

    def __init__(self, model: CityModel) -> None:
        cfg = model.scenario.traffic
        self.model = model
        self.trips = scenario_trips(model)
        if model.scenario.intervention and model.scenario.demand.kind != "population":
            from twin.interventions.apply import trip_demand

            self.trips = trip_demand(model, self.trips)
        params = Params(
            sigma=cfg.sigma,
            speed_dev=cfg.speed_dev,
            tau_s=cfg.tau_s,
            stuck_limit_s=cfg.gridlock_after,
            teleport=cfg.teleport,
        )
        self.sim = TrafficSim(
            model.network,
            self.trips,
            seed=model.scenario.seed,
            start_s=model.start_s,
            dt_s=cfg.step,
            params=params,
            signal_timing=cfg.signal_timing,
        )
        bad = int((~self.sim.routable).sum())
        if bad:
            log.warning(
                "%d of %d trips have no route and are skipped, e.g. (trip, from OSM "
                "node, to OSM node) %s",
                bad,
                len(self.trips),
                self.sim.unroutable_examples(),
            )
        self._link_bins: list[pd.DataFrame] = []
        self._kpis: dict[str, float] = {}
        self._kpis_step = -1
        # each wake at time t brings the vehicles from t - block up to t, so everything that
        # runs later at t (link bins, recorders) sees the traffic at t
        model.clock.register(
            Process("traffic", cfg.block, self._tick, order=TRAFFIC_ORDER, offset_s=cfg.block)
        )
        model.clock.register(
            Process(
                "link-stats",
                cfg.link_bin or model.report_interval_s,
                self._flush,
                order=LINK_BIN_ORDER,
            )
        )
        if cfg.reroute_interval > 0 and (cfg.reroute_share > 0 or cfg.route_at_departure):
            self._reroute_rng = model.stream("reroute")
            model.clock.register(
                Process(
                    "reroute",
                    cfg.reroute_interval,
                    self._reroute,
                    order=REROUTE_ORDER,
                    offset_s=cfg.reroute_interval,
                )
            )
        for name in REPORTED:
            model.add_reporter(name, lambda m, k=name: self._kpis_now()[k])

    def connect(self) -> None:
        """Nothing to read from later components."""

    def _kpis_now(self) -> dict[str, float]:
        """Network KPIs at the current step, computed once for all the reporters."""
        if self._kpis_step != self.sim.step_no:
            self._kpis, self._kpis_step = self.sim.network_kpis(), self.sim.step_no
        return self._kpis

    def sync(self, t_s: float) -> None:
        """Bring the vehicles up to time ``t_s`` (whole steps, never past the scenario end)."""
        steps = int((min(t_s, self.model.end_s) - self.sim.t_s) / self.sim.dt_s + 1e-9)
        self.sim.advance(steps)

    def _tick(self, t_s: float) -> None:
        self.sync(t_s)

    def _reroute(self, t_s: float) -> None:
        self.sync(t_s)
        cfg = self.model.scenario.traffic
        self.sim.reroute(cfg.reroute_share, self._reroute_rng)
        if cfg.route_at_departure:
            self.sim.route_departures(t_s + cfg.reroute_interval)

    def _flush(self, t_s: float) -> None:
        self.sync(t_s)
        if self.sim.t_s > self.sim._bin_start_s:
            self._link_bins.append(self.sim.flush_link_bin())

    def add_results(self, results: Results) -> None:
        """Trip and link tables, and the network KPIs, into ``results``."""
        kpis = self.sim.network_kpis()
        units = {
            "vehicle_km": "km",
            "vehicle_hours": "h",
            "mean_speed_kmh": "km/h",
            "mean_duration_s": "s",
            "mean_time_loss_s": "s",
        }
        results.add_kpi("traffic.trips", len(self.trips), "count")
        for key, value in kpis.items():
            results.add_kpi(f"traffic.{key}", value, units.get(key, "count"))
        results.add_kpi("traffic.vehicle_updates", self.sim.updates, "count")
        results.add_kpi("traffic.reroutes", self.sim.rerouted, "count")
        results.add_kpi("traffic.routed_at_departure", self.sim.routed_at_departure, "count")
        results.tables["trips"] = self.sim.trip_table()
        if self._link_bins:
            results.tables["links"] = pd.concat(self._link_bins, ignore_index=True)
