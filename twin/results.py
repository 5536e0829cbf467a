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
import os
import platform
import shutil
import sys
import tempfile
import tomllib
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

    def kpi_dict(self) -> dict[str, float]:
        """Every KPI by name, plus the trip outcomes derived from the trips table
        (:func:`derived_kpis`: ``traffic.trips_due``, ``traffic.trips_should_have_finished``...)."""
        kpis = {name: value for name, value, _ in self.kpis}
        return derived_kpis(kpis, self.tables.get("trips"), run_end_s(self.scenario, kpis))

    def headline(self) -> str:
        """The figures a reader looks for first, in words, readable units and clock times."""
        return headline_text(self.kpi_dict(), self.scenario)

    def summary(self) -> str:
        """KPIs as aligned text lines."""
        width = max((len(k) for k, _, _ in self.kpis), default=0)
        return "\n".join(f"{k.ljust(width)}  {v:,.6g} {u}".rstrip() for k, v, u in self.kpis)

    def save(self, run_dir: str | Path) -> Path:
        """Write the run directory; TwinError if it already exists and is not empty.

        An existing empty directory (one the command line reserved) is replaced. The directory
        gets the permissions of a plain ``mkdir`` (0o777 less the umask), not mkdtemp's 0o700.
        """
        run_dir = Path(run_dir)
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise TwinError(f"{run_dir}: output directory already exists and is not empty")
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}-", dir=run_dir.parent))
        try:
            tables = {"kpis": self.kpi_table(), "timeseries": self.timeseries, **self.tables}
            for name, df in tables.items():
                write_table(df, tmp / name)
            (tmp / "scenario.toml").write_text(tomli_w.dumps(self.scenario))
            info = {"versions": software_versions(), "machine": machine(), **self.info}
            (tmp / "run.json").write_text(json.dumps(info, indent=2, default=str))
            os.chmod(tmp, 0o777 & ~current_umask())
            _rename_dir(tmp, run_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return run_dir


def write_table(df: pd.DataFrame, stem: Path) -> None:
    """``stem.parquet`` and ``stem.csv`` of a table (its index dropped), both by pyarrow: the
    CSV 8x faster than pandas' writer on a day's trips and links. Booleans read true/false."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, stem.with_suffix(".parquet"))
    for i, col in enumerate(table.schema):  # lists and the like: as text, as pandas writes
        if pa.types.is_nested(col.type) or pa.types.is_null(col.type):
            text = pa.array(df.iloc[:, i].map(_csv_text), type=pa.string())
            table = table.set_column(i, col.name, text)
    with open(stem.with_suffix(".csv"), "wb") as f:
        f.write((",".join(_csv_field(c) for c in table.column_names) + "\n").encode())
        pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False, quoting_style="needed"))


def _csv_text(value: object) -> str | None:
    """A nested value (a list, a dict) as text in a CSV cell; None stays empty."""
    return None if value is None else str(value)


def _csv_field(name: str) -> str:
    """A header field, quoted only where CSV needs it (as pandas writes it)."""
    if any(ch in name for ch in ',"\n\r'):
        return '"' + name.replace('"', '""') + '"'
    return name


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _rename_dir(tmp: Path, run_dir: Path) -> None:
    """Move ``tmp`` to ``run_dir``, replacing an empty ``run_dir`` in one step where the OS
    allows it (POSIX), so a reserved name is never free in between."""
    try:
        tmp.rename(run_dir)
    except OSError:
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
            tmp.rename(run_dir)
        else:
            raise TwinError(
                f"{run_dir}: output directory already exists and is not empty"
            ) from None


def machine() -> dict[str, Any]:
    """The machine a run or benchmark ran on."""
    import os

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


# -- the headline and the gridlock check --------------------------------------------------------

#: a trip "should have finished" by the end of the run when its planned departure plus its route
#: at this average speed (18 km/h: about twice a free-flow city trip) plus FINISH_SLACK_S is
#: before the end; one still under way after that is stuck or badly delayed, not merely late
FINISH_SPEED_MPS = 5.0
FINISH_SLACK_S = 300.0
#: warn when more than this share of the vehicles that entered the network gridlocked
GRIDLOCK_SHARE_MAX = 0.05
#: warn when fewer than this share of the trips that should have finished did ...
COMPLETION_SHARE_MIN = 0.90
#: ... and at least this many trips should have finished (fewer: too few to judge)
COMPLETION_MIN_TRIPS = 20

#: the headline KPIs: (KPI, label, unit shown, factor from the KPI's unit); "clock" shows a
#: time of day
HEADLINE_KPIS: list[tuple[str, str, str, float]] = [
    ("traffic.trips_due", "trips due", "", 1.0),
    ("traffic.trips_completed", "trips completed", "", 1.0),
    ("traffic.mean_duration_s", "mean trip time", "min", 1 / 60),
    ("traffic.mean_time_loss_s", "mean delay", "min", 1 / 60),
    ("traffic.vehicles_gridlocked", "gridlocked vehicles", "", 1.0),
    ("traffic.vehicle_km", "vehicle-km", "km", 1.0),
    ("energy.peak_kw", "grid peak", "MW", 1 / 1000),
    ("energy.peak_at_s", "grid peak at", "clock", 1.0),
    ("energy.trafos_overloaded", "overloaded transformers", "", 1.0),
    ("energy.trafo_loading_max_percent", "peak transformer loading", "%", 1.0),
    ("energy.v_min_pu", "lowest voltage", "pu", 1.0),
    ("energy.ev_unmet_departure_kwh", "EV energy unmet", "kWh", 1.0),
]


def run_end_s(scenario: dict[str, Any], kpis: dict[str, float]) -> float | None:
    """The clock time (s since midnight) the run reached: its start plus the simulated time."""
    from twin.timefmt import parse_clock_s

    try:
        start_s = parse_clock_s(scenario["time"]["start"])
    except (KeyError, TypeError, ValueError):
        return None
    return start_s + kpis.get("run.simulated_s", 0.0)


def trip_outcomes(trips: pd.DataFrame, end_s: float) -> dict[str, float]:
    """How many trips should have finished by ``end_s`` and how many of those did.

    A trip should have finished when ``depart_plan_s + route_length_m / FINISH_SPEED_MPS +
    FINISH_SLACK_S <= end_s`` (a trip with no route counts with a zero length). Trips that
    set out late in the run and are still under way at its end, as they normally are, are not
    counted, so a short run is not mistaken for a gridlocked one.
    """
    length_m = pd.to_numeric(trips["route_length_m"], errors="coerce").fillna(0.0)
    expected_end_s = trips["depart_plan_s"] + length_m / FINISH_SPEED_MPS + FINISH_SLACK_S
    should = (expected_end_s <= end_s).to_numpy()
    arrived = (trips["status"].astype(str) == "arrived").to_numpy()
    return {
        "traffic.trips_should_have_finished": float(should.sum()),
        "traffic.trips_should_have_finished_completed": float((should & arrived).sum()),
    }


def derived_kpis(
    kpis: dict[str, float], trips: pd.DataFrame | None, end_s: float | None
) -> dict[str, float]:
    """``kpis`` plus ``traffic.trips_due`` (trips whose departure time had come: completed,
    on the road, waiting to enter or without a route) and, given the trips table and the end
    of the run, :func:`trip_outcomes`."""
    out = dict(kpis)
    parts = ("trips_completed", "vehicles_running", "vehicles_waiting", "trips_unroutable")
    if all(f"traffic.{p}" in kpis for p in parts):
        out["traffic.trips_due"] = sum(kpis[f"traffic.{p}"] for p in parts)
    needed = {"depart_plan_s", "route_length_m", "status"}
    if trips is not None and end_s is not None and needed <= set(trips.columns):
        out.update(trip_outcomes(trips, end_s))
    return out


def gridlock_warning(kpis: dict[str, float], where: list[str] | None = None) -> str | None:
    """A WARNING block when the run gridlocked, else None; ``where``: lines on where the
    traffic stood (:func:`twin.traffic.jams.jam_lines`), added to the block.

    It gridlocked when more than GRIDLOCK_SHARE_MAX (5 %) of the vehicles that entered the
    network (``traffic.trips_completed + traffic.vehicles_running``) were halted for the
    gridlock time (``traffic.vehicles_gridlocked``), or when fewer than COMPLETION_SHARE_MIN
    (90 %) of the trips that should have finished by the end (:func:`trip_outcomes`, at least
    COMPLETION_MIN_TRIPS of them) completed. Reads only the KPI dict (:func:`derived_kpis`).
    """
    reasons = []
    entered = kpis.get("traffic.trips_completed", 0.0) + kpis.get("traffic.vehicles_running", 0.0)
    gridlocked = kpis.get("traffic.vehicles_gridlocked", 0.0)
    if entered > 0 and gridlocked / entered > GRIDLOCK_SHARE_MAX:
        reasons.append(
            f"{gridlocked:,.0f} of {entered:,.0f} vehicles ({100 * gridlocked / entered:.1f} %) "
            f"gridlocked, halted for traffic.gridlock_after (limit "
            f"{100 * GRIDLOCK_SHARE_MAX:.0f} %)"
        )
    should = kpis.get("traffic.trips_should_have_finished", 0.0)
    done = kpis.get("traffic.trips_should_have_finished_completed", 0.0)
    if should >= COMPLETION_MIN_TRIPS and done / should < COMPLETION_SHARE_MIN:
        reasons.append(
            f"only {done:,.0f} of the {should:,.0f} trips that should have finished did "
            f"({100 * done / should:.0f} %; limit {100 * COMPLETION_SHARE_MIN:.0f} %)"
        )
    if not reasons:
        return None
    unroutable = kpis.get("traffic.trips_unroutable", 0.0)
    closure = "a closure or intervention cutting the network" + (
        f" ({unroutable:,.0f} trips found no route)" if unroutable else ""
    )
    lines = [
        "WARNING: the network gridlocked; these figures describe a jam, not normal traffic",
        *(f"  - {r}" for r in reasons),
        "  likely causes:",
        "  - demand too high for the map: try --set demand.demand_scale=0.5",
        f"  - {closure}",
        "  - a run too short for the trips still under way: try a longer --set time.duration",
    ]
    from twin.traffic.jams import UNTAGGED

    if where and any(UNTAGGED in line for line in where):
        lines.append(
            "  - a main road whose lanes OSM does not tag gets its class's default (one lane "
            "a direction below primary); if the real road is wider, say so: e.g. --set "
            "map.untagged_lanes.secondary=2"
        )
    return "\n".join(lines + list(where or []))


def headline_text(kpis: dict[str, float], scenario: dict[str, Any] | None = None) -> str:
    """The headline lines of :meth:`Results.headline` from a KPI dict (:func:`derived_kpis`)."""
    from twin.timefmt import MAX_CLOCK_S, format_clock, format_duration

    k = kpis
    lines: list[str] = []

    def add(label: str, text: str) -> None:
        lines.append(f"  {label:<22} {text}")

    def clock(seconds: float) -> str:
        return format_clock(min(max(seconds, 0.0), MAX_CLOCK_S))

    def minutes(seconds: float) -> str:
        return "n/a" if seconds != seconds else f"{seconds / 60:.1f} min"  # NaN: no trip done

    end_s = run_end_s(scenario or {}, k)
    if "traffic.trips" in k:
        done = k.get("traffic.trips_completed", 0.0)
        due = k.get("traffic.trips_due", k["traffic.trips"])
        pct = f" ({100.0 * done / due:.0f} %)" if due else ""
        add("trips", f"{done:,.0f} completed of {due:,.0f} due{pct}")
        running = k.get("traffic.vehicles_running", 0.0)
        waiting = k.get("traffic.vehicles_waiting", 0.0) - k.get("traffic.vehicles_held", 0.0)
        unroutable = k.get("traffic.trips_unroutable", 0.0)
        left = [f"{running:,.0f} still on the road"] if running else []
        left += [f"{waiting:,.0f} waiting to enter"] if waiting > 0 else []
        left += [f"{unroutable:,.0f} without a route"] if unroutable else []
        if left:
            add(f"at the end ({clock(end_s)})" if end_s is not None else "at the end",
                ", ".join(left))  # fmt: skip
        add("mean trip", f"{minutes(k.get('traffic.mean_duration_s', float('nan')))}, of which "
            f"{minutes(k.get('traffic.mean_time_loss_s', float('nan')))} delay "
            "(lost to traffic)")  # fmt: skip
        entered = k.get("traffic.trips_completed", 0.0) + running
        gridlocked = k.get("traffic.vehicles_gridlocked", 0.0)
        share = f" ({100 * gridlocked / entered:.1f} % of those that set out)" if entered else ""
        add("gridlocked vehicles", f"{gridlocked:,.0f}{share}")
    if "energy.peak_kw" in k:
        add("grid peak", f"{k['energy.peak_kw'] / 1000:,.2f} MW at "
            f"{clock(k.get('energy.peak_at_s', 0.0))}")  # fmt: skip
        of = f" of {k['grid.mv_lv_transformers']:,.0f}" if "grid.mv_lv_transformers" in k else ""
        add("transformers", f"{k.get('energy.trafos_overloaded', 0):,.0f}{of} overloaded "
            f"(peak loading {k.get('energy.trafo_loading_max_percent', 0):.0f} %)")  # fmt: skip
        add("lowest voltage", f"{k.get('energy.v_min_pu', float('nan')):.3f} pu")
        add("EV energy unmet", f"{k.get('energy.ev_unmet_departure_kwh', 0):,.0f} kWh at "
            "departures")  # fmt: skip
    if "population.households" in k:
        add("households", f"{k['population.households']:,.0f} "
            f"({k.get('population.evs', 0):,.0f} with an EV)")  # fmt: skip
    if k.get("interventions.count"):
        parts = [f"{k['interventions.count']:,.0f} (interventions.csv)"]
        if "interventions.vehicles_detoured" in k:
            parts.append(f"{k['interventions.vehicles_detoured']:,.0f} vehicles detoured, "
                         f"{k.get('interventions.vehicles_without_detour', 0):,.0f} without "
                         "a way around")  # fmt: skip
        if "energy.unserved_kwh" in k:
            parts.append(f"{k.get('energy.households_unserved_max', 0):,.0f} households "
                         f"unserved, {k['energy.unserved_kwh']:,.0f} kWh not supplied")  # fmt: skip
        add("interventions", "; ".join(parts))
    if "control.signal_decisions" in k:
        add("signal control", f"{k['control.controlled_signals']:,.0f} junctions, "
            f"{k['control.signal_decisions']:,.0f} decisions")  # fmt: skip
    if "control.charging_decisions" in k:
        add("charging control", f"{k['control.charging_decisions']:,.0f} decisions")
    if "run.wall_s" in k:
        simulated_s = k.get("run.simulated_s", 0.0)
        window = ""
        if end_s is not None:
            window = f" ({clock(end_s - simulated_s)}-{clock(end_s)})"
        add("run time", f"{k['run.wall_s']:.1f} s simulating "
            f"{format_duration(max(simulated_s, 0.0))}{window}")  # fmt: skip
    return "\n".join(lines)


def load_kpis(run_dir: str | Path) -> dict[str, float]:
    """The KPI dict of a saved run directory (:func:`derived_kpis` included)."""
    run_dir = Path(run_dir)
    table = pd.read_csv(run_dir / "kpis.csv")
    kpis = dict(zip(table["kpi"].astype(str), table["value"].astype(float), strict=True))
    scenario = tomllib.loads((run_dir / "scenario.toml").read_text())
    trips = None
    if (run_dir / "trips.parquet").exists():
        cols = ["depart_plan_s", "route_length_m", "status"]
        trips = pd.read_parquet(run_dir / "trips.parquet", columns=cols)
    return derived_kpis(kpis, trips, run_end_s(scenario, kpis))
