"""An evaluation's reports: JSON, JUnit XML (one test case per requirement and policy) and a
Markdown summary for a pull-request comment; written together, atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

from twin.evaluation.kpis import LOWER_IS_BETTER
from twin.evaluation.runner import Evaluation
from twin.results import software_versions


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def to_json(ev: Evaluation) -> dict:
    comp = ev.comparisons()
    return {
        "kind": ev.kind,
        "policies": ev.policies,
        "baselines": ev.baselines,
        "scenarios": sorted(ev.runs["scenario"].unique().tolist()),
        "seeds": sorted(int(s) for s in ev.runs["seed"].unique()),
        "wall_s": ev.wall_s,
        "kpis": {k: {"unit": ev.unit(k), "lower_is_better": LOWER_IS_BETTER[k]} for k in ev.kpis},
        "means": {
            name: {k: _num(ev.value(name, k)) for k in ev.kpis}
            for name in [*ev.policies, *ev.baselines]
        },
        "comparisons": [
            {k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()}
            for row in comp.to_dict(orient="records")
        ],
        "requirements": ev.outcomes,
        "passed": all(o["holds"] for o in ev.outcomes),
        "runs": [
            {k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()}
            for row in ev.runs.to_dict(orient="records")
        ],
        "software": software_versions(),
    }


def to_junit(ev: Evaluation) -> str:
    failures = sum(not o["holds"] for o in ev.outcomes)
    suite = ET.Element(
        "testsuite",
        name="twin evaluate",
        tests=str(len(ev.outcomes)),
        failures=str(failures),
        errors="0",
        time=f"{ev.wall_s:.1f}",
    )
    for o in ev.outcomes:
        case = ET.SubElement(
            suite, "testcase", classname=f"twin.evaluate.{o['policy']}", name=o["requirement"]
        )
        if not o["holds"]:
            ET.SubElement(case, "failure", message=o["message"]).text = o["message"]
        else:
            ET.SubElement(case, "system-out").text = o["message"]
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode", xml_declaration=True)


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def to_markdown(ev: Evaluation) -> str:
    comp = ev.comparisons()
    seeds = ev.runs["seed"].nunique()
    scen = ", ".join(sorted(ev.runs["scenario"].unique()))
    lines = [f"### twin evaluate: {', '.join(ev.policies)} vs {', '.join(ev.baselines)}", ""]
    lines.append(f"{scen}; {seeds} seeds; {len(ev.runs)} runs in {ev.wall_s:.0f} s.")
    lines.append("")
    if ev.outcomes:
        passed = all(o["holds"] for o in ev.outcomes)
        lines.append(f"**{'All requirements hold' if passed else 'Requirements FAILED'}**")
        lines.append("")
        lines += [f"- {'✅' if o['holds'] else '❌'} {o['message']}" for o in ev.outcomes]
        lines.append("")
    header = "| KPI | " + " | ".join([*ev.policies, *ev.baselines]) + " |"
    lines += [header, "|" + "---|" * (1 + len(ev.policies) + len(ev.baselines))]
    for k in ev.kpis:
        better = "lower" if LOWER_IS_BETTER[k] else "higher"
        vals = [_fmt(ev.value(n, k)) for n in [*ev.policies, *ev.baselines]]
        lines.append(f"| {k} ({ev.unit(k)}, {better} is better) | " + " | ".join(vals) + " |")
    lines += ["", "Paired difference (policy - baseline), 95 % bootstrap CI over seeds, and "
              "probability of improvement:", ""]  # fmt: skip
    lines += ["| policy | baseline | KPI | diff | 95 % CI | change | P(improve) |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in comp.itertuples():
        lines.append(
            f"| {r.policy} | {r.baseline} | {r.kpi} | {_fmt(r.diff)} | "
            f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | {_fmt(r.change_pct)} % | "
            f"{r.p_improvement:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_reports(ev: Evaluation, out_dir: Path) -> dict[str, Path]:
    """evaluation.json, junit.xml, summary.md and runs.csv in ``out_dir``; each file is
    written under a temporary name and renamed, so none is ever half-written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "json": ("evaluation.json", json.dumps(to_json(ev), indent=2)),
        "junit": ("junit.xml", to_junit(ev)),
        "markdown": ("summary.md", to_markdown(ev)),
        "runs": ("runs.csv", ev.runs.to_csv(index=False)),
    }
    written = {}
    for key, (name, text) in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out_dir / name)
        written[key] = out_dir / name
    return written
