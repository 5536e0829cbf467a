"""ONNX models as policies: checked against the spec at load, and equal to the Python policy
they encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from test_signal_control import od_trips  # noqa: E402

from twin.control.policy import PolicyError  # noqa: E402
from twin.control.registry import load_policy  # noqa: E402
from twin.control.signals import MAX_PHASES, SIGNAL_SPEC, SignalControl  # noqa: E402
from twin.network.synthetic import grid_roadnet  # noqa: E402
from twin.traffic.sim import TrafficSim  # noqa: E402


def linear_model(
    path: Path,
    weights: np.ndarray,
    *,
    in_width: int | None = None,
    meta: dict[str, str] | None = None,
) -> Path:
    """An ONNX model ``scores = obs @ weights`` with one input "obs" [batch, width]."""
    width = weights.shape[0] if in_width is None else in_width
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["scores"])],
        "linear",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", weights.shape[1]])],
        [numpy_helper.from_array(weights.astype(np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (meta or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)
    return path


def max_pressure_weights() -> np.ndarray:
    """Scores = each phase's pressure, plus a hair for the current phase (keeps it on ties)."""
    w = np.zeros((SIGNAL_SPEC.width, MAX_PHASES))
    for p in range(MAX_PHASES):
        w[SIGNAL_SPEC.index(f"phase{p}_pressure_veh"), p] = 1.0
        w[SIGNAL_SPEC.index(f"phase{p}_active"), p] = 1e-3
    return w


def test_an_onnx_model_acts_as_the_python_policy_it_encodes(tmp_path):
    path = linear_model(
        tmp_path / "mp.onnx", max_pressure_weights(), meta={"twin_spec": "signals/1"}
    )
    net = grid_roadnet(3, 3, spacing_m=200.0)
    groups = [(a, b, 600.0) for a, b in ((3, 5), (5, 3), (1, 7), (7, 1), (0, 8))]
    trips = od_trips(groups, 900.0)
    tables = []
    for policy in (load_policy("signals", str(path)), load_policy("signals", "max_pressure")):
        sim = TrafficSim(net, trips, seed=3, start_s=0.0)
        ctl = SignalControl(sim, policy, min_green_s=7.0, max_green_s=60.0, detector_m=50.0)
        while sim.t_s < 1500.0:
            ctl.decide()
            sim.advance(5)
        tables.append(sim.trip_table())
        assert ctl.requests_changed > 0
    assert tables[0]["arrive_s"].equals(tables[1]["arrive_s"])


def test_a_model_of_the_wrong_width_is_refused_saying_what_it_expected(tmp_path):
    path = linear_model(tmp_path / "old.onnx", np.zeros((40, MAX_PHASES)))
    with pytest.raises(PolicyError) as info:
        load_policy("signals", str(path))
    msg = str(info.value)
    assert f"expected one float32 input of shape [batch, {SIGNAL_SPEC.width}]" in msg
    assert "found input 'obs' of type tensor(float) and shape [batch, 40]" in msg


def test_a_model_with_the_wrong_outputs_is_refused(tmp_path):
    path = linear_model(tmp_path / "three.onnx", np.zeros((SIGNAL_SPEC.width, 3)))
    with pytest.raises(PolicyError, match=r"expected an output of \[batch, 8\] float32 scores"):
        load_policy("signals", str(path))


def test_a_model_declaring_another_spec_is_refused(tmp_path):
    path = linear_model(
        tmp_path / "v2.onnx", max_pressure_weights(), meta={"twin_spec": "signals/2"}
    )
    with pytest.raises(PolicyError, match=r"declares spec 'signals/2'.*signals/1"):
        load_policy("signals", str(path))


def test_missing_and_corrupt_model_files_are_user_errors(tmp_path):
    with pytest.raises(PolicyError, match="no such ONNX model file"):
        load_policy("signals", str(tmp_path / "nope.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(PolicyError, match="not a valid ONNX model"):
        load_policy("signals", str(bad))
