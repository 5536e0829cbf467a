"""GIS export of a run: its roads, grid and households with their results in one GeoPackage.

``write_geopackage(run_dir)`` reads only the run directory's files and writes
``run_dir/results.gpkg`` (WGS 84, EPSG:4326), which QGIS and geopandas open directly. Layers,
each written when the tables it needs are in the run directory:

- ``links`` (lines, ``network``): each link's attributes and its traffic over the run from
  ``links``: ``vehicles`` (vehicles that left the link), ``flow_vph`` (mean over the run),
  ``vehicle_hours`` spent on it, ``mean_speed_mps`` (weighted by the time vehicles spent on the
  link, i.e. the simulator's own per-interval mean taken over the whole run),
  ``mean_speed_ratio`` (over the speed limit), ``mean_density_veh_per_km``,
  ``mean_queue_veh``, ``max_queue_veh``, and ``peak_flow_vph`` / ``peak_speed_mps`` /
  ``peak_speed_ratio`` in the network's peak interval (the one ending at the time series' most
  vehicles running, as the HTML report picks it), named in ``peak_interval`` ("07:45-08:00").
  Links no vehicle used keep nulls for speeds (and zeros for counts).
- ``link_intervals`` (lines): one row per link and reporting interval with traffic (links
  without vehicles in an interval have no row), with ``start_time`` / ``end_time`` for QGIS's
  temporal controller. The date is nominal: the year 2000 with the scenario's ``[energy]``
  month and day; the clock times are the run's. Left out (with a warning) beyond
  :data:`MAX_INTERVAL_ROWS` rows (a whole day of a city), where it would dwarf the rest.
- ``interventions`` (lines): one row per intervention and affected link, and
  ``intervention_points`` (points): an intervention's ``lon`` / ``lat`` and its affected
  transformers; times as seconds (``start_s`` / ``end_s``) and clock strings.
- ``transformers``, ``substations`` (points), ``grid_lines`` (lines, MV and LV cables) with
  their ratings and peak loadings.
- ``households`` (points) with their EVs' energy (summed per household) when ``evs`` is there.

List columns become comma-separated strings (GeoPackage fields are scalars).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely

from twin.errors import TwinError
from twin.timefmt import format_clock

GPKG_NAME = "results.gpkg"
CRS = "EPSG:4326"
#: link_intervals is left out beyond this many rows (a whole day of a city: ~100 MB)
MAX_INTERVAL_ROWS = 200_000

log = logging.getLogger(__name__)
# the tables layers are made of (links and evs add results to network and households)
SOURCES = ("network", "transformers", "substations", "grid_lines", "households", "interventions")
NOMINAL_YEAR = 2000  # a leap year: any scenario month/day is a valid date

DESCRIPTIONS = {
    "links": "Road links with their traffic over the run (speeds in m/s, flows in veh/h)",
    "link_intervals": "Road links' traffic per reporting interval (nominal date, run's clock)",
    "interventions": "Interventions: one row per intervention and affected link",
    "intervention_points": "Interventions' locations and affected transformers",
    "transformers": "Distribution transformers: rating (kVA), households, peak loading",
    "substations": "Substations: rating (MVA), peak loading",
    "grid_lines": "MV and LV cables with their peak loading (%)",
    "households": "Households: persons, cars, EVs and their charging energy (kWh)",
}


def write_geopackage(run_dir: str | Path) -> Path:
    """Write ``run_dir/results.gpkg`` from the run directory's tables and return its path.

    The GeoPackage (EPSG:4326) opens directly in QGIS; the layers are listed in this module's
    docstring. A layer whose tables are missing (or that has no rows) is left out; TwinError if
    none can be written.
    The file is written under a temporary name in ``run_dir`` and renamed at the end, so an
    interrupted export never leaves a half-written ``results.gpkg``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TwinError(f"{run_dir}: no such run directory")
    tables = _Tables(run_dir)
    builders: dict[str, Callable[[_Tables], gpd.GeoDataFrame | None]] = {
        "links": _links_layer,
        "link_intervals": _link_intervals_layer,
        "interventions": _intervention_links_layer,
        "intervention_points": _intervention_points_layer,
        "transformers": lambda t: _points(t.get("transformers")),
        "substations": lambda t: _points(t.get("substations")),
        "grid_lines": lambda t: _lines(t.get("grid_lines")),
        "households": _households_layer,
    }
    layers = {name: build(tables) for name, build in builders.items()}
    layers = {name: gdf for name, gdf in layers.items() if gdf is not None and len(gdf)}
    if not layers:
        missing = [f"{n}.parquet" for n in SOURCES if not (run_dir / f"{n}.parquet").is_file()]
        empty = [f"{n}.parquet" for n in SOURCES if f"{n}.parquet" not in missing]
        raise TwinError(
            f"{run_dir}: nothing to export to a GeoPackage: missing {', '.join(missing)}"
            + (f"; no rows in {', '.join(empty)}" if empty else "")
        )
    final = run_dir / GPKG_NAME
    tmp = run_dir / f".results-{uuid.uuid4().hex[:12]}.gpkg"
    try:
        for name, gdf in layers.items():
            pyogrio.write_dataframe(
                _gpkg_safe(gdf),
                tmp,
                layer=name,
                driver="GPKG",
                use_arrow=True,
                layer_options={"DESCRIPTION": DESCRIPTIONS[name]},
            )
        os.replace(tmp, final)
    except (OSError, pyogrio.errors.DataSourceError) as e:
        raise TwinError(f"{final}: cannot write the GeoPackage: {e}") from e
    finally:
        for path in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-journal", "-wal", "-shm"))):
            path.unlink(missing_ok=True)
    return final


