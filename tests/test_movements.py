"""Tests for twin.network.movements: bearings, turns, lanes and signal phases.

Right-hand traffic throughout: heading north (bearing 0) and leaving east (bearing 90) is a
right turn of +90 degrees; lane 0 is the rightmost (kerb) lane.
"""

from __future__ import annotations

import math

import pytest

from twin.network.movements import (
    AXIS_TOLERANCE_DEG,
    THROUGH_MAX_DEG,
    U_MIN_DEG,
    assign_lanes,
    bearing_deg,
    classify_turn,
    fork_lanes,
    group_approaches,
    left_only_lane,
    turn_lane_ranges,
    turning_angle_deg,
)
from twin.network.road import TURN_LEFT, TURN_RIGHT, TURN_THROUGH, TURN_U

U, L, T, R = TURN_U, TURN_LEFT, TURN_THROUGH, TURN_RIGHT


# --- bearing_deg ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dx", "dy", "expected"),
    [
        (0.0, 1.0, 0.0),  # north
        (1.0, 1.0, 45.0),
        (1.0, 0.0, 90.0),  # east
        (0.0, -1.0, 180.0),  # south
        (-1.0, 0.0, 270.0),  # west
        (-1.0, 1.0, 315.0),
        (1.0, -math.sqrt(3.0), 150.0),
    ],
)
def test_bearing_is_compass_degrees_clockwise_from_north(dx, dy, expected) -> None:
    assert bearing_deg(0.0, 0.0, dx, dy) == pytest.approx(expected)
    # only the difference matters, not where it starts; the scale does not matter either
    assert bearing_deg(500_000.0, 4e6, 500_000.0 + 7 * dx, 4e6 + 7 * dy) == pytest.approx(expected)


def test_bearing_is_in_0_360() -> None:
    for k in range(-719, 720, 5):  # never a multiple of 360: sin() there is +-1e-16, not 0
        b = bearing_deg(0.0, 0.0, math.sin(math.radians(k)), math.cos(math.radians(k)))
        assert 0.0 <= b < 360.0
        assert b == pytest.approx(k % 360.0, abs=1e-9)


def test_bearing_reverses_by_180() -> None:
    for x, y in [(3.0, 4.0), (-2.0, 5.0), (1.0, -1.0), (-7.0, -0.5)]:
        there = bearing_deg(0.0, 0.0, x, y)
        back = bearing_deg(x, y, 0.0, 0.0)
        assert (back - there) % 360.0 == pytest.approx(180.0)


# --- turning_angle_deg / classify_turn ------------------------------------------------------


@pytest.mark.parametrize(
    ("in_b", "out_b", "angle"),
    [
        (0.0, 90.0, 90.0),  # north, then east: a right turn
        (0.0, 270.0, -90.0),  # north, then west: a left turn
        (0.0, 0.0, 0.0),
        (350.0, 10.0, 20.0),  # across north, to the right
        (10.0, 350.0, -20.0),  # across north, to the left
        (90.0, 180.0, 90.0),  # east, then south: right
        (180.0, 90.0, -90.0),  # south, then east: left
        (270.0, 0.0, 90.0),  # west, then north: right
        (0.0, 180.0, 180.0),  # straight back: +180, never -180
        (45.0, 225.0, 180.0),
        (0.0, 181.0, -179.0),
        (0.0, 179.0, 179.0),
    ],
)
def test_turning_angle_sign_is_right_positive(in_b, out_b, angle) -> None:
    assert turning_angle_deg(in_b, out_b) == pytest.approx(angle)


def test_turning_angle_range_and_symmetry() -> None:
    for a in range(0, 360, 7):
        for b in range(0, 360, 11):
            t = turning_angle_deg(a, b)
            assert -180.0 < t <= 180.0
            assert (a + t - b) % 360.0 == pytest.approx(0.0, abs=1e-9) or (
                a + t - b
            ) % 360.0 == pytest.approx(360.0)
            if abs(t) < 180.0:  # swapping in and out mirrors the turn
                assert turning_angle_deg(b, a) == pytest.approx(-t)


