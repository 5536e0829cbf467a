"""Benchmark: radial power flow, twin's backward-forward sweep against pandapower's runpp.

Feeders (the same network in both tools, converted with :mod:`twin.energy.pandapower_io`):

- ``case33bw``: Baran & Wu's 33-bus 12.66 kV feeder (pandapower.networks);
- ``kerber-vorstadt``: ``create_kerber_vorstadtnetz_kabel_1``, 294 buses, the largest radial
  feeder among pandapower's own networks (a 10/0.4 kV transformer and cable LV feeders);
- ``synthetic-N``: a synthetic 10 kV feeder (random tree of 0.5 km NA2XS2Y 1x150 cables) with
  ``--substations`` 0.4 MVA 10/0.4 kV transformers, each feeding a random LV tree of
  ``--lv-buses`` buses (20-40 m of NAYY 4x150 SE, pandapower's std types) with a 2 kW,
  cos phi 0.95 household on every LV bus; built in pandapower with std types, then imported;
- ``city-N``: a whole city's grid as one radial network (``--city``: MV feeders, transformers
  per feeder, LV buses per transformer, min and max): a 110 kV slack, 40 MVA 110/20 kV
  transformers (one per two feeders), 20 kV feeders of NA2XS2Y 1x240 cable (0.2-0.5 km, each
  transformer station hanging off one of the 20 before it), 0.63 MVA 20/0.4 kV transformers,
  and under each an LV network: 60 % road-node buses in a tree along the streets (NAYY 4x150 SE,
  20-50 m, each node off one of the 20 before it) and 40 % house buses, one household each
  (1 kW, cos phi 0.95) on a 10-30 m NAYY 4x50 SE service cable from a road node.

Per feeder: the time of one solve, medians after a warm-up (twin: ``solve(grid)``, the public
API with its Python overhead, ``--repeat`` calls one by one after ``--warmup`` untimed ones;
pandapower: ``runpp(net)`` with its defaults, Newton-Raphson, tolerance 1e-8 MVA, its numba
paths on, for ~``--pp-budget-s``); each runpp is followed by one timed twin solve, reported
apart (``twin_solve_s_right_after_runpp``: twin with the caches runpp has just churned).
The answers are compared: max |dV| (bus magnitudes) against the default runpp and against
runpp at tolerance 1e-10 MVA. Then a day at one-minute resolution: 1,440 snapshots of per-load
powers (a smooth daily shape times seeded lognormal noise per load and minute; a throughput
load, not a calibrated household model) solved in one ``solve`` call (median of
``--day-repeat`` after an untimed one), three of them checked against runpp with the same
loads. The day is timed on all of Numba's threads (the default ``solve``: warm starts, runs of
snapshots spread over the threads), on one thread, with warm starts off (every snapshot from
a flat start), and into a reused result (``out=``: no fresh arrays, so no page faults for
them). Results go to bench/results/powerflow.json.

    python bench/bench_powerflow.py [--substations 20 100] [--lv-buses 100] [--city 3 85 100 300]

With an older twin on the path (``PYTHONPATH=...``) the options its ``solve`` lacks are
skipped: that is how the "before" figures in bench/RESULTS.md were taken.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numba
import numpy as np

from twin.energy import Grid, from_pandapower, solve
from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_DAY = 1440


def synthetic_net(n_substations: int, lv_buses: int, seed: int = 1) -> Any:
    """A pandapower 10 kV feeder with n_substations 10/0.4 kV transformers and LV trees."""
    import pandapower as pp

    rng = np.random.default_rng(seed)
    net = pp.create_empty_network(name=f"synthetic-{n_substations}x{lv_buses}")
    mv = pp.create_buses(net, n_substations + 1, 10.0)
    pp.create_ext_grid(net, mv[0], vm_pu=1.03)
    mv_parent = [mv[int(rng.integers(0, i))] for i in range(1, n_substations + 1)]
    pp.create_lines(net, mv_parent, mv[1:], 0.5, std_type="NA2XS2Y 1x150 RM/25 12/20 kV")
    lv_bar = pp.create_buses(net, n_substations, 0.4)
    pp.create_transformers(net, mv[1:], lv_bar, std_type="0.4 MVA 10/0.4 kV")
    froms, tos = [], []
    for s in range(n_substations):
        lv = pp.create_buses(net, lv_buses, 0.4)
        nodes = np.concatenate([[lv_bar[s]], lv])
        froms += [int(nodes[rng.integers(0, i)]) for i in range(1, lv_buses + 1)]
        tos += [int(b) for b in lv]
    length = rng.uniform(0.02, 0.04, len(tos))
    pp.create_lines(net, froms, tos, length, std_type="NAYY 4x150 SE")
    p_mw = 2e-3
    pp.create_loads(net, tos, p_mw=p_mw, q_mvar=p_mw * np.tan(np.arccos(0.95)))
    return net


def _tree(rng: np.random.Generator, n: int, window: int) -> np.ndarray:
    """Parent index (0 = the root) of nodes 1..n, each hanging off one of the ``window``
    nodes before it: street-like trees, deeper than uniformly random ones."""
    i = np.arange(1, n + 1)
    lo = np.maximum(0, i - window)
    return lo + (rng.random(n) * (i - lo)).astype(np.int64)


def city_net(
    n_feeders: int, trafos_per_feeder: int, lv_min: int, lv_max: int, seed: int = 1
) -> Any:
    """A pandapower network shaped like a whole city's grid (see the module docstring)."""
    import pandapower as pp

    rng = np.random.default_rng(seed)
    net = pp.create_empty_network(name="city")
    hv = pp.create_bus(net, 110.0)
    pp.create_ext_grid(net, hv, vm_pu=1.02)
    n_sub = max(1, (n_feeders + 1) // 2)
    mv_bar = np.asarray(pp.create_buses(net, n_sub, 20.0))
    pp.create_transformers(net, [hv] * n_sub, mv_bar, std_type="40 MVA 110/20 kV")
    n_tr = n_feeders * trafos_per_feeder
    mv = np.asarray(pp.create_buses(net, n_tr, 20.0)).reshape(n_feeders, trafos_per_feeder)
    mv_from = []
    for f in range(n_feeders):
        chain = np.concatenate([[mv_bar[f % n_sub]], mv[f]])
        mv_from.append(chain[_tree(rng, trafos_per_feeder, 20)])
    mv = mv.ravel()
    cable = "NA2XS2Y 1x240 RM/25 12/20 kV"
    pp.create_lines(net, np.concatenate(mv_from), mv, rng.uniform(0.2, 0.5, n_tr), cable)
    lv_bar = np.asarray(pp.create_buses(net, n_tr, 0.4))
    pp.create_transformers(net, mv, lv_bar, std_type="0.63 MVA 20/0.4 kV")
    n_lv = rng.integers(lv_min, lv_max + 1, n_tr)
    n_house = np.round(0.4 * n_lv).astype(np.int64)
    n_road = n_lv - n_house
    road = np.asarray(pp.create_buses(net, int(n_road.sum()), 0.4))
    house = np.asarray(pp.create_buses(net, int(n_house.sum()), 0.4))
    road_from, house_from = [], []
    r0 = 0
    for s in range(n_tr):
        chain = np.concatenate([[lv_bar[s]], road[r0 : r0 + n_road[s]]])
        road_from.append(chain[_tree(rng, n_road[s], 20)])
        house_from.append(chain[rng.integers(1, n_road[s] + 1, n_house[s])])
        r0 += n_road[s]
    road_len = rng.uniform(0.02, 0.05, len(road))
    pp.create_lines(net, np.concatenate(road_from), road, road_len, std_type="NAYY 4x150 SE")
    house_len = rng.uniform(0.01, 0.03, len(house))
    pp.create_lines(net, np.concatenate(house_from), house, house_len, std_type="NAYY 4x50 SE")
    p_mw = 1e-3
    pp.create_loads(net, house, p_mw=p_mw, q_mvar=p_mw * np.tan(np.arccos(0.95)))
    return net


def feeders(args: argparse.Namespace) -> list[tuple[str, Any]]:
    import pandapower.networks as pn

    out = [
        ("case33bw", pn.case33bw()),
        ("kerber-vorstadt", pn.create_kerber_vorstadtnetz_kabel_1()),
    ]
    for n in args.substations:
        net = synthetic_net(n, args.lv_buses)
        out.append((f"synthetic-{len(net.bus)}", net))
    if args.city:
        net = city_net(*args.city)
        out.append((f"city-{len(net.bus)}", net))
    return out


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def day_profile(grid: Grid, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(1440, n_load) p and q: a daily shape (night 0.3, evening peak 1.0) times noise."""
    rng = np.random.default_rng(seed)
    h = np.arange(STEPS_PER_DAY) / 60
    shape = 0.3 + 0.35 * np.exp(-(((h - 8) / 1.5) ** 2)) + 0.7 * np.exp(-(((h - 19) / 2) ** 2))
    noise = rng.lognormal(0.0, 0.4, (STEPS_PER_DAY, grid.n_load))
    scale = shape[:, None] * noise
    return grid.load_p_mw * scale, grid.load_q_mvar * scale


def max_dv(grid: Grid, vm_pu: np.ndarray, net: Any) -> float:
    real = grid.bus_id >= 0
    return float(np.abs(vm_pu[real] - net.res_bus.vm_pu.loc[grid.bus_id[real]].to_numpy()).max())


def bench_feeder(name: str, net: Any, args: argparse.Namespace) -> dict:
    import pandapower as pp

    grid = from_pandapower(net)
    solve(grid)  # warm-up: compile the per-unit arrays, load the kernel
    r = solve(grid)
    for _ in range(args.warmup):  # also lets the (virtual) CPU settle at its working clock
        solve(grid)
    twin_times = [median_time(lambda: solve(grid), 1) for _ in range(args.repeat)]
    pp.runpp(net)  # warm-up: pandapower's own numba functions
    once_s = median_time(lambda: pp.runpp(net), 1)
    rounds = max(5, min(args.repeat, int(args.pp_budget_s / once_s)))
    # each runpp is followed by one twin solve: twin with caches that runpp has just churned
    pp_times, cold_times = [], []
    for _ in range(rounds):
        pp_times.append(median_time(lambda: pp.runpp(net), 1))
        cold_times.append(median_time(lambda: solve(grid), 1))
    twin_s, pp_s = statistics.median(twin_times), statistics.median(pp_times)
    dv_default = max_dv(grid, r.vm_pu[0], net)
    pp.runpp(net, tolerance_mva=1e-10, max_iteration=50)
    dv_tight = max_dv(grid, r.vm_pu[0], net)
    losses_pp = float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum())
    row = {
        "feeder": name,
        "buses": grid.n_bus,
        "branches": grid.n_branch,
        "transformers": grid.n_trafo,
        "loads": grid.n_load,
        "twin_solve_s": twin_s,
        "twin_sweeps": int(r.n_iter[0]),
        "twin_solve_s_p10_p90": [float(np.percentile(twin_times, q)) for q in (10, 90)],
        "twin_repeats": len(twin_times),
        "twin_solve_s_right_after_runpp": statistics.median(cold_times),
        "pandapower_runpp_s": pp_s,
        "pandapower_runpp_s_p10_p90": [float(np.percentile(pp_times, q)) for q in (10, 90)],
        "pandapower_repeats": rounds,
        "speedup": pp_s / twin_s,
        "max_dvm_pu_vs_runpp_default": dv_default,
        "max_dvm_pu_vs_runpp_tol_1e-10": dv_tight,
        "losses_mw_twin": float(r.losses_mw[0]),
        "losses_mw_pandapower": losses_pp,
        "min_vm_pu": float(r.vm_pu[0].min()),
    }
    # a day at one-minute resolution in one call
    p, q = day_profile(grid, seed=args.seed)
    options = inspect.signature(solve).parameters
    threads = numba.get_num_threads()
    solve(grid, p[:2], q[:2])  # warm-up: the serial kernel
    solve(grid, p[:300], q[:300])  # and the parallel one
    day_s = median_time(lambda: solve(grid, p, q), args.day_repeat)
    day = solve(grid, p, q)
    numba.set_num_threads(1)
    day_s_1 = median_time(lambda: solve(grid, p, q), args.day_repeat)
    numba.set_num_threads(threads)
    day_flat = {}
    if "warm_start" in options:
        day_flat["day_s_flat_start"] = median_time(
            lambda: solve(grid, p, q, warm_start=False), args.day_repeat
        )
        flat = solve(grid, p, q, warm_start=False)
        day_flat["day_mean_sweeps_flat_start"] = float(flat.n_iter.mean())
        day_flat["day_max_dvm_pu_warm_vs_flat"] = float(np.abs(day.vm_pu - flat.vm_pu).max())
        del flat
    if "out" in options:
        day_flat["day_s_into_reused_out"] = median_time(
            lambda: solve(grid, p, q, out=day), args.day_repeat
        )
    load_rows = net.load.index.get_indexer(grid.load_id)
    dv_day = 0.0
    for t in (0, STEPS_PER_DAY // 2, STEPS_PER_DAY - 1):
        net.load.loc[:, "scaling"] = 1.0
        net.load.iloc[load_rows, net.load.columns.get_loc("p_mw")] = p[t]
        net.load.iloc[load_rows, net.load.columns.get_loc("q_mvar")] = q[t]
        pp.runpp(net, tolerance_mva=1e-10, max_iteration=50)
        dv_day = max(dv_day, max_dv(grid, day.vm_pu[t], net))
    row.update(
        {
            "day_steps": STEPS_PER_DAY,
            "day_threads": threads,
            "day_s": day_s,
            "day_s_1_thread": day_s_1,
            "day_snapshots_per_s": STEPS_PER_DAY / day_s,
            "day_us_per_snapshot": day_s / STEPS_PER_DAY * 1e6,
            "day_mean_sweeps": float(day.n_iter.mean()),
            "day_all_converged": bool(day.converged.all()),
            "day_min_vm_pu": float(day.vm_pu.min()),
            "day_max_dvm_pu_vs_runpp_3_snapshots": dv_day,
            "day_pandapower_estimate_s": STEPS_PER_DAY * pp_s,
            "day_speedup_vs_runpp_loop": STEPS_PER_DAY * pp_s / day_s,
            **day_flat,
        }
    )
    print(
        f"{name:>18}: {grid.n_bus:6d} buses  twin {twin_s * 1e6:9.1f} us "
        f"(cold {statistics.median(cold_times) * 1e6:7.1f})  "
        f"runpp {pp_s * 1e3:8.2f} ms  x{pp_s / twin_s:8.0f}  max|dV| {dv_default:.1e} "
        f"(tight {dv_tight:.1e})  day {day_s:.3f} s on {threads} threads, {day_s_1:.3f} s on 1 "
        f"({day.n_iter.mean():.2f} sweeps)",
        flush=True,
    )
    return row


def _threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--substations",
        type=int,
        nargs="*",
        default=[20, 100],
        help="synthetic feeders: 10/0.4 kV transformers on the 10 kV tree (one feeder each)",
    )
    parser.add_argument("--lv-buses", type=int, default=100, help="LV buses per transformer")
    parser.add_argument(
        "--city",
        type=int,
        nargs="*",
        default=[3, 85, 100, 300],
        metavar="N",
        help="city grid: MV feeders, transformers per feeder, LV buses per transformer "
        "(min, max); none: skip it",
    )
    parser.add_argument("--repeat", type=int, default=1000, help="timed twin solves per feeder")
    parser.add_argument("--warmup", type=int, default=300, help="untimed twin solves first")
    parser.add_argument(
        "--pp-budget-s", type=float, default=8.0, help="about this long timing runpp per feeder"
    )
    parser.add_argument("--day-repeat", type=int, default=3, help="timed one-day batches")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "powerflow.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)  # pandapower on pandas
    rows = [bench_feeder(name, net, args) for name, net in feeders(args)]
    versions = software_versions()
    versions["pandapower"] = metadata.version("pandapower")
    versions["pandas"] = metadata.version("pandas")
    report = {
        "machine": machine(),
        "versions": versions,
        "numba_num_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
