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

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from twin.errors import TwinError
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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TwinError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TwinError(f"{path}: not valid TOML ({exc})") from None
    if set(data) != {"sweep"}:
        raise TwinError(f"{path}: expected one table [sweep], found {sorted(data) or 'none'}")
    try:
        cfg = SweepConfig.model_validate(data["sweep"])
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise TwinError(f"{path}: sweep.{key}: {err['msg']}") from None
    base = path.resolve().parent
    return cfg.model_copy(
        update={
            "scenario": str((base / cfg.scenario).resolve()) if cfg.scenario else None,
            "out": str((base / cfg.out).resolve()) if cfg.out else None,
        }
    )