@pytest.mark.parametrize(
    ("angle", "turn"),
    [
        (0.0, T),
        (THROUGH_MAX_DEG, T),  # the band edge is still through
        (-THROUGH_MAX_DEG, T),
        (THROUGH_MAX_DEG + 0.1, R),
        (-THROUGH_MAX_DEG - 0.1, L),
        (90.0, R),
        (-90.0, L),
        (U_MIN_DEG - 0.1, R),
        (-(U_MIN_DEG - 0.1), L),
        (U_MIN_DEG, U),  # from U_MIN_DEG on it is a U-turn, both ways
        (-U_MIN_DEG, U),
        (180.0, U),
    ],
)
def test_classify_turn_bands(angle, turn) -> None:
    assert classify_turn(angle) == turn


def test_classify_turn_back_to_origin_is_always_u() -> None:
    for angle in (0.0, 45.0, -45.0, 90.0, -120.0):
        assert classify_turn(angle, returns_to_origin=True) == U


def test_classify_turn_of_compass_moves() -> None:
    north, east, south, west = 0.0, 90.0, 180.0, 270.0
    assert classify_turn(turning_angle_deg(north, east)) == R
    assert classify_turn(turning_angle_deg(north, west)) == L
    assert classify_turn(turning_angle_deg(north, north)) == T
    assert classify_turn(turning_angle_deg(north, south)) == U
    assert classify_turn(turning_angle_deg(west, north)) == R  # heading west, turning north
    assert classify_turn(turning_angle_deg(west, south)) == L
    assert classify_turn(turning_angle_deg(east, south)) == R
    assert classify_turn(turning_angle_deg(south, east)) == L


# --- assign_lanes -----------------------------------------------------------------------


@pytest.mark.parametrize("turns", [[R, T, L], [T], [R, L, U], [U], [R], []])
@pytest.mark.parametrize("lanes", [0, 1])
def test_assign_lanes_single_lane_serves_everything(turns, lanes) -> None:
    assert assign_lanes(turns, lanes) == [(0, 0)] * len(turns)


@pytest.mark.parametrize(
    ("lanes", "expected"),
    [  # turns [right, through, left, U]: right on the kerb lane, left/U on the median lane
        (2, [(0, 0), (0, 1), (1, 1), (1, 1)]),
        (3, [(0, 0), (0, 2), (2, 2), (2, 2)]),
        (4, [(0, 0), (0, 3), (3, 3), (3, 3)]),
    ],
)
def test_assign_lanes_with_through(lanes, expected) -> None:
    assert assign_lanes([R, T, L, U], lanes) == expected


@pytest.mark.parametrize(
    ("lanes", "expected"),
    [  # no through movement: the right half (rounded up) turns right, the rest left/U
        (2, [(0, 0), (1, 1), (1, 1)]),
        (3, [(0, 1), (2, 2), (2, 2)]),
        (4, [(0, 1), (2, 3), (2, 3)]),
    ],
)
def test_assign_lanes_without_through(lanes, expected) -> None:
    assert assign_lanes([R, L, U], lanes) == expected


@pytest.mark.parametrize("lanes", [2, 3, 4])
def test_assign_lanes_single_kind_gets_every_lane(lanes) -> None:
    top = lanes - 1
    assert assign_lanes([T], lanes) == [(0, top)]
    assert assign_lanes([R], lanes) == [(0, top)]
    assert assign_lanes([L], lanes) == [(0, top)]
    assert assign_lanes([L, U], lanes) == [(0, top), (0, top)]
    # through and right only: right keeps to the kerb lane
    assert assign_lanes([T, R], lanes) == [(0, top), (0, 0)]
    # through and left only: left keeps to the median lane
    assert assign_lanes([L, T], lanes) == [(top, top), (0, top)]


