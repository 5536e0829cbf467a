"""Compile twin's kernels without LLVM's per-function pass before linking.

Numba optimises each function of a freshly lowered module with LLVM's function pipeline
(``CPUCodeLibrary._optimize_functions``), then links the module into its library and runs the
module pipeline over the whole (a cheap pass, reference-count pruning, then the full one at
``NUMBA_OPT``). The module pipeline repeats the function simplifications, so the first pass
only makes the linked module smaller. On twin's large inlined kernels it was the largest LLVM
cost: 18 of 59 s compiling the five traffic passes, against 5 s for the module pipelines,
which take 13 s without it (bench/RESULTS.md). This skips it for twin's own functions (their
mangled names start ``_ZN4twin``); other code, a user's kernels included, compiles as Numba
compiles it. The results are the same (no fast-math: each pipeline keeps IEEE semantics); the
kernel ran no slower. Off with ``TWIN_NUMBA_FUNCTION_PASSES=1``.
"""

from __future__ import annotations

import inspect
import os
import re

ENV = "TWIN_NUMBA_FUNCTION_PASSES"

#: mangled names of functions defined in twin's modules (Itanium: ``_ZN`` + length + name), and
#: of the wrappers Numba builds around them (``cpython.``/``cfunc.`` entry points)
PATTERN = re.compile(r"(?:cfunc\.)?_ZN(?:7cpython)?4twin")

_installed = False
_original = None  # Numba's own _optimize_functions, kept for tests


def _ours(ll_module) -> bool:
    """Whether the module defines a function of twin's (a declaration alone does not count)."""
    return any(not f.is_declaration and PATTERN.match(f.name) for f in ll_module.functions)


def install() -> bool:
    """Patch ``CPUCodeLibrary._optimize_functions`` (once); whether the patch is in place."""
    global _installed, _original
    if _installed:
        return True
    if os.environ.get(ENV, "0").strip() == "1":
        return False
    try:
        from numba.core.codegen import CPUCodeLibrary
    except ImportError:  # pragma: no cover - a Numba without this class
        return False
    original = getattr(CPUCodeLibrary, "_optimize_functions", None)
    try:
        params = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):  # pragma: no cover
        return False
    if params != ["self", "ll_module"]:  # pragma: no cover - not the code this was written for
        return False

    def _optimize_functions(self, ll_module):
        if _ours(ll_module):
            # what Numba's own pass sets first; the module pipeline does the optimising
            ll_module.data_layout = self._codegen._data_layout
            return
        _original(self, ll_module)

    _original = original
    CPUCodeLibrary._optimize_functions = _optimize_functions
    _installed = True
    return True
