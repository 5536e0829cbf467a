"""Run every policy and baseline on the same scenarios and seeds, in parallel, and compare.

Each (scenario, seed) is run once per policy and per baseline with only ``[control]`` changed,
so all runs of one seed share households, trips and weather (common random numbers). Seeds
are ``first_seed, first_seed + 1, ...`` (default: each scenario's own seed first). Runs go to
a process pool over the machine's cores (:func:`twin.parallel.map_unordered`). For signal
policies the energy side is switched off (it does not affect traffic and costs time).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.evaluation.kpis import (
    CHARGING_KPIS,
    LOWER_IS_BETTER,
    SIGNAL_KPIS,
    kpi_unit,
    resolve_kpi,
    run_currency,
    run_kpis,
)
from twin.evaluation.requirements import Requirement, RequirementError
from twin.evaluation.stats import PairedDiff, paired_difference, probability_of_improvement
from twin.parallel import map_unordered


class EvaluationError(TwinError):
    """Bad input to an evaluation (a policy, scenario or seed count)."""


def policy_kind(name: str) -> str:
    """ "signals" or "charging" for a policy name, ``kind:name`` or ONNX file."""
    from twin.control.registry import KINDS, known

    if ":" in name and name.split(":", 1)[0] in KINDS:
        return name.split(":", 1)[0]
    if name.lower().endswith(".onnx"):
        from twin.control.onnx import spec_of

        path = Path(name)
        if not path.is_file():
            raise EvaluationError(f"{name}: no such ONNX model file")
        import onnxruntime as ort

        try:
            width = ort.InferenceSession(str(path)).get_inputs()[0].shape[-1]
        except Exception as exc:  # onnxruntime's own exception types
            raise EvaluationError(f"{name}: not a valid ONNX model ({exc})") from None
        for kind in KINDS:
            if width == spec_of(kind).width:
                return kind
        raise EvaluationError(
            f"{name}: input width {width} matches no spec (signals "
            f"{spec_of('signals').width}, charging {spec_of('charging').width})"
        )
    for kind in KINDS:
        if name in known(kind):
            return kind
    raise EvaluationError(
        f"unknown policy {name!r}; signals: {', '.join(known('signals'))}; charging: "
        f"{', '.join(known('charging'))}; or an ONNX model file"
    )


def control_value(name: str) -> str:
    """What ``[control]`` gets for a policy as given: an absolute path for an ONNX file, the
    name without its ``kind:`` prefix otherwise."""
    if name.lower().endswith(".onnx"):
        return str(Path(name).resolve())
    return name.split(":", 1)[1] if ":" in name else name


@dataclass(frozen=True)
class RunSpec:
    scenario: str  # path of the scenario file
    seed: int
    name: str  # the policy or baseline as given (its label in the results)
    kind: str

    @property
    def value(self) -> str:
        return control_value(self.name)


def run_one(spec: RunSpec) -> dict:
    """One run; its KPIs (a plain dict, so it crosses process boundaries as data)."""
    from twin.model import CityModel
    from twin.scenario import load_scenario

    t0 = time.perf_counter()
    sc = load_scenario(spec.scenario)
    overrides: dict = {"seed": spec.seed, f"control.{spec.kind}": spec.value}
    if spec.kind == "signals":
        overrides["energy.enabled"] = False
    sc = sc.with_overrides(overrides)
    model = CityModel(sc)
    results = model.run(progress=False)
    row = {"scenario": sc.name, "seed": spec.seed, "policy": spec.name}
    row.update(run_kpis(results, model.network, model.end_s))
    if (currency := run_currency(results)) is not None:
        row["currency"] = currency  # the unit of energy_cost
    row["wall_s"] = time.perf_counter() - t0
    row["worker"] = os.getpid()
    return row


@dataclass
class Evaluation:
    """Every run's KPIs, and the comparisons and checks made from them."""

    policies: list[str]
    baselines: list[str]
    kind: str
    runs: pd.DataFrame  # one row per run: scenario, seed, policy, KPIs, wall_s
    wall_s: float = 0.0
    outcomes: list[dict] = field(default_factory=list)

    @property
    def kpis(self) -> list[str]:
        names = SIGNAL_KPIS if self.kind == "signals" else CHARGING_KPIS
        return [k for k in names if k in self.runs.columns]

    @property
    def currency(self) -> str | None:
        """The runs' currency (the unit of ``energy_cost``); "EUR, USD" when scenarios in
        different currencies were run, None without an energy side."""
        if "currency" not in self.runs.columns:
            return None
        return ", ".join(sorted(set(self.runs["currency"].dropna().astype(str)))) or None

    def unit(self, kpi: str) -> str:
        """The unit of a KPI in these runs (``energy_cost``: their currency)."""
        return kpi_unit(kpi, self.currency)

    def value(self, run: str, kpi: str) -> float:
        """Mean of ``kpi`` over all runs of a policy or baseline."""
        kpi = resolve_kpi(kpi, self.currency)
        if kpi not in self.runs.columns:
            raise RequirementError(f"unknown KPI {kpi!r}; known: {', '.join(self.kpis)}")
        return float(self.runs.loc[self.runs["policy"] == run, kpi].mean())

    def _paired(self, policy: str, baseline: str, kpi: str) -> tuple[np.ndarray, np.ndarray]:
        r = self.runs
        a = r[r["policy"] == policy].set_index(["scenario", "seed"])[kpi]
        b = r[r["policy"] == baseline].set_index(["scenario", "seed"])[kpi]
        a, b = a.align(b, join="inner")
        return a.to_numpy(), b.to_numpy()

    def diff(self, policy: str, baseline: str, kpi: str) -> PairedDiff:
        return paired_difference(*self._paired(policy, baseline, kpi))

    def p_improvement(self, policy: str, kpi: str, baseline: str) -> float:
        kpi = resolve_kpi(kpi, self.currency)
        if kpi not in self.runs.columns:
            raise RequirementError(f"unknown KPI {kpi!r}; known: {', '.join(self.kpis)}")
        r = self.runs
        xs, ys = [], []
        for _, task in r.groupby("scenario"):
            xs.append(task.loc[task["policy"] == policy, kpi].to_numpy())
            ys.append(task.loc[task["policy"] == baseline, kpi].to_numpy())
        return probability_of_improvement(xs, ys, lower_is_better=LOWER_IS_BETTER[kpi])

    def check(self, requirements: list[str]) -> bool:
        """Check every requirement for every policy; True when all hold."""
        parsed = [Requirement.parse(text) for text in requirements]
        self.outcomes = []
        for req in parsed:
            for policy in self.policies:
                holds, left, right, message = req.check(
                    policy, self.value, self.p_improvement, self.baselines
                )
                self.outcomes.append(
                    {"requirement": req.text, "policy": policy, "holds": holds,
                     "left": left, "right": right, "message": message}
                )  # fmt: skip
        return all(o["holds"] for o in self.outcomes)

    def comparisons(self) -> pd.DataFrame:
        """Per policy, baseline and KPI: both means, the paired difference with its 95 %
        interval, the relative change and the probability of improvement."""
        rows = []
        for policy in self.policies:
            for base in self.baselines:
                for kpi in self.kpis:
                    d = self.diff(policy, base, kpi)
                    b = self.value(base, kpi)
                    rows.append(
                        {
                            "policy": policy, "baseline": base, "kpi": kpi,
                            "policy_mean": self.value(policy, kpi), "baseline_mean": b,
                            "diff": d.mean, "ci_low": d.ci_low, "ci_high": d.ci_high,
                            "change_pct": 100.0 * d.mean / b if b else np.nan,
                            "p_improvement": self.p_improvement(policy, kpi, base),
                            "pairs": d.pairs,
                        }
                    )  # fmt: skip
        return pd.DataFrame(rows)