def test_fork_off_ramp_gets_the_kerb_lane_only() -> None:
    # a 3-lane motorway forks into a 3-lane mainline (straight on) and a 1-lane off-ramp
    # bearing 20 degrees right: both are "through", and only the kerb lane may take the ramp
    turns = [T, T]
    ranges = fork_lanes(turns, assign_lanes(turns, 3), [0.0, 20.0], [3, 1], [14, 9], 3)
    assert ranges == [(0, 2), (0, 0)]
    # a left exit takes the median lane; a 2-lane ramp takes two lanes, never all three
    assert fork_lanes(turns, [(0, 2), (0, 2)], [2.0, -25.0], [3, 1], [14, 9], 3) == [
        (0, 2),
        (2, 2),
    ]
    assert fork_lanes(turns, [(0, 2), (0, 2)], [0.0, 20.0], [3, 2], [14, 9], 3) == [
        (0, 2),
        (0, 1),
    ]
    # equal lanes: the higher road class is the main branch, wherever it points
    assert fork_lanes(turns, [(0, 1), (0, 1)], [15.0, -5.0], [2, 2], [9, 14], 2) == [
        (0, 0),
        (0, 1),
    ]


def test_fork_lanes_leaves_other_cases_alone() -> None:
    assert fork_lanes([T, T], [(0, 0), (0, 0)], [0.0, 20.0], [3, 1], [14, 9], 1) == [
        (0, 0),
        (0, 0),
    ]
    ranges = assign_lanes([R, T, L], 3)
    assert fork_lanes([R, T, L], ranges, [80.0, 0.0, -80.0], [1, 3, 1], [3, 12, 3], 3) == ranges


@pytest.mark.parametrize("lanes", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    "turns",
    [[R, T, L, U], [R, L, U], [R, L], [T, U], [R, U], [L], [T, T, R], [R, R, L, L]],
)
def test_assign_lanes_invariants(lanes, turns) -> None:
    """Ranges lie within the approach, keep the order right <= through <= left, and together
    use every lane (no lane leads nowhere)."""
    ranges = assign_lanes(turns, lanes)
    assert len(ranges) == len(turns)
    used: set[int] = set()
    for turn, (first, last) in zip(turns, ranges, strict=True):
        assert 0 <= first <= last <= lanes - 1
        used.update(range(first, last + 1))
        if turn == R:
            assert first == 0  # a right turn always starts from the kerb lane
        if turn in (L, U):
            assert last == lanes - 1  # a left or U-turn always reaches the median lane
    assert used == set(range(lanes))
    right = [r for t, r in zip(turns, ranges, strict=True) if t == R]
    left = [r for t, r in zip(turns, ranges, strict=True) if t in (L, U)]
    if right and left and T not in turns and lanes >= 2:
        # a split approach: right-turn lanes and left-turn lanes do not overlap
        assert max(r[1] for r in right) < min(r[0] for r in left)


# --- group_approaches -------------------------------------------------------------------


def test_group_approaches_four_leg_cross() -> None:
    # in-bearings: from the south heading north, from the west heading east, ...
    bearings = [0.0, 90.0, 180.0, 270.0]
    assert group_approaches(bearings, [1900.0, 1600.0, 1900.0, 1600.0]) == [[0, 2], [1, 3]]
    # the heaviest approach picks the major axis, which is phase 0
    assert group_approaches(bearings, [1600.0, 3800.0, 1600.0, 3800.0]) == [[1, 3], [0, 2]]
    # real approaches are never exactly on the compass: 10 degrees off still groups by road
    assert group_approaches([3.0, 95.0, 187.0, 268.0], [2.0, 1.0, 2.0, 1.0]) == [[0, 2], [1, 3]]


def test_group_approaches_t_junction() -> None:
    # main road east-west (approaches heading east 90 and west 270), side road from the south
    assert group_approaches([90.0, 270.0, 0.0], [3800.0, 3800.0, 1600.0]) == [[0, 1], [2]]
    # the order of the approaches does not matter, only their axes
    assert group_approaches([0.0, 270.0, 90.0], [1600.0, 3800.0, 3800.0]) == [[1, 2], [0]]
    # a one-way main road: one main approach and the side road
    assert group_approaches([90.0, 180.0], [3800.0, 1600.0]) == [[0], [1]]


def test_group_approaches_skewed_junction() -> None:
    # two roads crossing at 60 degrees: one phase per road
    bearings = [0.0, 60.0, 180.0, 240.0]
    assert group_approaches(bearings, [1900.0, 1600.0, 1900.0, 1600.0]) == [[0, 2], [1, 3]]
    # a skew up to the tolerance either side of the cross axis still splits by road
    off = 90.0 - AXIS_TOLERANCE_DEG + 1.0
    assert group_approaches([0.0, off, 180.0, 180.0 + off], [2.0, 1.0, 2.0, 1.0]) == [
        [0, 2],
        [1, 3],
    ]


