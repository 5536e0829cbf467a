"""The README's policy examples run as written (on a shorter scenario)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
    assert results.kpi("traffic.trips_completed") > 500


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
