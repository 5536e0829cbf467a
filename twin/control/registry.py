"""Policies by name: built-in baselines, the ``twin.policies`` entry-point group, ONNX files.

A scenario names a policy the same way whatever it is: ``[control] signals = "max_pressure"``
(a baseline), ``signals = "my_package_policy"`` (a third-party policy a package registers in
its metadata: ``[project.entry-points."twin.policies"] my_package_policy =
"my_package:MyPolicy"``) or ``signals = "policies/my_signal.onnx"`` (an ONNX model checked
against the observation spec). Entry points and built-ins are classes (or factories) called
with no arguments; what they make must have ``kind``, ``name`` and ``act``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

from twin.control.policy import Policy, PolicyError

ENTRY_POINT_GROUP = "twin.policies"
KINDS = ("signals", "charging")

_BUILTIN: dict[str, dict[str, Callable[[], Policy]]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str) -> Callable:
    """Class decorator: a built-in baseline of ``kind`` named ``name``."""

    def wrap(factory: Callable[[], Policy]) -> Callable[[], Policy]:
        _BUILTIN[kind][name] = factory
        return factory

    return wrap


_BUILTIN_MODULES = {
    "signals": "twin.control.signal_baselines",
    "charging": "twin.control.charging_baselines",
}


def _load_builtins(kind: str) -> None:
    import_module(_BUILTIN_MODULES[kind])  # its classes register themselves


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known(kind: str) -> list[str]:
    """Names a scenario may use for ``kind``: baselines, then installed entry points."""
    _load_builtins(kind)
    eps = [n for n in sorted(_entry_points()) if n not in _BUILTIN[kind]]
    return [*_BUILTIN[kind], *eps]


def describe(kind: str, name: str) -> str:
    """The first line of a policy's docstring (built-ins) or its entry point's target."""
    _load_builtins(kind)
    factory = _BUILTIN[kind].get(name)
    if factory is None:
        ep = _entry_points().get(name)
        return f"entry point {ep.value}" if ep is not None else ""
    doc = (factory.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def load_policy(kind: str, name: str) -> Policy:
    """The policy ``name`` of ``kind`` (see the module docstring); PolicyError if unknown or
    if it does not satisfy the contract."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _load_builtins(kind)
    if name.lower().endswith(".onnx"):
        from twin.control.onnx import load_onnx_policy

        return load_onnx_policy(kind, Path(name))
    factory = _BUILTIN[kind].get(name)
    if factory is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise PolicyError(
                f"control.{kind}: unknown policy {name!r}; known: {', '.join(known(kind))}, "
                f"or an ONNX model file (*.onnx)"
            )
        try:
            factory = ep.load()
        except Exception as exc:  # a broken third-party package: say which entry point
            raise PolicyError(
                f"control.{kind}: entry point {name!r} ({ep.value}) in group "
                f"{ENTRY_POINT_GROUP!r} failed to load: {exc}"
            ) from exc
    policy = factory()
    missing = [a for a in ("kind", "name", "act") if not hasattr(policy, a)]
    if missing:
        raise PolicyError(f"control.{kind}: policy {name!r} lacks {', '.join(missing)}")
    if policy.kind != kind:
        raise PolicyError(
            f"control.{kind}: policy {name!r} is a {policy.kind!r} policy, not {kind!r}"
        )
    return policy
