"""The research commands of the ``twin`` command line: ``twin evaluate``, ``twin sweep`` and
``twin policies`` (their parsers are built in :mod:`twin.cli`)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from twin.errors import TwinError

EXIT_REQUIREMENT_FAILED = 1
EVALUATION_FILES = {"evaluation.json", "junit.xml", "summary.md", "runs.csv"}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from twin.evaluation import evaluate
    from twin.evaluation.config import EvaluateConfig, load_evaluate_config
    from twin.evaluation.report import to_markdown, write_reports

    cfg = load_evaluate_config(args.config) if args.config else EvaluateConfig()
    policies = [*cfg.policies, *(args.policy or [])]
    baselines = [*cfg.baselines, *(args.baseline or [])]
    scenarios = [*cfg.scenarios, *(str(s) for s in args.scenario or [])]
    require = [*cfg.require, *(args.require or [])]
    out = Path(args.out or cfg.out or f"runs/evaluate-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and any(p.name not in EVALUATION_FILES for p in out.iterdir()):
        raise TwinError(f"{out}: exists and holds files other than an earlier evaluation's")
    for text in require:  # a typo fails now, not after the runs
        from twin.evaluation.requirements import Requirement

        Requirement.parse(text)
    ev = evaluate(
        policies,
        baselines,
        scenarios,
        seeds=args.seeds if args.seeds is not None else cfg.seeds,
        first_seed=args.first_seed if args.first_seed is not None else cfg.first_seed,
        jobs=args.jobs if args.jobs is not None else cfg.jobs,
        progress=not args.no_progress,
    )
    passed = ev.check(require)
    files = write_reports(ev, out)
    print(to_markdown(ev))
    print("reports: " + ", ".join(str(p) for p in files.values()))
    if not passed:
        for o in ev.outcomes:
            if not o["holds"]:
                print(f"twin: requirement failed: {o['message']}", file=sys.stderr)
        return EXIT_REQUIREMENT_FAILED
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from twin.sweep import sweep
    from twin.sweep_config import SweepConfig, load_sweep_config

    cfg = load_sweep_config(args.config) if args.config else SweepConfig()
    scenario = args.scenario or cfg.scenario
    if scenario is None:
        raise TwinError("twin sweep: give a scenario file (or scenario = ... in [sweep])")
    out = Path(args.out or cfg.out or f"runs/sweep-{datetime.now():%Y%m%d-%H%M%S}")
    table = sweep(
        scenario,
        [*cfg.params, *(args.param or [])],
        seeds=args.seeds if args.seeds is not None else cfg.seeds,
        design_kind=args.design or cfg.design,
        samples=args.samples if args.samples is not None else cfg.samples,
        out=out,
        resume=args.resume,
        jobs=args.jobs if args.jobs is not None else cfg.jobs,
        dask=args.dask or cfg.dask,
        keep_runs=args.keep_runs,
        plot=args.plot,
        progress=not args.no_progress,
    )
    failed = table[table["status"] != "ok"]
    print(f"{len(table)} runs ({len(failed)} failed) in {out / 'runs'}; read them with "
          f"pandas.read_parquet({str(out / 'runs')!r})")  # fmt: skip
    for row in failed.head(5).itertuples():
        print(f"  failed {row.run_id} (seed {row.seed}): {row.error}", file=sys.stderr)
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from twin.control.onnx import spec_of
    from twin.control.registry import describe, known

    kinds = [args.kind] if args.kind else ["signals", "charging"]
    for kind in kinds:
        if args.spec:
            print(spec_of(kind).markdown())
            print()
            continue
        print(f"{kind} policies ([control] {kind} = NAME, or a .onnx model file):")
        for name in known(kind):
            print(f"  {name:<16} {describe(kind, name)}")
    return 0
