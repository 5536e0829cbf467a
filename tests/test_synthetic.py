"""Tests for twin.network.synthetic: grids and corridors compiled like real maps."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from pyproj import Transformer

from twin.network.road import (
    CTRL_ALL_WAY_STOP,
    CTRL_PRIORITY,
    CTRL_ROUNDABOUT,
    CTRL_SIGNAL,
    SIGN_GIVE_WAY,
    SIGN_NONE,
    SIGN_STOP,
    TURN_LEFT,
    TURN_RIGHT,
    TURN_THROUGH,
    TURN_U,
    RoadNet,
)
from twin.network.synthetic import (
    CRS,
    SYNTHETIC_HIGHWAY,
    corridor_roadnet,
    crossroads_roadnet,
    grid_roadnet,
    roundabout_roadnet,
    t_junction_roadnet,
)
from twin.network.tags import DEFAULTS, HIGHWAY_CLASSES


def _node(net: RoadNet, nx_: int, i: int, j: int) -> int:
    node = j * nx_ + i
    assert np.allclose(
        [net.node_x_m[node] - net.node_x_m[0], net.node_y_m[node] - net.node_y_m[0]],
        [i * 200.0, j * 200.0],
    )
    return node


@pytest.mark.parametrize(("nx_", "ny"), [(2, 2), (3, 4), (5, 5), (1, 3)])
def test_grid_counts_lengths_and_attributes(nx_: int, ny: int) -> None:
    net = grid_roadnet(nx_, ny, spacing_m=150.0, lanes=2, speed_mps=10.0)
    assert net.n_nodes == nx_ * ny
    assert net.n_links == 2 * (nx_ * (ny - 1) + ny * (nx_ - 1))
    assert np.allclose(net.link_length_m, 150.0)
    assert np.all(net.link_lanes == 2)
    assert np.all(net.link_speed_mps == 10.0)
    cap = DEFAULTS[SYNTHETIC_HIGHWAY].capacity_vph_per_lane
    assert np.all(net.link_capacity_vph == 2 * cap)
    assert np.all(net.link_highway == HIGHWAY_CLASSES.index(SYNTHETIC_HIGHWAY))
    assert not net.link_speed_default.any() and not net.link_lanes_default.any()
    # every link joins grid neighbours: its geometry is one block long
    dx = net.node_x_m[net.link_to] - net.node_x_m[net.link_from]
    dy = net.node_y_m[net.link_to] - net.node_y_m[net.link_from]
    assert np.allclose(np.hypot(dx, dy), 150.0)
    assert np.all((dx == 0) | (dy == 0))
    # CSR out/in lists agree with link_from/link_to
    for n in range(net.n_nodes):
        assert set(net.out_links(n)) == set(np.flatnonzero(net.link_from == n))
        assert set(net.in_links(n)) == set(np.flatnonzero(net.link_to == n))
    assert net.meta["crs"] == CRS and net.meta["source"].startswith("synthetic:grid")


def test_grid_node_numbering_and_lonlat() -> None:
    net = grid_roadnet(4, 3)
    for j in range(3):
        for i in range(4):
            _node(net, 4, i, j)
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        net.node_x_m, net.node_y_m
    )
    assert np.allclose(net.node_lon, lon) and np.allclose(net.node_lat, lat)
    assert -77.0 < net.node_lon.min() < net.node_lon.max() < -76.0  # near Baltimore
    assert 39.0 < net.node_lat.min() < net.node_lat.max() < 39.5


def test_interior_node_movements_and_turn_types() -> None:
    net = grid_roadnet(3, 3)
    centre = _node(net, 3, 1, 1)
    # direction of travel of each link, as (dx, dy) unit steps
    step = np.sign(
        np.column_stack(
            [
                net.node_x_m[net.link_to] - net.node_x_m[net.link_from],
                net.node_y_m[net.link_to] - net.node_y_m[net.link_from],
            ]
        )
    ).astype(int)
    movs = [m for li in net.in_links(centre) for m in net.movements_from(li)]
    assert len(movs) == 16
    assert net.mov_turn[movs].tolist().count(TURN_U) == 4
    for m in movs:
        (ax, ay), (bx, by) = step[net.mov_from_link[m]], step[net.mov_to_link[m]]
        cross = ax * by - ay * bx  # > 0: the new direction is anticlockwise = a left turn
        if (ax, ay) == (bx, by):
            expected = TURN_THROUGH
        elif (ax, ay) == (-bx, -by):
            expected = TURN_U
        else:
            expected = TURN_LEFT if cross > 0 else TURN_RIGHT
        assert net.mov_turn[m] == expected, (m, (ax, ay), (bx, by))
    # lanes: one lane per approach, every movement may use it
    assert np.all(net.mov_lane_first[movs] == 0) and np.all(net.mov_lane_last[movs] == 0)


def test_signals_and_phases_cover_movements() -> None:
    net = grid_roadnet(4, 3)
    legs = np.diff(net.node_out_offsets)
    assert set(net.signal_node.tolist()) == set(np.flatnonzero(legs >= 3).tolist())
    assert np.all(net.node_signal[net.signal_node] == np.arange(net.n_signals))
    assert np.all(net.node_signal[legs < 3] == -1)
    for s, node in enumerate(net.signal_node):
        phases = range(net.signal_phase_offsets[s], net.signal_phase_offsets[s + 1])
        assert len(phases) == 2  # the two axes
        served = [
            net.phase_movs[net.phase_mov_offsets[p] : net.phase_mov_offsets[p + 1]].tolist()
            for p in phases
        ]
        flat = sorted(m for ph in served for m in ph)
        expected = sorted(m for li in net.in_links(node) for m in net.movements_from(li))
        assert flat == expected  # every movement of the junction in exactly one phase
        for ph in served:  # a phase serves approaches on one axis: all E-W or all N-S
            dy = {
                round(net.node_y_m[net.link_to[li]] - net.node_y_m[net.link_from[li]])
                for li in net.mov_from_link[ph]
            }
            assert dy == {0} or 0 not in dy
    assert grid_roadnet(4, 3, signals=False).n_signals == 0


def test_one_way_grid_is_strongly_connected() -> None:
    for nx_, ny in [(2, 2), (3, 3), (4, 5), (5, 2)]:
        net = grid_roadnet(nx_, ny, two_way=False)
        assert net.n_links == nx_ * (ny - 1) + ny * (nx_ - 1)
        G = nx.DiGraph(zip(net.link_from.tolist(), net.link_to.tolist(), strict=True))
        assert nx.is_strongly_connected(G) and len(G) == nx_ * ny
        assert np.all(net.mov_turn != TURN_U)  # no way back along a one-way street


def test_corridor_arrays() -> None:
    lengths = [100.0, 250.0, 75.5, 300.0]
    net = corridor_roadnet(lengths, lanes=3, speed_mps=15.0, signal_nodes=(2,))
    assert net.n_nodes == 5 and net.n_links == 4
    assert net.link_from.tolist() == [0, 1, 2, 3] and net.link_to.tolist() == [1, 2, 3, 4]
    assert np.allclose(net.link_length_m, lengths)
    assert np.allclose(net.node_x_m - net.node_x_m[0], np.cumsum([0.0, *lengths]))
    assert np.all(net.link_lanes == 3) and np.all(net.link_speed_mps == 15.0)
    assert net.mov_from_link.tolist() == [0, 1, 2] and net.mov_to_link.tolist() == [1, 2, 3]
    assert np.all(net.mov_turn == TURN_THROUGH)
    assert np.all(net.mov_lane_first == 0) and np.all(net.mov_lane_last == 2)
    assert net.signal_node.tolist() == [2] and net.node_signal.tolist() == [-1, -1, 0, -1, -1]
    assert net.n_phases == 1
    assert net.phase_movs.tolist() == [1]  # the through movement link 1 -> link 2


def test_corridor_validation() -> None:
    with pytest.raises(ValueError, match="signal"):
        corridor_roadnet([100.0, 100.0], signal_nodes=(0,))
    with pytest.raises(ValueError, match="signal"):
        corridor_roadnet([100.0, 100.0], signal_nodes=(2,))
    with pytest.raises(ValueError, match="positive"):
        corridor_roadnet([100.0, -1.0])
    with pytest.raises(ValueError, match="lanes"):
        grid_roadnet(2, 2, lanes=0)
    with pytest.raises(ValueError):
        grid_roadnet(1, 1)


def test_save_load_roundtrip(tmp_path) -> None:
    net = grid_roadnet(3, 2)
    net.save(tmp_path / "grid.npz")
    back = RoadNet.load(tmp_path / "grid.npz")
    assert np.array_equal(back.mov_turn, net.mov_turn)
    assert np.array_equal(back.phase_movs, net.phase_movs)
    assert back.meta["source"] == net.meta["source"]


# --- junction controls ------------------------------------------------------------------


def _approach(net: RoadNet, from_node: int, to_node: int) -> int:
    (link,) = np.flatnonzero((net.link_from == from_node) & (net.link_to == to_node))
    return int(link)


@pytest.mark.parametrize(("sign", "value"), [(None, SIGN_NONE), ("stop", SIGN_STOP),
                                             ("give_way", SIGN_GIVE_WAY)])  # fmt: skip
def test_t_junction_minor_sign(sign, value) -> None:
    net = t_junction_roadnet(minor_sign=sign)
    minor = _approach(net, 3, 1)
    assert net.link_sign[minor] == value
    others = np.delete(np.arange(net.n_links), minor)
    assert (net.link_sign[others] == SIGN_NONE).all()
    assert (net.node_control == CTRL_PRIORITY).all()  # a two-way sign: still priority
    assert net.meta["report"]["signs_attached"] == (sign is not None)


def test_crossroads_layout_and_controls() -> None:
    net = crossroads_roadnet(arm_m=250.0, lanes=2)
    assert (net.n_nodes, net.n_links) == (5, 8)
    assert np.allclose(net.link_length_m, 250.0) and (net.link_lanes == 2).all()
    assert (net.node_control == CTRL_PRIORITY).all() and (net.link_sign == SIGN_NONE).all()
    # every approach is opposed by the one across
    for a, b in ((1, 3), (2, 4)):
        assert net.link_opposing[_approach(net, a, 0)] == _approach(net, b, 0)

    stop = crossroads_roadnet(all_way_stop=True)
    assert stop.node_control[0] == CTRL_ALL_WAY_STOP
    assert (stop.link_sign[stop.in_links(0)] == SIGN_STOP).all()

    minor = crossroads_roadnet(minor="residential", minor_sign="give_way")
    assert [minor.link_sign[_approach(minor, k, 0)] for k in (1, 2, 3, 4)] == [
        SIGN_NONE, SIGN_GIVE_WAY, SIGN_NONE, SIGN_GIVE_WAY
    ]  # fmt: skip
    assert minor.node_control[0] == CTRL_PRIORITY

    sig = crossroads_roadnet(signal=True)
    assert sig.node_control[0] == CTRL_SIGNAL and sig.n_signals == 1
    assert sig.n_phases == 2  # one lane each way: permissive lefts, two phases

    with pytest.raises(ValueError, match="no signs"):
        crossroads_roadnet(signal=True, minor_sign="stop")
    with pytest.raises(ValueError, match="arms"):
        crossroads_roadnet(turn_lanes={"up": "left|through"})
    with pytest.raises(ValueError, match="sign"):
        crossroads_roadnet(minor_sign="yield")


def test_crossroads_protected_left_phases() -> None:
    net = crossroads_roadnet(signal=True, protected_left=True)
    assert net.n_phases == 4
    phases = [
        net.phase_movs[net.phase_mov_offsets[p] : net.phase_mov_offsets[p + 1]]
        for p in range(net.n_phases)
    ]
    for left_phase, main_phase in (phases[0:2], phases[2:4]):
        assert set(net.mov_turn[left_phase].tolist()) == {TURN_LEFT, TURN_U}
        assert set(net.mov_turn[main_phase].tolist()) == {TURN_THROUGH, TURN_RIGHT}
        # both phases serve the same approaches (one axis)
        assert set(net.mov_from_link[left_phase]) == set(net.mov_from_link[main_phase])
    served = np.sort(np.concatenate(phases)).tolist()
    assert served == sorted(m for li in net.in_links(0) for m in net.movements_from(int(li)))
    assert crossroads_roadnet(signal=True, lanes=3, protected_left=False).n_phases == 2


def test_crossroads_turn_lanes_give_movement_lanes() -> None:
    net = crossroads_roadnet(lanes=2, turn_lanes={"south": "left|through;right"})
    south = _approach(net, 3, 0)
    assert net.link_turn_lanes[south] and net.link_turn_lanes.sum() == 1
    lanes = {
        int(net.mov_turn[m]): (int(net.mov_lane_first[m]), int(net.mov_lane_last[m]))
        for m in net.movements_from(south)
    }
    assert lanes == {TURN_LEFT: (1, 1), TURN_THROUGH: (0, 0), TURN_RIGHT: (0, 0), TURN_U: (1, 1)}
    bad = crossroads_roadnet(lanes=2, turn_lanes={"south": "left|through"})  # no right lane
    assert not bad.link_turn_lanes.any()
    assert bad.meta["report"]["turn_lanes_fallback"] == {"no lane for right": 1}


def test_roundabout_layout_and_controls() -> None:
    net = roundabout_roadnet(radius_m=25.0, arm_m=150.0, n_arms=4)
    n = 4
    assert (net.n_nodes, net.n_links) == (2 * n, 3 * n)
    ring = np.flatnonzero(net.link_roundabout)
    assert len(ring) == n
    # anticlockwise: from ring node k to k + 1, a quarter circle long
    pairs = zip(net.link_from[ring].tolist(), net.link_to[ring].tolist(), strict=True)
    assert sorted(pairs) == [(k, (k + 1) % n) for k in range(n)]
    assert np.allclose(net.link_length_m[ring], 2 * np.pi * 25.0 / n)
    cx, cy = net.node_x_m[:n].mean(), net.node_y_m[:n].mean()
    ax, ay = net.node_x_m[net.link_from[ring]] - cx, net.node_y_m[net.link_from[ring]] - cy
    bx, by = net.node_x_m[net.link_to[ring]] - cx, net.node_y_m[net.link_to[ring]] - cy
    cross = ax * by - ay * bx
    assert (cross > 0).all()  # counter-clockwise seen from above
    assert (net.node_control[:n] == CTRL_ROUNDABOUT).all()
    assert (net.node_control[n:] == CTRL_PRIORITY).all()
    entries = [_approach(net, n + k, k) for k in range(n)]
    assert (net.link_sign[entries] == SIGN_GIVE_WAY).all()
    assert (net.link_sign[ring] == SIGN_NONE).all()
    # entering turns right onto the ring; a car can leave at every arm
    for k in range(n):
        turns = {int(net.mov_turn[m]) for m in net.movements_from(entries[k])}
        assert TURN_RIGHT in turns
    with pytest.raises(ValueError):
        roundabout_roadnet(n_arms=2)
