"""Inline ``inline="always"`` helpers without deep-copying their freshly built IR.

Numba's ``InlineWorker.inline_function`` builds the callee's IR for one call site and hands it
to ``inline_ir``, which deep-copies it twice (a copy to mutate, and an "unmutated original"
that this path discards) and copies each block with its own memo, so every block drags a copy
of the whole variable scope along. In twin's traffic kernels, whose junction rules are inlined
helpers, a profile put 24 of 64 profiled seconds of the plan pass's compile there, and a
cold compile in one process takes ~9 % less without it (bench/RESULTS.md). The IR built for
the call belongs to that call alone, so this path skips the copies (the approach of
numba-cuda's PR #689, "Reduce copy overhead in inline passes"); Numba's typed inlining of
overloads, which passes a shared IR, keeps them. The compiled code is the same: the copies
only protected IR no one else holds. Off with ``TWIN_NUMBA_INLINE_COPY=1``.
"""

from __future__ import annotations

import copy
import os
import types

ENV = "TWIN_NUMBA_INLINE_COPY"

_installed = False
_original = None  # Numba's own inline_function, kept for tests


# stands in for the ``copy`` module inside ``inline_ir`` while it inlines fresh IR
_NO_COPY = types.SimpleNamespace(deepcopy=lambda x, memo=None: x)


def _same_shape(worker: type) -> bool:
    """Whether Numba's InlineWorker has the methods this patch calls, as written for."""
    import inspect

    try:
        own = list(inspect.signature(worker.inline_function).parameters)
        ir = list(inspect.signature(worker.inline_ir).parameters)
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        return False
    return (
        own == ["self", "caller_ir", "block", "i", "function", "arg_typs"]
        and ir[:6] == ["self", "caller_ir", "block", "i", "callee_ir", "callee_freevars"]
        and hasattr(worker, "run_untyped_passes")
    )


def install() -> bool:
    """Patch ``InlineWorker.inline_function`` (once); whether the patch is in place."""
    global _installed, _original
    if _installed:
        return True
    if os.environ.get(ENV, "0").strip() == "1":
        return False
    try:
        from numba.core import inline_closurecall as icc
    except ImportError:  # pragma: no cover - a Numba without this module inlines its own way
        return False
    worker = getattr(icc, "InlineWorker", None)
    if worker is None or getattr(icc, "copy", None) is not copy or not _same_shape(worker):
        return False  # pragma: no cover - not the code this patch was written for

    def inline_function(self, caller_ir, block, i, function, arg_typs=None):
        callee_ir = self.run_untyped_passes(function)  # built for this call site alone
        freevars = function.__code__.co_freevars
        icc.copy = _NO_COPY  # Numba compiles under its global lock: no other compile sees it
        try:
            return self.inline_ir(caller_ir, block, i, callee_ir, freevars, arg_typs=arg_typs)
        finally:
            icc.copy = copy

    _original = worker.inline_function
    worker.inline_function = inline_function
    _installed = True
    return True
