"""Benchmark: vehicle-kernel throughput (vehicle-updates per second) on synthetic grids.

For each fleet size N: a square two-way grid (:func:`twin.network.synthetic.grid_roadnet`,
every junction signalised, Webster plans) sized so that N vehicles fill it at about
``--density`` vehicles per lane-km (busy but moving; jam density is ~133 veh/lane-km), and
N trips all released at t = 0 between random nodes at least one grid side apart (Manhattan
distance), so that routes are long (~4 km on the 10k grid, ~36 km on the 1M grid) and few
vehicles arrive while timing. Routes are L-shaped fastest paths computed directly on the grid
(:class:`GridRouter`): twin's Dijkstra router (one search per distinct origin node) is not
what is measured here and would dominate the set-up of a million trips on 25,000 nodes.
Vehicles are numbered at random, as in a real trip table; ``--order origin`` numbers them by
origin node instead, which shows how much of the cost at large N is memory locality. The
simulation renumbers the running fleet in lane order every ``--renumber-every`` steps (its
default; 0: never), and the time it takes counts in the timed blocks.

The simulation then runs until every vehicle has been inserted (SUMO-style insertion at the
start of the first link, one vehicle per lane at a time) and ``--settle`` more steps; then
blocks of ``--steps`` steps are timed with :meth:`TrafficSim.advance`, and throughput is the
``sim.updates`` delta over the wall time of the block. The kernel is serial; Numba runs on one
thread (``NUMBA_NUM_THREADS=1``), and a small warm-up run loads the compiled kernels before
anything is timed. Medians of ``--repeat`` blocks; results go to bench/results/kernel.json.

    NUMBA_NUM_THREADS=1 python bench/bench_kernel.py [--sizes 10000 100000 1000000]
    NUMBA_NUM_THREADS=1 python bench/bench_kernel.py --order origin \
        --out bench/results/kernel-origin-order.json
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # before numba is imported

import argparse
import gc
import json
import math
import resource
import statistics
import time
from pathlib import Path

import numpy as np
from numba import njit

from twin.network.road import RoadNet
from twin.network.synthetic import grid_roadnet
from twin.results import machine, software_versions
from twin.traffic.demand import Trips
from twin.traffic.routing import RouteSet
from twin.traffic.sim import RENUMBER_EVERY_STEPS, TrafficSim

ROOT = Path(__file__).resolve().parents[1]


class GridRouter:
    """L-shaped shortest routes on a square grid from :func:`grid_roadnet`: along the origin's
    row then the destination's column, or (every other trip) along the column first, so both
    axes carry traffic. Every route is a shortest path; the Router interface TrafficSim uses
    (``routes(origins, dests) -> RouteSet``) is all it offers."""

    def __init__(self, net: RoadNet, nx: int) -> None:
        self.net, self.nx = net, nx
        # the link leaving each node in each direction (E, W, N, S), -1 if none
        step = net.link_to.astype(np.int64) - net.link_from
        direction = np.select([step == 1, step == -1, step == nx, step == -nx], [0, 1, 2, 3], -1)
        if np.any(direction < 0):
            raise ValueError("not a grid from grid_roadnet with this nx")
        self._out = np.full((net.n_nodes, 4), -1, dtype=np.int32)
        self._out[net.link_from, direction] = np.arange(net.n_links, dtype=np.int32)
        # whether a link may turn onto the next link in each direction
        self._turn_ok = np.zeros((net.n_links, 4), dtype=bool)
        self._turn_ok[net.mov_from_link, direction[net.mov_to_link]] = True

    def routes(self, origins: np.ndarray, dests: np.ndarray) -> RouteSet:
        o, d = np.asarray(origins, np.int64), np.asarray(dests, np.int64)
        nx = self.nx
        n = np.abs(o % nx - d % nx) + np.abs(o // nx - d // nx)
        offsets = np.zeros(len(o) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(n)
        row_first = np.arange(len(o)) % 2 == 0
        links = np.empty(offsets[-1], dtype=np.int32)
        if not _l_routes(o, d, row_first, nx, self._out, self._turn_ok, offsets, links):
            raise ValueError("a grid route leaves the grid or takes a turn it does not allow")
        time_s = n * float(np.mean(self.net.link_length_m / self.net.link_speed_mps))
        return RouteSet(offsets, links, time_s, n > 0)


@njit(cache=True)
def _l_routes(o, d, row_first, nx, out, turn_ok, offsets, links) -> bool:
    """Fill ``links`` with each trip's L-shaped route; False if a link or turn is missing."""
    for t in range(o.shape[0]):
        i, j = o[t] % nx, o[t] // nx
        i1, j1 = d[t] % nx, d[t] // nx
        prev_link = -1
        for k in range(offsets[t], offsets[t + 1]):
            along_row = i != i1 and (row_first[t] or j == j1)
            step = (1 if i1 > i else -1) if along_row else (1 if j1 > j else -1)
            direction = (0 if step > 0 else 1) + (0 if along_row else 2)  # E, W, N, S
            link = out[j * nx + i, direction]
            if link < 0 or (prev_link >= 0 and not turn_ok[prev_link, direction]):
                return False
            links[k] = link
            prev_link = link
            if along_row:
                i += step
            else:
                j += step
    return True


