"""twin evaluate: paired statistics, requirements, exit codes and reports."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from conftest import traffic_scenario

from twin.cli import main
from twin.control.registry import register
from twin.control.signal_baselines import MaxPressure
from twin.evaluation import evaluate
from twin.evaluation.requirements import Requirement, RequirementError
from twin.evaluation.stats import paired_difference, probability_of_improvement

MAPS = Path(__file__).resolve().parents[1] / "maps"


@register("signals", "max_pressure_copy")
class MaxPressureCopy(MaxPressure):
    """The max-pressure baseline under another name (a policy identical to its baseline)."""

    name = "max_pressure_copy"


@register("signals", "hold_first_phase")
class HoldFirstPhase:
    """A deliberately bad policy: always asks for phase 0 (only max green ends it)."""

    kind, name = "signals", "hold_first_phase"

    def reset(self, seed):
        pass

    def act(self, obs):
        return np.zeros(len(obs), dtype=int)


@pytest.fixture
def scenario(tmp_path, monkeypatch):
    """Baltimore, 10 minutes of random trips, traffic only: a few seconds per run."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    return traffic_scenario(tmp_path / "small.toml", "baltimore")


# -- statistics ------------------------------------------------------------------------------


def test_identical_runs_give_a_zero_interval_and_even_odds():
    x = np.array([3.0, 5.0, 4.0])
    d = paired_difference(x, x)
    assert (d.mean, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0)
    assert probability_of_improvement([x], [x], lower_is_better=True) == 0.5


def test_probability_of_improvement_counts_pairs_and_ties_half():
    x, y = np.array([1.0, 2.0]), np.array([1.5, 3.0, 2.0])
    # lower is better: 1 beats 1.5, 3, 2; 2 beats 3, ties 2 -> (3 + 1 + 0.5) / 6
    assert probability_of_improvement([x], [y], lower_is_better=True) == pytest.approx(4.5 / 6)
    # two scenarios are averaged, not pooled
    p = probability_of_improvement([x, y], [y, x], lower_is_better=False)
    assert p == pytest.approx(0.5 * (1.5 / 6) + 0.5 * (4.5 / 6))


def test_bootstrap_interval_matches_the_normal_theory_one():
    rng = np.random.default_rng(5)
    base = rng.normal(100.0, 10.0, 400)
    policy = base + rng.normal(-2.0, 3.0, 400)
    d = paired_difference(policy, base)
    half = 1.96 * 3.0 / np.sqrt(400)
    assert d.ci_low < d.mean < d.ci_high
    assert (d.ci_high - d.ci_low) / 2 == pytest.approx(half, rel=0.15)
    assert d.ci_low < -2.0 < d.ci_high


def test_requirements_parse_the_documented_forms():
    r = Requirement.parse("mean_delay_s <= 0.9 * fixed_time")
    assert (r.kpi, r.op, r.factor, r.name) == ("mean_delay_s", "<=", 0.9, "fixed_time")
    r = Requirement.parse("ev_unmet_kwh <= ev_demand_kwh * 0.01")
    assert (r.kpi, r.factor, r.name) == ("ev_unmet_kwh", 0.01, "ev_demand_kwh")
    r = Requirement.parse("p_improvement(mean_delay_s, max_pressure) >= 0.8")
    assert (r.p_improvement_vs, r.factor, r.name) == ("max_pressure", 0.8, None)
    for bad in ("mean_delay_s", "mean_delay_s => 3", "__import__('os') < 1", "a <= 1 * 2 * b"):
        with pytest.raises(RequirementError, match="expected KPI OP RIGHT"):
            Requirement.parse(bad)


# -- runs ------------------------------------------------------------------------------------


