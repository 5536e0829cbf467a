"""Turn movements at junctions and the phases of signalised intersections.

Pure geometry on bearings (degrees clockwise from north) and lane counts; the compiler calls
these once per junction. Right-hand traffic throughout (a right turn is the short turn).
"""

from __future__ import annotations

import numpy as np

from twin.network.road import TURN_LEFT, TURN_NAMES, TURN_RIGHT, TURN_THROUGH, TURN_U
from twin.network.tags import parse_turn_lanes

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


def fork_lanes(
    turns: list[int],
    ranges: list[tuple[int, int]],
    angles_deg: list[float],
    out_lanes: list[int],
    out_rank: list[int],
    lanes: int,
) -> list[tuple[int, int]]:
    """Default lanes where a road forks into several "through" branches (a motorway exit).

    The main branch (most lanes, then higher road class, then straightest) keeps every lane
    its range had; each other through branch keeps only as many lanes as it has, at most all
    but one, on its own side: the kerb lanes for a branch to the right of the main one (an
    off-ramp), the median lanes for one to its left. So a car waiting for a full ramp holds
    up one lane, not all of them, as in SUMO's netconvert and real lane markings.
    """
    through = [i for i, t in enumerate(turns) if t == TURN_THROUGH]
    top = lanes - 1
    if len(through) < 2 or top < 1:
        return ranges
    main = max(through, key=lambda i: (out_lanes[i], out_rank[i], -abs(angles_deg[i])))
    out = list(ranges)
    for i in through:
        if i == main:
            continue
        n = min(max(out_lanes[i], 1), top)
        out[i] = (0, n - 1) if angles_deg[i] > angles_deg[main] else (top - n + 1, top)
    return out


# Which OSM turn:lanes values serve each twin turn type, best first: a movement uses the lanes
# of the first tier that has any. Judgement, after the OSM wiki "Key:turn" and SUMO's
# netconvert (--osm.turn-lanes): unmarked ("none") lanes carry through traffic; a left turn
# with no lane marked left may use a "reverse" lane; a U-turn uses "reverse" lanes, else the
# left-turn lanes, else the leftmost lane; a twin "through" that OSM calls slight may use the
# slight lanes; an unmarked rightmost (leftmost) lane also serves an unmarked right (left) turn.
_LEFT = frozenset({"left", "sharp_left", "slight_left"})
_RIGHT = frozenset({"right", "sharp_right", "slight_right"})
_THROUGH = frozenset({"through", "none", "merge_to_left", "merge_to_right"})
_TIERS: dict[int, tuple[frozenset[str] | str, ...]] = {
    TURN_LEFT: (_LEFT, frozenset({"reverse"}), "leftmost none"),
    TURN_THROUGH: (_THROUGH, frozenset({"slight_left", "slight_right"})),
    TURN_RIGHT: (_RIGHT, "rightmost none"),
    TURN_U: (frozenset({"reverse"}), frozenset({"left", "sharp_left"}), "leftmost"),
}


def _tier_positions(lanes: tuple[frozenset[str], ...], tier: frozenset[str] | str) -> list[int]:
    """Positions (0 = leftmost) of the lanes a tier picks."""
    last = len(lanes) - 1
    if tier == "leftmost":
        return [0]
    if tier == "leftmost none":
        return [0] if "none" in lanes[0] else []
    if tier == "rightmost none":
        return [last] if "none" in lanes[last] else []
    return [p for p, values in enumerate(lanes) if values & tier]


def turn_lane_ranges(
    turns: list[int], lanes: int, turn_lanes: str | None
) -> tuple[list[tuple[int, int]] | None, str | None]:
    """(first, last) lane of each movement from an OSM ``turn:lanes`` value, or (None, reason).

    The value lists lanes from the leftmost; twin's lane 0 is the rightmost, so position
    ``p`` is lane ``lanes - 1 - p``. It is used only when it has one entry per lane, every
    movement finds a contiguous run of lanes (see ``_TIERS``) and every lane serves some
    movement (so no vehicle is stranded in a lane); otherwise the reason is
    returned and the caller falls back to :func:`assign_lanes` for the whole link.
    """
    parsed = parse_turn_lanes(turn_lanes)
    if parsed is None:
        return None, "not mapped"
    if len(parsed) != lanes:
        return None, "entries differ from lane count"
    out = []
    for turn in turns:
        positions: list[int] = []
        for tier in _TIERS[turn]:
            if positions := _tier_positions(parsed, tier):
                break
        if not positions:
            return None, f"no lane for {TURN_NAMES[turn]}"
        if positions[-1] - positions[0] != len(positions) - 1:
            return None, f"lanes for {TURN_NAMES[turn]} not contiguous"
        out.append((lanes - 1 - positions[-1], lanes - 1 - positions[0]))
    used = {lane for first, last in out for lane in range(first, last + 1)}
    if turns and len(used) < lanes:  # e.g. a right-turn lane where the link has no right turn
        return None, "a lane serves no movement"
    return out, None


def left_only_lane(turns: list[int], ranges: list[tuple[int, int]]) -> bool:
    """Whether some lane serves only left and U-turn movements (a left-turn lane)."""
    used: dict[int, set[int]] = {}
    for turn, (first, last) in zip(turns, ranges, strict=True):
        for lane in range(first, last + 1):
            used.setdefault(lane, set()).add(turn)
    return any(TURN_LEFT in ts and ts <= {TURN_LEFT, TURN_U} for ts in used.values())


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
