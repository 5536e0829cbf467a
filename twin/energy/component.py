"""The energy side as a CityModel component: the grid, household loads, EVs, the power flow.

Every ``[energy] tick`` (one minute by default) the households' draw over the past tick is
computed (:class:`~twin.energy.consumers.Consumers`: base load, heating/cooling, EV charging
after the traffic engine's arrivals, minus PV) and kept; the power flow of the whole city grid
is solved for the kept ticks in one batched kernel call once an hour of ticks is kept and at
every recording instant. KPIs accumulate from each batch (see :meth:`add_results`).

With more than one Numba thread the batch is solved on a second thread while the traffic goes
on (the serial sweep releases the GIL): the same results bit for bit. A batch's figures are
folded in, in order, before the next batch is handed over and before any result is read; the
``energy_v_min_pu`` and ``energy_trafo_loading_max`` readings of a recording are filled in then
(NaN in the live data collector until the next recording or :meth:`CityModel.results`).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np
import pandas as pd

from twin.clock import Process
from twin.energy.consumers import Consumers
from twin.energy.powerflow import PowerFlowResult, solve
from twin.energy.synthesis import CityGrid
from twin.errors import ScenarioError
from twin.synth_cache import cached_grid
from twin.timefmt import format_clock

if TYPE_CHECKING:
    from twin.energy.grid import Grid
    from twin.model import CityModel
    from twin.results import Results

log = logging.getLogger(__name__)

ENERGY_ORDER = 200  # after traffic (100) and home arrivals (150) at the same instant
BATCH_TICKS = 60  # power-flow snapshots solved per kernel call (an hour at one minute)
#: sweeps before a snapshot counts as not converged: generous, since a heavily loaded case
#: that pandapower solves took 115 sweeps here (the solver's default cap is 100)
MAX_SWEEPS = 300
ANSI_BAND_PU = (0.95, 1.05)  # ANSI C84.1 range A service voltage
EN50160_BAND_PU = (0.90, 1.10)  # EN 50160 supply voltage, +-10 %


class _Batch(NamedTuple):
    """A batch of ticks handed to the power flow: its loads, tick times, and the answer."""

    p_mw: np.ndarray
    t_s: np.ndarray
    result: Future[tuple[PowerFlowResult, float]]
    late_rows: list[tuple[str, int]]  # (reporter, data-collector row) to fill in when folded


def _hourly(value: float | tuple[float, ...], t_s: np.ndarray) -> np.ndarray:
    if isinstance(value, tuple):
        return np.asarray(value)[(t_s // 3600).astype(int) % 24]
    return np.full(len(t_s), float(value))


_SOLVER: ThreadPoolExecutor | None = None


def _solver() -> ThreadPoolExecutor:
    """The one power-flow thread of the process, shared by every model (each model folds its
    own batches in order; models built one after another leave no idle threads behind)."""
    global _SOLVER
    if _SOLVER is None:
        _SOLVER = ThreadPoolExecutor(1, thread_name_prefix="twin-powerflow")
    return _SOLVER


def _solve_timed(grid: Grid, p: np.ndarray, q: np.ndarray) -> tuple[PowerFlowResult, float]:
    """One batch on the serial sweep (safe beside the model's own Numba work), and its wall."""
    wall0 = time.perf_counter()
    res = solve(grid, p_mw=p, q_mvar=q, max_iter=MAX_SWEEPS, check=False, parallel=False)
    return res, time.perf_counter() - wall0


class EnergyComponent:
    """The city's distribution grid and what its households draw, tick by tick."""

    def __init__(self, model: CityModel) -> None:
        sc = model.scenario
        cfg = sc.energy
        pop = model.population
        if pop is None:
            raise ScenarioError(
                f"{sc.source or sc.name}: energy.enabled needs the population "
                "(population.enabled = true): the grid is built for the households"
            )
        self.model = model
        self.cfg = cfg
        wall0 = time.perf_counter()
        net = model.network
        self.city: CityGrid = cached_grid(
            net, pop.data.households, sc.map.file, cfg.grid, seed=sc.seed
        )
        self.grid = self.city.grid.validate()
        if sc.intervention:  # raised ratings, before anything (charging control) reads them
            from twin.interventions.apply import transformer_ratings

            transformer_ratings(model.scenario, self)
        self.consumers = Consumers(
            pop.data,
            pop.legs,
            cfg,
            sc.seed,
            start_s=model.start_s,
            end_s=model.end_s,
            lon_lat=(float(np.mean(net.node_lon)), float(np.mean(net.node_lat))),
        )
        self.build_s = time.perf_counter() - wall0
        self.tick_s = float(cfg.tick)
        self._pf = cfg.grid.power_factor
        self._tan_phi = float(np.tan(np.arccos(self._pf)))
        self._load_of_hh = self.city.household_load
        n_load = self.grid.n_load
        self._p_rows: list[np.ndarray] = []
        self._n_load = n_load
        # per tick series (filled as ticks run) and accumulators (filled as batches solve)
        self._ticks: list[tuple[float, ...]] = []
        self._solved: list[pd.DataFrame] = []
        trafo = self.city.trafo_branch
        self._trafo_peak_pct = np.zeros(len(trafo))
        self._trafo_over_min = np.zeros(len(trafo))
        self._hv_branches = self.city.sub_branch
        self._sub_peak_pct = np.zeros(len(self._hv_branches))
        self._sub_over_min = np.zeros(len(self._hv_branches))
        self._house_bus = self.city.household_bus
        self._house_v_min = np.full(len(self._house_bus), np.inf)
        self._house_v_max = np.full(len(self._house_bus), -np.inf)
        self._bus_min_outside = {"ansi": 0.0, "en50160": 0.0}
        self._line_peak_pct = np.zeros(self.grid.n_branch)
        self._trafo_bins: dict[int, np.ndarray] = {}  # report interval -> peak loading %
        self._comfort_deg_h = 0.0
        self._solve_wall_s = 0.0  # inside the solver, on whichever thread
        self._wait_wall_s = 0.0  # the model's thread waiting for a batch solved beside it
        self._pending: list[_Batch] = []
        self._beside = False  # some batch was solved on the power-flow thread
        self._not_converged = 0  # power-flow snapshots that did not converge
        self._latest: dict[str, float] = {}
        # transformer outages (what-ifs): out-of-service count per transformer, the households
        # left unserved, and what they would have drawn
        self._outage = np.zeros(len(trafo), dtype=np.int64)
        self._unserved: np.ndarray | None = None
        self._ev_max_p0: np.ndarray | None = None
        self._unserved_kwh = 0.0
        self._unserved_hh_h = 0.0
        self._unserved_max = 0
        self._had_outage = False
        model.clock.register(
            Process("energy", self.tick_s, self._tick, order=ENERGY_ORDER, offset_s=self.tick_s)
        )
        for name in ("load_kw", "ev_kw", "hvac_kw", "pv_kw"):
            model.add_reporter(f"energy_{name}", lambda m, k=name: self._latest.get(k, np.nan))
        for name in ("v_min_pu", "trafo_loading_max"):
            model.add_reporter(f"energy_{name}", lambda m, k=name: self._grid_reading(k))

    def connect(self) -> None:
        """With population demand on the traffic engine, EVs follow its vehicles."""
        model = self.model
        if model.traffic is not None and model.scenario.demand.kind == "population":
            self.attach_traffic(model.population.trip_leg)

    def attach_traffic(self, trip_leg: np.ndarray) -> None:
        """EV departures and arrivals from the traffic engine's vehicles."""
        self.consumers.attach_traffic(trip_leg)

    # -- the clock -------------------------------------------------------------------------------

    def _tick(self, t_s: float) -> None:
        traffic = self.model.traffic
        fleet = None
        if traffic is not None:
            traffic.sync(t_s)
            fleet = traffic.sim.by_trip  # by trip: running vehicles are renumbered
        c = self.consumers
        c.ev_updates(t_s, fleet)
        base, hvac, ev, pv = c.draw_kw(t_s)
        net_kw = base + hvac + ev - pv
        if self._unserved is not None:  # out of service: no supply, no PV export
            lost = self._unserved
            self._unserved_kwh += float((base + hvac + ev)[lost].sum()) * self.tick_s / 3600.0
            self._unserved_hh_h += float(lost.sum()) * self.tick_s / 3600.0
            net_kw = np.where(lost, 0.0, net_kw)
        p_mw = np.bincount(self._load_of_hh, net_kw, minlength=self._n_load) / 1000.0
        self._p_rows.append(p_mw)
        temp = c.dwellings.temp_c
        lo, hi = self.cfg.comfort_band_c
        outside = np.maximum(lo - temp, 0.0) + np.maximum(temp - hi, 0.0)
        self._comfort_deg_h += float(outside.sum()) * self.tick_s / 3600.0
        self._ticks.append(
            (t_s - self.tick_s, base.sum(), hvac.sum(), ev.sum(), pv.sum(), net_kw.sum())
        )
        self._latest.update(
            load_kw=float(net_kw.sum()), ev_kw=float(ev.sum()), hvac_kw=float(hvac.sum()),
            pv_kw=float(pv.sum()),
        )  # fmt: skip
        if len(self._p_rows) >= BATCH_TICKS:
            self._solve_batch()

    def set_out_of_service(self, transformers: np.ndarray, out: bool) -> int:
        """Take MV/LV ``transformers`` out of service (``out``) or back; their households get
        no supply (their EVs do not charge) meanwhile. Returns households now unserved."""
        self._had_outage = True
        self._outage[np.asarray(transformers, dtype=np.int64)] += 1 if out else -1
        hh_trafo = self.city.household_transformer
        down = np.zeros(len(hh_trafo), dtype=bool)
        connected = hh_trafo >= 0
        down[connected] = self._outage[hh_trafo[connected]] > 0
        self._unserved = down if down.any() else None
        self._unserved_max = max(self._unserved_max, int(down.sum()))
        evs = self.consumers.evs
        if len(evs):
            if self._ev_max_p0 is None:
                self._ev_max_p0 = evs.max_p_kw.copy()
            evs.max_p_kw[:] = np.where(down[self.consumers.ev_household], 0.0, self._ev_max_p0)
        return int(down.sum())

    def scale_rating(self, transformers: np.ndarray, factor: float) -> None:
        """Multiply the rating of MV/LV ``transformers`` by ``factor`` (before the run)."""
        idx = np.asarray(transformers, dtype=np.int64)
        self.city.trafo_kva[idx] *= factor
        sn_mva = self.grid.branch_sn_mva.copy()  # a Grid is immutable: a new one
        sn_mva[self.city.trafo_branch[idx]] *= factor
        self.grid = self.city.grid = self.grid.replace(branch_sn_mva=sn_mva).validate()

    def sync(self, t_s: float) -> None:
        """Solve the power flow of the ticks kept so far (called at recording instants)."""
        self._solve_batch()

    def finish(self) -> None:
        """Wait for the batches still being solved and fold them in (the end of a run)."""
        self._drain()

    def _grid_reading(self, key: str) -> float:
        """A reporter's grid figure of the latest tick; NaN, filled in later, while its batch
        is still being solved."""
        if self._pending and self._pending[-1].result.done():
            self._drain()
        if self._pending and self.model.datacollector is not None:
            var = f"energy_{key}"
            row = len(self.model.datacollector.model_vars.get(var, ()))
            self._pending[-1].late_rows.append((var, row))
            return np.nan
        return self._latest.get(key, np.nan)

    def _solve_batch(self) -> None:
        """Hand the kept ticks to the power flow (beside the model's thread when Numba has
        more than one) after folding in the batch before."""
        self._drain()
        if not self._p_rows:
            return
        p = np.vstack(self._p_rows)
        self._p_rows = []
        q = self._tan_phi * np.maximum(p, 0.0)
        t = np.array([row[0] for row in self._ticks[len(self._ticks) - len(p) :]])
        result: Future[tuple[PowerFlowResult, float]]
        if numba.get_num_threads() > 1:
            result = _solver().submit(_solve_timed, self.grid, p, q)
            self._beside = True
        else:
            result = Future()
            result.set_result(_solve_timed(self.grid, p, q))
        self._pending.append(_Batch(p, t, result, []))

    def _drain(self) -> None:
        """Fold in every batch handed to the power flow, in order (waiting for it if need be)."""
        while self._pending:
            batch = self._pending[0]
            wall0 = time.perf_counter()
            res, solve_s = batch.result.result()  # a failure raises here, the batch kept
            self._pending.pop(0)
            self._wait_wall_s += time.perf_counter() - wall0
            self._solve_wall_s += solve_s
            self._fold(batch.p_mw, batch.t_s, res)
            for var, row in batch.late_rows:  # rows exist only once a collector does
                value = self._latest.get(var.removeprefix("energy_"), np.nan)
                self.model.datacollector.model_vars[var][row] = value

    def _fold(self, p: np.ndarray, t: np.ndarray, res: PowerFlowResult) -> None:
        """Accumulate one solved batch into the KPIs and the per-tick grid series."""
        bad = ~res.converged
        if bad.any():  # recorded, and the run goes on; those snapshots count in no statistic
            self._not_converged += int(bad.sum())
            log.warning(
                "power flow did not converge in %d sweeps for %d of %d minutes from %s "
                "(first at %s): loads beyond what the grid can carry? Those minutes are left "
                "out of the voltage and loading figures (energy.power_flow_not_converged)",
                MAX_SWEEPS, int(bad.sum()), len(p), format_clock(t[0]),
                format_clock(t[np.flatnonzero(bad)[0]]),
            )  # fmt: skip
            for arr in (res.vm_pu, res.branch_loading_percent):
                arr[bad] = np.nan
            res.slack_p_mw[bad] = np.nan
            res.losses_mw[bad] = np.nan
        ok = ~bad
        minutes = self.tick_s / 60.0
        loading = res.branch_loading_percent
        trafo = loading[:, self.city.trafo_branch]
        with np.errstate(invalid="ignore"):
            if ok.any():
                self._trafo_peak_pct = np.fmax(self._trafo_peak_pct, trafo[ok].max(axis=0))
                self._line_peak_pct = np.fmax(self._line_peak_pct, np.nanmax(loading[ok], axis=0))
            self._trafo_over_min += (trafo > 100.0).sum(axis=0) * minutes
            self._bin_trafo_peaks(t, trafo)
            sub = loading[:, self._hv_branches]
            if ok.any():
                self._sub_peak_pct = np.fmax(self._sub_peak_pct, sub[ok].max(axis=0))
            self._sub_over_min += (sub > 100.0).sum(axis=0) * minutes
            v = res.vm_pu[:, self._house_bus]
            if ok.any():
                self._house_v_min = np.fmin(self._house_v_min, v[ok].min(axis=0))
                self._house_v_max = np.fmax(self._house_v_max, v[ok].max(axis=0))
            for key, (lo, hi) in (("ansi", ANSI_BAND_PU), ("en50160", EN50160_BAND_PU)):
                self._bus_min_outside[key] += float(((v < lo) | (v > hi)).sum()) * minutes
        frame = pd.DataFrame(
            {
                "t_s": t,
                "substation_p_kw": res.slack_p_mw * 1000.0,
                "loads_p_kw": p.sum(axis=1) * 1000.0,
                "losses_kw": res.losses_mw * 1000.0,
                "v_min_pu": v.min(axis=1),
                "v_max_pu": v.max(axis=1),
                "trafo_loading_max_percent": trafo.max(axis=1),
                "hv_loading_max_percent": loading[:, self._hv_branches].max(axis=1),
                "sweeps": res.n_iter,
            }
        )
        self._solved.append(frame)
        self._latest.update(v_min_pu=float(v[-1].min()), trafo_loading_max=float(trafo[-1].max()))

    def _bin_trafo_peaks(self, t_s: np.ndarray, trafo_pct: np.ndarray) -> None:
        """Keep each transformer's peak loading per reporting interval."""
        m = self.model
        bins = ((t_s - m.start_s) // m.report_interval_s).astype(np.int64)
        for b in np.unique(bins).tolist():
            rows = trafo_pct[bins == b]
            peak = np.nanmax(rows, axis=0) if np.isfinite(rows).any() else rows[0]
            old = self._trafo_bins.get(b)
            self._trafo_bins[b] = peak if old is None else np.fmax(old, peak)

    def trafo_loading_table(self) -> pd.DataFrame:
        """Per reporting interval and MV/LV transformer: its peak loading (% of rating)."""
        self._drain()
        m = self.model
        n = len(self.city.trafo_branch)
        bins = sorted(self._trafo_bins)
        return pd.DataFrame(
            {
                "t_start_s": np.repeat([m.start_s + b * m.report_interval_s for b in bins], n),
                "transformer": np.tile(np.arange(n), len(bins)),
                "peak_loading_percent": (
                    np.concatenate([self._trafo_bins[b] for b in bins]) if bins else []
                ),
            }
        )

    # -- results ---------------------------------------------------------------------------------

    def series(self) -> pd.DataFrame:
        """Per tick: household draw by use, and the grid's state (power-flow results)."""
        self._solve_batch()
        self._drain()
        ticks = pd.DataFrame(
            self._ticks,
            columns=["t_s", "base_kw", "hvac_kw", "ev_kw", "pv_kw", "households_kw"],
        )
        if not self._solved:
            return ticks
        grid = pd.concat(self._solved, ignore_index=True)
        return ticks.merge(grid, on="t_s", how="left")

    def add_results(self, results: Results) -> None:
        """Energy KPIs, the per-tick series and the transformer table."""
        s = self.series()
        cfg, city = self.cfg, self.city
        h = self.tick_s / 3600.0
        add = results.add_kpi
        from twin.energy.summary import grid_summary

        summary = grid_summary(city)
        for key, value in summary.items():
            if isinstance(value, int | float):
                unit = {"_km": "km", "_mva": "MVA", "_kva": "kVA", "_m": "m"}.get(
                    "_" + key.rsplit("_", 1)[-1], "count"
                )
                add(f"grid.{key}", value, unit)
        add("run.energy_build_wall_s", self.build_s, "s")
        add("run.power_flow_wall_s", self._solve_wall_s, "s")
        add("run.power_flow_wait_wall_s", self._wait_wall_s, "s")
        add("energy.power_flow_not_converged", self._not_converged, "count")
        if s.empty or "substation_p_kw" not in s:
            return
        import_kw = s["substation_p_kw"].to_numpy()
        t = s["t_s"].to_numpy()
        add("energy.ticks", len(s), "count")
        add("energy.households_kwh", float(s["households_kw"].sum() * h), "kWh")
        add("energy.base_kwh", float(s["base_kw"].sum() * h), "kWh")
        add("energy.hvac_kwh", float(s["hvac_kw"].sum() * h), "kWh")
        add("energy.ev_kwh", float(s["ev_kw"].sum() * h), "kWh")
        add("energy.pv_kwh", float(s["pv_kw"].sum() * h), "kWh")
        add("energy.import_kwh", float(import_kw.sum() * h), "kWh")
        add("energy.losses_kwh", float(s["losses_kw"].sum() * h), "kWh")
        add("energy.peak_kw", float(import_kw.max()), "kW")
        peak_t = float(t[np.argmax(import_kw)])
        add("energy.peak_at_s", peak_t, "s")
        add("energy.households_peak_kw", float(s["households_kw"].max()), "kW")
        add("energy.ev_peak_kw", float(s["ev_kw"].max()), "kW")
        add("energy.hvac_peak_kw", float(s["hvac_kw"].max()), "kW")
        mean = float(import_kw.mean())
        add("energy.ramping_kw", float(np.abs(np.diff(import_kw)).sum()), "kW")
        add("energy.one_minus_load_factor", 1.0 - mean / float(import_kw.max()), "ratio")
        price = _hourly(cfg.price_per_kwh, t)
        carbon = _hourly(cfg.carbon_g_per_kwh, t)
        cost = float((np.maximum(import_kw, 0) * price).sum() * h)
        add(f"energy.cost_{cfg.currency.lower()}", cost, cfg.currency)  # energy.cost_usd, USD
        add("energy.co2_kg", float((np.maximum(import_kw, 0) * carbon).sum() * h / 1000), "kg")
        add("energy.v_min_pu", float(s["v_min_pu"].min()), "pu")
        add("energy.v_max_pu", float(s["v_max_pu"].max()), "pu")
        n_house = len(self._house_bus)
        add("energy.house_minutes_outside_ansi", self._bus_min_outside["ansi"], "min")
        add("energy.house_minutes_outside_en50160", self._bus_min_outside["en50160"], "min")
        lo, hi = ANSI_BAND_PU
        outside = (self._house_v_min < lo) | (self._house_v_max > hi)
        add("energy.houses_outside_ansi", int(outside.sum()), "count")
        add("energy.trafo_loading_max_percent", float(self._trafo_peak_pct.max(initial=0)), "%")
        add("energy.trafos_overloaded", int((self._trafo_peak_pct > 100).sum()), "count")
        add("energy.trafo_hours_above_rating", float(self._trafo_over_min.sum() / 60), "h")
        add("energy.substation_peak_kw", float(import_kw.max()), "kW")
        add("energy.hv_loading_max_percent", float(s["hv_loading_max_percent"].max()), "%")
        add(
            "energy.line_loading_max_percent",
            float(np.nanmax(self._line_peak_pct[~self.grid.branch_is_trafo])),
            "%",
        )
        evs = self.consumers.evs
        add("energy.evs", len(evs), "count")
        add("energy.ev_unmet_departure_kwh", float(evs.unmet_departure_kwh.sum()), "kWh")
        add("energy.ev_unmet_drive_kwh", float(evs.unmet_drive_kwh.sum()), "kWh")
        if self._had_outage:
            add("energy.unserved_kwh", self._unserved_kwh, "kWh")
            add("energy.unserved_household_hours", self._unserved_hh_h, "h")
            add("energy.households_unserved_max", self._unserved_max, "count")
        add("energy.comfort_degree_hours", self._comfort_deg_h / max(n_house, 1), "K h/household")
        results.tables["energy"] = s
        results.tables["transformers"] = pd.DataFrame(
            {
                "transformer": np.arange(len(city.trafo_branch)),
                "node": city.trafo_node,
                "kva": city.trafo_kva * city.trafo_parallel,
                "households": city.trafo_households,
                "substation": city.trafo_substation,
                "peak_loading_percent": self._trafo_peak_pct,
                "peak_kva": self._trafo_peak_pct / 100.0 * city.trafo_kva * city.trafo_parallel,
                "minutes_above_rating": self._trafo_over_min,
            }
        )
        from twin.geometry import grid_lines_table, node_lonlat

        net = self.model.network
        trafos = results.tables["transformers"]
        trafos["lon"], trafos["lat"] = node_lonlat(net, city.trafo_node)
        results.tables["grid_lines"] = grid_lines_table(city, net, self._line_peak_pct)
        results.tables["transformer_loading"] = self.trafo_loading_table()
        mva = city.sub_mva * city.sub_parallel
        results.tables["substations"] = pd.DataFrame(
            {
                "substation": np.arange(len(mva)),
                "node": city.sub_node,
                "osm_id": city.sub_osm_id,
                "mva": mva,
                "peak_loading_percent": self._sub_peak_pct,
                "peak_mva": self._sub_peak_pct / 100.0 * mva,
                "minutes_above_rating": self._sub_over_min,
            }
        )
        subs = results.tables["substations"]
        subs["lon"], subs["lat"] = node_lonlat(net, city.sub_node)
        add("energy.substation_hours_above_rating", float(self._sub_over_min.sum() / 60), "h")
        ev_hh = self.consumers.ev_household
        results.tables["evs"] = pd.DataFrame(
            {
                "household": ev_hh,
                "energy_kwh": evs.energy_kwh,
                "soc_kwh": evs.soc_kwh,
                "unmet_departure_kwh": evs.unmet_departure_kwh,
                "unmet_drive_kwh": evs.unmet_drive_kwh,
            }
        )