def test_group_approaches_single_axis_and_empty() -> None:
    assert group_approaches([], []) == []
    assert group_approaches([45.0], [1.0]) == [[0]]
    # both directions of one road (a mid-block signal): one phase
    assert group_approaches([45.0, 225.0], [1.0, 1.0]) == [[0, 1]]


@pytest.mark.parametrize(
    "bearings",
    [[0.0, 90.0, 180.0, 270.0], [12.0, 77.0, 200.0], [5.0, 50.0, 95.0, 140.0, 185.0, 230.0]],
)
def test_group_approaches_partition(bearings) -> None:
    """Every approach is in exactly one phase, and there are at most two phases."""
    groups = group_approaches(bearings, [1.0 + i for i in range(len(bearings))])
    assert 1 <= len(groups) <= 2
    assert sorted(i for g in groups for i in g) == list(range(len(bearings)))
    assert all(g for g in groups)


def test_group_approaches_sharply_skewed_crossing_gets_two_phases() -> None:
    # road A north-south (0/180), road B crossing at 35 degrees (35/215)
    assert group_approaches([0.0, 35.0, 180.0, 215.0], [2.0, 1.0, 2.0, 1.0]) == [
        [0, 2],
        [1, 3],
    ]


# --- lanes from OSM turn:lanes ------------------------------------------------------------

L, T, R, U = TURN_LEFT, TURN_THROUGH, TURN_RIGHT, TURN_U


@pytest.mark.parametrize(
    ("value", "lanes", "turns", "expected"),
    [
        # leftmost entry is twin's highest lane: a left lane, a through lane, a shared one
        ("left|through|through;right", 3, [L, T, R, U], [(2, 2), (0, 1), (0, 0), (2, 2)]),
        # unmarked lanes carry through traffic; an unmarked rightmost lane the right turn
        ("left|none", 2, [L, T, R], [(1, 1), (0, 0), (0, 0)]),
        ("left||", 3, [L, T], [(2, 2), (0, 1)]),
        # U-turns: a reverse lane first, else the left lanes, else the leftmost lane
        ("reverse|left|through", 3, [U, L, T], [(2, 2), (1, 1), (0, 0)]),
        ("left;through|through;right", 2, [U, L, T, R], [(1, 1), (1, 1), (0, 1), (0, 0)]),
        ("through|through;right", 2, [U, T, R], [(1, 1), (0, 1), (0, 0)]),
        # no lane marked left: a left turn may use the reverse lane
        ("reverse|through", 2, [L, T], [(1, 1), (0, 0)]),
        # twin's "through" that OSM calls slight
        ("slight_left|right", 2, [T, R], [(1, 1), (0, 0)]),
        ("left|left|through", 3, [L, T], [(1, 2), (0, 0)]),
    ],
)
def test_turn_lane_ranges(value, lanes, turns, expected) -> None:
    ranges, why = turn_lane_ranges(turns, lanes, value)
    assert why is None
    assert ranges == expected


@pytest.mark.parametrize(
    ("value", "lanes", "turns", "reason"),
    [
        (None, 2, [T], "not mapped"),
        ("left|through", 3, [L, T], "entries differ from lane count"),
        ("left|through", 2, [L, T, R], "no lane for right"),
        ("through|right", 2, [L, T, R], "no lane for left"),
        ("right|right", 2, [T, R], "no lane for through"),
        ("left|through|left", 3, [L, T], "lanes for left not contiguous"),
        ("left|through|right", 3, [L, R], "a lane serves no movement"),
    ],
)
def test_turn_lane_ranges_fall_back(value, lanes, turns, reason) -> None:
    assert turn_lane_ranges(turns, lanes, value) == (None, reason)


def test_left_only_lane() -> None:
    assert left_only_lane([L, T, U], [(1, 1), (0, 0), (1, 1)])
    assert not left_only_lane([L, T], [(1, 1), (0, 1)])  # the left lane is shared
    assert not left_only_lane([U, T], [(1, 1), (0, 0)])  # U-turns alone are no left lane
