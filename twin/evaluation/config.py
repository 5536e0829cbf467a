"""``[evaluate]`` in a TOML file: the same settings as the ``twin evaluate`` options.

    [evaluate]
    policies = ["policies/signals.onnx"]
    baselines = ["fixed_time", "max_pressure"]
    scenarios = ["../scenarios/baltimore.toml"]
    seeds = 5
    require = ["mean_delay_s <= 0.9 * fixed_time"]
    out = "evaluation"

Paths (ONNX policies, scenarios, out) are relative to the file. Command-line options add to
the lists and override the numbers.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from twin.scenario import load_table
from twin.timefmt import Section


class EvaluateConfig(Section):
    """``[evaluate]``: what to run and what to require."""

    policies: list[str] = Field(default_factory=list)
    baselines: list[str] = Field(default_factory=list)
    scenarios: list[str] = Field(default_factory=list)
    seeds: int = Field(5, ge=1)
    first_seed: int | None = Field(None, ge=0)
    require: list[str] = Field(default_factory=list)
    out: str | None = None
    jobs: int | None = Field(None, ge=1)


def load_evaluate_config(path: Path) -> EvaluateConfig:
    """Read ``[evaluate]`` from ``path``; TwinError naming the file and key on bad input."""
    cfg = load_table(path, "evaluate", EvaluateConfig)
    base = path.resolve().parent

    def rel(p: str) -> str:
        return str((base / p).resolve())

    return cfg.model_copy(
        update={
            "policies": [rel(p) if p.lower().endswith(".onnx") else p for p in cfg.policies],
            "baselines": [rel(p) if p.lower().endswith(".onnx") else p for p in cfg.baselines],
            "scenarios": [rel(p) for p in cfg.scenarios],
            "out": rel(cfg.out) if cfg.out else None,
        }
    )
