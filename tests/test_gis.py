"""The GeoPackage export of a run directory (twin.gis): layers, rows, CRS, aggregates, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from twin import gis
from twin.errors import TwinError
from twin.model import CityModel
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-minute Baltimore run (two 5-minute intervals, 30 % EVs) with its GeoPackage."""
    sc = load_scenario(SCENARIOS / "baltimore-short.toml").with_overrides(
        {"time.duration": "10min", "time.report_interval": "5min", "population.ev_share": 0.3}
    )
    path = CityModel(sc).run(progress=False).save(tmp_path_factory.mktemp("gis") / "run")
    assert gis.write_geopackage(path) == path / "results.gpkg"
    return path


def copy_run(src: Path, dst: Path) -> Path:
    """The run directory's tables (not its GeoPackage) copied to ``dst``."""
    dst.mkdir()
    for f in src.iterdir():
        if f.suffix in (".parquet", ".toml", ".json"):
            shutil.copy(f, dst / f.name)
    return dst


def layer(run_dir: Path, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(run_dir / "results.gpkg", layer=name)


def test_layers_open_with_the_run_rows_in_wgs84(run_dir):
    layers = dict(pyogrio.list_layers(run_dir / "results.gpkg"))
    assert layers == {
        "links": "LineString",
        "link_intervals": "LineString",
        "transformers": "Point",
        "substations": "Point",
        "grid_lines": "LineString",
        "households": "Point",
    }
    source = {
        "links": "network",
        "link_intervals": "links",
        "transformers": "transformers",
        "substations": "substations",
        "grid_lines": "grid_lines",
        "households": "households",
    }
    for name, table in source.items():
        gdf = layer(run_dir, name)
        assert len(gdf) == len(pd.read_parquet(run_dir / f"{table}.parquet")) > 0, name
        assert gdf.crs.to_epsg() == 4326, name
    # no stray temporary files beside the result
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]


def test_geometries_are_valid_and_inside_the_network(run_dir):
    net = shapely.from_wkt(pd.read_parquet(run_dir / "network.parquet")["geometry_wkt"])
    west, south, east, north = shapely.total_bounds(net)
    tol = 1e-5  # degrees; the tables round coordinates to 6 decimals
    for name, _ in pyogrio.list_layers(run_dir / "results.gpkg"):
        gdf = layer(run_dir, name)
        assert gdf.geometry.is_valid.all() and not gdf.geometry.is_empty.any(), name
        x0, y0, x1, y1 = gdf.total_bounds
        assert west - tol <= x0 and x1 <= east + tol, name
        assert south - tol <= y0 and y1 <= north + tol, name


