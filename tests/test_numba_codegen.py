"""twin._numba_codegen: twin's kernels skip LLVM's per-function pass, with the same results."""

from __future__ import annotations

import math
import re

import numpy as np
from numba import njit, types
from numba.core import codegen

import twin._jitcache  # noqa: F401  (installs the patch, as every kernel module does)
from twin import _numba_codegen
from twin.traffic import kernel_math


def _kernel(pos, speed, out):
    """Loops, branches, a reduction and sqrt: code LLVM's passes reorder if they may."""
    n = pos.shape[0]
    total = 0.0
    for i in range(n):
        best = np.inf
        for j in range(n):
            d = pos[j] - pos[i]
            if 0.0 < d < best:
                best = d
        v = speed[i] + 0.1 * i
        if best < np.inf:
            v = min(v, math.sqrt(2.0 * 3.5 * best + speed[i] * speed[i]) - 0.7)
        out[i] = v
        total += v * v / (1.0 + pos[i])
    return total


SIG = (types.float64[:], types.float64[:], types.float64[:])


def _spy(monkeypatch) -> list[str]:
    """Names of the functions defined in modules that went through Numba's function pass."""
    seen: list[str] = []
    original = _numba_codegen._original

    def spy(self, ll_module):
        seen.extend(f.name for f in ll_module.functions if not f.is_declaration)
        return original(self, ll_module)

    monkeypatch.setattr(_numba_codegen, "_original", spy)
    return seen


def test_twins_functions_skip_the_function_pass_and_others_do_not(monkeypatch) -> None:
    assert _numba_codegen.install()
    seen = _spy(monkeypatch)
    # a fresh compile of twin's own code (its module stays twin.traffic.kernel_math)
    njit(kernel_math.safe_speed.py_func).compile((types.float64,) * 4)
    assert not [n for n in seen if "4twin" in n]
    njit(_kernel).compile(SIG)  # this test module's code: Numba's own pipeline
    assert [n for n in seen if "_kernel" in n]


def test_without_the_function_pass_the_results_are_the_same(monkeypatch) -> None:
    assert _numba_codegen.install()
    seen = _spy(monkeypatch)
    monkeypatch.setattr(_numba_codegen, "PATTERN", re.compile(r"(?:cfunc\.)?_ZN"))  # all count
    patched = njit(_kernel)
    patched.compile(SIG)
    assert not [n for n in seen if "_kernel" in n]
    monkeypatch.setattr(codegen.CPUCodeLibrary, "_optimize_functions", _numba_codegen._original)
    plain = njit(_kernel)
    plain.compile(SIG)
    assert [n for n in seen if "_kernel" in n]
    rng = np.random.default_rng(7)
    pos, speed = rng.uniform(0, 500, 300), rng.uniform(0, 20, 300)
    out1, out2 = np.empty(300), np.empty(300)
    assert patched(pos, speed, out1) == plain(pos, speed, out2)  # bit for bit
    assert np.array_equal(out1, out2)
    assert np.isfinite(out1).all() and (out1 != speed).any()  # the kernel did work
