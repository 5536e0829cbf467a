"""Benchmark: a day of Baltimore's synthesised city grid, twin against pandapower.

1. Build Baltimore's population (households "auto", ~20,000) and its distribution grid (one
   radial Grid: 110 kV slack, 3 substations, ~200 MV/LV transformers, one bus per household).
2. The households' draw for a whole day at one-minute resolution from the model's own
   household side (:class:`twin.energy.consumers.Consumers`: base load, heating/cooling on a
   summer day, EVs at ``--ev-share`` charging on their plans' arrivals; no traffic engine):
   1,440 snapshots of every load; the base load's state in bytes per household (issue 14).
3. Power flow: the whole day in one ``solve`` call (median of ``--repeat`` after a warm-up);
   and per solve, twin against pandapower's ``runpp`` (Newton-Raphson, defaults) on the same
   grid exported with ``to_pandapower``, at the day's peak minute, answers compared (max |dV|).
4. The whole energy day: household draw + power flow, as the model's energy process runs it
   (60 snapshots per kernel call).

Results go to bench/results/energy.json with the machine; bench/RESULTS.md quotes them.

    python bench/bench_energy.py [--ev-share 0.3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from twin.energy.config import EnergyConfig
from twin.energy.consumers import Consumers
from twin.energy.osm_power import read_power_features
from twin.energy.pandapower_io import to_pandapower
from twin.energy.powerflow import solve
from twin.energy.synthesis import synthesize_grid
from twin.network.cache import load_roadnet
from twin.network.road import BuildOptions
from twin.population.config import PopulationConfig
from twin.population.synthesis import day_legs, synthesize
from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "maps" / "baltimore.osm.pbf"
DAY_S = 86400.0
TICK_S = 60.0
BATCH = 60


def day_of_loads(data, legs, city, cfg: EnergyConfig, lon_lat) -> tuple[np.ndarray, float, int]:
    """(1440, n_load) MW of the households' draw, the seconds it took and the bytes of the
    base-load state (events and the current block, :class:`twin.energy.loads.BaseLoadBlocks`)."""
    t0 = time.perf_counter()
    c = Consumers(data, legs, cfg, 42, start_s=0.0, end_s=DAY_S, lon_lat=lon_lat)
    p = np.zeros((int(DAY_S / TICK_S), city.grid.n_load))
    for k, t in enumerate(np.arange(TICK_S, DAY_S + 1, TICK_S)):
        c.ev_updates(t, None)
        base, hvac, ev, pv = c.draw_kw(t)
        net_kw = base + hvac + ev - pv
        p[k] = np.bincount(city.household_load, net_kw, minlength=city.grid.n_load) / 1000.0
    return p, time.perf_counter() - t0, c.base.nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ev-share", type=float, default=0.3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pp-repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "energy.json")
    args = ap.parse_args()

    net = load_roadnet(MAP, BuildOptions())
    t0 = time.perf_counter()
    data = synthesize(net, MAP, PopulationConfig(ev_share=args.ev_share), seed=42)
    legs = day_legs(data, data.default_tours)
    population_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    city = synthesize_grid(net, data.households, read_power_features(MAP, net.meta["crs"]), seed=42)
    grid = city.grid.validate()
    grid_s = time.perf_counter() - t0
    cfg = EnergyConfig(weather="summer")
    lon_lat = (float(net.node_lon.mean()), float(net.node_lat.mean()))
    tan_phi = float(np.tan(np.arccos(cfg.grid.power_factor)))

    p, draw_s, base_bytes = day_of_loads(data, legs, city, cfg, lon_lat)
    q = tan_phi * np.maximum(p, 0.0)
    solve(grid, p_mw=p[:2], q_mvar=q[:2])  # warm-up: compile, caches
    day_times, res = [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = solve(grid, p_mw=p, q_mvar=q)
        day_times.append(time.perf_counter() - t0)
    batched_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for k in range(0, len(p), BATCH):
            solve(grid, p_mw=p[k : k + BATCH], q_mvar=q[k : k + BATCH])
        batched_times.append(time.perf_counter() - t0)
    peak = int(np.argmax(res.slack_p_mw))
    one_times = []
    for _ in range(max(args.repeat, 5)):
        t0 = time.perf_counter()
        one = solve(grid, p_mw=p[peak], q_mvar=q[peak])
        one_times.append(time.perf_counter() - t0)

    import pandapower as pp

    ppnet = to_pandapower(grid)
    assert len(ppnet.load) == grid.n_load  # created in load order (to_pandapower)
    ppnet.load["p_mw"] = p[peak]
    ppnet.load["q_mvar"] = q[peak]
    pp_times = []
    for _ in range(args.pp_repeat):
        t0 = time.perf_counter()
        pp.runpp(ppnet)
        pp_times.append(time.perf_counter() - t0)
    dv = float(np.abs(ppnet.res_bus.vm_pu.to_numpy()[: grid.n_bus] - one.vm_pu[0]).max())

    row = {
        "households": len(data),
        "evs": int(data.households.has_ev.sum()),
        "buses": grid.n_bus,
        "branches": grid.n_branch,
        "transformers": int(grid.branch_is_trafo.sum()),
        "population_s": population_s,
        "grid_synthesis_s": grid_s,
        "household_draw_day_s": draw_s,
        "base_load_bytes_per_household": base_bytes / len(data),
        "day_one_call_s": statistics.median(day_times),
        "day_hourly_batches_s": statistics.median(batched_times),
        "energy_day_s": draw_s + statistics.median(batched_times),
        "sweeps_per_snapshot_mean": float(res.n_iter.mean()),
        "twin_per_solve_s": statistics.median(one_times),
        "pandapower_runpp_s": statistics.median(pp_times),
        "speedup_per_solve": statistics.median(pp_times) / statistics.median(one_times),
        "max_dv_pu_vs_pandapower": dv,
        "peak_minute": peak,
        "peak_mw": float(res.slack_p_mw[peak]),
        "v_min_pu_day": float(res.vm_pu.min()),
        "losses_mwh_day": float(res.losses_mw.sum() / 60.0),
    }
    for k, v in row.items():
        print(f"{k:30s} {v:,.6g}" if isinstance(v, float) else f"{k:30s} {v:,}")
    out = {
        "benchmark": "energy",
        "map": MAP.name,
        "ev_share": args.ev_share,
        "repeat": args.repeat,
        "result": row,
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
