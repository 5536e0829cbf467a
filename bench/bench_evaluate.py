"""Benchmark: wall time of ``twin evaluate`` (issue 11's figure).

One policy against two baselines on the Baltimore morning peak hour (07:30-08:30, households'
trips, traffic only), ``--seeds`` seeds (default 5): 15 runs on a process pool over the
machine's cores, exactly as ``twin evaluate`` runs them. A warm-up evaluation of one short
run first loads the compiled kernels (compile time excluded). Target: under 2 minutes on a
2-core machine. Results go to bench/results/evaluate.json.

    python bench/bench_evaluate.py [--policy max_pressure] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from twin.evaluation import evaluate
from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "policies" / "train-baltimore.toml"  # Baltimore 07:30-08:30, traffic only


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="max_pressure")
    ap.add_argument("--baselines", nargs="+", default=["fixed_time", "actuated"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--jobs", type=int)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "evaluate.json")
    args = ap.parse_args()
    evaluate([args.policy], args.baselines[:1], [SCENARIO], seeds=1, jobs=1, progress=False)
    t0 = time.perf_counter()
    ev = evaluate([args.policy], args.baselines, [SCENARIO], seeds=args.seeds,
                  first_seed=args.first_seed, jobs=args.jobs, progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    comp = ev.comparisons()
    delay = comp[comp["kpi"] == "mean_delay_s"]
    report = {
        "benchmark": "twin evaluate wall time",
        "command": "python bench/bench_evaluate.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k != "out" and v is not None and not isinstance(v, list)
        ),
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "policy": args.policy,
        "baselines": args.baselines,
        "seeds": args.seeds,
        "runs": len(ev.runs),
        "wall_s": wall,
        "run_wall_s_median": float(ev.runs["wall_s"].median()),
        "target_wall_s": 120.0,
        "mean_delay_change_pct": dict(zip(delay["baseline"], delay["change_pct"], strict=True)),
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("runs", "wall_s", "run_wall_s_median",
                                             "mean_delay_change_pct")}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