def evaluate(
    policies: list[str],
    baselines: list[str],
    scenarios: list[str | Path],
    *,
    seeds: int = 5,
    first_seed: int | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> Evaluation:
    """Run every policy and baseline on every scenario and seed; the Evaluation to compare
    and check them (see the module docstring)."""
    from twin.scenario import load_scenario

    if not policies or not baselines or not scenarios:
        raise EvaluationError("need at least one policy, one baseline and one scenario")
    if seeds < 1:
        raise EvaluationError(f"--seeds must be >= 1, got {seeds}")
    names = [*policies, *baselines]
    if len(set(names)) != len(names):
        raise EvaluationError(f"a policy or baseline is named twice: {names}")
    kinds = {n: policy_kind(n) for n in names}
    if len(set(kinds.values())) > 1:
        raise EvaluationError(
            "policies and baselines must decide the same thing; got "
            + ", ".join(f"{n} ({k})" for n, k in kinds.items())
        )
    kind = kinds[names[0]]
    specs = []
    for path in scenarios:
        path = str(Path(path).resolve())
        sc = load_scenario(path)  # validates now, before any run starts
        if kind == "charging" and not sc.energy.enabled:
            raise EvaluationError(f"{path}: charging policies need energy.enabled = true")
        start = sc.seed if first_seed is None else first_seed
        for seed in range(start, start + seeds):
            specs += [RunSpec(path, seed, n, kind) for n in names]
    from twin.control.registry import load_policy

    for n in names:  # a bad policy fails here, not in every worker
        load_policy(kind, control_value(n))
    if jobs is not None and jobs < 1:
        raise EvaluationError(f"--jobs must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    rows = list(map_unordered(run_one, specs, jobs=jobs, progress=progress, desc="evaluate"))
    runs = pd.DataFrame(rows).sort_values(["scenario", "seed", "policy"], ignore_index=True)
    return Evaluation(policies, baselines, kind, runs, wall_s=time.perf_counter() - t0)
