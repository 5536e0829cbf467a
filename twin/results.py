"""Results of a run: KPI and time-series tables, saved as Parquet and CSV in a run directory.

A run directory holds, side by side:

- ``kpis.parquet`` / ``kpis.csv``: one row per KPI (``kpi``, ``value``, ``unit``);
- ``timeseries.parquet`` / ``.csv``: one row per reporting time (Mesa DataCollector model vars);
- one Parquet/CSV pair per extra table components add (e.g. per-link or per-trip tables);
- ``scenario.toml``: the fully resolved scenario (inheritance applied), which re-runs the run;
- ``run.json``: twin and dependency versions, machine, start time and wall time.

The directory is written under a temporary name and renamed at the end, so an interrupted
save never leaves a half-written run, and an existing directory is never overwritten.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from twin.errors import TwinError

VERSIONED_PACKAGES = ("twin", "mesa", "simpy", "networkx", "osmnx", "numpy", "numba", "osmium")


def software_versions() -> dict[str, str]:
    """Installed versions of twin and the packages that shape its results."""
    out = {"python": platform.python_version()}
    for pkg in VERSIONED_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass
class Results:
    """KPIs, time series and further tables of one run."""

    scenario: dict[str, Any]
    kpis: list[tuple[str, float, str]] = field(default_factory=list)
    timeseries: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def add_kpi(self, name: str, value: float, unit: str = "") -> None:
        self.kpis.append((name, float(value), unit))

    def kpi_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.kpis, columns=["kpi", "value", "unit"])

    def kpi(self, name: str) -> float:
        """The value of one KPI by name."""
        for kpi, value, _ in self.kpis:
            if kpi == name:
                return value
        raise KeyError(name)

    def headline(self) -> str:
        """The few figures a reader looks for first, in words and units (times as clock)."""
        from twin.timefmt import format_clock

        k = dict((name, value) for name, value, _ in self.kpis)
        lines = []

        def add(label: str, text: str) -> None:
            lines.append(f"  {label:<22} {text}")

        if "traffic.trips" in k:
            trips, done = k["traffic.trips"], k.get("traffic.trips_completed", 0.0)
            pct = 100.0 * done / trips if trips else 0.0
            add("trips", f"{trips:,.0f} planned, {done:,.0f} completed ({pct:.0f} %)")
            add("mean trip", f"{k.get('traffic.mean_duration_s', float('nan')) / 60:.1f} min, "
                f"{k.get('traffic.mean_time_loss_s', float('nan')) / 60:.1f} min of it lost to "
                "traffic")  # fmt: skip
            add("gridlocked vehicles", f"{k.get('traffic.vehicles_gridlocked', 0):,.0f}")
        if "population.households" in k:
            add("households", f"{k['population.households']:,.0f} "
                f"({k.get('population.evs', 0):,.0f} with an EV)")  # fmt: skip
        if "energy.peak_kw" in k:
            add("grid peak", f"{k['energy.peak_kw'] / 1000:,.2f} MW at "
                f"{format_clock(k.get('energy.peak_at_s', 0.0))}")  # fmt: skip
            add("transformers", f"peak loading {k.get('energy.trafo_loading_max_percent', 0):.0f}"
                f" %, {k.get('energy.trafos_overloaded', 0):,.0f} above rating")  # fmt: skip
            add("lowest voltage", f"{k.get('energy.v_min_pu', float('nan')):.3f} pu")
            add("EV energy unmet", f"{k.get('energy.ev_unmet_departure_kwh', 0):,.0f} kWh at "
                "departures")  # fmt: skip
        if "control.signal_decisions" in k:
            add("signal control", f"{k['control.controlled_signals']:,.0f} junctions, "
                f"{k['control.signal_decisions']:,.0f} decisions")  # fmt: skip
        if "control.charging_decisions" in k:
            add("charging control", f"{k['control.charging_decisions']:,.0f} decisions")
        if "run.wall_s" in k:
            add("run time", f"{k['run.wall_s']:.1f} s simulating "
                f"{k.get('run.simulated_s', 0) / 3600:.2f} h")  # fmt: skip
        return "\n".join(lines)

    def summary(self) -> str:
        """KPIs as aligned text lines."""
        width = max((len(k) for k, _, _ in self.kpis), default=0)
        return "\n".join(f"{k.ljust(width)}  {v:,.6g} {u}".rstrip() for k, v, u in self.kpis)

    def save(self, run_dir: str | Path) -> Path:
        """Write the run directory; TwinError if it already exists and is not empty."""
        run_dir = Path(run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise TwinError(f"{run_dir}: output directory already exists and is not empty")
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}-", dir=run_dir.parent))
        try:
            tables = {"kpis": self.kpi_table(), "timeseries": self.timeseries, **self.tables}
            for name, df in tables.items():
                df.to_parquet(tmp / f"{name}.parquet", index=False)
                df.to_csv(tmp / f"{name}.csv", index=False)
            (tmp / "scenario.toml").write_text(tomli_w.dumps(self.scenario))
            info = {"versions": software_versions(), "machine": machine(), **self.info}
            (tmp / "run.json").write_text(json.dumps(info, indent=2, default=str))
            if run_dir.exists():
                run_dir.rmdir()
            tmp.rename(run_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return run_dir


def machine() -> dict[str, Any]:
    """The machine a run or benchmark ran on."""
    import os

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
