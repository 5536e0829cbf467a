"""Observation specs: the versioned, documented layout a policy (and an ONNX model) reads.

A spec lists the features of one observation row, in order, with units. The engine builds a
batch of rows (one per signalised intersection, or one per plugged-in EV) as a float32 array
of shape ``(rows, spec.width)``; an ONNX model takes that array as its one input and returns
``spec.n_outputs`` numbers per row. A model is checked against the spec when it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Feature:
    """One column of an observation row."""

    name: str
    unit: str
    doc: str
    low: float = 0.0  # bounds for observation spaces (finite, as RL libraries expect)
    high: float = 1e6


@dataclass(frozen=True)
class ObsSpec:
    """The layout of one kind of decision: observation columns and what a policy returns."""

    kind: str  # "signals" or "charging"
    version: int
    features: tuple[Feature, ...]
    n_outputs: int  # numbers per row an ONNX model returns
    output_doc: str

    @property
    def width(self) -> int:
        return len(self.features)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def low(self) -> np.ndarray:
        return np.array([f.low for f in self.features], dtype=np.float32)

    @property
    def high(self) -> np.ndarray:
        return np.array([f.high for f in self.features], dtype=np.float32)

    def index(self, name: str) -> int:
        """Column of feature ``name``."""
        return self.columns.index(name)

    def markdown(self) -> str:
        """The spec as a Markdown table (for docs and model cards)."""
        rows = [
            f"{self.kind} observation spec v{self.version}: {self.width} float32 columns per "
            f"row; output: {self.output_doc}",
            "",
            "| column | name | unit | meaning |",
            "|---|---|---|---|",
        ]
        rows += [f"| {i} | `{f.name}` | {f.unit} | {f.doc} |" for i, f in enumerate(self.features)]
        return "\n".join(rows)
