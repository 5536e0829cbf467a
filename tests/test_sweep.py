"""twin sweep: designs, common random numbers, resumable Parquet results, failures recorded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import traffic_scenario

from twin.cli import main
from twin.sweep import Param, SweepError, design, sweep

MAPS = Path(__file__).resolve().parents[1] / "maps"


@pytest.fixture
def scenario(tmp_path, monkeypatch):
    """Dortmund, 10 minutes of random trips, traffic only: about a second per run."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    return traffic_scenario(
        tmp_path / "small.toml",
        "dortmund",
        trips_per_hour=1500,
        seed=5,
        extra='[traffic]\nreroute_interval = "0s"\n',
    )


def test_parameters_parse_ranges_lists_and_words():
    assert Param.parse("demand.demand_scale=0.6:1.4:5").grid() == [0.6, 0.8, 1.0, 1.2, 1.4]
    assert Param.parse("population.ev_share=0,0.25,0.5").grid() == [0, 0.25, 0.5]
    assert Param.parse("control.signals=max_pressure,fixed_time").grid() == [
        "max_pressure",
        "fixed_time",
    ]
    assert Param.parse("traffic.teleport=false").grid() == [False]
    for bad in ("nokey", "a=", "a=1:2:0", "a=x:y:3", "a=1,{"):
        with pytest.raises(SweepError):
            Param.parse(bad)


def test_designs_grid_and_latin_hypercube():
    a, b = Param.parse("x=0:1:3"), Param.parse("y=a,b")
    assert len(design([a, b])) == 6
    lhs = design([a, b], "lhs", samples=10, seed=1)
    xs = sorted(s["x"] for s in lhs)
    # a Latin hypercube puts one point in each tenth of every range
    assert [int(x * 10) for x in xs] == list(range(10))
    assert design([a, b], "lhs", samples=10, seed=1) == lhs  # seeded


def test_a_sweep_writes_one_row_per_run_with_common_random_numbers(scenario, tmp_path):
    out = tmp_path / "sweep"
    # re-routing is off in the scenario, so its share changes nothing: a control for CRN
    table = sweep(scenario, ["traffic.reroute_share=0.1,0.2"], seeds=2, out=out, jobs=1,
                  progress=False)  # fmt: skip
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    assert set(table["seed"]) == {5, 6}
    assert len(list((out / "runs").glob("*.parquet"))) == 4
    # the same seed gives both parameter sets the same trips and results; another seed not
    dur = table.pivot_table(
        index="seed", columns="param.traffic.reroute_share", values="traffic.mean_duration_s"
    )
    assert (dur[0.1] == dur[0.2]).all()
    assert dur.loc[5, 0.1] != dur.loc[6, 0.1]
    assert {"run_id", "wall_s", "worker", "twin_version", "traffic.mean_duration_s"} <= set(
        table.columns
    )


def test_resume_skips_finished_runs_and_a_failing_run_is_recorded(scenario, tmp_path, capsys):
    out = tmp_path / "sweep"
    sweep(scenario, ["demand.trips_per_hour=600"], seeds=1, out=out, jobs=1, progress=False)
    first = pd.read_parquet(out / "runs")
    with pytest.raises(SweepError, match="--resume"):
        sweep(scenario, ["demand.trips_per_hour=600"], out=out, jobs=1, progress=False)
    # a value that validates but fails inside the run: an unknown policy name
    code = main(["sweep", str(scenario), "--param", "demand.trips_per_hour=600",
                 "--param", "control.signals=fixed_time,not_a_policy", "--out", str(out),
                 "--resume", "--jobs", "1", "--no-progress"])  # fmt: skip
    assert code == 0
    table = pd.read_parquet(out / "runs")
    assert len(table) == 3  # the first run again (another parameter set) + two new
    failed = table[table["status"] == "failed"]
    assert len(failed) == 1 and "unknown policy 'not_a_policy'" in failed["error"].iloc[0]
    assert "1 failed" in capsys.readouterr().out
    assert first["run_id"].iloc[0] in set(table["run_id"]) or len(first) == 1


