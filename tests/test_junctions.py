"""Junction control from OSM: stop / give-way signs, roundabouts, turn lanes, left turns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_network import LAT0, LON0, osm_node, osm_way, write_osm

from twin.cli import main
from twin.network.cache import build_roadnet
from twin.network.junctions import (
    LEFT_ABSENT,
    LEFT_NOT_SIGNALISED,
    LEFT_PERMISSIVE,
    LEFT_PROTECTED,
    junction_summary,
    junction_table,
    left_turn_control,
    signal_left_control,
)
from twin.network.road import (
    CTRL_ALL_WAY_STOP,
    CTRL_PRIORITY,
    CTRL_ROUNDABOUT,
    CTRL_SIGNAL,
    SIGN_GIVE_WAY,
    SIGN_NONE,
    SIGN_STOP,
    TURN_LEFT,
    TURN_U,
    RoadNet,
)
from twin.network.synthetic import crossroads_roadnet, roundabout_roadnet, t_junction_roadnet

M_LAT = 1 / 111_195.0  # degrees of latitude per metre
M_LON = M_LAT / np.cos(np.radians(LAT0))  # degrees of longitude per metre at LAT0


def at(nid: int, east_m: float, north_m: float, **tags: str) -> str:
    return osm_node(nid, LAT0 + north_m * M_LAT, LON0 + east_m * M_LON, **tags)


def node_of(net: RoadNet, osmid: int) -> int:
    (node,) = np.flatnonzero(net.node_osmid == osmid)
    return int(node)


def approach_from(net: RoadNet, node: int, way: int) -> list[int]:
    return [int(li) for li in net.in_links(node) if net.link_way_id[li] == way]


# --- signs from OSM -------------------------------------------------------------------------


def t_map(tmp_path: Path, sign_tags: dict[str, str] | None, *, on_junction: bool = False) -> Path:
    """A primary road W-E (way 1) through junction 10, a residential street (way 2) from the
    south ending there; the sign node 15 sits 8 m south of the junction on way 2, or the sign
    tags go on the junction itself."""
    sign = sign_tags or {}
    body = (
        at(10, 0, 0, **(sign if on_junction else {}))
        + at(11, -150, 0)
        + at(12, 150, 0)
        + at(13, 0, -150)
        + at(15, 0, -8, **({} if on_junction else sign))
        + osm_way(1, [11, 10, 12], {"highway": "primary"})
        + osm_way(2, [13, 15, 10], {"highway": "residential"})
    )
    return write_osm(tmp_path / "t.osm", body)


@pytest.mark.parametrize(
    ("tags", "value"),
    [
        ({"highway": "stop"}, SIGN_STOP),
        ({"highway": "stop", "stop": "minor"}, SIGN_STOP),
        ({"highway": "give_way"}, SIGN_GIVE_WAY),
        ({"highway": "give_way", "direction": "forward"}, SIGN_GIVE_WAY),  # way 2 runs north
    ],
)
def test_sign_before_a_junction_goes_to_its_approach(tmp_path, tags, value) -> None:
    net = build_roadnet(t_map(tmp_path, tags))
    junction = node_of(net, 10)
    (minor,) = approach_from(net, junction, 2)
    assert net.link_sign[minor] == value
    assert (np.delete(net.link_sign, minor) == SIGN_NONE).all()
    assert (net.node_control == CTRL_PRIORITY).all()
    r = net.meta["report"]
    assert r["signs_snapped"] == r["signs_attached"] == 1 and r["signs_dropped"] == {}
    assert net.n_nodes == 4  # the sign node does not stop the link from simplifying


def test_sign_facing_away_from_the_junction_is_dropped(tmp_path) -> None:
    # direction=backward on way 2 (node order south -> north) faces southbound traffic: the
    # next junction that way is beyond the street's dead end, so nothing is in reach
    net = build_roadnet(t_map(tmp_path, {"highway": "stop", "direction": "backward"}))
    assert (net.link_sign == SIGN_NONE).all()
    assert net.meta["report"]["signs_dropped"] == {"no junction within 30 m ahead": 1}


def test_sign_on_the_junction_node_goes_to_the_lowest_class(tmp_path) -> None:
    net = build_roadnet(t_map(tmp_path, {"highway": "stop"}, on_junction=True))
    junction = node_of(net, 10)
    (minor,) = approach_from(net, junction, 2)
    assert net.link_sign[minor] == SIGN_STOP
    assert net.meta["report"]["signs_on_junction"] == 1
    assert net.meta["report"]["signs_attached"] == 1


def test_all_way_stop_on_the_junction_node(tmp_path) -> None:
    net = build_roadnet(t_map(tmp_path, {"highway": "stop", "stop": "all"}, on_junction=True))
    junction = node_of(net, 10)
    assert net.node_control[junction] == CTRL_ALL_WAY_STOP
    assert (net.link_sign[net.in_links(junction)] == SIGN_STOP).all()
    assert net.meta["report"]["all_way_stop_junctions"] == 1
    assert net.meta["report"]["sign_nodes"] == {"all-way stop": 1}


def cross_map(tmp_path: Path, stops: bool, *, signal: bool = False) -> Path:
    """Two residential streets crossing at node 10; a stop node 8 m before it on every arm
    (``stops``); the junction signalised with ``signal``."""
    arms = {20: (0, 150), 21: (150, 0), 22: (0, -150), 23: (-150, 0)}
    body = at(10, 0, 0, **({"highway": "traffic_signals"} if signal else {}))
    for nid, (e, n) in arms.items():
        body += at(nid, e, n)
        body += at(nid + 10, e * 8 / 150, n * 8 / 150, **({"highway": "stop"} if stops else {}))
    body += osm_way(1, [22, 32, 10, 30, 20], {"highway": "residential"})
    body += osm_way(2, [23, 33, 10, 31, 21], {"highway": "residential"})
    return write_osm(tmp_path / "x.osm", body)


def test_stop_on_every_approach_makes_an_all_way_stop(tmp_path) -> None:
    net = build_roadnet(cross_map(tmp_path, stops=True))
    junction = node_of(net, 10)
    assert net.node_control[junction] == CTRL_ALL_WAY_STOP
    assert (net.link_sign[net.in_links(junction)] == SIGN_STOP).all()
    assert net.meta["report"]["signs_attached"] == 4


def test_signs_at_a_signal_are_ignored_and_counted(tmp_path) -> None:
    net = build_roadnet(cross_map(tmp_path, stops=True, signal=True))
    assert net.node_control[node_of(net, 10)] == CTRL_SIGNAL
    assert (net.link_sign == SIGN_NONE).all()
    r = net.meta["report"]
    assert r["signs_at_signals"] == 4 and r["signs_attached"] == 0


def test_directional_sign_between_two_junctions(tmp_path) -> None:
    """A N-S road (way 1: node order south to north) with side streets at junctions 10 and
    12, 40 m apart; a give-way node 15 m north of junction 10."""

    def build(direction: str | None) -> tuple[RoadNet, int]:
        tags = {"highway": "give_way"} | ({"direction": direction} if direction else {})
        body = (
            at(1, 0, -150)
            + at(10, 0, 0)
            + at(11, 0, 15, **tags)
            + at(12, 0, 40)
            + at(2, 0, 190)
            + at(3, 150, 0)
            + at(4, 150, 40)
            + osm_way(1, [1, 10, 11, 12, 2], {"highway": "residential"})
            + osm_way(2, [10, 3], {"highway": "residential"})
            + osm_way(3, [12, 4], {"highway": "residential"})
        )
        net = build_roadnet(write_osm(tmp_path / f"d-{direction}.osm", body))
        signed = np.flatnonzero(net.link_sign != SIGN_NONE)
        assert len(signed) == 1
        return net, int(signed[0])

    net, link = build("forward")  # faces northbound traffic: junction 12, from the south
    assert net.link_to[link] == node_of(net, 12) and net.link_from[link] == node_of(net, 10)
    net, link = build("backward")  # faces southbound traffic: junction 10, from the north
    assert net.link_to[link] == node_of(net, 10) and net.link_from[link] == node_of(net, 12)
    net, link = build(None)  # no direction: the nearest junction, approached past the sign
    assert net.link_to[link] == node_of(net, 10) and net.link_from[link] == node_of(net, 12)


# --- roundabouts from OSM -------------------------------------------------------------------


def roundabout_map(tmp_path: Path, radius_m: float) -> Path:
    """A four-arm roundabout (way 1, anticlockwise, closed) with 150 m two-way arms."""
    body, ring = "", []
    for k in range(8):  # ring nodes 100..107; the arms meet it at the even ones
        a = 2 * np.pi * k / 8
        body += at(100 + k, radius_m * np.cos(a), radius_m * np.sin(a))
        ring.append(100 + k)
    for k in range(4):
        a = 2 * np.pi * k / 4
        body += at(200 + k, (radius_m + 150) * np.cos(a), (radius_m + 150) * np.sin(a))
        body += osm_way(10 + k, [200 + k, 100 + 2 * k], {"highway": "tertiary"})
    body += osm_way(1, [*ring, ring[0]], {"highway": "tertiary", "junction": "roundabout"})
    return write_osm(tmp_path / f"r{radius_m:g}.osm", body)


def test_roundabout_from_osm(tmp_path) -> None:
    net = build_roadnet(roundabout_map(tmp_path, 30.0))
    ring_nodes = [node_of(net, 100 + 2 * k) for k in range(4)]
    assert (net.node_control[ring_nodes] == CTRL_ROUNDABOUT).all()
    assert net.link_roundabout.sum() == 4  # one link between consecutive arms
    ring = np.flatnonzero(net.link_roundabout)
    assert (net.link_sign[ring] == SIGN_NONE).all()
    for k, node in enumerate(ring_nodes):
        (entry,) = approach_from(net, node, 10 + k)
        assert net.link_sign[entry] == SIGN_GIVE_WAY
    r = net.meta["report"]
    assert r["roundabout_junctions"] == 4 and r["roundabouts_merged"] == 0
    assert r["roundabout_links"] == 4
    assert junction_summary(net)["roundabout_entries_give_way"] == 4


def test_small_roundabout_merged_into_one_node_is_a_priority_junction(tmp_path) -> None:
    net = build_roadnet(roundabout_map(tmp_path, 6.0))  # inside consolidation's 2 x 10 m
    assert not net.link_roundabout.any()
    assert (net.node_control == CTRL_PRIORITY).all()
    assert net.meta["report"]["roundabouts_merged"] == 1


# --- turn lanes and protected lefts ----------------------------------------------------------


def test_osm_turn_lanes_and_protected_left(tmp_path) -> None:
    """A signalised crossing; the primary N-S road (way 1, node order south to north) has two
    lanes each way and a left-turn lane mapped on its northbound approach."""
    tl = {"highway": "primary", "lanes": "4", "turn:lanes:forward": "left|through;right"}
    body = (
        at(10, 0, 0, highway="traffic_signals")
        + at(20, 0, 150)
        + at(21, 150, 0)
        + at(22, 0, -150)
        + at(23, -150, 0)
        + osm_way(1, [22, 10, 20], tl)
        + osm_way(2, [23, 10, 21], {"highway": "residential"})
    )
    net = build_roadnet(write_osm(tmp_path / "tl.osm", body))
    junction = node_of(net, 10)
    south = next(
        li for li in approach_from(net, junction, 1) if net.link_from[li] == node_of(net, 22)
    )
    assert net.link_turn_lanes[south] and net.link_turn_lanes.sum() == 1
    for m in net.movements_from(south):
        if net.mov_turn[m] in (TURN_LEFT, TURN_U):
            assert (net.mov_lane_first[m], net.mov_lane_last[m]) == (1, 1)
        else:
            assert net.mov_lane_first[m] == 0 and net.mov_lane_last[m] <= 1
    # the N-S axis gets a left phase and a main phase, the E-W axis one phase
    assert net.n_phases == 3
    assert net.meta["report"]["protected_left_signals"] == 1
    control = left_turn_control(net)
    assert control[south] == LEFT_PROTECTED
    for li in approach_from(net, junction, 2):
        assert control[li] == LEFT_PERMISSIVE
    assert signal_left_control(net).tolist() == [LEFT_PERMISSIVE]  # the weakest left


def test_left_turn_control_of_synthetic_signals() -> None:
    net = crossroads_roadnet(signal=True)
    control = left_turn_control(net)
    assert (control[net.in_links(0)] == LEFT_PERMISSIVE).all()
    assert (control[net.out_links(0)] == LEFT_NOT_SIGNALISED).all()
    assert signal_left_control(net).tolist() == [LEFT_PERMISSIVE]
    wide = crossroads_roadnet(signal=True, lanes=3)  # wide approaches: protected by default
    assert (left_turn_control(wide)[wide.in_links(0)] == LEFT_PROTECTED).all()
    assert wide.n_phases == 4
    # a wide approach keeps its leftmost lane for the lefts, the others for through / right
    for li in wide.in_links(0):
        for m in wide.movements_from(int(li)):
            first, last = int(wide.mov_lane_first[m]), int(wide.mov_lane_last[m])
            if wide.mov_turn[m] in (TURN_LEFT, TURN_U):
                assert (first, last) == (2, 2)
            else:
                assert last <= 1
    t = t_junction_roadnet()
    assert (left_turn_control(t) == LEFT_NOT_SIGNALISED).all()
    assert LEFT_ABSENT == 0


def test_junction_table_lists_controlled_junctions() -> None:
    rows = junction_table(roundabout_roadnet())
    assert [r["control"] for r in rows] == ["roundabout"] * 4
    signs = sorted(a["sign"] for a in rows[0]["approaches"])
    assert signs == ["give way", "none"]
    assert junction_table(t_junction_roadnet()) == []
    (row,) = junction_table(t_junction_roadnet(minor_sign="stop"))
    assert row["control"] == "priority" and "stop" in [a["sign"] for a in row["approaches"]]


# --- real maps ------------------------------------------------------------------------------


def _figures(net: RoadNet) -> dict:
    j = junction_summary(net)
    r = net.meta["report"]
    return {
        "sign nodes": r["sign_nodes"],
        "signs attached": r["signs_attached"],
        "signs unattributed": r["signs_unattributed"],
        "signs at signals": r["signs_at_signals"],
        "signs dropped": r["signs_dropped"],
        "stop approaches": j["approaches_stop"],
        "give-way approaches": j["approaches_give_way"],
        "all-way stops": j["all_way_stop"],
        "two-way sign junctions": j["two_way_stop_or_give_way"],
        "roundabout junctions": j["roundabout"],
        "roundabouts merged": j["roundabouts_merged"],
        "turn-lane links": j["links_with_osm_turn_lanes"],
        "turn-lane fallbacks": j["turn_lanes_fallback"],
        "signals with protected lefts": r["protected_left_signals"],
    }


@pytest.mark.parametrize("name", ["baltimore", "dortmund", "west-oakland", "aguascalientes"])
def test_real_map_junction_controls(name, roadnet, capsys) -> None:
    net = roadnet(name)
    figures = _figures(net)
    with capsys.disabled():
        print(f"\n{name}: {figures}")
    r = net.meta["report"]
    read = sum(r["sign_nodes"].values())
    assert read == (
        r["signs_on_junction"] + r["signs_snapped"] + sum(
            v for k, v in r["signs_dropped"].items() if k != "outside the routing component"
        )
    )  # fmt: skip
    placed = r["signs_on_junction"] + r["signs_snapped"]
    outside = r["signs_dropped"].get("outside the routing component", 0)
    assert placed == r["signs_attached"] + r["signs_unattributed"] + r["signs_at_signals"] + outside
    # signalised nodes keep their control; signs only on non-signalised junctions
    assert (net.node_control[net.signal_node] == CTRL_SIGNAL).all()
    assert (net.link_sign[net.node_signal[net.link_to] >= 0] == SIGN_NONE).all()
    # roundabout nodes: a circulating and an entering approach; entries give way or stop
    for node in np.flatnonzero(net.node_control == CTRL_ROUNDABOUT):
        ins = net.in_links(int(node))
        assert net.link_roundabout[ins].any() and not net.link_roundabout[ins].all()
        entries = ins[~net.link_roundabout[ins]]
        assert (net.link_sign[entries] >= SIGN_GIVE_WAY).all()
    assert (np.diff(net.signal_phase_offsets) <= 4).all()


def test_baltimore_stop_signs_and_roundabouts(roadnet) -> None:
    net = roadnet("baltimore")
    r = net.meta["report"]
    assert r["sign_nodes"] == {"stop": 25}  # the file: 25 highway=stop, no give_way
    assert r["signs_attached"] >= 10 and r["stop_approaches"] >= 10
    assert r["roundabout_junctions"] + r["roundabouts_merged"] >= 1  # 7 junction=roundabout ways
    assert r["protected_left_signals"] >= 1  # wide one-way / arterial approaches
    assert not net.link_turn_lanes.any()  # no turn:lanes in the file


def test_dortmund_give_way_roundabouts_and_turn_lanes(roadnet) -> None:
    net = roadnet("dortmund")
    r = net.meta["report"]
    assert r["sign_nodes"] == {"give_way": 2}  # both at signalised junctions
    assert r["signs_at_signals"] + r["signs_attached"] + r["signs_unattributed"] == 2
    assert r["roundabout_junctions"] + r["roundabouts_merged"] >= 1  # 2 roundabout ways
    assert net.link_turn_lanes.sum() >= 10  # 117 ways with turn:lanes in the file
    assert r["protected_left_signals"] >= 1
    # a mapped turn-lane link's lefts have a lane of their own or share it as OSM says
    for li in np.flatnonzero(net.link_turn_lanes):
        for m in net.movements_from(int(li)):
            assert 0 <= net.mov_lane_first[m] <= net.mov_lane_last[m] < net.link_lanes[li]


def test_map_info_shows_junction_controls(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    oakland = Path(__file__).resolve().parents[1] / "maps" / "west-oakland.osm.bz2"
    assert main(["map", "info", str(oakland), "--junctions"]) == 0
    out = capsys.readouterr().out
    assert "junctions: signal" in out and "approaches with stop" in out
    assert "controlled junctions" in out and "stop" in out
    assert main(["map", "info", str(oakland), "--json", "--junctions"]) == 0
    data = json.loads(capsys.readouterr().out)
    j = data["junctions"]
    assert j["signal"] == data["summary"]["signalised_intersections"]
    assert j["approaches_stop"] >= 1
    assert len(data["junction_list"]) >= j["signal"] + j["two_way_stop_or_give_way"]
