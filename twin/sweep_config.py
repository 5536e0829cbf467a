"""``[sweep]`` in a TOML file: the same settings as the ``twin sweep`` options.

    [sweep]
    scenario = "../scenarios/baltimore-short.toml"
    params = ["demand.demand_scale=0.6:1.4:5", "population.ev_share=0,0.25,0.5"]
    seeds = 10
    design = "grid"        # or "lhs" with samples = N
    out = "demand-sweep"

Paths (scenario, out) are relative to the file. Command-line options add parameters and
override the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from twin.scenario import load_table
from twin.timefmt import Section


class SweepConfig(Section):
    """``[sweep]``: the scenario, its parameters and seeds, and where results go."""

    scenario: str | None = None
    params: list[str] = Field(default_factory=list)
    seeds: int = Field(1, ge=1)
    design: Literal["grid", "lhs"] = "grid"
    samples: int = Field(0, ge=0)
    out: str | None = None
    jobs: int | None = Field(None, ge=1)
    dask: str | None = None


def load_sweep_config(path: Path) -> SweepConfig:
    """Read ``[sweep]`` from ``path``; TwinError naming the file and key on bad input."""
    cfg = load_table(path, "sweep", SweepConfig)
    base = path.resolve().parent
    return cfg.model_copy(
        update={
            "scenario": str((base / cfg.scenario).resolve()) if cfg.scenario else None,
            "out": str((base / cfg.out).resolve()) if cfg.out else None,
        }
    )
