"""Benchmark: synthesising a city's population and one weekday of plans.

Stages, each timed (median of ``--repeat`` runs, after one warm-up run so Numba's compile and
the OS file cache are out of the figures):

- features: buildings, land use and POIs read from the OSM file (pyosmium, one pass), with
  osmnx's ``features_from_xml`` on the same file as the reference (the tool a user would reach
  for; it returns GeoDataFrames of the same buildings);
- homes + households, zones + gravity model, tours (the default plans, vectorised), legs of
  the day with through traffic, and the Mesa Household agents (one per household);
- memory: tracemalloc's peak of the whole synthesis (numpy buffers included) and the process'
  peak RSS.

Results go to bench/results/population.json with the machine they ran on; bench/RESULTS.md
summarises them.

    python bench/bench_population.py [--households auto 100000 300000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
import tracemalloc
import warnings
from pathlib import Path

import mesa

from twin.network.cache import load_roadnet
from twin.network.road import BuildOptions
from twin.population.agent import Household
from twin.population.config import PopulationConfig
from twin.population.features import read_features
from twin.population.synthesis import day_legs, synthesize
from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "maps" / "baltimore.osm.bz2"


def run_once(net, households: int | str) -> dict:
    cfg = PopulationConfig(households=households)
    t0 = time.perf_counter()
    data = synthesize(net, MAP, cfg, seed=42)
    t1 = time.perf_counter()
    legs = day_legs(data, data.default_tours)
    t2 = time.perf_counter()
    model = mesa.Model(rng=1)
    for i in range(len(data)):
        Household(model, data, i)
    t3 = time.perf_counter()
    return {
        **{f"{k}_s": v for k, v in data.timings_s.items()},
        "synthesis_s": t1 - t0,
        "legs_s": t2 - t1,
        "agents_s": t3 - t2,
        "total_s": t3 - t0,
        "households": len(data),
        "tours": len(data.default_tours),
        "legs": len(legs),
        "driven_legs": int(legs.driven.sum()),
    }


def peak_memory_mib(net, households: int | str) -> float:
    tracemalloc.start()
    run_once(net, households)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def osmnx_features_s(repeat: int) -> float:
    import osmnx as ox

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ox.features_from_xml(
                MAP,
                tags={
                    "building": True,
                    "landuse": True,
                    "amenity": True,
                    "shop": True,
                    "office": True,
                },
            )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", nargs="+", default=["auto", "100000", "300000"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "population.json")
    args = ap.parse_args()
    net = load_roadnet(MAP, BuildOptions())
    run_once(net, 1000)  # warm-up: Numba compile, file cache
    rows = []
    for h in args.households:
        households = h if h == "auto" else int(h)
        runs = [run_once(net, households) for _ in range(args.repeat)]
        row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        row["requested"] = h
        row["peak_traced_mib"] = peak_memory_mib(net, households)
        rows.append(row)
        print(
            f"{h:>7}: {row['households']:>8,.0f} households, {row['legs']:>9,.0f} legs; "
            f"synthesis {row['synthesis_s']:.2f} s (features {row['features_s']:.2f}, "
            f"households {row['households_s']:.2f}, zones {row['zones_s']:.2f}, plans "
            f"{row['plans_s']:.2f}), legs {row['legs_s']:.2f} s, agents {row['agents_s']:.2f} s;"
            f" total {row['total_s']:.2f} s; peak traced {row['peak_traced_mib']:.0f} MiB"
        )
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        read_features(MAP, net.meta["crs"])
    twin_features_s = (time.perf_counter() - t0) / args.repeat
    ref_s = osmnx_features_s(args.repeat)
    print(
        f"features of {MAP.name}: twin {twin_features_s:.2f} s, osmnx features_from_xml "
        f"{ref_s:.2f} s ({ref_s / twin_features_s:.1f}x)"
    )
    result = {
        "benchmark": "population",
        "map": MAP.name,
        "repeat": args.repeat,
        "rows": rows,
        "features": {"twin_s": twin_features_s, "osmnx_features_from_xml_s": ref_s},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
