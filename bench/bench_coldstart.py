"""Cold first run: how long `twin run` of the default scenario takes on a fresh install.

Usage: ``python bench/bench_coldstart.py [--scenario scenarios/baltimore.toml] [--repeat 3]
[--baseline DIR] [--out PATH]``.

Each repeat runs the scenario four times in fresh processes, with caches in a new temporary
directory (``TWIN_CACHE_DIR``, ``NUMBA_CACHE_DIR`` and ``XDG_CACHE_HOME``):

- ``cold``: nothing cached, as after ``pip install`` (network, population, grid and kernels);
- ``kernels cold``: the network, population and grid cached, the kernels not (compile alone);
- ``kernels cold, one process``: the same without the second compile process of
  :mod:`twin.precompile` (``TWIN_PARALLEL_COMPILE=0``), as twin compiled before it;
- ``warm``: everything cached.

Inside each run the main process's Numba compile events are recorded (``numba.core.event``;
not the helper's), so the table gives the compile time that process spent and the functions
that took longest (a function's time includes the functions it calls that compile with it).
The report is skipped (``--no-report``) in all. Results: ``results/coldstart.json``.

``--baseline DIR`` runs another version of twin alongside (``DIR`` holds its ``twin`` package,
put first on ``PYTHONPATH``, e.g. ``git archive HEAD~1 twin | tar -x -C DIR``): each repeat
runs the baseline's four runs, then this version's, and the summary gives the median of the
per-repeat ratios of compile time (this version over the baseline) with their range.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]

# run in the child: twin's CLI with Numba's compile events recorded, dumped as JSON
DRIVER = r"""
import json, sys, time
from numba.core import event
t0 = time.perf_counter()
with event.install_recorder("numba:compile") as rec:
    from twin.cli import main
    try:
        code = main(sys.argv[2:])
    except SystemExit as exc:
        code = exc.code
wall = time.perf_counter() - t0
starts, per_fn = {}, {}
for ts, ev in rec.buffer:
    key = id(ev.data["dispatcher"]), str(ev.data["args"])
    if ev.is_start:
        starts[key] = ts
    elif key in starts:
        d = ev.data["dispatcher"]
        name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
        per_fn[name] = per_fn.get(name, 0.0) + ts - starts.pop(key)
json.dump({"code": code, "wall_s": wall, "compile_s": per_fn}, open(sys.argv[1], "w"))
sys.exit(code)
"""


def run_once(scenario: str, cache: Path, out: Path, tag: str, **extra_env: str) -> dict:
    env = dict(
        os.environ,
        XDG_CACHE_HOME=str(cache),
        TWIN_CACHE_DIR=str(cache / "twin"),
        NUMBA_CACHE_DIR=str(cache / "numba"),
        **extra_env,
    )
    dump = out / f"{tag}.json"
    run_dir = out / f"run-{tag}"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(dump), "run", scenario, "--out",
         str(run_dir), "--no-report"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not dump.exists():
        raise SystemExit(f"twin run failed ({tag}):\n{proc.stderr[-2000:]}")
    data = json.loads(dump.read_text())
    return {"process_wall_s": wall, "compile_by_function_s": data["compile_s"]}


def four_runs(scenario: str, label: str, **extra_env: str) -> dict:
    """Cold, kernels cold (two processes, then one), warm: one repeat of one version."""
    with tempfile.TemporaryDirectory(prefix="twin-cold-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        row = {"cold": run_once(scenario, cache, tmp, "cold", **extra_env)}
        # the data caches stay, the kernels go
        subprocess.run(["rm", "-rf", str(cache / "numba")], check=True)
        row["kernels_cold"] = run_once(scenario, cache, tmp, "kernels-cold", **extra_env)
        # the same in one process (no second compile process: TWIN_PARALLEL_COMPILE=0)
        subprocess.run(["rm", "-rf", str(cache / "numba")], check=True)
        row["kernels_cold_one_process"] = run_once(
            scenario, cache, tmp, "kernels-cold-1", TWIN_PARALLEL_COMPILE="0", **extra_env
        )
        row["warm"] = run_once(scenario, cache, tmp, "warm", **extra_env)
    print(
        f"{label}: cold {row['cold']['process_wall_s']:.1f} s, kernels cold "
        f"{row['kernels_cold']['process_wall_s']:.1f} s (one process "
        f"{row['kernels_cold_one_process']['process_wall_s']:.1f} s), warm "
        f"{row['warm']['process_wall_s']:.1f} s",
        flush=True,
    )
    return row


def _compile_s(row: dict, kind: str = "kernels_cold") -> float:
    return row[kind]["process_wall_s"] - row["warm"]["process_wall_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baltimore.toml"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="a directory holding another twin package")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "coldstart.json")
    args = ap.parse_args()
    runs, base_runs = [], []
    for r in range(args.repeat):
        if args.baseline is not None:
            path = os.pathsep.join([str(args.baseline.resolve()), os.environ.get("PYTHONPATH", "")])
            base_runs.append(four_runs(args.scenario, f"repeat {r + 1}, baseline", PYTHONPATH=path))
        runs.append(four_runs(args.scenario, f"repeat {r + 1}"))

    def med(kind: str) -> float:
        return statistics.median(r[kind]["process_wall_s"] for r in runs)

    names = {n for r in runs for n in r["kernels_cold"]["compile_by_function_s"]}
    per_fn = {
        n: statistics.median(r["kernels_cold"]["compile_by_function_s"].get(n, 0.0) for r in runs)
        for n in names
    }
    top = sorted(per_fn.items(), key=lambda kv: -kv[1])[:15]
    summary = {
        "cold_process_wall_s": med("cold"),
        "kernels_cold_process_wall_s": med("kernels_cold"),
        "warm_process_wall_s": med("warm"),
        "compile_s": med("kernels_cold") - med("warm"),
        "kernels_cold_one_process_wall_s": med("kernels_cold_one_process"),
        "compile_one_process_s": med("kernels_cold_one_process") - med("warm"),
        "slowest_compiles_s": dict(top),
    }
    if base_runs:
        ratios = [_compile_s(a) / _compile_s(b) for a, b in zip(runs, base_runs, strict=True)]
        ratios_1 = [
            _compile_s(a, "kernels_cold_one_process") / _compile_s(b, "kernels_cold_one_process")
            for a, b in zip(runs, base_runs, strict=True)
        ]
        summary["baseline"] = {
            "dir": str(args.baseline),
            "compile_s": statistics.median(_compile_s(b) for b in base_runs),
            "compile_one_process_s": statistics.median(
                _compile_s(b, "kernels_cold_one_process") for b in base_runs
            ),
            "warm_process_wall_s": statistics.median(
                b["warm"]["process_wall_s"] for b in base_runs
            ),
            "compile_ratio_median": statistics.median(ratios),
            "compile_ratio_range": [min(ratios), max(ratios)],
            "compile_one_process_ratio_median": statistics.median(ratios_1),
            "compile_one_process_ratio_range": [min(ratios_1), max(ratios_1)],
        }
    result = {
        "benchmark": "coldstart",
        "command": "python bench/bench_coldstart.py " + " ".join(sys.argv[1:]),
        "scenario": args.scenario,
        "summary": summary,
        "runs": runs,
        "baseline_runs": base_runs,
        "machine": machine(),
        "software": software_versions(),
    }
    out = args.out
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
