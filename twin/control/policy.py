"""The policy contract, common to signal control and EV charging.

A policy is any object with a ``kind`` ("signals" or "charging"), a ``name``, and
``act(obs) -> np.ndarray`` returning one action per observation row: a phase index per
intersection (signals) or a charging set-point in kW per EV (charging). ``reset(seed)`` is
called once before a run. Baselines, Python classes and ONNX models all satisfy it.

The engine checks every action (:func:`check_actions`) and enforces the physical and safety
limits itself (minimum green, yellow, all-red and maximum green; charger power and battery
limits), so no policy can make an unsafe switch or overdraw a charger.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from twin.errors import TwinError
from twin.timefmt import format_clock


class PolicyError(TwinError):
    """A policy returned an invalid action, or a policy (model) does not match its spec."""


@runtime_checkable
class Policy(Protocol):
    """What the engine asks of a policy."""

    kind: str
    name: str

    def reset(self, seed: int) -> None:
        """Called once before a run (and on every environment reset)."""

    def act(self, obs: Any) -> np.ndarray:
        """One action per observation row."""


def check_actions(
    policy: Policy,
    actions: Any,
    *,
    rows: int,
    t_s: float,
    labels: list[str],
    low: np.ndarray | float,
    high: np.ndarray | float,
    integer: bool,
) -> np.ndarray:
    """``actions`` as a float64 array of ``rows`` values in ``[low, high]`` (integers where
    ``integer``), or a PolicyError naming the policy, the simulated time and the row."""

    def who() -> str:  # built only for an error message
        return f"policy {getattr(policy, 'name', type(policy).__name__)!r} at {format_clock(t_s)}"

    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{who()}: actions are not numbers ({exc})") from None
    if a.shape != (rows,):
        raise PolicyError(
            f"{who()}: expected {rows} actions (shape ({rows},)), got shape {a.shape}"
        )
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), (rows,))
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), (rows,))
    bad = ~np.isfinite(a) | (a < lo) | (a > hi)
    if integer:
        bad |= np.isfinite(a) & (a != np.round(a))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "an integer " if integer else ""
        raise PolicyError(
            f"{who()}: {labels[i]}: action {float(a[i])} is not {what}in [{lo[i]:g}, {hi[i]:g}]"
            + (f" ({int(bad.sum())} invalid actions in all)" if bad.sum() > 1 else "")
        )
    return a
