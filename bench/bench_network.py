"""Benchmark: building a road network from OSM, twin against osmnx, and the cached load.

For each map: twin's cold build (read, clean, simplify, consolidate, compile), osmnx's own
``graph_from_xml`` + ``simplify_graph`` on the same file (the reference: what a user would do
with osmnx alone; it does less: no filtering to drivable roads, no consolidation, no arrays),
and twin's load from the on-disk cache. Medians of ``--repeat`` runs; results are written to
bench/results/network.json and summarised in bench/RESULTS.md by hand.

    python bench/bench_network.py [--maps baltimore dortmund ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import osmnx as ox

from twin.network.cache import build_roadnet, load_roadnet
from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAPS = ["west-oakland", "aguascalientes", "dortmund", "baltimore"]


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_map(name: str, repeat: int) -> dict:
    path = ROOT / "maps" / f"{name}.osm.bz2"
    build_s, net = timed(lambda: build_roadnet(path), repeat)
    with tempfile.TemporaryDirectory() as cache:
        import os

        os.environ["TWIN_CACHE_DIR"] = cache
        load_roadnet(path)  # fill the cache
        load_s, _ = timed(lambda: load_roadnet(path), max(repeat, 5))

    def osmnx_build():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            G = ox.graph_from_xml(path, simplify=True, retain_all=True)
        return G

    try:
        osmnx_s, G = timed(osmnx_build, repeat)
        osmnx_nodes, osmnx_edges = len(G), G.number_of_edges()
    except Exception as exc:  # osmnx refuses some real extracts (e.g. missing nodes)
        osmnx_s, osmnx_nodes, osmnx_edges = None, None, f"failed: {exc}"[:120]
    s = net.summary()
    return {
        "map": name,
        "nodes": s["nodes"],
        "links": s["links"],
        "signals": s["signalised_intersections"],
        "twin_build_s": round(build_s, 3),
        "twin_build_phases_s": net.meta["build_timings_s"],
        "twin_cached_load_s": round(load_s, 4),
        "osmnx_graph_from_xml_s": None if osmnx_s is None else round(osmnx_s, 3),
        "osmnx_nodes_all_ways": osmnx_nodes,
        "osmnx_edges_all_ways": osmnx_edges,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=DEFAULT_MAPS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "network.json")
    args = parser.parse_args()
    rows = []
    for name in args.maps:
        row = bench_map(name, args.repeat)
        rows.append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "versions": software_versions(),
                "repeat": args.repeat,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