class _Tables:
    """The run directory's Parquet tables, each read once on first use (None if absent)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._cache: dict[str, pd.DataFrame | None] = {}

    def get(self, name: str) -> pd.DataFrame | None:
        if name not in self._cache:
            path = self.run_dir / f"{name}.parquet"
            self._cache[name] = pd.read_parquet(path) if path.is_file() else None
        return self._cache[name]

    def sim_date(self) -> dt.date:
        """The nominal date of the simulated day: NOMINAL_YEAR, the scenario's month and day."""
        energy: dict = {}
        path = self.run_dir / "scenario.toml"
        if path.is_file():
            energy = tomllib.loads(path.read_text()).get("energy", {})
        return dt.date(NOMINAL_YEAR, int(energy.get("month", 7)), int(energy.get("day", 15)))


def _lines(df: pd.DataFrame | None) -> gpd.GeoDataFrame | None:
    """A table with a ``geometry_wkt`` column as a line layer."""
    if df is None or "geometry_wkt" not in df:
        return None
    geometry = shapely.from_wkt(df["geometry_wkt"].to_numpy())
    return gpd.GeoDataFrame(df.drop(columns="geometry_wkt"), geometry=geometry, crs=CRS)


def _points(df: pd.DataFrame | None) -> gpd.GeoDataFrame | None:
    """A table with ``lon`` / ``lat`` columns as a point layer (the columns are kept)."""
    if df is None or not {"lon", "lat"} <= set(df.columns):
        return None
    geometry = gpd.points_from_xy(df["lon"], df["lat"], crs=CRS)
    return gpd.GeoDataFrame(df.reset_index(drop=True), geometry=geometry, crs=CRS)


def _with_spans(links: pd.DataFrame, length_m: pd.Series) -> pd.DataFrame:
    """links.parquet rows with their span (h), vehicles out and vehicle-hours on the link."""
    span_h = (links["t_end_s"] - links["t_start_s"]).to_numpy() / 3600.0
    length_km = length_m.reindex(links["link"].to_numpy()).to_numpy() / 1000.0
    veh_h = links["density_veh_per_km"].to_numpy() * length_km * span_h
    speed = links["mean_speed_mps"].to_numpy()
    timed = np.isfinite(speed) & (veh_h > 0)
    return links.assign(
        span_h=span_h,
        vehicles=links["flow_vph"].to_numpy() * span_h,
        vehicle_hours=veh_h,
        speed_x_h=np.where(timed, speed * veh_h, 0.0),
        timed_h=np.where(timed, veh_h, 0.0),
        queue_x_h=links["mean_queue_veh"].to_numpy() * span_h,
    )


