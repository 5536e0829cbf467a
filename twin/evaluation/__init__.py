"""``twin evaluate``: policies against baselines on the same scenarios and seeds, with paired
statistics, fairness, thresholds and CI-ready reports."""

from twin.evaluation.runner import Evaluation, evaluate

__all__ = ["Evaluation", "evaluate"]
