"""The command line: what users type, what they see, and the exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twin.cli import main

ROOT = Path(__file__).resolve().parents[1]
OAKLAND = ROOT / "maps" / "west-oakland.osm.bz2"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))


def test_map_info_prints_the_network_summary(capsys):
    assert main(["map", "info", str(OAKLAND)]) == 0
    out = capsys.readouterr().out
    assert "nodes" in out and "links" in out and "signalised intersections" in out
    assert main(["map", "info", str(OAKLAND), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["links"] > 0
    assert data["summary"]["signal_nodes_in_file"] == (
        data["summary"]["signal_nodes_attached"] + data["summary"]["signal_nodes_dropped"]
    )


def test_map_options_change_the_network(capsys):
    main(["map", "info", str(OAKLAND), "--json", "--consolidate-m", "0", "--keep-all"])
    raw = json.loads(capsys.readouterr().out)["summary"]
    main(["map", "info", str(OAKLAND), "--json"])
    default = json.loads(capsys.readouterr().out)["summary"]
    assert raw["nodes"] > default["nodes"]


def test_map_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "plots" / "oakland.png"
    assert main(["map", "plot", str(OAKLAND), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_run_writes_a_run_directory(tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'[map]\nfile = "{OAKLAND}"\n[time]\nduration = "30min"\n')
    assert main(["run", str(scenario), "-o", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "run") in out and "KPIs in kpis.csv" in out
    assert "households" in out and "grid peak" in out and " MW at " in out  # clock time
    assert len(out.splitlines()) < 20  # the headline, not every KPI
    assert (tmp_path / "run" / "kpis.parquet").exists()
    assert main(["run", str(scenario), "-o", str(tmp_path / "all"), "--no-progress",
                 "--all-kpis"]) == 0  # fmt: skip
    assert "network.links" in capsys.readouterr().out
    # a second run into the same directory is refused and leaves it intact
    before = (tmp_path / "run" / "kpis.csv").read_bytes()
    assert main(["run", str(scenario), "-o", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "run" / "kpis.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.osm.bz2", "map file not found"),
        (lambda d: _write(d / "notes.osm", "hello, not xml"), "not a readable OSM file"),
        (lambda d: _write(d / "page.osm", "<html><body/></html>"), "not a readable OSM file"),
        (lambda d: _write(d / "roads.txt", "x"), "unsupported map file type"),
        (lambda d: _truncated(d), "not a readable OSM file"),
    ],
)
def test_bad_map_input_is_one_line_and_exit_2(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    assert main(["map", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin: error: ") and expected in err and str(path) in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_scenario_is_one_line_and_exit_2(tmp_path, capsys):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(f'[map]\nfile = "{OAKLAND}"\nconsolidat_m = 5\n')
    assert main(["run", str(scenario), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "map.consolidat_m" in err and "unknown key" in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    exe = shutil.which("twin") or None
    cmd = [exe] if exe else [sys.executable, "-m", "twin.cli"]
    proc = subprocess.run(
        [*cmd, "map", "info", str(tmp_path / "nope.osm")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nope.osm" in proc.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _truncated(directory: Path) -> Path:
    path = directory / "cut.osm.bz2"
    path.write_bytes(OAKLAND.read_bytes()[:4000])
    return path


def test_grid_info_and_plot(capsys, tmp_path):
    assert main(["grid", "info", str(OAKLAND), "--households", "300"]) == 0
    out = capsys.readouterr().out
    assert "MV/LV transformers" in out and "households 300 connected" in out
    assert main(["grid", "info", str(OAKLAND), "--households", "300", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["households_connected"] == data["households"] == 300
    assert data["voltage_levels_kv"] == [0.4, 20.0, 110.0]
    png = tmp_path / "grid.png"
    assert main(["grid", "plot", str(OAKLAND), "--households", "300", "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000


def test_grid_info_of_a_scenario_uses_its_map_and_population(capsys):
    scenario = ROOT / "scenarios" / "baltimore.toml"
    assert main(["grid", "info", str(scenario), "--households", "500", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["households"] == 500 and data["substations_mapped"] >= 1


@pytest.mark.parametrize(
    "argv",
    [
        ["grid", "info", "no-such-map.osm.bz2"],
        ["grid", "info", str(OAKLAND), "--households", "0"],
    ],
)
def test_grid_errors_are_one_line_with_exit_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin: error:") and len(err.strip().splitlines()) == 1


def test_policies_lists_baselines_and_prints_the_spec(capsys):
    assert main(["policies", "--kind", "signals"]) == 0
    out = capsys.readouterr().out
    for name in ("fixed_time", "actuated", "max_pressure"):
        assert f"  {name} " in out
    assert main(["policies", "--spec", "--kind", "signals"]) == 0
    out = capsys.readouterr().out
    assert "signals observation spec v1: 61 float32 columns" in out
    assert "| 60 | `phase7_pressure_veh` | veh |" in out


def test_a_fault_inside_twin_is_reported_as_one_with_exit_3(monkeypatch, capsys):
    import twin.cli as cli

    def broken(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "cmd_policies", broken)
    assert main(["policies"]) == 3
    err = capsys.readouterr().err
    assert "ZeroDivisionError: boom" in err  # the traceback, for the report
    assert "internal error: this is a bug in twin, not in your input" in err
