"""Sweeps: many runs of a scenario over parameters and seeds, with tidy, resumable results.

A design gives parameter sets; each set runs once per seed (``seed, seed + 1, ...`` from the
scenario's own, so the same seed index gives every parameter set the same households and
trips: common random numbers). Designs over any scenario key:

- ``grid``: every combination of the values (``key=a:b:n`` is ``n`` evenly spaced values from
  ``a`` to ``b``; ``key=v1,v2`` a list; ``key=v`` one value);
- ``lhs``: ``samples`` Latin-hypercube points (scipy.stats.qmc, seeded), ranges sampled
  uniformly, lists by index.

Each run writes one Parquet file ``runs/<run id>.parquet`` (parameters, seed, every KPI, wall
time, worker, status, error, twin version) as it finishes, so nothing finished is lost if the
sweep stops; ``resume`` skips the runs whose file exists; a failing run is recorded with its
error and the sweep goes on. ``pandas.read_parquet(out / "runs")`` reads the whole table.
``keep_runs`` also saves each run's directory under ``run-dirs/``; ``plot`` draws each KPI
against each parameter (:mod:`twin.sweep_plot`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.parallel import map_unordered


class SweepError(TwinError):
    """Bad input to a sweep (a parameter, design or output directory)."""


@dataclass(frozen=True)
class Param:
    """One swept key: a range (``low``, ``high``, ``n``) or a list of ``values``."""

    key: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    n: int = 0

    @classmethod
    def parse(cls, text: str) -> Param:
        """``key=a:b:n``, ``key=v1,v2,...`` or ``key=v`` (values as TOML: 1, 0.5, true, "x")."""
        key, sep, spec = text.partition("=")
        key = key.strip()
        if not sep or not key or not spec.strip():
            raise SweepError(f"--param {text!r}: expected KEY=LOW:HIGH:N, KEY=V1,V2,... or KEY=V")
        parts = spec.split(":")
        if len(parts) == 3:
            try:
                low, high, n = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                raise SweepError(
                    f"--param {text!r}: LOW:HIGH:N takes two numbers and a count"
                ) from None
            if n < 1:
                raise SweepError(f"--param {text!r}: N must be >= 1")
            return cls(key, low=low, high=high, n=n)
        return cls(key, values=tuple(_value(v, text) for v in spec.split(",")))

    def grid(self) -> list[Any]:
        if self.values:
            return list(self.values)
        return [float(np.round(v, 12)) for v in np.linspace(self.low, self.high, self.n)]

    def at(self, u: float) -> Any:
        """The value at ``u`` in [0, 1) (Latin-hypercube coordinates)."""
        if self.values:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        return float(self.low + u * (self.high - self.low))


def _value(text: str, whole: str) -> Any:
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        if text.strip() and all(c.isalnum() or c in "_-./" for c in text.strip()):
            return text.strip()  # a bare word: a string (e.g. a policy name)
        raise SweepError(f"--param {whole!r}: {text!r} is not a value") from None


def design(params: list[Param], kind: str = "grid", samples: int = 0, seed: int = 0) -> list[dict]:
    """The parameter sets of a design (see the module docstring)."""
    if kind == "grid":
        keys = [p.key for p in params]
        return [dict(zip(keys, combo, strict=True)) for combo in
                itertools.product(*(p.grid() for p in params))]  # fmt: skip
    if kind == "lhs":
        if samples < 1:
            raise SweepError("a Latin-hypercube design needs samples >= 1")
        from scipy.stats import qmc

        u = qmc.LatinHypercube(d=len(params), seed=seed).random(samples)
        return [{p.key: p.at(float(row[i])) for i, p in enumerate(params)} for row in u]
    raise SweepError(f"design must be 'grid' or 'lhs', got {kind!r}")


def run_id(params: dict, seed: int) -> str:
    blob = json.dumps({"params": params, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepRun:
    scenario: str
    params: dict
    seed: int
    out_dir: str
    keep_runs: bool = False

    @property
    def id(self) -> str:
        return run_id(self.params, self.seed)


def run_sweep_item(item: SweepRun) -> dict:
    """One run: its row (also written to ``runs/<id>.parquet``)."""
    import twin
    from twin.model import CityModel
    from twin.scenario import load_scenario

    t0 = time.perf_counter()
    row: dict[str, Any] = {"run_id": item.id, "seed": item.seed}
    row.update({f"param.{k}": v for k, v in item.params.items()})
    try:
        sc = load_scenario(item.scenario).with_overrides({**item.params, "seed": item.seed})
        results = CityModel(sc).run(progress=False)
        row.update({k: v for k, v, _ in results.kpis})
        if item.keep_runs:
            results.save(Path(item.out_dir) / "run-dirs" / item.id)
        row["status"], row["error"] = "ok", ""
    except Exception as exc:  # recorded, and the sweep goes on
        row["status"] = "failed"
        row["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    row["wall_s"] = time.perf_counter() - t0
    row["worker"] = f"{os.uname().nodename}:{os.getpid()}"
    row["twin_version"] = twin.__version__
    runs = Path(item.out_dir) / "runs"
    tmp = runs / f".{item.id}.parquet.tmp"
    pd.DataFrame([row]).to_parquet(tmp, index=False)
    os.replace(tmp, runs / f"{item.id}.parquet")  # never a half-written file
    return row


def sweep(
    scenario: str | Path,
    params: list[str] | list[Param],
    *,
    seeds: int = 1,
    design_kind: str = "grid",
    samples: int = 0,
    out: str | Path,
    resume: bool = False,
    jobs: int | None = None,
    dask: str | None = None,
    keep_runs: bool = False,
    plot: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the sweep (see the module docstring); the table of every run in ``out``."""
    from twin.scenario import load_scenario

    parsed = [p if isinstance(p, Param) else Param.parse(p) for p in params]
    if seeds < 1:
        raise SweepError(f"seeds must be >= 1, got {seeds}")
    if jobs is not None and jobs < 1:
        raise SweepError(f"jobs must be >= 1, got {jobs}")
    path = str(Path(scenario).resolve())
    base = load_scenario(path)
    sets = design(parsed, design_kind, samples, seed=base.seed)
    for s in sets[:1]:  # a bad key or value fails now, before any run
        base.with_overrides(s)
    out = Path(out)
    runs_dir = out / "runs"
    if runs_dir.exists() and any(runs_dir.glob("*.parquet")) and not resume:
        raise SweepError(f"{out}: holds runs of a sweep; pass --resume to continue it")
    runs_dir.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(
        {"scenario": path, "params": [p.__dict__ for p in parsed], "design": design_kind,
         "samples": samples, "seeds": seeds}, indent=2, default=list))  # fmt: skip
    items = [
        SweepRun(path, s, base.seed + k, str(out), keep_runs) for s in sets for k in range(seeds)
    ]
    todo = [i for i in items if not (runs_dir / f"{i.id}.parquet").exists()]
    if dask:
        _run_on_dask(dask, todo, progress)
    else:
        for _ in map_unordered(run_sweep_item, todo, jobs=jobs, progress=progress, desc="sweep"):
            pass
    table = pd.read_parquet(runs_dir)
    if plot:
        from twin.sweep_plot import plot_sweep

        plot_sweep(table, out)
    return table


def _run_on_dask(address: str, items: list[SweepRun], progress: bool) -> None:
    """The runs on an existing Dask cluster (``tcp://host:8786`` or a scheduler file); Dask
    re-runs the tasks of a worker it loses. Workers need the map and cache paths as here."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SweepError(
            '--dask needs the distributed extra: pip install -e ".[distributed]"'
        ) from None
    from tqdm.auto import tqdm

    client = Client(scheduler_file=address) if address.endswith(".json") else Client(address)
    try:
        futures = client.map(run_sweep_item, items, pure=False)
        with tqdm(total=len(items), desc="sweep", unit="run",
                  disable=None if progress else True) as bar:  # fmt: skip
            for _ in as_completed(futures):
                bar.update(1)
    finally:
        client.close()
