"""The inlining without IR copies (twin._numba_inline): the same machine code as Numba's own."""

from __future__ import annotations

import copy
import re

import numpy as np
from numba import njit, types
from numba.core import inline_closurecall

import twin._jitcache  # noqa: F401  (installs the patch, as every kernel module does)
from twin import _numba_inline


def _kernel_source():
    """A fresh kernel with nested inlined helpers, loops, branches and a tuple return."""

    @njit(inline="always")
    def clamp(x, lo, hi):
        if x < lo:
            return lo
        if x > hi:
            return hi
        return x

    @njit(inline="always")
    def gap(pos, i, n):
        best = np.inf
        for j in range(n):
            d = pos[j] - pos[i]
            if 0.0 < d < best:
                best = d
        return clamp(best, 0.0, 100.0), best < np.inf

    def kernel(pos, speed, dt):
        n = pos.shape[0]
        moved = 0
        for i in range(n):
            g, seen = gap(pos, i, n)
            v = clamp(speed[i] + 1.0, 0.0, g / dt if seen else 30.0)
            speed[i] = v
            moved += v > 0.0
        return moved

    return kernel


SIG = (types.float64[:], types.float64[:], types.float64)


def _asm(dispatcher) -> str:
    """The machine code, with the per-definition version in mangled names taken out."""
    return re.sub(r"B(\d+)v\d+B", r"B\1B", dispatcher.inspect_asm(SIG))


def test_the_patched_inlining_compiles_the_same_machine_code(monkeypatch) -> None:
    assert _numba_inline.install()
    patched = njit(_kernel_source())
    patched.compile(SIG)
    monkeypatch.setattr(inline_closurecall.InlineWorker, "inline_function", _numba_inline._original)
    plain = njit(_kernel_source())
    plain.compile(SIG)
    assert _asm(patched) == _asm(plain)
    pos, speed = np.array([0.0, 5.0, 30.0]), np.array([10.0, 2.0, 0.0])
    s1, s2 = speed.copy(), speed.copy()
    assert patched(pos, s1, 1.0) == plain(pos, s2, 1.0) == 3
    assert s1.tolist() == s2.tolist() == [5.0, 3.0, 1.0]


def test_the_fresh_callee_ir_is_not_deep_copied(monkeypatch) -> None:
    calls = []
    deepcopy = copy.deepcopy

    def counting(x, memo=None):
        calls.append(type(x).__name__)
        return deepcopy(x, memo)

    assert _numba_inline.install()
    monkeypatch.setattr(copy, "deepcopy", counting)  # what Numba's inline_ir would call
    njit(_kernel_source()).compile(SIG)
    assert "Block" not in calls  # inline_ir copies the callee's blocks; here it did not
    monkeypatch.setattr(inline_closurecall.InlineWorker, "inline_function", _numba_inline._original)
    njit(_kernel_source()).compile(SIG)
    assert "Block" in calls  # Numba's own path does (the counter sees it)
