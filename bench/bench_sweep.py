"""Benchmark: sweep throughput (runs per hour) on 1 and 2 local workers and on a 2-worker Dask
LocalCluster, the scaling efficiency, and the per-run overhead of scheduling and writing.

The same sweep each time: ``scenarios/baltimore-short.toml`` (15 minutes of the morning peak:
households, traffic, grid and power flow) over ``--runs`` seeds (one parameter set), into a
fresh directory; a one-run warm-up first loads the compiled kernels in this process (the
workers load them from the on-disk cache). Efficiency at 2 workers = T(1) / (2 T(2)).
Overhead per run = wall x workers / runs - the mean run time measured inside the workers
(worker start-up, scheduling, result writing, load imbalance at the end). From it, an
estimate of efficiency at W workers if each run had to pass one scheduler that spends the
measured Dask per-task cost (``--dask-tasks`` empty tasks timed on the cluster):
``min(1, run_s / (W x task_s))``. Results to bench/results/sweep.json.

    pip install -e ".[distributed]"
    NUMBA_NUM_THREADS=1 python bench/bench_sweep.py [--runs 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from twin.results import machine, software_versions
from twin.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "baltimore-short.toml"


def timed(runs: int, **kw) -> dict:
    out = Path(tempfile.mkdtemp(prefix="twin-sweep-bench-"))
    t0 = time.perf_counter()
    table = sweep(SCENARIO, [], seeds=runs, out=out, progress=False, **kw)
    wall = time.perf_counter() - t0
    shutil.rmtree(out)
    assert (table["status"] == "ok").all(), table["error"].tolist()
    run_s = float(table["wall_s"].mean())
    return {"wall_s": wall, "runs": runs, "runs_per_hour": runs * 3600.0 / wall,
            "run_s_mean": run_s, "run_s_median": float(table["wall_s"].median())}  # fmt: skip


def _noop(x: int) -> int:
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--dask-tasks", type=int, default=500)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sweep.json")
    args = ap.parse_args()
    timed(1, jobs=1)  # warm-up: kernels compiled or loaded, OSM reads in this process
    res = {"one_worker": timed(args.runs, jobs=1), "two_workers": timed(args.runs, jobs=2)}
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        res["dask_two_workers"] = timed(args.runs, dask=cluster.scheduler_address)
        client.gather(client.map(_noop, range(20)))
        t0 = time.perf_counter()
        client.gather(client.map(_noop, range(args.dask_tasks), pure=False))
        task_s = (time.perf_counter() - t0) / args.dask_tasks
    t1 = res["one_worker"]["wall_s"]
    for key, workers in (("two_workers", 2), ("dask_two_workers", 2), ("one_worker", 1)):
        r = res[key]
        r["efficiency"] = t1 / (workers * r["wall_s"])
        r["overhead_per_run_s"] = r["wall_s"] * workers / r["runs"] - r["run_s_mean"]
    run_s = statistics.median(r["run_s_mean"] for r in res.values())
    estimate = {str(w): min(1.0, run_s / (w * task_s)) for w in (2, 16, 64, 256, 1024)}
    report = {
        "benchmark": "sweep throughput",
        "command": f"python bench/bench_sweep.py --runs {args.runs}",
        "scenario": str(SCENARIO.relative_to(ROOT)),
        **res,
        "dask_task_overhead_s": task_s,
        "efficiency_estimate_by_workers": estimate,
        "target_efficiency_2_workers": 0.9,
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine", "software")},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
