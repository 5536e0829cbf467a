"""A finished run directory as the report reads it: tables (any may be missing), the resolved
scenario, run.json, and the few derived figures every report needs (the peak interval, link
states in an interval, mean network speed)."""

from __future__ import annotations

import json
import math
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.timefmt import format_clock, parse_clock_s, parse_duration_s


class RunDir:
    """Read-only view of one run directory; tables load on first use, missing ones are None."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: not a run directory")
        self._tables: dict[str, pd.DataFrame | None] = {}

    def table(self, name: str) -> pd.DataFrame | None:
        """The table ``name.parquet`` (or its CSV copy when only that exists); None if absent
        or empty of columns."""
        if name not in self._tables:
            df = None
            parquet, csv = self.path / f"{name}.parquet", self.path / f"{name}.csv"
            if parquet.exists():
                df = pd.read_parquet(parquet)
            elif csv.exists():
                df = pd.read_csv(csv)
            self._tables[name] = df if df is not None and len(df.columns) else None
        return self._tables[name]

    def has(self, name: str, *, rows: bool = True) -> bool:
        df = self.table(name)
        return df is not None and (not rows or len(df) > 0)

    @cached_property
    def scenario(self) -> dict[str, Any]:
        f = self.path / "scenario.toml"
        try:
            return tomllib.loads(f.read_text()) if f.exists() else {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return {}

    @cached_property
    def scenario_text(self) -> str:
        f = self.path / "scenario.toml"
        return f.read_text(errors="replace") if f.exists() else ""

    @cached_property
    def info(self) -> dict[str, Any]:
        f = self.path / "run.json"
        try:
            return json.loads(f.read_text()) if f.exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}

    @cached_property
    def kpis(self) -> dict[str, tuple[float, str]]:
        """KPI name -> (value, unit), in the table's order."""
        df = self.table("kpis")
        if df is None or not {"kpi", "value"} <= set(df.columns):
            return {}
        units = df["unit"] if "unit" in df.columns else pd.Series([""] * len(df))
        return {
            str(k): (float(v), "" if pd.isna(u) else str(u))
            for k, v, u in zip(df["kpi"], df["value"], units, strict=True)
        }

    def kpi(self, name: str, default: float = math.nan) -> float:
        return self.kpis.get(name, (default, ""))[0]

    @property
    def name(self) -> str:
        return str(self.scenario.get("name") or self.info.get("scenario") or self.path.name)

    @property
    def description(self) -> str:
        return str(self.scenario.get("description") or "")

    @property
    def seed(self) -> Any:
        return self.scenario.get("seed", "")

    @cached_property
    def period_s(self) -> tuple[float, float] | None:
        """Simulated (start, end) in seconds since midnight."""
        time = self.scenario.get("time", {})
        try:
            start = parse_clock_s(time["start"])
            return start, start + parse_duration_s(time["duration"])
        except (KeyError, TypeError, ValueError):
            pass
        ts = self.table("timeseries")
        if ts is not None and "time_s" in ts.columns and len(ts):
            return float(ts["time_s"].min()), float(ts["time_s"].max())
        return None

    @property
    def twin_version(self) -> str:
        return str(self.info.get("versions", {}).get("twin", "unknown"))

    # ----------------------------------------------------------------- traffic

    @cached_property
    def intervals(self) -> list[tuple[float, float]]:
        """The reporting intervals of the links table, in time order."""
        links = self.table("links")
        if links is None or not len(links):
            return []
        iv = links[["t_start_s", "t_end_s"]].drop_duplicates().sort_values("t_start_s")
        return [(float(a), float(b)) for a, b in iv.itertuples(index=False)]

    @cached_property
    def peak_interval(self) -> tuple[float, float] | None:
        """The links interval with the most vehicles running: the one that ends at the
        time series' maximum of ``vehicles_running`` or, without it, the one with the most
        vehicles on the links on average (density times length)."""
        if not self.intervals:
            return None
        ts = self.table("timeseries")
        if ts is not None and {"time_s", "vehicles_running"} <= set(ts.columns) and len(ts):
            ts = ts.dropna(subset=["vehicles_running"])
            if len(ts) and ts["vehicles_running"].max() > 0:
                t = float(ts.loc[ts["vehicles_running"].idxmax(), "time_s"])
                for a, b in self.intervals:
                    if a < t <= b:
                        return a, b
        links, net = self.table("links"), self.table("network")
        if net is not None and "length_m" in net.columns:
            length_km = links["link"].map(net.set_index("link")["length_m"]).fillna(0) / 1000
            veh = (links["density_veh_per_km"] * length_km).groupby(links["t_start_s"]).sum()
        else:
            veh = links.groupby("t_start_s")["flow_vph"].sum()
        t0 = float(veh.idxmax())
        return next(iv for iv in self.intervals if iv[0] == t0)

    def link_state(self, t_start_s: float) -> pd.DataFrame:
        """Per network link (index ``link``) in the interval starting at ``t_start_s``:
        flow_vph, mean_speed_mps, mean/max queue and speed_ratio (speed over the speed
        limit, clipped to [0, 1]); NaN where the link saw no traffic."""
        net = self.table("network")
        links = self.table("links")
        cols = [
            "flow_vph",
            "mean_speed_mps",
            "density_veh_per_km",
            "mean_queue_veh",
            "max_queue_veh",
        ]
        idx = pd.Index(net["link"] if net is not None else [], name="link")
        if links is None:
            out = pd.DataFrame(index=idx, columns=cols, dtype=float)
        else:
            sel = links[links["t_start_s"] == t_start_s].set_index("link")
            out = sel.reindex(idx)[[c for c in cols if c in sel.columns]].astype(float)
        if net is not None and "speed_limit_mps" in net.columns:
            limit = net.set_index("link")["speed_limit_mps"].reindex(idx).to_numpy(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = out["mean_speed_mps"].to_numpy(float) / limit
            out["speed_ratio"] = np.clip(ratio, 0.0, 1.0)
        else:
            out["speed_ratio"] = np.nan
        return out

    @cached_property
    def speed_series(self) -> pd.DataFrame | None:
        """Mean network speed per reporting interval (``t_start_s``, ``time_s`` at its end,
        ``speed_kmh``)
        from the cumulative vehicle km and hours of the time series."""
        ts = self.table("timeseries")
        if ts is None or not {"time_s", "vehicle_km", "vehicle_hours"} <= set(ts.columns):
            return None
        ts = ts.sort_values("time_s")
        dkm, dh = ts["vehicle_km"].diff(), ts["vehicle_hours"].diff()
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = np.where(dh > 1e-9, dkm / dh, np.nan)
        t = ts["time_s"].to_numpy(float)
        out = pd.DataFrame({"t_start_s": np.roll(t, 1), "time_s": t, "speed_kmh": speed})
        return out.iloc[1:].reset_index(drop=True)

    # ----------------------------------------------------------------- interventions

    @cached_property
    def interventions(self) -> list[dict[str, Any]]:
        """The interventions table as dicts with plain Python values (lists for links and
        transformers, None for a missing end or point)."""
        df = self.table("interventions")
        if df is None:
            return []
        out = []
        for i, row in enumerate(df.to_dict(orient="records")):
            out.append(
                {
                    "intervention": _int(row.get("intervention"), i),
                    "kind": _text(row.get("kind")),
                    "label": _text(row.get("label")),
                    "start_s": _num(row.get("start_s")),
                    "end_s": _num(row.get("end_s")),
                    "links": _ints(row.get("links")),
                    "transformers": _ints(row.get("transformers")),
                    "lon": _num(row.get("lon")),
                    "lat": _num(row.get("lat")),
                }
            )
        return out


def clock(seconds: float | None, default: str = "–") -> str:
    """HH:MM[:SS] of seconds since midnight, ``default`` for None/NaN or out of range."""
    if seconds is None or not math.isfinite(seconds):
        return default
    try:
        return format_clock(float(seconds))
    except ValueError:
        return default


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _int(v: Any, default: int) -> int:
    x = _num(v)
    return int(x) if x is not None else default


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _ints(v: Any) -> list[int]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    if isinstance(v, str):  # a CSV copy: "[1, 2]"
        v = [p for p in v.strip("[]() ").replace(",", " ").split() if p]
    try:
        return [int(x) for x in np.asarray(v, dtype=float).ravel() if math.isfinite(x)]
    except (TypeError, ValueError):
        return []
