"""Benchmark: the routing kernel's A* with landmarks (ALT) against A* with the straight-line
bound alone (issue 14; the kernel before session 12).

Single-destination searches, as the traffic loop makes them when it re-routes running
vehicles and routes trips at departure, on three maps (the network cache's compiled maps):

- ``free``: ``--pairs`` random node pairs at free-flow link times, one call;
- ``congested``: the same pairs after link times of free flow x U(1, 4) per link, one call
  (1,000 or more origins: the landmarks are computed again on these times, which is timed);
- ``reroute``: ``--calls`` calls each of new link times (free flow x U(1, 2)) and 100 random
  (link, destination) pairs, as ``TrafficSim.reroute`` (the landmarks of free flow are kept:
  dearer links leave them valid).

Each workload runs on a new Router with 16 landmarks (``N_LANDMARKS``, "alt") and with none
("line"), alternately, ``--repeat`` pairs, after a warm-up; medians and the ratio line / alt of
each pair (median, min-max); Numba on the machine's threads. The routes of both are checked to
be identical. Results go to bench/results/landmarks.json.

    python bench/bench_landmarks.py [--maps baltimore dortmund columbus] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import twin.traffic.routing as routing
from twin.network.cache import load_roadnet
from twin.network.road import RoadNet
from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
MAPS = ("baltimore", "dortmund", "columbus")


def workloads(net: RoadNet, args: argparse.Namespace) -> dict[str, list[tuple]]:
    """Per workload, its calls: (link times or None, origins, dests, from_links)."""
    rng = np.random.default_rng(args.seed)
    free = net.link_length_m / net.link_speed_mps
    o, d = rng.integers(0, net.n_nodes, (2, args.pairs))
    keep = o != d
    o, d = o[keep], d[keep]
    reroute = [
        (
            free * rng.uniform(1.0, 2.0, net.n_links),
            rng.integers(0, net.n_links, 100),
            rng.integers(0, net.n_nodes, 100),
            True,
        )
        for _ in range(args.calls)
    ]
    return {
        "free": [(None, o, d, False)],
        "congested": [(free * rng.uniform(1.0, 4.0, net.n_links), o, d, False)],
        "reroute": reroute,
    }


def timed(net: RoadNet, n_landmarks: int, calls: list[tuple]) -> tuple[float, list]:
    """Wall time of the calls on a new router (built and first graph not timed)."""
    routing.N_LANDMARKS = n_landmarks
    router = routing.Router(net)
    router.kernel_graph()
    out = []
    t0 = time.perf_counter()
    for times, origins, dests, from_links in calls:
        if times is not None:
            router.set_link_times(times)
        find = router.routes_from_links if from_links else router.routes
        out.append(find(origins, dests))
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", nargs="+", default=list(MAPS), choices=list(MAPS))
    ap.add_argument("--pairs", type=int, default=4000, help="random node pairs")
    ap.add_argument("--calls", type=int, default=36, help="re-routing calls")
    ap.add_argument("--repeat", type=int, default=5, help="alternating pairs timed")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "landmarks.json")
    args = ap.parse_args()
    n_alt = routing.N_LANDMARKS
    rows = []
    print("| map | workload | searches | line | alt | line/alt (min-max) | identical |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name in args.maps:
        net = load_roadnet(ROOT / "maps" / f"{name}.osm.bz2")
        for work, calls in workloads(net, args).items():
            timed(net, n_alt, calls[:1])  # warm-up: compiled kernels loaded
            timed(net, 0, calls[:1])
            line_s, alt_s, same = [], [], True
            for _ in range(args.repeat):
                t_line, ref = timed(net, 0, calls)
                t_alt, got = timed(net, n_alt, calls)
                line_s.append(t_line)
                alt_s.append(t_alt)
                same &= all(
                    np.array_equal(getattr(a, f), getattr(b, f))
                    for a, b in zip(got, ref, strict=True)
                    for f in ("offsets", "links", "time_s", "ok")
                )
            ratios = [a / b for a, b in zip(line_s, alt_s, strict=True)]
            searches = sum(len(np.unique(c[1])) for c in calls)
            row = {
                "map": name, "workload": work, "vertices": net.n_links + net.n_nodes,
                "searches": searches, "line_s": line_s, "alt_s": alt_s,
                "line_median_s": statistics.median(line_s),
                "alt_median_s": statistics.median(alt_s),
                "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
                "ratio_max": max(ratios), "identical_routes": bool(same),
            }  # fmt: skip
            rows.append(row)
            print(
                f"| {name} | {work} | {searches:,} | {row['line_median_s']:.3f} s "
                f"| {row['alt_median_s']:.3f} s | {row['ratio_median']:.2f}x "
                f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) | {'yes' if same else 'NO'} |",
                flush=True,
            )
    routing.N_LANDMARKS = n_alt
    report = {
        "machine": machine(),
        "versions": software_versions(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "n_landmarks": n_alt,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