def _links_layer(t: _Tables) -> gpd.GeoDataFrame | None:
    gdf = _lines(t.get("network"))
    links = t.get("links")
    if gdf is None or links is None:
        return gdf
    ids, limit = gdf["link"].to_numpy(), gdf["speed_limit_mps"].to_numpy()
    rows = _with_spans(links, gdf.set_index("link")["length_m"])
    sums = ["vehicles", "vehicle_hours", "speed_x_h", "timed_h", "queue_x_h"]
    per = rows.groupby("link").agg({**dict.fromkeys(sums, "sum"), "max_queue_veh": "max"})
    per = per.reindex(ids).fillna(0.0)  # links no vehicle used: zero counts
    run_h = _run_hours(rows, t.get("timeseries"))
    vehicles = np.rint(per["vehicles"].to_numpy()).astype(np.int64)
    timed_h = per["timed_h"].to_numpy()
    speed = np.divide(
        per["speed_x_h"].to_numpy(), timed_h, out=np.full(len(per), np.nan), where=timed_h > 0
    )
    peak_flow, peak_speed, peak_name = np.zeros(len(per)), np.full(len(per), np.nan), None
    if (peak := _peak_interval(rows, t.get("timeseries"))) is not None:
        at = rows[rows["t_start_s"] == peak[0]].set_index("link").reindex(ids)
        peak_flow = at["flow_vph"].fillna(0.0).to_numpy()
        peak_speed = at["mean_speed_mps"].to_numpy(dtype=float)
        peak_name = f"{_clock(peak[0])}-{_clock(peak[1])}"
    return gdf.assign(
        vehicles=vehicles,
        flow_vph=vehicles / run_h,
        vehicle_hours=per["vehicle_hours"].to_numpy(),
        mean_speed_mps=speed,
        mean_speed_ratio=speed / limit,
        mean_density_veh_per_km=per["vehicle_hours"].to_numpy()
        / (gdf["length_m"].to_numpy() / 1000.0)
        / run_h,
        mean_queue_veh=per["queue_x_h"].to_numpy() / run_h,
        max_queue_veh=per["max_queue_veh"].to_numpy().astype(np.int64),
        peak_interval=peak_name,
        peak_flow_vph=peak_flow,
        peak_speed_mps=peak_speed,
        peak_speed_ratio=peak_speed / limit,
    )


def _run_hours(rows: pd.DataFrame, timeseries: pd.DataFrame | None) -> float:
    """The run's span in hours: the time series' first to last time, else the links table's
    intervals; NaN when neither has any (the per-hour means are then null)."""
    if timeseries is not None and "time_s" in timeseries and len(timeseries) > 1:
        span_s = timeseries["time_s"].max() - timeseries["time_s"].min()
    elif len(rows):
        span_s = rows["t_end_s"].max() - rows["t_start_s"].min()
    else:
        span_s = np.nan
    return float(span_s) / 3600.0 if span_s > 0 else np.nan


def _peak_interval(
    rows: pd.DataFrame, timeseries: pd.DataFrame | None
) -> tuple[float, float] | None:
    """The network's peak interval (as the HTML report picks it): the one that ends at the
    time series' most ``vehicles_running`` or, without it, the most vehicle-hours on links."""
    intervals = rows[["t_start_s", "t_end_s"]].drop_duplicates().sort_values("t_start_s")
    if not len(intervals):
        return None
    ts = timeseries
    if ts is not None and {"time_s", "vehicles_running"} <= set(ts.columns):
        ts = ts.dropna(subset=["vehicles_running"])
        if len(ts) and ts["vehicles_running"].max() > 0:
            t = float(ts.loc[ts["vehicles_running"].idxmax(), "time_s"])
            for a, b in intervals.itertuples(index=False):
                if a < t <= b:
                    return float(a), float(b)
    busy = rows.groupby(["t_start_s", "t_end_s"])["vehicle_hours"].sum()
    if busy.max() <= 0:
        return None
    a, b = busy.idxmax()
    return float(a), float(b)


def _link_intervals_layer(t: _Tables) -> gpd.GeoDataFrame | None:
    net, links = t.get("network"), t.get("links")
    if net is None or links is None or "geometry_wkt" not in net:
        return None
    if len(links) > MAX_INTERVAL_ROWS:
        log.warning(
            "results.gpkg: link_intervals left out (%d link-interval rows, more than %d: "
            "~300 bytes each); links.parquet holds them, joined to the links layer by link",
            len(links), MAX_INTERVAL_ROWS,
        )  # fmt: skip
        return None
    net = net.set_index("link")
    rows = _with_spans(links, net["length_m"])
    day = pd.Timestamp(t.sim_date())
    ids = rows["link"].to_numpy()
    speed = rows["mean_speed_mps"].to_numpy(dtype=float)
    df = pd.DataFrame(
        {
            "link": ids,
            "name": net["name"].reindex(ids).to_numpy(),
            "highway": net["highway"].reindex(ids).to_numpy(),
            "t_start_s": rows["t_start_s"].to_numpy(),
            "t_end_s": rows["t_end_s"].to_numpy(),
            "start_time": day + pd.to_timedelta(rows["t_start_s"].to_numpy(), unit="s"),
            "end_time": day + pd.to_timedelta(rows["t_end_s"].to_numpy(), unit="s"),
            "start_clock": [_clock(s) for s in rows["t_start_s"].to_numpy()],
            "vehicles": np.rint(rows["vehicles"].to_numpy()).astype(np.int64),
            "flow_vph": rows["flow_vph"].to_numpy(),
            "mean_speed_mps": speed,
            "speed_ratio": speed / net["speed_limit_mps"].reindex(ids).to_numpy(),
            "density_veh_per_km": rows["density_veh_per_km"].to_numpy(),
            "mean_queue_veh": rows["mean_queue_veh"].to_numpy(),
            "max_queue_veh": rows["max_queue_veh"].to_numpy(),
        }
    )
    geometry = shapely.from_wkt(net["geometry_wkt"].to_numpy())
    by_link = pd.Series(np.arange(len(net)), index=net.index)
    return gpd.GeoDataFrame(df, geometry=geometry[by_link.reindex(ids).to_numpy()], crs=CRS)


