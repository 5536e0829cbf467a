"""CityModel and Results: stepping by reporting interval, reporters, determinism, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.clock import Process
from twin.errors import TwinError
from twin.model import CityModel
from twin.scenario import load_scenario

MAPS = Path(__file__).resolve().parents[1] / "maps"


@pytest.fixture
def scenario_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "oakland.toml"
    path.write_text(
        f'name = "oakland"\nseed = 3\n[map]\nfile = "{MAPS / "west-oakland.osm.bz2"}"\n'
        '[time]\nstart = "08:00"\nduration = "1h"\nreport_interval = "20min"\n'
        "[traffic]\nenabled = false\n"
    )
    return path


def test_step_advances_one_reporting_interval(scenario_file):
    model = CityModel(load_scenario(scenario_file))
    assert model.now_s == 8 * 3600
    model.step()
    assert model.now_s == 8 * 3600 + 1200
    assert model.steps == 1 and model.running
    model.step()
    model.step()
    assert model.now_s == 9 * 3600 and not model.running
    model.step()  # past the end: nothing moves
    assert model.now_s == 9 * 3600


def test_run_records_every_reporting_instant_with_component_reporters(scenario_file):
    model = CityModel(load_scenario(scenario_file))
    counter = {"ticks": 0}

    def tick(_t: float) -> None:
        counter["ticks"] += 1

    model.clock.register(Process("counter", 60.0, tick, order=10))
    model.add_reporter("ticks", lambda m: counter["ticks"])
    results = model.run(progress=False)
    ts = results.timeseries
    assert list(ts["clock"]) == ["08:00", "08:20", "08:40", "09:00"]
    # the counter (order 10) runs before the recorder (order 1000) at shared instants
    assert list(ts["ticks"]) == [1, 21, 41, 61]
    assert "counter" in model.plan() and "recorder" in model.plan()
    assert results.kpi("run.simulated_s") == 3600
    assert results.kpi("network.links") == model.network.n_links


def test_same_scenario_same_results(scenario_file):
    def kpis():
        res = CityModel(load_scenario(scenario_file)).run(progress=False)
        table = res.kpi_table()
        return table[~table["kpi"].str.contains("wall")], res.timeseries

    (k1, t1), (k2, t2) = kpis(), kpis()
    pd.testing.assert_frame_equal(k1, k2)
    pd.testing.assert_frame_equal(t1, t2)


def test_model_streams_are_named_and_seeded(scenario_file):
    a = CityModel(load_scenario(scenario_file))
    b = CityModel(load_scenario(scenario_file))
    assert np.array_equal(a.stream("trips").random(5), b.stream("trips").random(5))
    assert a.rng.random() == b.rng.random()  # mesa's own generator is seeded too


def test_results_save_round_trip_and_never_overwrite(scenario_file, tmp_path):
    results = CityModel(load_scenario(scenario_file)).run(progress=False)
    run_dir = results.save(tmp_path / "run")
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == sorted(
        [
            "kpis.csv",
            "kpis.parquet",
            "energy.csv",
            "energy.parquet",
            "evs.csv",
            "evs.parquet",
            "transformers.csv",
            "transformers.parquet",
            "substations.csv",
            "substations.parquet",
            "households.csv",
            "households.parquet",
            "legs.csv",
            "legs.parquet",
            "timeseries.csv",
            "timeseries.parquet",
            "network.csv",
            "network.parquet",
            "grid_lines.csv",
            "grid_lines.parquet",
            "transformer_loading.csv",
            "transformer_loading.parquet",
            "scenario.toml",
            "run.json",
        ]
    )
    kpis = pd.read_parquet(run_dir / "kpis.parquet")
    assert kpis.set_index("kpi").loc["network.nodes", "value"] == results.kpi("network.nodes")
    assert pd.read_csv(run_dir / "timeseries.csv").shape[0] == 4
    # the saved scenario re-loads to the same scenario
    assert load_scenario(run_dir / "scenario.toml") == load_scenario(scenario_file).with_overrides(
        {"name": "oakland"}
    )
    before = (run_dir / "kpis.csv").read_bytes()
    with pytest.raises(TwinError, match="already exists"):
        results.save(run_dir)
    assert (run_dir / "kpis.csv").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run-")]


def traffic_scenario(tmp_path, demand: str) -> Path:
    path = tmp_path / "traffic.toml"
    path.write_text(
        f'name = "agu"\nseed = 11\n[map]\nfile = "{MAPS / "aguascalientes.osm.bz2"}"\n'
        '[time]\nstart = "07:00"\nduration = "20min"\nreport_interval = "5min"\n' + demand
    )
    return path


def test_traffic_runs_on_the_clock_and_fills_the_results(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    scenario = load_scenario(
        traffic_scenario(
            tmp_path,
            '[demand]\nkind = "random"\ntrips_per_hour = 2400\n'
            "[population]\nenabled = false\n[energy]\nenabled = false\n",
        )
    )
    model = CityModel(scenario)
    assert [line.split()[1] for line in model.plan().splitlines()[1:]] == [
        "reroute",
        "traffic",
        "link-stats",
        "recorder",
    ]
    results = model.run(progress=False)
    ts = results.timeseries
    assert list(ts["clock"]) == ["07:00", "07:05", "07:10", "07:15", "07:20"]
    assert ts["vehicles_running"].iloc[0] == 0 and ts["vehicles_running"].max() > 0
    assert ts["trips_completed"].is_monotonic_increasing
    trips = results.tables["trips"]
    assert len(trips) == results.kpi("traffic.trips") > 0
    # the trips due after the first re-routing time (07:05) set out on the traffic of then
    due_later = int((trips["depart_plan_s"] >= 7 * 3600 + 300).sum())
    assert 0 < results.kpi("traffic.routed_at_departure") <= due_later
    counts = trips["status"].value_counts()
    assert counts["arrived"] == results.kpi("traffic.trips_completed")
    assert counts.sum() == len(trips)  # every trip accounted for
    links = results.tables["links"]
    assert set(links["t_end_s"]) == {7 * 3600 + k * 300 for k in range(1, 5)}
    # vehicles leaving links per bin add up to the trips' link crossings and arrivals
    assert (links["flow_vph"] >= 0).all() and (links["mean_speed_mps"].dropna() >= 0).all()
    run_dir = results.save(tmp_path / "run")
    assert (run_dir / "trips.parquet").exists() and (run_dir / "links.csv").exists()


def test_csv_demand_scenario(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "trips.csv"
    csv.write_text(
        "trip_id,depart,origin_lon,origin_lat,dest_lon,dest_lat\n"
        "1,07:01,-102.2790,21.8650,-102.2610,21.8750\n"
        "2,07:02:30,-102.2610,21.8750,-102.2790,21.8650\n"
    )
    scenario = load_scenario(
        traffic_scenario(tmp_path, '[demand]\nkind = "csv"\nfile = "trips.csv"\n')
    )
    results = CityModel(scenario).run(progress=False)
    trips = results.tables["trips"]
    assert list(trips["trip_id"]) == [1, 2]
    assert list(trips["depart_plan_s"]) == [7 * 3600 + 60, 7 * 3600 + 150]
    assert (trips["status"] == "arrived").all()


def test_csv_trips_outside_the_run_are_reported_and_skipped(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "trips.csv"
    csv.write_text(
        "trip_id,depart,origin_lon,origin_lat,dest_lon,dest_lat,after_trip_id\n"
        "1,06:10,-102.2790,21.8650,-102.2610,21.8750,\n"  # before the 07:00 start
        "2,07:02:30,-102.2610,21.8750,-102.2790,21.8650,1\n"  # follows the skipped trip
        "3,09:00,-102.2790,21.8650,-102.2610,21.8750,\n"  # after the end
    )
    scenario = load_scenario(
        traffic_scenario(tmp_path, '[demand]\nkind = "csv"\nfile = "trips.csv"\n')
    )
    with caplog.at_level("WARNING"):
        results = CityModel(scenario).run(progress=False)
    trips = results.tables["trips"]
    assert list(trips["trip_id"]) == [2] and list(trips["after_trip_id"]) == [-1]
    assert trips["depart_delay_s"].iloc[0] < 60  # not driven late from the start
    assert "2 of 3 trips depart outside the run (07:00 to 07:20)" in caplog.text
    assert "trip 1 at 06:10" in caplog.text


def test_models_built_in_one_process_are_freed(tmp_path, monkeypatch):
    """Mesa 3.3's agent-id registry kept every model alive (~40 MB each on Baltimore)."""
    import gc
    import weakref

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "oakland.toml"
    path.write_text(
        f'[map]\nfile = "{MAPS / "west-oakland.osm.bz2"}"\n[time]\nduration = "10min"\n'
        'report_interval = "5min"\n[traffic]\nenabled = false\n[energy]\nenabled = false\n'
    )
    sc = load_scenario(path)

    def rss_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 2**20

    refs, rss = [], []
    for _ in range(20):
        model = CityModel(sc)
        assert len(model.agents) > 100
        ids = [a.unique_id for a in model.agents]
        assert len(set(ids)) == len(ids) and min(ids) == 1  # ids unique per model, from 1
        refs.append(weakref.ref(model))
        del model
        gc.collect()
        rss.append(rss_mb())
    assert all(r() is None for r in refs)
    assert rss[-1] - rss[4] < 20.0, rss  # flat after the first few (caches, allocator)


