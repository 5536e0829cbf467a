"""Paired statistics over seeds: bootstrap confidence intervals and probability of improvement.

Runs of a policy and of a baseline with the same scenario and seed share households, trips and
weather (common random numbers), so they are compared in pairs: the difference policy minus
baseline per (scenario, seed). The mean difference gets a 95 % bootstrap confidence interval
(:func:`scipy.stats.bootstrap`, percentile method, resampling the pairs). The probability of
improvement is rliable's (Agarwal et al., NeurIPS 2021): per scenario, the chance that a
random run of the policy beats a random run of the baseline (ties count half), averaged over
scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # fixed, so a report is reproducible


@dataclass(frozen=True)
class PairedDiff:
    """Policy minus baseline over paired runs."""

    mean: float
    ci_low: float
    ci_high: float
    pairs: int


def paired_difference(policy: np.ndarray, baseline: np.ndarray) -> PairedDiff:
    """Mean of ``policy - baseline`` (paired arrays) with its 95 % bootstrap interval."""
    d = np.asarray(policy, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return PairedDiff(np.nan, np.nan, np.nan, 0)
    mean = float(d.mean())
    if len(d) == 1 or np.ptp(d) == 0.0:  # no spread to resample: the interval is the point
        return PairedDiff(mean, mean, mean, len(d))
    res = stats.bootstrap(
        (d,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=N_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    ci = res.confidence_interval
    return PairedDiff(mean, float(ci.low), float(ci.high), len(d))


def probability_of_improvement(
    policy: list[np.ndarray], baseline: list[np.ndarray], *, lower_is_better: bool
) -> float:
    """rliable's P(policy > baseline): per scenario (one array of runs per scenario, any
    seeds), the share of (policy run, baseline run) pairs the policy wins, ties half; the
    mean over scenarios. Undefined (NaN) values are left out."""
    per_task = []
    for x, y in zip(policy, baseline, strict=True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        x, y = x[np.isfinite(x)][:, None], y[np.isfinite(y)][None, :]
        if x.size == 0 or y.size == 0:  # a KPI undefined in this scenario (e.g. no district)
            continue
        wins = (x < y) if lower_is_better else (x > y)
        per_task.append(float(np.mean(wins + 0.5 * (x == y))))
    return float(np.mean(per_task)) if per_task else float("nan")
