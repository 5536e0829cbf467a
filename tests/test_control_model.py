"""Components through one protocol, and [control] in scenario files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin import model as model_mod
from twin.clock import Process
from twin.errors import ScenarioError
from twin.model import CityModel, ComponentSpec
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
MAPS = Path(__file__).resolve().parents[1] / "maps"


@pytest.fixture
def short(tmp_path, monkeypatch):
    """Baltimore's first 15 minutes, traffic only."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))

    def make(**overrides):
        sc = load_scenario(SCENARIOS / "baltimore-short.toml")
        return sc.with_overrides({"energy.enabled": False, **overrides})

    return make


def test_disabled_components_are_none(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "oakland.toml"
    path.write_text(
        f'[map]\nfile = "{MAPS / "west-oakland.osm.bz2"}"\n'
        '[time]\nduration = "10min"\nreport_interval = "5min"\n'
        "[traffic]\nenabled = false\n[energy]\nenabled = false\n"
    )
    model = CityModel(load_scenario(path))
    assert model.traffic is None and model.energy is None and model.control is None
    assert model.population is not None
    assert [type(c).__name__ for c in model.components] == ["PopulationComponent"]


def test_a_new_component_is_added_in_one_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    class Counter:
        def __init__(self, model):
            self.model = model
            self.ticks = 0
            model.clock.register(Process("counter", 60.0, self._tick, order=10))
            model.add_reporter("counter_ticks", lambda m: self.ticks)

        def _tick(self, t_s):
            self.ticks += 1

        def connect(self):
            calls.append(("connect", self.model.population is not None))

        def sync(self, t_s):
            calls.append(("sync", t_s))

        def add_results(self, results):
            results.add_kpi("counter.ticks", self.ticks, "count")

    spec = ComponentSpec("counter", lambda sc: True, Counter)
    monkeypatch.setattr(model_mod, "COMPONENTS", [*model_mod.COMPONENTS, spec])
    path = tmp_path / "oakland.toml"
    path.write_text(
        f'[map]\nfile = "{MAPS / "west-oakland.osm.bz2"}"\n[time]\nstart = "08:00"\n'
        'duration = "10min"\nreport_interval = "5min"\n[traffic]\nenabled = false\n'
        "[energy]\nenabled = false\n"
    )
    model = CityModel(load_scenario(path))
    res = model.run(progress=False)
    assert model.counter.ticks == 11 and res.kpi("counter.ticks") == 11  # 08:00 to 08:10
    assert calls[0] == ("connect", True)
    assert [t for what, t in calls if what == "sync"] == [8 * 3600, 8 * 3600 + 300, 8 * 3600 + 600]
    assert list(res.timeseries["counter_ticks"]) == [1, 6, 11]
    assert "counter" in model.plan()


def test_a_scenario_selects_a_signal_baseline_and_runs_it_deterministically(short):
    sc = short(**{"control.signals": "max_pressure"})
    runs = []
    for _ in range(2):
        model = CityModel(sc)
        assert "signal-decisions" in model.plan()
        res = model.run(progress=False)
        runs.append(res)
    res = runs[0]
    assert res.kpi("control.signal_decisions") == 15 * 60 / 5 + 1
    assert res.kpi("control.controlled_signals") > 100
    assert res.kpi("control.signal_requests_changed") > 0
    a, b = (r.tables["trips"] for r in runs)
    assert a.equals(b)
    fixed = CityModel(short()).run(progress=False)
    assert not a["arrive_s"].equals(fixed.tables["trips"]["arrive_s"])
    assert "control.signal_decisions" not in fixed.kpi_table()["kpi"].tolist()


def test_unknown_policy_in_a_scenario_is_a_user_error(short, tmp_path):
    from twin.control.policy import PolicyError

    with pytest.raises(PolicyError, match=r"unknown policy 'max_pres'.*max_pressure"):
        CityModel(short(**{"control.signals": "max_pres"}))


def test_control_needs_its_engine(short):
    with pytest.raises(ScenarioError, match=r"control\.charging = 'llf' needs energy\.enabled"):
        short(**{"control.charging": "llf"})
    with pytest.raises(ScenarioError, match=r"signal_interval .* whole number of traffic steps"):
        CityModel(short(**{"control.signals": "actuated", "control.signal_interval": "2.5s"}))


def test_an_onnx_policy_path_resolves_against_the_scenario_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "x.toml"
    path.write_text(
        f'[map]\nfile = "{MAPS / "west-oakland.osm.bz2"}"\n'
        '[control]\nsignals = "../policies/p.onnx"\n'
    )
    sc = load_scenario(path)
    assert sc.control.signals == str(tmp_path / "policies" / "p.onnx")
    assert np.isclose(sc.control.signal_interval, 5.0)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_names_known_policies(path):
    from twin.control.registry import known

    sc = load_scenario(path)
    assert sc.control.signals in known("signals")
    assert sc.control.charging in known("charging") or sc.control.charging.endswith(".onnx")


def test_the_max_pressure_what_if_differs_from_its_base_only_in_control():
    base = load_scenario(SCENARIOS / "baltimore.toml").to_toml_dict()
    what_if = load_scenario(SCENARIOS / "baltimore-max-pressure.toml").to_toml_dict()
    for key in ("name", "description", "control"):
        base.pop(key, None)
        what_if.pop(key, None)
    assert base == what_if
