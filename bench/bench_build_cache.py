"""Benchmark: wall time to build a CityModel of ``scenarios/baltimore-short.toml`` with the
population and grid caches warm against bypassed (``TWIN_NO_CACHE=1``), median of ``--repeat``.

Two situations: the first model built in a fresh process (what ``twin run`` and each new
sweep worker pay: the disk cache against synthesising, OSM feature reads included) and a
model built after another in the same process (the in-process memo against synthesising with
the OSM reads already memoised). The road network comes from its own cache in both (warmed
first, in a private ``TWIN_CACHE_DIR``). Results to bench/results/build_cache.json.

    python bench/bench_build_cache.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "baltimore-short.toml"

CHILD = """
import json, sys, time
from twin.model import CityModel
from twin.scenario import load_scenario
sc = load_scenario(sys.argv[1])
out = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    m = CityModel(sc)
    out.append({"build_s": time.perf_counter() - t0, **{k: v for k, v in m.build_wall_s.items()}})
    del m
print(json.dumps(out))
"""


def child(models: int, *, bypass: bool, cache: str) -> list[dict]:
    env = dict(os.environ, TWIN_CACHE_DIR=cache, NUMBA_NUM_THREADS="1")
    env.pop("TWIN_NO_CACHE", None)
    if bypass:
        env["TWIN_NO_CACHE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(SCENARIO), str(models)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "build_cache.json")
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="twin-build-bench-")
    child(1, bypass=False, cache=cache)  # network, population and grid entries written
    res: dict[str, dict] = {}
    for label, bypass in (("cached", False), ("bypassed", True)):
        fresh = [child(1, bypass=bypass, cache=cache)[0] for _ in range(args.repeat)]
        same = child(1 + args.repeat, bypass=bypass, cache=cache)[1:]
        res[label] = {
            "fresh_process_build_s": [r["build_s"] for r in fresh],
            "fresh_process_build_s_median": statistics.median(r["build_s"] for r in fresh),
            "fresh_process_parts_s_median": {
                k: statistics.median(r[k] for r in fresh) for k in fresh[0] if k != "build_s"
            },
            "same_process_build_s": [r["build_s"] for r in same],
            "same_process_build_s_median": statistics.median(r["build_s"] for r in same),
            "same_process_parts_s_median": {
                k: statistics.median(r[k] for r in same) for k in same[0] if k != "build_s"
            },
        }
    for where in ("fresh_process", "same_process"):
        res[f"{where}_speedup"] = (
            res["bypassed"][f"{where}_build_s_median"] / res["cached"][f"{where}_build_s_median"]
        )
    shutil.rmtree(cache, ignore_errors=True)
    from twin.results import machine, software_versions

    report = {
        "benchmark": "CityModel build time, population and grid caches warm vs bypassed",
        "command": f"python bench/bench_build_cache.py --repeat {args.repeat}",
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "date": time.strftime("%Y-%m-%d"),
        **res,
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine", "software")},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