def test_a_policy_identical_to_its_baseline_is_level_with_it(scenario):
    ev = evaluate(["max_pressure_copy"], ["max_pressure"], [scenario], seeds=3, jobs=1,
                  progress=False)  # fmt: skip
    comp = ev.comparisons()
    assert len(ev.runs) == 6 and set(ev.runs["seed"]) == {0, 1, 2}
    assert (
        (comp["diff"] == 0).all() and (comp["ci_low"] == 0).all() and (comp["ci_high"] == 0).all()
    )
    assert (comp["p_improvement"] == 0.5).all()
    assert ev.check(["p_improvement(mean_delay_s, max_pressure) >= 0.5",
                     "mean_delay_s <= 1.0 * max_pressure"])  # fmt: skip


def test_seeds_change_the_trips_and_pairs_share_them(scenario):
    ev = evaluate(["hold_first_phase"], ["fixed_time"], [scenario], seeds=2, jobs=1,
                  progress=False)  # fmt: skip
    r = ev.runs.set_index(["policy", "seed"])
    assert r.loc[("fixed_time", 0), "mean_delay_s"] != r.loc[("fixed_time", 1), "mean_delay_s"]
    # the bad policy is worse on both seeds, so it never improves
    assert ev.p_improvement("hold_first_phase", "mean_delay_s", "fixed_time") == 0.0


def test_a_worse_policy_fails_its_threshold_with_exit_1_and_junit(scenario, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        ["evaluate", "--policy", "hold_first_phase", "--baseline", "fixed_time",
         "--baseline", "max_pressure", "--scenario", str(scenario), "--seeds", "2",
         "--jobs", "1", "--no-progress", "-o", str(out),
         "--require", "mean_delay_s <= 0.9 * fixed_time",
         "--require", "throughput >= 1"]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "requirement failed: hold_first_phase: mean_delay_s = " in err
    suite = ET.parse(out / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["mean_delay_s <= 0.9 * fixed_time", "throughput >= 1"]
    assert cases[0].find("failure") is not None and cases[1].find("failure") is None
    assert suite.get("failures") == "1"
    data = json.loads((out / "evaluation.json").read_text())
    assert data["passed"] is False and data["seeds"] == [0, 1]
    assert {c["baseline"] for c in data["comparisons"]} == {"fixed_time", "max_pressure"}
    assert "❌" in (out / "summary.md").read_text()


def test_passing_requirements_exit_0_and_a_config_file_says_the_same(scenario, tmp_path):
    cfg = tmp_path / "eval.toml"
    cfg.write_text(
        "[evaluate]\n"
        'policies = ["max_pressure"]\nbaselines = ["hold_first_phase"]\n'
        f'scenarios = ["{scenario.name}"]\nseeds = 2\njobs = 1\nout = "rep"\n'
        'require = ["mean_delay_s <= hold_first_phase"]\n'
    )
    assert main(["evaluate", "--config", str(cfg), "--no-progress"]) == 0
    assert (tmp_path / "rep" / "junit.xml").is_file()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--policy", "nope", "--baseline", "fixed_time"], "unknown policy 'nope'"),
        (["--policy", "max_pressure", "--baseline", "uncontrolled"], "must decide the same"),
        (["--policy", "max_pressure", "--baseline", "fixed_time", "--require", "x ==> 1"],
         "expected KPI OP RIGHT"),
        (["--policy", "max_pressure", "--baseline", "fixed_time", "--seeds", "0"],
         "--seeds must be >= 1"),
    ],
)  # fmt: skip
def test_bad_input_is_exit_2_before_any_run(scenario, tmp_path, capsys, argv, says):
    code = main(["evaluate", *argv, "--scenario", str(scenario), "--no-progress",
                 "-o", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_an_unknown_kpi_in_a_requirement_names_the_known_ones(scenario):
    ev = evaluate(["max_pressure"], ["fixed_time"], [scenario], seeds=1, jobs=1, progress=False)
    with pytest.raises(RequirementError, match="unknown KPI 'delay'; known: mean_delay_s"):
        ev.check(["delay <= fixed_time"])
