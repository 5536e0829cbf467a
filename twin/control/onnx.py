"""ONNX models as policies (onnxruntime), checked against the observation spec at load.

A model takes one float32 input of shape ``[batch, spec.width]`` (the rows of
:attr:`SignalObs.features` or of the charging observation) and returns, as its first output:

- signals: ``[batch, MAX_PHASES]`` scores (the engine takes the best phase that exists at each
  intersection) or ``[batch]`` phase indices;
- charging: ``[batch, 1]`` or ``[batch]`` set-points in kW.

A model may declare the spec it was trained on in its metadata (``twin_spec =
"signals/1"``); a different kind or version is refused. The batch dimension may be named
(dynamic) or fixed; the feature dimension must be fixed and match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twin.control.policy import PolicyError
from twin.control.spec import ObsSpec

FLOAT = "tensor(float)"


def spec_of(kind: str) -> ObsSpec:
    if kind == "signals":
        from twin.control.signals import SIGNAL_SPEC

        return SIGNAL_SPEC
    from twin.control.charging import CHARGING_SPEC

    return CHARGING_SPEC


def _dims(shape: list[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else "batch" for d in shape) + "]"


class OnnxPolicy:
    """A policy whose actions come from an ONNX model."""

    def __init__(self, kind: str, path: Path, session: Any, spec: ObsSpec) -> None:
        self.kind = kind
        self.name = path.name
        self.path = path
        self.spec = spec
        self._session = session
        self._input = session.get_inputs()[0].name
        out = session.get_outputs()[0]
        self._output = out.name
        self._scores = len(out.shape) == 2 and out.shape[1] == spec.n_outputs and kind == "signals"

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: Any) -> np.ndarray:
        x = np.ascontiguousarray(obs.features, dtype=np.float32)
        if len(x) == 0:
            return np.zeros(0)
        y = np.asarray(self._session.run([self._output], {self._input: x})[0])
        if self._scores:
            scores = np.where(obs.phase_mask, y.astype(np.float64), -np.inf)
            return np.argmax(scores, axis=1)
        return y.reshape(len(x)).astype(np.float64)


def load_onnx_policy(kind: str, path: Path) -> OnnxPolicy:
    """Load ``path`` as a ``kind`` policy; PolicyError if it is missing, unreadable or does not
    match the spec (saying what was expected and what was found)."""
    import onnxruntime as ort

    spec = spec_of(kind)
    where = f"control.{kind}: {path}"
    if not path.is_file():
        raise PolicyError(f"{where}: no such ONNX model file")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # the engine's threads are elsewhere; decisions are small
    opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise PolicyError(f"{where}: not a valid ONNX model ({exc})") from None
    declared = session.get_modelmeta().custom_metadata_map.get("twin_spec")
    if declared is not None and declared != f"{spec.kind}/{spec.version}":
        raise PolicyError(
            f"{where}: the model declares spec {declared!r}; this twin runs "
            f"{spec.kind!r} spec v{spec.version} ({spec.kind}/{spec.version})"
        )
    expect_in = (
        f"one float32 input of shape [batch, {spec.width}] ({spec.kind} spec v{spec.version})"
    )
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise PolicyError(f"{where}: expected {expect_in}; found {len(inputs)} inputs ({names})")
    inp = inputs[0]
    if inp.type != FLOAT or len(inp.shape) != 2 or inp.shape[1] != spec.width:
        raise PolicyError(
            f"{where}: expected {expect_in}; found input {inp.name!r} of type {inp.type} "
            f"and shape {_dims(inp.shape)}"
        )
    out = session.get_outputs()[0]
    if kind == "signals":
        ok = (len(out.shape) == 2 and out.shape[1] == spec.n_outputs and out.type == FLOAT) or (
            len(out.shape) == 1
        )
        expect_out = f"[batch, {spec.n_outputs}] float32 scores or [batch] phase indices"
    else:
        ok = out.type in (FLOAT, "tensor(double)") and (
            len(out.shape) == 1 or (len(out.shape) == 2 and out.shape[1] == 1)
        )
        expect_out = "[batch, 1] or [batch] float set-points in kW"
    if not ok:
        raise PolicyError(
            f"{where}: expected an output of {expect_out}; found {out.name!r} of type "
            f"{out.type} and shape {_dims(out.shape)}"
        )
    return OnnxPolicy(kind, path, session, spec)


def export_torch(module: Any, spec: ObsSpec, path: Path, output: str) -> None:
    """Export a PyTorch module reading raw ``[batch, spec.width]`` rows to ONNX at ``path``:
    one file (weights inside), the batch dimension dynamic, stamped with the spec it was
    trained on (``twin_spec``). Needs the ``train`` extra (torch, onnxscript)."""
    import onnx
    import torch

    torch.onnx.export(
        module.eval(), torch.ones(1, spec.width), path, input_names=["obs"],
        output_names=[output], dynamic_axes={"obs": {0: "batch"}, output: {0: "batch"}},
    )  # fmt: skip
    model = onnx.load(path, load_external_data=True)
    entry = model.metadata_props.add()
    entry.key, entry.value = "twin_spec", f"{spec.kind}/{spec.version}"
    onnx.save(model, path, save_as_external_data=False)
    Path(f"{path}.data").unlink(missing_ok=True)  # the exporter's weights, now inside
