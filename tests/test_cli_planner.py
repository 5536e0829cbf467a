"""The command line a planner uses: scenario names, --set / --seed, run directories, the
summary and its gridlock warning, progress lines and ``twin compare``."""

from __future__ import annotations

import os
import threading
import tomllib
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import traffic_scenario

import twin.cli_run as cli
from twin.catalog import find_scenario, known_scenarios
from twin.cli import main
from twin.cli_run import parse_sets, reserve_out_dir
from twin.errors import ScenarioError, TwinError
from twin.progress import RunProgress
from twin.results import Results, derived_kpis, gridlock_warning, trip_outcomes

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--set", "time.duration=5min", "--no-progress", "--no-report"]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """Random trips on West Oakland, traffic only: a second or two per 5-minute run."""
    return traffic_scenario(tmp_path / "small.toml", "west-oakland", trips_per_hour=1200, seed=3)


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if a model is built."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was built before the check")

    monkeypatch.setattr("twin.model.CityModel", refuse)


# -- scenario names ------------------------------------------------------------------------------


def test_shipped_scenarios_are_found_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: the package's scenarios/ is used
    assert find_scenario("baltimore-short") == ROOT / "scenarios" / "baltimore-short.toml"
    assert find_scenario("baltimore-short.toml").name == "baltimore-short.toml"
    assert {"baltimore", "baltimore-short", "dortmund"} <= set(known_scenarios())
    (tmp_path / "scenarios").mkdir()
    mine = tmp_path / "scenarios" / "mine.toml"
    mine.write_text("")
    assert find_scenario("mine").resolve() == mine.resolve()  # ./scenarios/ first
    assert "mine" in known_scenarios()
    given = tmp_path / "elsewhere.toml"
    given.write_text("")
    assert find_scenario(given) == given  # an existing file as given


def test_an_unknown_name_exits_2_listing_the_known_ones(capsys, no_build):
    assert main(["run", "baltimore-heatwav", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin: error: unknown scenario 'baltimore-heatwav'")
    assert "baltimore-heatwave" in err and "dortmund" in err and err.count("\n") == 1
    with pytest.raises(ScenarioError, match="scenario file not found"):
        find_scenario("no/such/file.toml")
    assert main(["sweep", "no-such-scenario", "--param", "seed=1"]) == 2
    assert "known scenarios:" in capsys.readouterr().err
    assert main(["grid", "info", "no-such-scenario"]) == 2
    assert "known scenarios:" in capsys.readouterr().err


# -- --set and --seed ----------------------------------------------------------------------------


def test_set_values_are_read_as_toml_else_strings():
    assert parse_sets(["a.b=0.5", "c=true", "d=[0.3, 0.9]", "e=1h", "f=07:00", 'g="x y"']) == {
        "a.b": 0.5, "c": True, "d": [0.3, 0.9], "e": "1h", "f": "07:00", "g": "x y"
    }  # fmt: skip
    for bad in ("novalue", "=3", "key="):
        with pytest.raises(TwinError, match="expected KEY=VALUE"):
            parse_sets([bad])


def test_set_and_seed_change_the_saved_scenario(tmp_path, small, capsys):
    out = tmp_path / "run"
    argv = ["run", str(small), "-o", str(out), "--seed", "7", "--set", "demand.demand_scale=0.5",
            "--set", "time.start=08:30", *QUICK]  # fmt: skip
    assert main(argv) == 0
    saved = tomllib.loads((out / "scenario.toml").read_text())
    assert saved["seed"] == 7 and saved["demand"]["demand_scale"] == 0.5
    assert saved["time"]["duration"] == "5min" and saved["time"]["start"] == "08:30"
    assert (out / "run.json").read_text().count('"seed": 7') == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert "seed 7" in first and "--set demand.demand_scale=0.5" in first


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (
            ["--set", "demand.trips_per_hou=5"],
            "--set demand.trips_per_hou=5: demand.trips_per_hou: unknown key (expected one of:",
        ),
        (
            ["--set", "time.duration=soon"],
            '--set time.duration="soon": time.duration: expected a duration',
        ),
        (["--set", "demand.demand_scale=-1"], "demand.demand_scale: expected a number >= 0"),
        (["--seed", "-1"], "--seed -1: expected an integer >= 0, got -1"),
    ],
)
def test_a_bad_override_is_one_line_and_exit_2(small, capsys, no_build, option, expected):
    assert main(["run", str(small), *option, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin: error: ") and err.count("\n") == 1
    assert expected in err, err


# -- run directories -----------------------------------------------------------------------------


def test_the_output_path_is_checked_before_building(tmp_path, small, capsys, no_build):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert main(["run", str(small), "-o", str(a_file), "--no-progress"]) == 2
    assert "is an existing file" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.csv").write_text("x")
    assert main(["run", str(small), "-o", str(full), "--no-progress"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(["run", str(small), "-o", str(a_file / "sub"), "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (full / "keep.csv").read_text() == "x" and a_file.read_text() == "x"


def test_default_run_directories_never_collide(tmp_path, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2024, 5, 1, 8, 30, 0)

    monkeypatch.setattr(cli, "datetime", Frozen)  # every run starts in the same second
    got: list[Path] = []

    def reserve() -> None:
        got.append(reserve_out_dir(None, "city", parent=tmp_path / "runs"))

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)
    assert tmp_path / "runs" / "city-20240501-083000" in got
    assert tmp_path / "runs" / "city-20240501-083000-8" in got


def test_a_failed_run_removes_its_reserved_directory(tmp_path, small, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise TwinError("no households")

    monkeypatch.setattr("twin.model.CityModel", broken)
    out = tmp_path / "x" / "run"
    assert main(["run", str(small), "-o", str(out), "--no-progress"]) == 2
    assert not out.exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_run_directories_get_normal_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        run_dir = Results(scenario={"name": "x"}).save(tmp_path / "run")
    finally:
        os.umask(old)
    assert run_dir.stat().st_mode & 0o777 == 0o777 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_save_fills_a_reserved_empty_directory(tmp_path):
    (tmp_path / "run").mkdir()
    Results(scenario={"name": "x"}).save(tmp_path / "run")
    assert (tmp_path / "run" / "kpis.csv").exists()


# -- the gridlock warning ------------------------------------------------------------------------


def _kpis(completed=900, running=100, gridlocked=0, should=500, should_done=500, unroutable=0):
    return {
        "traffic.trips_completed": completed,
        "traffic.vehicles_running": running,
        "traffic.vehicles_gridlocked": gridlocked,
        "traffic.trips_unroutable": unroutable,
        "traffic.trips_should_have_finished": should,
        "traffic.trips_should_have_finished_completed": should_done,
    }


def test_the_gridlock_warning_thresholds():
    assert gridlock_warning(_kpis()) is None
    assert gridlock_warning(_kpis(gridlocked=50)) is None  # 5 % of 1,000: not more than 5 %
    warning = gridlock_warning(_kpis(gridlocked=51))
    assert warning.startswith("WARNING") and "51 of 1,000 vehicles (5.1 %) gridlocked" in warning
    assert "--set demand.demand_scale=0.5" in warning and "closure" in warning
    assert gridlock_warning(_kpis(should_done=450)) is None  # 90 %: not fewer than 90 %
    warning = gridlock_warning(_kpis(should_done=449))
    assert "449 of the 500 trips that should have finished" in warning
    assert "vehicles" not in warning  # only the rule that fired
    # too few trips should have finished to judge (a short run), and no traffic at all
    assert gridlock_warning(_kpis(should=19, should_done=0)) is None
    assert gridlock_warning({}) is None
    assert "12 trips found no route" in gridlock_warning(_kpis(gridlocked=80, unroutable=12))


def test_trips_still_under_way_at_the_end_are_not_due_to_finish():
    end_s = 3600.0
    trips = pd.DataFrame(
        {
            "depart_plan_s": [0.0, 0.0, 3000.0, 3500.0, 0.0],
            "route_length_m": [3000.0, 3000.0, 3000.0, 3000.0, float("nan")],
            "status": ["arrived", "running", "running", "waiting", "unroutable"],
        }
    )
    # 3 km at 5 m/s + 300 s = 900 s: the first two and the unroutable one should be done
    out = trip_outcomes(trips, end_s)
    assert out == {
        "traffic.trips_should_have_finished": 3.0,
        "traffic.trips_should_have_finished_completed": 1.0,
    }
    kpis = derived_kpis(
        {"traffic.trips_completed": 1, "traffic.vehicles_running": 2,
         "traffic.vehicles_waiting": 1, "traffic.trips_unroutable": 1}, trips, end_s
    )  # fmt: skip
    assert kpis["traffic.trips_due"] == 5


# -- progress ------------------------------------------------------------------------------------


def test_progress_lines_every_tenth_of_the_simulated_time(caplog):
    caplog.set_level("INFO", logger="twin.progress")
    with RunProgress("city", 3600.0, 7200.0, lines=True) as bar:
        for minute in range(1, 61):
            bar.update(3600.0 + 60 * minute)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10
    assert lines[0].startswith("city: 01:06 simulated (10 %),") and "s elapsed" in lines[0]
    assert lines[-1].startswith("city: 02:00 simulated (100 %)")


def test_without_a_terminal_progress_is_plain_lines(small, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(small), "-o", str(out), "--set", "time.duration=5min", "--set",
                 "time.report_interval=1min", "--no-report"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar
    assert "twin: loading the road network" in err or "twin: building the road network" in err
    assert "twin: computing routes" in err
    progress = [line for line in err.splitlines() if " simulated (" in line]
    assert [line.split("(")[1].split(")")[0] for line in progress] == [
        "20 %", "40 %", "60 %", "80 %", "100 %"
    ]  # fmt: skip
    assert progress[-1].startswith("twin: small: 08:05 simulated (100 %)")


# -- the summary and the extras ------------------------------------------------------------------


def test_the_summary_and_the_report_writers(small, tmp_path, capsys, monkeypatch):
    def report(run_dir):
        (Path(run_dir) / "report.html").write_text("<html></html>")
        return Path(run_dir) / "report.html"

    def broken(run_dir):
        raise OSError("disk full")

    monkeypatch.setattr("twin.report.write_report", report, raising=False)
    monkeypatch.setattr("twin.gis.write_geopackage", broken)
    out = tmp_path / "run"
    assert main(["run", str(small), "-o", str(out), "--set", "time.duration=5min",
                 "--no-progress"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].startswith("  trips ") and " due (" in lines[1]
    assert any(line.startswith("  gridlocked vehicles") for line in lines)
    assert lines[-2] == f"results in {out}" and lines[-1] == f"report: {out / 'report.html'}"
    assert "twin: warning: GIS layers not written (OSError: disk full)" in captured.err
    assert (out / "kpis.csv").exists()  # the results survive the failed writer
    # --no-report skips both writers
    monkeypatch.setattr("twin.report.write_report", broken, raising=False)
    assert main(["run", str(small), "-o", str(tmp_path / "again"), *QUICK]) == 0
    assert "warning" not in capsys.readouterr().err


# -- twin compare --------------------------------------------------------------------------------


def test_compare_runs_what_is_missing_with_one_seed(tmp_path, small, capsys, monkeypatch):
    calls = []

    def write_comparison(run_dirs, out_dir, labels):
        calls.append((list(run_dirs), Path(out_dir), list(labels)))
        return Path(out_dir) / "comparison.html"

    monkeypatch.setattr("twin.report.write_comparison", write_comparison, raising=False)
    busy = traffic_scenario(tmp_path / "busy.toml", "west-oakland", trips_per_hour=2400, seed=9)
    out = tmp_path / "cmp"
    assert main(["compare", str(small), str(busy), "-o", str(out), *QUICK[:3]]) == 0
    captured = capsys.readouterr()
    assert "different seeds (3, 9)" in captured.err
    run_dirs, out_dir, labels = calls[0]
    assert out_dir == out and labels == ["small", "busy"]
    assert run_dirs == [out / "small", out / "busy"]
    for d in run_dirs:
        saved = tomllib.loads((d / "scenario.toml").read_text())
        assert saved["seed"] == 3 and saved["time"]["duration"] == "5min"
    assert "trips completed" in captured.out and "%)" in captured.out  # relative differences
    assert f"comparison report: {out / 'comparison.html'}" in captured.out
    # a finished run and the same scenario again: labels de-duplicated, --seed for all
    out2 = tmp_path / "cmp2"
    assert main(["compare", str(out / "small"), str(small), "-o", str(out2), "--seed", "3",
                 *QUICK[:3]]) == 0  # fmt: skip
    run_dirs, _, labels = calls[1]
    assert labels == ["small", "small-2"] and run_dirs == [out / "small", out2 / "small-2"]
    assert "twin: warning" not in capsys.readouterr().err
    small_a = pd.read_csv(out / "small" / "kpis.csv").set_index("kpi")["value"]
    small_b = pd.read_csv(out2 / "small-2" / "kpis.csv").set_index("kpi")["value"]
    assert small_a["traffic.trips_completed"] == small_b["traffic.trips_completed"]


def test_compare_needs_two_inputs_and_real_run_directories(tmp_path, small, capsys, no_build):
    assert main(["compare", str(small)]) == 2
    assert "at least two" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(small), str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err
