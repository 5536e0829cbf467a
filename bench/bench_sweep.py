"""Benchmark: sweep throughput (runs per hour) on 1 and 2 local workers and on a 2-worker Dask
LocalCluster, the scaling efficiency, and the per-run overhead of scheduling and writing.

The same sweep each time: ``scenarios/baltimore-short.toml`` (15 minutes of the morning peak:
households, traffic, grid and power flow) over ``--runs`` seeds (one parameter set), into a
fresh directory; a one-run warm-up first loads the compiled kernels in this process (the
workers load them from the on-disk cache) and builds the road network into a private
``TWIN_CACHE_DIR``. Then three groups of runs on 1 and 2 local workers (and Dask): with the
population and grid caches (:mod:`twin.synth_cache`) bypassed (``TWIN_NO_CACHE=1``: every run
synthesises, as before the caches existed; 1, 2 workers and Dask), with those caches emptied
before each (a first sweep: every seed synthesised and written; 1 and 2 workers), and with
every seed's entries on disk (a sweep run again, an evaluation, more parameter sets over the
same seeds; 1, 2 workers and Dask). The figures of the file this overwrites are kept under
``before_caching`` (measured before the caches existed, on another day).
Efficiency at 2 workers = T(1) / (2 T(2)), cold against cold and warm against warm.
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
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    out = {"wall_s": wall, "runs": runs, "runs_per_hour": runs * 3600.0 / wall,
           "run_s_mean": run_s, "run_s_median": float(table["wall_s"].median())}  # fmt: skip
    for part in ("population", "energy"):
        col = f"run.{part}_build_wall_s"
        if col in table:
            out[f"{part}_build_s_median"] = float(table[col].median())
    return out


@contextmanager
def no_cache() -> Iterator[None]:
    """Runs (and workers started) inside bypass the population and grid caches."""
    os.environ["TWIN_NO_CACHE"] = "1"
    try:
        yield
    finally:
        del os.environ["TWIN_NO_CACHE"]


def timed_dask(runs: int, dask_tasks: int = 0) -> tuple[dict, float]:
    """A sweep on a fresh 2-worker LocalCluster; and Dask's cost per empty task."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        res = timed(runs, dask=cluster.scheduler_address)
        task_s = float("nan")
        if dask_tasks:
            client.gather(client.map(_noop, range(20)))
            t0 = time.perf_counter()
            client.gather(client.map(_noop, range(dask_tasks), pure=False))
            task_s = (time.perf_counter() - t0) / dask_tasks
    return res, task_s


def _noop(x: int) -> int:
    return x


def empty_synth_cache(cache: Path) -> None:
    """Delete the population, grid and map-feature entries (the road network stays)."""
    from twin.synth_cache import clear_memo

    for entry in cache.glob("*.npz"):
        if not entry.name.startswith("roadnet-"):
            entry.unlink()
    clear_memo()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--dask-tasks", type=int, default=500)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sweep.json")
    args = ap.parse_args()
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    before = old.get("before_caching", old)
    cache = Path(tempfile.mkdtemp(prefix="twin-sweep-cache-"))
    os.environ["TWIN_CACHE_DIR"] = str(cache)  # spawned and Dask workers inherit it
    from twin.synth_cache import clear_memo

    timed(1, jobs=1)  # warm-up: kernels compiled or loaded, the network built and cached
    res: dict[str, dict] = {}
    with no_cache():
        res["one_worker_no_cache"] = timed(args.runs, jobs=1)
        res["two_workers_no_cache"] = timed(args.runs, jobs=2)
        res["dask_two_workers_no_cache"], _ = timed_dask(args.runs)
    empty_synth_cache(cache)
    res["one_worker_cold_cache"] = timed(args.runs, jobs=1)
    empty_synth_cache(cache)
    res["two_workers_cold_cache"] = timed(args.runs, jobs=2)
    clear_memo()  # every seed's entries are on disk now: warm runs read them from there
    res["one_worker"] = timed(args.runs, jobs=1)
    res["two_workers"] = timed(args.runs, jobs=2)
    res["dask_two_workers"], task_s = timed_dask(args.runs, args.dask_tasks)
    shutil.rmtree(cache, ignore_errors=True)
    for suffix in ("_no_cache", "_cold_cache", ""):
        one = res["one_worker" + suffix]["wall_s"]
        for key, workers in (("one_worker", 1), ("two_workers", 2), ("dask_two_workers", 2)):
            if key + suffix in res:
                r = res[key + suffix]
                r["efficiency"] = one / (workers * r["wall_s"])
                r["overhead_per_run_s"] = r["wall_s"] * workers / r["runs"] - r["run_s_mean"]
    run_s = statistics.median(
        res[k]["run_s_mean"] for k in ("one_worker", "two_workers", "dask_two_workers")
    )
    estimate = {str(w): min(1.0, run_s / (w * task_s)) for w in (2, 16, 64, 256, 1024)}
    speedup = {
        f"{key}{suffix}_over_{base}": res[key + suffix]["runs_per_hour"] / ref[key]["runs_per_hour"]
        for base, ref in (("no_cache", {k: res[k + "_no_cache"] for k in (
            "one_worker", "two_workers", "dask_two_workers")}), ("before_caching", before))
        for key in ("one_worker", "two_workers", "dask_two_workers")
        for suffix in ("", "_cold_cache")
        if key in ref and key + suffix in res
    }  # fmt: skip
    report = {
        "benchmark": "sweep throughput",
        "command": f"NUMBA_NUM_THREADS=1 python bench/bench_sweep.py --runs {args.runs}",
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "date": time.strftime("%Y-%m-%d"),
        **res,
        "dask_task_overhead_s": task_s,
        "efficiency_estimate_by_workers": estimate,
        "target_efficiency_2_workers": 0.9,
        "runs_per_hour_ratios": speedup,
        "machine": machine(),
        "software": software_versions(),
        "before_caching": before,
    }
    args.out.write_text(json.dumps(report, indent=2))
    shown = {k: v for k, v in report.items() if k not in ("machine", "software", "before_caching")}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
