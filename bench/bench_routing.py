"""Benchmark: twin's Router, the Numba kernel against the scipy reference (issue 14).

For each map (the compiled maps of scenarios/baltimore.toml and dortmund.toml, from the network
cache), four workloads, each on a new router (an empty cache) as the traffic engine routes:

- ``morning``: the trips of ``twin run <map> --no-report`` (06:30-09:30, the households' car
  trips; the bench runs it once in a subprocess, into a temporary directory), one
  ``routes(origins, dests)`` call as the engine's set-up makes;
- ``day``: the car legs of that run's whole day (``legs.parquet``, ``driven``), origin != dest;
- ``random``: ``--random`` random node pairs (default 80,000, about a Baltimore day), seeded;
- ``reroute``: the periodic re-routing in the simulation loop (``TrafficSim.reroute``; a
  3-hour Baltimore run makes 36 such calls, ~100 vehicles on ~70 distinct links each):
  ``--reroute-calls`` times new link times (free flow x U(1, 2) per link, which clears the
  cache) and ``routes_from_links`` for ``--reroute-vehicles`` random links and destinations.

"searches" counts the distinct origins (a shortest-path search each). Each workload runs with
the reference (``_backend = "scipy"``:
:func:`scipy.sparse.csgraph.dijkstra` per batch of 256 origins, as the router did before the
kernel, here with today's vectorised cache) and with the kernel, alternately (old, new, old,
new, ...; ``--pairs`` pairs), with Numba on 1 and on 2 threads (``numba.set_num_threads`` in
one process, as NUMBA_NUM_THREADS=1 and =2 would; the reference does not use them). A warm-up
call of each loads the compiled kernel first. Medians, and the ratio old / new of each pair
(median, min-max). Every timed kernel answer is checked against the reference's: identical
routes. Results go to bench/results/routing.json.

    python bench/bench_routing.py [--maps baltimore dortmund] [--random 80000] [--pairs 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from twin.network.cache import load_roadnet
from twin.network.road import RoadNet
from twin.results import machine, software_versions
from twin.traffic.routing import Router, RouteSet

ROOT = Path(__file__).resolve().parents[1]
MAP_FILES = {"baltimore": "maps/baltimore.osm.bz2", "dortmund": "maps/dortmund.osm.bz2"}


class ScipyRouter(Router):
    """The reference router: its routes from scipy.sparse.csgraph.dijkstra."""

    _backend = "scipy"


@dataclass
class Call:
    """One router call of a workload: new link times first (None: keep), then the routes of
    node pairs, or with ``from_links`` of (link, destination node) pairs."""

    origins: np.ndarray
    dests: np.ndarray
    link_time_s: np.ndarray | None = None
    from_links: bool = False


def run_demand(name: str, workdir: Path) -> dict[str, list[Call]]:
    """The morning's trips and the day's car legs of ``twin run <name> --no-report``."""
    out = workdir / name
    cli = "import sys; from twin.cli import main; sys.exit(main())"
    subprocess.run(
        [sys.executable, "-c", cli, "run", name, "--no-report", "--out", str(out)],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trips = pd.read_parquet(out / "trips.parquet", columns=["origin_node", "dest_node"])
    legs = pd.read_parquet(out / "legs.parquet", columns=["origin_node", "dest_node", "driven"])
    legs = legs[legs["driven"] & (legs["origin_node"] != legs["dest_node"])]
    return {
        "morning": [Call(trips["origin_node"].to_numpy(), trips["dest_node"].to_numpy())],
        "day": [Call(legs["origin_node"].to_numpy(), legs["dest_node"].to_numpy())],
    }


def random_calls(net: RoadNet, args: argparse.Namespace) -> dict[str, list[Call]]:
    """``random``: node pairs with origin != destination; ``reroute``: the re-routing in the
    loop, ``--reroute-calls`` times new link times (free flow x U(1, 2) per link) and the
    continuations of ``--reroute-vehicles`` vehicles on random links to random nodes."""
    rng = np.random.default_rng(args.seed)
    o = rng.integers(0, net.n_nodes, args.random)
    d = (o + rng.integers(1, net.n_nodes, args.random)) % net.n_nodes
    free_s = net.link_length_m / net.link_speed_mps
    reroute = [
        Call(
            rng.integers(0, net.n_links, args.reroute_vehicles),
            rng.integers(0, net.n_nodes, args.reroute_vehicles),
            free_s * rng.uniform(1.0, 2.0, net.n_links),
            from_links=True,
        )
        for _ in range(args.reroute_calls)
    ]
    return {"random": [Call(o, d)], "reroute": reroute}


def timed(cls: type[Router], net: RoadNet, calls: list[Call]) -> tuple[float, list[RouteSet]]:
    """Wall time of the calls on a new router (its construction not timed), and the routes."""
    router = cls(net)
    gc.collect()
    out = []
    t0 = time.perf_counter()
    for call in calls:
        if call.link_time_s is not None:
            router.set_link_times(call.link_time_s)
        find = router.routes_from_links if call.from_links else router.routes
        out.append(find(call.origins, call.dests))
    return time.perf_counter() - t0, out


def same(a: list[RouteSet], b: list[RouteSet]) -> bool:
    fields = ("offsets", "links", "time_s", "ok")
    pairs = zip(a, b, strict=True)
    return all(np.array_equal(getattr(x, f), getattr(y, f)) for x, y in pairs for f in fields)


def bench_case(
    net: RoadNet, name: str, trips: str, calls: list[Call], threads: int, pairs: int
) -> dict:
    numba.set_num_threads(threads)
    old_s, new_s, identical = [], [], True
    for _ in range(pairs):
        t_old, ref = timed(ScipyRouter, net, calls)
        t_new, got = timed(Router, net, calls)
        old_s.append(t_old)
        new_s.append(t_new)
        identical &= same(got, ref)
    ratios = [a / b for a, b in zip(old_s, new_s, strict=True)]
    n = sum(len(c.origins) for c in calls)
    searches = sum(len(np.unique(c.origins)) for c in calls)  # one per distinct origin
    row = {
        "map": name,
        "trips": trips,
        "calls": len(calls),
        "n_trips": n,
        "searches": searches,
        "numba_threads": threads,
        "old_s": old_s,
        "new_s": new_s,
        "old_median_s": statistics.median(old_s),
        "new_median_s": statistics.median(new_s),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "identical_routes": bool(identical),
    }
    print(
        f"| {name} | {trips} | {n:,} | {searches:,} | {threads} "
        f"| {row['old_median_s']:.3f} s | {row['new_median_s']:.3f} s "
        f"| {row['ratio_median']:.1f}x ({row['ratio_min']:.1f}-{row['ratio_max']:.1f}) "
        f"| {'yes' if identical else 'NO'} |",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=list(MAP_FILES), choices=list(MAP_FILES))
    parser.add_argument("--random", type=int, default=80_000, help="random pairs per map")
    parser.add_argument("--reroute-calls", type=int, default=36, help="re-routing calls")
    parser.add_argument("--reroute-vehicles", type=int, default=100, help="vehicles per call")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pairs", type=int, default=5, help="old/new pairs timed per case")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "routing.json")
    args = parser.parse_args()
    threads = [t for t in args.threads if t <= numba.config.NUMBA_NUM_THREADS]
    nets = {name: load_roadnet(ROOT / MAP_FILES[name]) for name in args.maps}
    with tempfile.TemporaryDirectory() as tmp:
        work = {name: run_demand(name, Path(tmp)) for name in args.maps}
    for name, net in nets.items():
        work[name] |= random_calls(net, args)
        warm = work[name]["reroute"][:2]  # warm-up: load the compiled kernel and scipy's
        timed(Router, net, warm)
        timed(ScipyRouter, net, warm)
    print("| map | trips | count | searches | Numba threads | old (scipy) | new (kernel) "
          "| old/new (min-max) | identical |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for name, net in nets.items():
        for trips, calls in work[name].items():
            for t in threads:
                rows.append(bench_case(net, name, trips, calls, t, args.pairs))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    report = {
        "machine": machine(),
        "versions": software_versions(),
        "maps": {
            name: {"nodes": net.n_nodes, "links": net.n_links, "movements": net.n_movements}
            for name, net in nets.items()
        },
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