def test_bad_keys_fail_before_any_run(scenario, tmp_path, capsys):
    code = main(["sweep", str(scenario), "--param", "demand.scalez=1,2", "--out",
                 str(tmp_path / "s"), "--no-progress"])  # fmt: skip
    assert code == 2
    assert "demand.scalez: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "s" / "runs").exists()
    assert main(["sweep", str(scenario), "--jobs", "0", "--no-progress"]) == 2
    assert "jobs must be >= 1" in capsys.readouterr().err


def test_the_same_sweep_runs_on_a_dask_cluster(scenario, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "sweep"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        table = sweep(scenario, ["traffic.reroute_share=0.1,0.2"], seeds=1, out=out,
                      dask=cluster.scheduler_address, progress=False)  # fmt: skip
    local = sweep(scenario, ["traffic.reroute_share=0.1,0.2"], seeds=1, out=tmp_path / "local",
                  jobs=1, progress=False)  # fmt: skip
    assert set(table["status"]) == {"ok"} and len(table) == 2
    cols = ["run_id", "traffic.mean_duration_s", "traffic.trips_completed"]
    a = table[cols].sort_values("run_id", ignore_index=True)
    b = local[cols].sort_values("run_id", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)  # the cluster gives the same results, bit for bit


def test_plots_and_kept_run_directories(scenario, tmp_path):
    out = tmp_path / "sweep"
    table = sweep(scenario, ["demand.trips_per_hour=500:1500:3",
                             "control.signals=fixed_time,max_pressure"], seeds=2, out=out,
                  jobs=1, keep_runs=True, plot=True, progress=False)  # fmt: skip
    assert len(table) == 12
    assert (out / "plot-traffic_mean_time_loss_s.png").stat().st_size > 10_000
    page = (out / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "Means over seeds" in page
    kept = sorted(p.name for p in (out / "run-dirs").iterdir())
    assert kept == sorted(table["run_id"])
    assert (out / "run-dirs" / kept[0] / "kpis.parquet").exists()
    # more demand, more trips completed, for each policy (the plotted trend is real)
    done = table.groupby(["param.control.signals", "param.demand.trips_per_hour"])[
        "traffic.trips_completed"].mean().unstack()  # fmt: skip
    assert (done.diff(axis=1).iloc[:, 1:] > 0).all().all()


def test_a_sweep_killed_half_way_and_resumed_gives_the_straight_through_table(scenario, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    params = ["--param", "demand.trips_per_hour=400:1400:6"]
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "twin.cli", "sweep", str(scenario), *params, "--jobs", "1",
           "--no-progress", "--out", str(killed)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=os.environ.copy())
    deadline = time.time() + 120
    while len(list((killed / "runs").glob("*.parquet"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((killed / "runs").glob("*.parquet")))
    assert 2 <= done < 6  # killed half-way
    resumed = sweep(scenario, params[1:], out=killed, resume=True, jobs=1, progress=False)
    straight = sweep(scenario, params[1:], out=tmp_path / "straight", jobs=1, progress=False)
    cols = [c for c in straight.columns if c.startswith(("param.", "traffic.", "run_id", "seed"))]
    a = resumed[cols].sort_values("run_id", ignore_index=True)
    b = straight[cols].sort_values("run_id", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)


def test_a_sweep_table_in_a_toml_file_says_the_same(scenario, tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        f'[sweep]\nscenario = "{scenario.name}"\nparams = ["traffic.reroute_share=0.1,0.2"]\n'
        'seeds = 1\njobs = 1\nout = "from-toml"\n'
    )
    assert main(["sweep", "--config", str(cfg), "--no-progress"]) == 0
    a = pd.read_parquet(tmp_path / "from-toml" / "runs")
    b = sweep(scenario, ["traffic.reroute_share=0.1,0.2"], out=tmp_path / "cli", jobs=1,
              progress=False)  # fmt: skip
    assert sorted(a["run_id"]) == sorted(b["run_id"])
    cfg.write_text("[sweep]\nseedz = 3\n")
    assert main(["sweep", "--config", str(cfg), "--no-progress"]) == 2