def grid_side(n_vehicles: int, density: float, lanes: int, spacing_m: float) -> int:
    """Nodes per side of a square grid holding ``n_vehicles`` at ``density`` veh/lane-km."""
    lane_km_per_link = spacing_m / 1000.0 * lanes
    links = n_vehicles / density / lane_km_per_link  # a two-way n x n grid has 4 n (n-1)
    return max(3, math.ceil((1.0 + math.sqrt(1.0 + links)) / 2.0))


def long_trips(
    n_nodes_side: int, n: int, rng: np.random.Generator, *, by_origin: bool = False
) -> Trips:
    """``n`` trips at t = 0 between random nodes at least one grid side apart, numbered at
    random (as a real trip table sorted by departure time is) or, with ``by_origin``, in order
    of origin node, so that vehicles that start together sit together in memory."""
    side = n_nodes_side
    o = rng.integers(0, side * side, n)
    d = rng.integers(0, side * side, n)
    for _ in range(100):
        dist = np.abs(o % side - d % side) + np.abs(o // side - d // side)
        bad = np.flatnonzero(dist < side - 1)
        if not len(bad):
            break
        d[bad] = rng.integers(0, side * side, len(bad))
    if by_origin:
        order = np.lexsort((d, o))
        o, d = o[order], d[order]
    return Trips(np.arange(n), o, d, np.zeros(n))


def warm_up() -> None:
    """Load (or compile) the kernels on a tiny grid."""
    net = grid_roadnet(4, 4, lanes=2)
    trips = long_trips(4, 50, np.random.default_rng(0))
    TrafficSim(net, trips, seed=0, start_s=0.0, router=GridRouter(net, 4)).advance(50)


def max_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def bench_size(n_vehicles: int, args: argparse.Namespace) -> dict:
    side = grid_side(n_vehicles, args.density, args.lanes, args.spacing_m)
    t0 = time.perf_counter()
    net = grid_roadnet(side, side, spacing_m=args.spacing_m, lanes=args.lanes)
    t1 = time.perf_counter()
    trips = long_trips(
        side, n_vehicles, np.random.default_rng(args.seed), by_origin=args.order == "origin"
    )
    sim = TrafficSim(
        net,
        trips,
        seed=args.seed,
        start_s=0.0,
        router=GridRouter(net, side),
        renumber_every_steps=args.renumber_every,
    )
    t2 = time.perf_counter()
    lane_km = float((net.link_length_m * net.link_lanes).sum() / 1000.0)
    print(
        f"N={n_vehicles:,}: grid {side}x{side}, {net.n_links:,} links, {lane_km:,.0f} lane-km,"
        f" mean route {np.diff(sim.routes.offsets).mean():.0f} links; built in"
        f" {t1 - t0:.1f} s + setup {t2 - t1:.1f} s",
        flush=True,
    )
    t3 = time.perf_counter()
    while sim.t_s < args.max_fill_s:
        c = sim.counts()
        if c.waiting + c.scheduled == 0:
            break
        sim.advance(10)
    fill_s = sim.t_s
    sim.advance(args.settle)
    t4 = time.perf_counter()
    blocks = []
    for _ in range(args.repeat):
        u0, w0 = sim.updates, time.perf_counter()
        sim.advance(args.steps)
        wall = time.perf_counter() - w0
        du = sim.updates - u0
        blocks.append(
            {
                "wall_s": wall,
                "updates": du,
                "updates_per_s": du / wall,
                "mean_running": du / args.steps,
            }
        )
    c = sim.counts()
    row = {
        "vehicles": n_vehicles,
        "vehicle_order": args.order,
        "renumber_every_steps": args.renumber_every,
        "grid_side": side,
        "links": net.n_links,
        "lane_km": lane_km,
        "signals": net.n_signals,
        "mean_route_links": float(np.diff(sim.routes.offsets).mean()),
        "grid_build_s": t1 - t0,
        "sim_setup_s": t2 - t1,
        "fill_sim_s": fill_s,
        "fill_and_settle_wall_s": t4 - t3,
        "steps_per_block": args.steps,
        "blocks": blocks,
        "median_updates_per_s": statistics.median(b["updates_per_s"] for b in blocks),
        "median_mean_running": statistics.median(b["mean_running"] for b in blocks),
        "density_veh_per_lane_km": statistics.median(b["mean_running"] for b in blocks) / lane_km,
        "waiting_at_end": c.waiting + c.scheduled,
        "arrived_at_end": c.arrived,
        "teleported_at_end": c.teleported,
        "ns_per_update": 1e9 / statistics.median(b["updates_per_s"] for b in blocks),
        "max_rss_gib_so_far": max_rss_gib(),
    }
    print(
        f"  filled by t={fill_s:.0f} s; {row['median_mean_running']:,.0f} running"
        f" ({row['density_veh_per_lane_km']:.1f} veh/lane-km): "
        f"{row['median_updates_per_s'] / 1e6:.2f} M updates/s"
        f" ({row['ns_per_update']:.0f} ns/update), peak RSS {row['max_rss_gib_so_far']:.1f} GiB",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="fleet sizes (vehicles released at t = 0)",
    )
    parser.add_argument(
        "--density",
        type=float,
        default=25.0,
        help="target vehicles per lane-km once all are inserted",
    )
    parser.add_argument("--lanes", type=int, default=2, help="lanes per direction")
    parser.add_argument("--spacing-m", type=float, default=200.0, help="block length, m")
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--repeat", type=int, default=5, help="timed blocks per size")
    parser.add_argument("--settle", type=int, default=20, help="steps after the fill")
    parser.add_argument(
        "--max-fill-s",
        type=float,
        default=900.0,
        help="stop filling after this much simulated time",
    )
    parser.add_argument(
        "--order",
        choices=["random", "origin"],
        default="random",
        help="vehicle numbering: random (as real demand) or by origin (memory locality)",
    )
    parser.add_argument(
        "--renumber-every",
        type=int,
        default=RENUMBER_EVERY_STEPS,
        help="steps between renumberings of the running fleet in lane order (0: never)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kernel.json")
    args = parser.parse_args()

    warm_up()
    rows = []
    for n in sorted(args.sizes):
        rows.append(bench_size(n, args))
        gc.collect()
    report = {
        "machine": machine(),
        "versions": software_versions(),
        "numba_num_threads": os.environ["NUMBA_NUM_THREADS"],
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