def test_traffic_block_changes_no_result(tmp_path, monkeypatch):
    """Whatever reads the traffic (recorder, energy, home arrivals) brings it up to its own
    time first, so the traffic process's wake-up period is a cost, not a result."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "oakland.toml"
    path.write_text(
        f'name = "oakland"\nseed = 5\n[map]\nfile = "{MAPS / "west-oakland.osm.bz2"}"\n'
        '[time]\nstart = "16:30"\nduration = "1h"\nreport_interval = "10min"\n'
        "[population]\nev_share = 0.5\n"  # cars that plug in as they get home
    )
    base = load_scenario(path)

    def run(block: str):
        res = CityModel(base.with_overrides({"traffic.block": block})).run(progress=False)
        ts = res.timeseries
        return res.tables["trips"], ts[[c for c in ts.columns if "wall" not in c]], res

    trips_a, ts_a, res_a = run("7s")  # divides neither the energy tick nor the report interval
    trips_b, ts_b, res_b = run("60s")
    assert res_a.kpi("traffic.trips_completed") > 50  # a real evening's traffic
    pd.testing.assert_frame_equal(trips_a, trips_b)
    pd.testing.assert_frame_equal(ts_a, ts_b)
    assert (res_a.tables["evs"]["energy_kwh"] > 0).sum() > 10  # EVs charged in the hour
    for table in ("energy", "evs", "transformer_loading"):
        pd.testing.assert_frame_equal(res_a.tables[table], res_b.tables[table])
