"""The README's policy examples run as written (on a shorter scenario)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import traffic_scenario

ROOT = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def block_with(needle: str) -> str:
    hits = [b for b in python_blocks() if needle in b]
    assert len(hits) == 1, needle
    return hits[0]


def test_the_python_policy_example_runs_and_decides(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    code = block_with("class LongestQueue").replace(
        "scenarios/baltimore.toml", "scenarios/baltimore-short.toml"
    )
    code = code.replace(
        '{"control.signals": "longest_queue"}',
        '{"control.signals": "longest_queue", "energy.enabled": False}',
    )
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    results = scope["results"]
    assert results.kpi("control.signal_requests_changed") > 0
    assert results.kpi("traffic.trips_completed") > 300  # measured 439 in the 15 minutes


def test_the_household_plug_in_example_is_a_valid_subclass():
    scope: dict = {"twin": pytest.importorskip("twin")}
    exec(compile(block_with("class HalfFull"), "README.md", "exec"), scope)
    from twin.population.agent import Household

    assert issubclass(scope["HalfFull"], Household)
    assert scope["HalfFull"].plug_in is not Household.plug_in


def test_the_pytorch_export_example_makes_a_model_twin_accepts(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from twin.control import load_policy

    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    scope: dict = {}
    exec(compile(block_with("torch.onnx.export"), "README.md", "exec"), scope)
    policy = load_policy("signals", str(tmp_path / "policies" / "my_signal.onnx"))
    assert policy.kind == "signals"


def test_the_ci_gate_command_runs_with_its_exit_code_matching_its_junit(tmp_path, monkeypatch):
    import shlex
    from xml.etree import ElementTree as ET

    from twin.cli import main

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(twin evaluate --policy policies/signals.onnx.*?)```", text, re.S)
    argv = shlex.split(block.group(1).replace("\\\n", " "))[1:]
    swap = {"5": "2", "evaluation": str(tmp_path / "evaluation")}
    for city in ("baltimore", "dortmund"):  # 10 minutes of random trips: seconds per run
        small = traffic_scenario(tmp_path / f"{city}-small.toml", city, trips_per_hour=2000)
        swap[f"scenarios/{city}.toml"] = str(small)
    argv = [swap.get(a, a) for a in argv]
    code = main([*argv, "--no-progress", "--jobs", "1"])
    suite = ET.parse(tmp_path / "evaluation" / "junit.xml").getroot()
    failures = len(suite.findall("testcase/failure"))
    assert len(suite.findall("testcase")) == 3
    assert code == (1 if failures else 0)
    # a requirement no policy can meet fails the gate
    argv_fail = [*argv, "--require", "mean_delay_s <= 0.01 * max_pressure", "-o",
                 str(tmp_path / "again")]  # fmt: skip
    assert main([*argv_fail, "--no-progress", "--jobs", "1"]) == 1
