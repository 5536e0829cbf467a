"""Work around Mesa 3.3's agent-id registry, which keeps every model alive.

``mesa.Agent._ids`` is a class-level ``defaultdict`` keyed by model (the per-model id
counter), so each model ever built stays referenced, with its agents, network and arrays:
~40 MB per Baltimore model, a leak for sweeps and for training environments that build a
model per episode (fixed upstream after 3.3). Keying the counters weakly lets a model go when
nothing else holds it; ids stay unique per model and count from 1, as Mesa's do.
"""

from __future__ import annotations

import itertools
import weakref

import mesa


class _WeakModelIds(weakref.WeakKeyDictionary):
    """Per-model id counters that do not keep their model alive."""

    def __getitem__(self, model: mesa.Model) -> itertools.count:
        try:
            return super().__getitem__(model)
        except KeyError:
            counter = itertools.count(1)
            self[model] = counter
            return counter


def install() -> None:
    """Replace Mesa's registry (idempotent)."""
    if not isinstance(mesa.Agent._ids, _WeakModelIds):
        mesa.Agent._ids = _WeakModelIds()
