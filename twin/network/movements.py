"""Turn movements at junctions and the phases of signalised intersections.

Pure geometry on bearings (degrees clockwise from north) and lane counts; the compiler calls
these once per junction. Right-hand traffic throughout (a right turn is the short turn).
"""

from __future__ import annotations

import numpy as np

from twin.network.road import TURN_LEFT, TURN_RIGHT, TURN_THROUGH, TURN_U

THROUGH_MAX_DEG = 30.0  # |turning angle| up to this is "through" (engineering judgement)
U_MIN_DEG = 150.0  # |turning angle| from this on is a U-turn
AXIS_TOLERANCE_DEG = 45.0  # a signal whose approach axes all lie within half this is one-phase


def turning_angle_deg(in_bearing: float, out_bearing: float) -> float:
    """Signed turning angle in (-180, 180]: positive turns right, negative turns left."""
    delta = (out_bearing - in_bearing) % 360.0
    return delta - 360.0 if delta > 180.0 else delta


def classify_turn(angle_deg: float, *, returns_to_origin: bool = False) -> int:
    """TURN_* for a turning angle; going back to the node one came from is always a U-turn."""
    if returns_to_origin or abs(angle_deg) >= U_MIN_DEG:
        return TURN_U
    if angle_deg > THROUGH_MAX_DEG:
        return TURN_RIGHT
    if angle_deg < -THROUGH_MAX_DEG:
        return TURN_LEFT
    return TURN_THROUGH


def assign_lanes(turns: list[int], lanes: int) -> list[tuple[int, int]]:
    """(first, last) lane of the approach for each movement; lane 0 is the rightmost.

    The rule of SUMO's netconvert default: through traffic may use every lane, right turns
    the rightmost, left and U-turns the leftmost. With no through movement the lanes are
    split: the right half (rounded up) for right turns, the rest for left and U-turns.
    """
    top = max(lanes, 1) - 1
    if top == 0:
        return [(0, 0)] * len(turns)
    has_through = TURN_THROUGH in turns
    has_right = TURN_RIGHT in turns
    has_left = any(t in (TURN_LEFT, TURN_U) for t in turns)
    split = (top + 2) // 2  # lanes given to right turns when there is no through movement
    out = []
    for turn in turns:
        if turn == TURN_THROUGH:
            out.append((0, top))
        elif turn == TURN_RIGHT:
            out.append((0, 0) if has_through else (0, split - 1) if has_left else (0, top))
        else:
            out.append((top, top) if has_through else (split, top) if has_right else (0, top))
    return out


def group_approaches(bearings_deg: list[float], weights: list[float]) -> list[list[int]]:
    """Group a signal's approaches into phases by axis; returns lists of approach positions.

    The axis of the heaviest approach (by capacity) is the major axis; the approach axis
    farthest from it is the cross axis. Each approach goes with the nearer of the two axes:
    phase 0 serves the major axis, phase 1 the cross axis (the classic two-phase plan; two
    roads crossing at a sharp angle still get two phases). A signal whose approaches all lie
    within AXIS_TOLERANCE_DEG of one axis gets one phase.
    """
    if not bearings_deg:
        return []
    axes = np.asarray(bearings_deg, dtype=float) % 180.0

    def axis_diff(a: np.ndarray | float, b: float) -> np.ndarray:
        return np.abs((np.asarray(a) - b + 90.0) % 180.0 - 90.0)

    major = axes[int(np.argmax(np.asarray(weights, dtype=float)))]
    to_major = axis_diff(axes, major)
    if to_major.max() <= AXIS_TOLERANCE_DEG / 2:  # one axis only
        return [list(range(len(axes)))]
    cross = axes[int(np.argmax(to_major))]
    first = [i for i in range(len(axes)) if to_major[i] <= axis_diff(axes[i], cross)]
    second = [i for i in range(len(axes)) if i not in first]
    return [g for g in (first, second) if g]


def bearing_deg(x0: float, y0: float, x1: float, y1: float) -> float:
    """Compass bearing of the vector (x0, y0) -> (x1, y1) in projected metres."""
    bearing = float(np.degrees(np.arctan2(x1 - x0, y1 - y0)) % 360.0)
    return 0.0 if bearing >= 360.0 else bearing