def _households_layer(t: _Tables) -> gpd.GeoDataFrame | None:
    gdf = _points(t.get("households"))
    evs = t.get("evs")
    if gdf is None or evs is None or "household" not in evs:
        return gdf
    per = evs.groupby("household").sum(numeric_only=True)
    per.columns = [c if c.startswith("ev_") else f"ev_{c}" for c in per.columns]
    per.insert(0, "evs", evs.groupby("household").size())
    joined = per.reindex(gdf["household"].to_numpy())
    joined["evs"] = joined["evs"].fillna(0).astype(np.int64)
    return gdf.assign(**{c: joined[c].to_numpy() for c in joined.columns})


def _interventions(t: _Tables) -> pd.DataFrame | None:
    """interventions.parquet with clock columns and its id lists as Python lists."""
    df = t.get("interventions")
    if df is None or "intervention" not in df:
        return None
    df = df.reset_index(drop=True).copy()
    for col in ("start_s", "end_s"):
        if col in df:
            clock = col.removesuffix("_s") + "_clock"
            df.insert(df.columns.get_loc(col) + 1, clock, [_clock(s) for s in df[col]])
    for col in ("links", "transformers"):
        df[col] = [_id_list(v) for v in df[col]] if col in df else [[] for _ in range(len(df))]
    return df


def _intervention_links_layer(t: _Tables) -> gpd.GeoDataFrame | None:
    df, net = _interventions(t), t.get("network")
    if df is None or net is None or "geometry_wkt" not in net:
        return None
    rows = df.assign(link=df["links"]).explode("link").dropna(subset=["link"])
    rows["link"] = rows["link"].astype(np.int64)
    net = net.set_index("link")
    rows = rows[rows["link"].isin(net.index)].reset_index(drop=True)
    rows.insert(rows.columns.get_loc("link") + 1, "name", net["name"].reindex(rows["link"]).values)
    geometry = shapely.from_wkt(net["geometry_wkt"].reindex(rows["link"]).to_numpy())
    return gpd.GeoDataFrame(rows, geometry=geometry, crs=CRS)


def _intervention_points_layer(t: _Tables) -> gpd.GeoDataFrame | None:
    df = _interventions(t)
    if df is None:
        return None
    parts = []
    if {"lon", "lat"} <= set(df.columns):
        at = df[np.isfinite(df["lon"].astype(float)) & np.isfinite(df["lat"].astype(float))]
        parts.append(at.assign(located_by="lon/lat", transformer=pd.NA))
    trafos = t.get("transformers")
    if trafos is not None and {"transformer", "lon", "lat"} <= set(trafos.columns):
        rows = df.assign(transformer=df["transformers"]).explode("transformer")
        rows = rows.dropna(subset=["transformer"]).astype({"transformer": np.int64})
        where = trafos.set_index("transformer")[["lon", "lat"]]
        rows = rows[rows["transformer"].isin(where.index)]
        rows = rows.drop(columns=[c for c in ("lon", "lat") if c in rows])
        rows = rows.join(where, on="transformer")
        parts.append(rows.assign(located_by="transformer"))
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    rows = pd.concat(parts, ignore_index=True)
    rows["transformer"] = rows["transformer"].astype("Int64")
    return _points(rows)


def _id_list(value: object) -> list[int]:
    """Ids from a list cell (list, array, None, or text such as ``"[1, 2]"``) as ints."""
    if isinstance(value, str):
        return [int(v) for v in re.findall(r"-?\d+", value)]
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return []
    return [int(v) for v in np.asarray(value).ravel()]


def _clock(seconds: float | None) -> str | None:
    """``"HH:MM"`` of seconds since midnight; None for a missing or non-finite time."""
    if seconds is None or pd.isna(seconds) or not np.isfinite(seconds):
        return None
    try:
        return format_clock(float(seconds))
    except ValueError:  # outside 00:00-48:00
        return None


def _gpkg_safe(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns GeoPackage can store: lists as comma-separated strings, categories as text."""
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s.astype(str)
        elif s.dtype == object and s.map(lambda v: isinstance(v, list | tuple | np.ndarray)).any():
            out[col] = [
                ",".join(str(int(x)) for x in np.asarray(v).ravel())
                if isinstance(v, list | tuple | np.ndarray)
                else v
                for v in s
            ]
    return out