def test_link_aggregates_match_the_links_table(run_dir):
    links = pd.read_parquet(run_dir / "links.parquet")
    net = pd.read_parquet(run_dir / "network.parquet").set_index("link")
    span_h = (links["t_end_s"] - links["t_start_s"]) / 3600
    vehicles = (links["flow_vph"] * span_h).groupby(links["link"]).sum()
    veh_h = links["density_veh_per_km"] * net["length_m"].reindex(links["link"]).values / 1000
    veh_h = veh_h * span_h
    speed = (links["mean_speed_mps"] * veh_h).groupby(links["link"]).sum() / veh_h.groupby(
        links["link"]
    ).sum()
    out = layer(run_dir, "links").set_index("link")
    busiest = vehicles.sort_values().index[-3:]
    some = [*busiest, *vehicles.index[:: max(len(vehicles) // 5, 1)]]
    for link in some:
        assert out.loc[link, "vehicles"] == pytest.approx(vehicles[link], abs=1e-6), link
        assert (
            out.loc[link, "max_queue_veh"]
            == links.loc[links["link"] == link, "max_queue_veh"].max()
        )
        if np.isfinite(speed[link]):
            assert out.loc[link, "mean_speed_mps"] == pytest.approx(speed[link], rel=1e-9)
            limit = net.loc[link, "speed_limit_mps"]
            assert out.loc[link, "mean_speed_ratio"] == pytest.approx(speed[link] / limit)
    # links no vehicle used: zero vehicles and null (not zero) speeds
    unused = out.index.difference(links["link"].unique())
    assert len(unused) > 0
    assert (out.loc[unused, "vehicles"] == 0).all()
    assert (
        out.loc[unused, ["mean_speed_mps", "peak_speed_mps", "peak_speed_ratio"]].isna().all().all()
    )
    # the peak interval ends at the time series' most vehicles running
    ts = pd.read_parquet(run_dir / "timeseries.parquet")
    t_peak = ts.loc[ts["vehicles_running"].idxmax(), "time_s"]
    at = links[(links["t_start_s"] < t_peak) & (links["t_end_s"] >= t_peak)].set_index("link")
    link = busiest[-1]
    assert out.loc[link, "peak_speed_mps"] == pytest.approx(at.loc[link, "mean_speed_mps"])
    assert out.loc[link, "peak_flow_vph"] == pytest.approx(at.loc[link, "flow_vph"])


def test_link_intervals_carry_times_for_the_temporal_controller(run_dir):
    gdf = layer(run_dir, "link_intervals")
    assert pd.api.types.is_datetime64_any_dtype(gdf["start_time"])
    first = gdf.loc[gdf["t_start_s"].idxmin()]
    assert first["start_clock"] == "06:30"
    assert (first["start_time"].hour, first["start_time"].minute) == (6, 30)
    assert ((gdf["end_time"] - gdf["start_time"]).dt.total_seconds() == 300).all()


def test_households_carry_their_evs(run_dir):
    evs = pd.read_parquet(run_dir / "evs.parquet")
    hh = layer(run_dir, "households").set_index("household")
    assert len(evs) > 0 and hh["evs"].sum() == len(evs)
    per = evs.groupby("household")["energy_kwh"].sum()
    assert np.allclose(hh.loc[per.index, "ev_energy_kwh"], per)
    assert hh.loc[hh["evs"] == 0, "ev_energy_kwh"].isna().all()


def test_interventions_become_line_and_point_layers(run_dir, tmp_path):
    copy = copy_run(run_dir, tmp_path / "run")
    pd.DataFrame(
        {
            "intervention": [0, 1, 2],
            "kind": ["close_road", "event", "transformer_out"],
            "start_s": [25200.0, 24000.0, 23400.0],
            "end_s": [27000.0, np.nan, np.nan],
            "label": ["close a street", "stadium", "transformers out"],
            "links": [[1, 2, 3], [], []],
            "transformers": [[], [], [5, 7]],
            "lon": [np.nan, -76.6, np.nan],
            "lat": [np.nan, 39.28, np.nan],
        }
    ).to_parquet(copy / "interventions.parquet", index=False)
    gis.write_geopackage(copy)
    lines = layer(copy, "interventions")
    assert sorted(lines["link"]) == [1, 2, 3]
    assert set(lines["links"]) == {"1,2,3"} and set(lines["intervention"]) == {0}
    assert set(lines["start_clock"]) == {"07:00"} and set(lines["end_clock"]) == {"07:30"}
    net = pd.read_parquet(copy / "network.parquet").set_index("link")
    for _, row in lines.iterrows():
        assert row.geometry.equals_exact(
            shapely.from_wkt(net.loc[row["link"], "geometry_wkt"]), 1e-9
        )
    points = layer(copy, "intervention_points").sort_values(["intervention", "transformer"])
    assert list(points["intervention"]) == [1, 2, 2]
    assert list(points["located_by"]) == ["lon/lat", "transformer", "transformer"]
    trafos = pd.read_parquet(copy / "transformers.parquet").set_index("transformer")
    assert points.geometry.iloc[1].x == pytest.approx(trafos.loc[5, "lon"])
    assert points.geometry.iloc[0].coords[0] == pytest.approx((-76.6, 39.28))


def test_a_run_without_geometry_fails_clearly(run_dir, tmp_path):
    only_kpis = tmp_path / "kpis-only"
    only_kpis.mkdir()
    shutil.copy(run_dir / "kpis.parquet", only_kpis)
    with pytest.raises(TwinError, match=r"kpis-only.*missing network\.parquet"):
        gis.write_geopackage(only_kpis)
    assert sorted(p.name for p in only_kpis.iterdir()) == ["kpis.parquet"]
    with pytest.raises(TwinError, match="no such run directory"):
        gis.write_geopackage(tmp_path / "absent")


def test_layers_of_a_run_with_energy_only(run_dir, tmp_path):
    copy = copy_run(run_dir, tmp_path / "run")
    for name in ("network", "links"):
        (copy / f"{name}.parquet").unlink()
    gis.write_geopackage(copy)
    assert "links" not in dict(pyogrio.list_layers(copy / "results.gpkg"))
    assert len(layer(copy, "transformers")) == len(pd.read_parquet(copy / "transformers.parquet"))


def test_an_interrupted_export_leaves_the_old_file_and_no_temporary(run_dir, tmp_path, monkeypatch):
    copy = copy_run(run_dir, tmp_path / "run")
    shutil.copy(run_dir / "results.gpkg", copy)
    before = (copy / "results.gpkg").read_bytes()
    write = pyogrio.write_dataframe
    calls = []

    def fail_on_third(df, path, **kwargs):
        calls.append(Path(path))
        if len(calls) == 3:
            raise KeyboardInterrupt
        write(df, path, **kwargs)

    monkeypatch.setattr(gis.pyogrio, "write_dataframe", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        gis.write_geopackage(copy)
    assert calls[0].parent == copy and calls[0].name != "results.gpkg"
    assert (copy / "results.gpkg").read_bytes() == before
    assert not [p.name for p in copy.iterdir() if p.name.startswith(".")]
