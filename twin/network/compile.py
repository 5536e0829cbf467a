"""Compile a clean road graph (see :mod:`twin.network.graph`) into a :class:`RoadNet`.

Besides the arrays of nodes, links and movements, this decides how each junction is
controlled:

- movement lanes come from OSM ``turn:lanes`` where the value fits the link (see
  :func:`twin.network.movements.turn_lane_ranges`), else from the default rule, where a
  fork's side branches (motorway exits) keep to their side's lanes (``fork_lanes``);
- each stop / give-way sign goes to the approach (in-link) of its junction whose line passes
  closest to the sign; a sign on the junction node itself goes to every approach when it is
  ``stop=all``, else to the approaches of the lowest road class there (if there is more than
  one class; otherwise it is counted as unattributed). STOP beats GIVE_WAY;
- node control: signal (its signs are ignored and counted), else roundabout (a roundabout
  link and another link arrive: the other approaches give way), else all-way stop (a
  ``stop=all`` sign, or a stop sign on every one of >= 3 approaches), else priority;
- signal phases: one per approach axis; an axis with an opposed left turn and a left-turn
  lane mapped in OSM, or with a wide approach (>= WIDE_APPROACH_LANES lanes), gets a
  protected left phase (its left and U-turns) before its main phase (through and right).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict

import networkx as nx
import numpy as np
from shapely.geometry import LineString, Point

from twin.network.graph import BuildReport
from twin.network.movements import (
    assign_lanes,
    bearing_deg,
    classify_turn,
    fork_lanes,
    group_approaches,
    left_only_lane,
    turn_lane_ranges,
    turning_angle_deg,
)
from twin.network.road import (
    CTRL_ALL_WAY_STOP,
    CTRL_PRIORITY,
    CTRL_ROUNDABOUT,
    CTRL_SIGNAL,
    FORMAT_VERSION,
    OPPOSING_MIN_DEG,
    SIGN_GIVE_WAY,
    SIGN_NONE,
    SIGN_STOP,
    TURN_LEFT,
    TURN_THROUGH,
    TURN_U,
    BuildOptions,
    RoadNet,
)
from twin.network.tags import DRIVABLE_HIGHWAYS, HIGHWAY_CLASSES

BEARING_REACH_M = 20.0  # m, a link's end bearings are measured over this much of its line
MIN_LINK_LENGTH_M = 1.0  # m, shorter links (rare, from consolidation) are lengthened to this
# lanes from which an approach counts as wide: its opposed left turns get a protected phase
# and, unless OSM maps its lanes, its leftmost lane becomes a left-turn lane (judgement: the
# HCM 2010 ch. 18 guidance protects lefts on multi-lane arterials with heavy opposing flow)
WIDE_APPROACH_LANES = 3


def _first(value):
    return value[0] if isinstance(value, list) else value


def _name(value) -> str:
    """A link's street name: the first non-empty name of the ways it was merged from."""
    names = value if isinstance(value, list) else [value]
    return next((str(n) for n in names if isinstance(n, str) and n), "")


def _osmids(value) -> list[int]:
    return sorted(value) if isinstance(value, list) else [value]


def _csr(groups: Iterable[Iterable[int]], dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    groups = [list(g) for g in groups]
    offsets = np.zeros(len(groups) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(g) for g in groups])
    flat = np.fromiter((x for g in groups for x in g), dtype=dtype, count=int(offsets[-1]))
    return offsets, flat


def _end_bearings(line: np.ndarray, length_m: float) -> tuple[float, float]:
    """(bearing leaving the start, bearing arriving at the end) of a polyline."""
    ls = LineString(line)
    reach = min(BEARING_REACH_M, ls.length)
    a = ls.interpolate(reach)
    b = ls.interpolate(ls.length - reach)
    start = bearing_deg(line[0, 0], line[0, 1], a.x, a.y)
    end = bearing_deg(b.x, b.y, line[-1, 0], line[-1, 1])
    return start, end


def compile_roadnet(
    G: nx.MultiDiGraph,
    report: BuildReport,
    attached: dict[int, int],
    options: BuildOptions,
    *,
    source: str = "",
) -> RoadNet:
    """Arrays for nodes, links, movements and signals of a projected, consolidated graph."""
    # nodes, sorted by their smallest OSM id so the numbering is stable
    node_keys = sorted(G.nodes, key=lambda n: _osmids(G.nodes[n]["osmid_original"])[0])
    index = {n: i for i, n in enumerate(node_keys)}
    nd = [G.nodes[n] for n in node_keys]
    node_x = np.array([d["x"] for d in nd], dtype=np.float64)
    node_y = np.array([d["y"] for d in nd], dtype=np.float64)

    # links, sorted by (from, to, first way id) for the same reason
    edges = sorted(
        G.edges(keys=True, data=True),
        key=lambda e: (index[e[0]], index[e[1]], _first(e[3]["osmid"]), e[2]),
    )
    m = len(edges)
    link_from = np.array([index[u] for u, _, _, _ in edges], dtype=np.int32)
    link_to = np.array([index[v] for _, v, _, _ in edges], dtype=np.int32)
    geoms = []
    for u, v, _, d in edges:
        if "geometry" in d:
            xy = np.asarray(d["geometry"].coords, dtype=np.float64)
        else:
            xy = np.array(
                [[node_x[index[u]], node_y[index[u]]], [node_x[index[v]], node_y[index[v]]]]
            )
        geoms.append(xy)
    length = np.array([max(float(d["length"]), MIN_LINK_LENGTH_M) for *_, d in edges])
    lanes = np.array([max(int(_first(d["lanes"])), 1) for *_, d in edges], dtype=np.int16)
    hw_code = {name: i for i, name in enumerate(HIGHWAY_CLASSES)}
    highway = np.array(
        [hw_code.get(_first(d["highway"]), len(HIGHWAY_CLASSES) - 1) for *_, d in edges],
        dtype=np.int8,
    )
    speed = np.array([float(_first(d["speed_mps"])) for *_, d in edges])
    cap_lane = np.array([float(_first(d["capacity_vph_per_lane"])) for *_, d in edges])
    roundabout = np.array([bool(_first(d.get("roundabout", False))) for *_, d in edges])
    turn_lanes = [_first(d.get("turn_lanes", "")) or "" for *_, d in edges]
    geom_offsets = np.zeros(m + 1, dtype=np.int64)
    geom_offsets[1:] = np.cumsum([len(g) for g in geoms])

    out_groups = [[] for _ in node_keys]
    in_groups = [[] for _ in node_keys]
    for li in range(m):
        out_groups[link_from[li]].append(li)
        in_groups[link_to[li]].append(li)

    bearings = [_end_bearings(g, length[i]) for i, g in enumerate(geoms)]
    movs, link_turn_lanes = _movements(
        link_from, link_to, lanes, highway, bearings, out_groups, turn_lanes, report
    )
    mov_offsets = np.zeros(m + 1, dtype=np.int64)
    np.add.at(mov_offsets, movs["from"] + 1, 1)
    mov_offsets = np.cumsum(mov_offsets)
    opposing = opposing_links(in_groups, [b[1] for b in bearings], m)

    osm_to_node = {}
    for n in node_keys:
        for osmid in _osmids(G.nodes[n]["osmid_original"]):
            osm_to_node[osmid] = index[n]
    signals = _signals(
        osm_to_node,
        len(node_keys),
        attached,
        in_groups,
        bearings,
        cap_lane * lanes,
        movs,
        mov_offsets,
        report,
        lanes=lanes,
        opposing=opposing,
        link_turn_lanes=link_turn_lanes,
        protected_left=G.graph.get("protected_left"),
    )
    node_control, link_sign = _controls(
        G.graph.get("signs", []),
        osm_to_node,
        signals["node_signal"],
        in_groups,
        geoms,
        highway,
        roundabout,
        report,
    )

    out_off, out_links = _csr(out_groups)
    in_off, in_links = _csr(in_groups)
    meta = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "crs": str(G.graph.get("crs", "")),
        "options": options.as_dict(),
        "report": asdict(report),
        "highway_classes": list(HIGHWAY_CLASSES),
        "link_names": [_name(d.get("name")) for *_, d in edges],
        "links_lengthened": int(sum(float(d["length"]) < MIN_LINK_LENGTH_M for *_, d in edges)),
        # nodes where a carriageway cut by the extract left the routing component (gateways)
        "cut_end_nodes": [i for i, d in enumerate(nd) if d.get("cut_end")],
    }
    return RoadNet(
        node_x_m=node_x,
        node_y_m=node_y,
        node_lon=np.array([d["lon"] for d in nd], dtype=np.float64),
        node_lat=np.array([d["lat"] for d in nd], dtype=np.float64),
        node_osmid=np.array([_osmids(d["osmid_original"])[0] for d in nd], dtype=np.int64),
        node_signal=signals["node_signal"],
        node_out_offsets=out_off,
        node_out_links=out_links,
        node_in_offsets=in_off,
        node_in_links=in_links,
        node_control=node_control,
        link_from=link_from,
        link_to=link_to,
        link_length_m=length,
        link_lanes=lanes,
        link_speed_mps=speed,
        link_capacity_vph=cap_lane * lanes,
        link_highway=highway,
        link_way_id=np.array([_first(d["osmid"]) for *_, d in edges], dtype=np.int64),
        link_speed_default=np.array([bool(_first(d["speed_default"])) for *_, d in edges]),
        link_lanes_default=np.array([bool(_first(d["lanes_default"])) for *_, d in edges]),
        link_sign=link_sign,
        link_roundabout=roundabout.astype(np.bool_).reshape(m),
        link_turn_lanes=link_turn_lanes,
        link_opposing=opposing,
        link_mov_offsets=mov_offsets,
        link_geom_offsets=geom_offsets,
        link_geom_xy_m=np.concatenate(geoms) if geoms else np.zeros((0, 2)),
        mov_from_link=movs["from"],
        mov_to_link=movs["to"],
        mov_turn=movs["turn"],
        mov_angle_deg=movs["angle"],
        mov_lane_first=movs["lane_first"],
        mov_lane_last=movs["lane_last"],
        signal_node=signals["node"],
        signal_osm_offsets=signals["osm_offsets"],
        signal_osm_ids=signals["osm_ids"],
        signal_phase_offsets=signals["phase_offsets"],
        phase_mov_offsets=signals["phase_mov_offsets"],
        phase_movs=signals["phase_movs"],
        meta=meta,
    )


def opposing_links(in_groups, end_bearings_deg, n_links: int) -> np.ndarray:
    """For each link, the other approach to its end node heading most nearly the opposite
    way (at least OPPOSING_MIN_DEG apart), or -1: the stream a left turn must give way to."""
    opposing = np.full(n_links, -1, dtype=np.int32)
    for links in in_groups:
        for a in links:
            best, best_diff = -1, OPPOSING_MIN_DEG
            for b in links:
                if b == a:
                    continue
                d = abs((end_bearings_deg[b] - end_bearings_deg[a] + 180.0) % 360.0 - 180.0)
                if d >= best_diff:
                    best, best_diff = b, d
            opposing[a] = best
    return opposing


def _movements(
    link_from, link_to, lanes, highway, bearings, out_groups, turn_lanes, report: BuildReport
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every in-link to every out-link at each node (U-turns included, typed as such), and
    which links take their movement lanes from OSM turn:lanes (fallbacks counted)."""
    rows = []
    from_osm = np.zeros(len(link_from), dtype=np.bool_)
    fallback: Counter = Counter()
    for li in range(len(link_from)):
        outs = out_groups[link_to[li]]
        angles = [turning_angle_deg(bearings[li][1], bearings[lo][0]) for lo in outs]
        turns = [
            classify_turn(a, returns_to_origin=link_to[lo] == link_from[li])
            for a, lo in zip(angles, outs, strict=True)
        ]
        ranges = None
        if turn_lanes[li] and turns:
            ranges, why = turn_lane_ranges(turns, int(lanes[li]), turn_lanes[li])
            if ranges is None:
                fallback[why] += 1
            else:
                from_osm[li] = True
        if ranges is None:
            ranges = fork_lanes(
                turns,
                assign_lanes(turns, int(lanes[li])),
                angles,
                [int(lanes[lo]) for lo in outs],
                [-int(highway[lo]) for lo in outs],
                int(lanes[li]),
            )
        for lo, a, t, (l0, l1) in zip(outs, angles, turns, ranges, strict=True):
            rows.append((li, lo, t, a, l0, l1))
    report.turn_lane_links = int(from_osm.sum())
    report.turn_lanes_fallback = dict(fallback)
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return {
        "from": np.array(cols[0], dtype=np.int32),
        "to": np.array(cols[1], dtype=np.int32),
        "turn": np.array(cols[2], dtype=np.int8),
        "angle": np.array(cols[3], dtype=np.float32),
        "lane_first": np.array(cols[4], dtype=np.int16),
        "lane_last": np.array(cols[5], dtype=np.int16),
    }, from_osm


def _signals(
    osm_to_node: dict[int, int],
    n_nodes: int,
    attached: dict[int, int],
    in_groups,
    bearings,
    capacity,
    movs,
    mov_offsets,
    report: BuildReport,
    *,
    lanes: np.ndarray,
    opposing: np.ndarray,
    link_turn_lanes: np.ndarray,
    protected_left: bool | None = None,
) -> dict[str, np.ndarray]:
    """Signalised intersections, the OSM signal nodes behind each, and their phases.

    One phase per approach axis (see :func:`group_approaches`), or two where the axis gets a
    protected left (see the module docstring; ``protected_left`` True / False forces it on /
    off for every axis with an opposed left turn, as synthetic networks ask). A wide
    approach given a protected left keeps its leftmost lane for left and U-turns (the
    through movement loses it), unless OSM mapped its lanes. Edits ``movs`` lanes in place.
    """
    by_node: dict[int, list[int]] = {}
    dropped = Counter(report.signals_dropped)
    for sid, junction in sorted(attached.items()):
        node = osm_to_node.get(junction)
        if node is None:
            dropped["outside the routing component"] += 1
        else:
            by_node.setdefault(node, []).append(sid)
    report.signals_dropped = dict(dropped)

    turn = movs["turn"]
    sig_nodes = sorted(by_node)
    node_signal = np.full(n_nodes, -1, dtype=np.int32)
    phases: list[list[int]] = []
    phase_counts = []
    protected_signals = protected_axes = 0
    for s, node in enumerate(sig_nodes):
        node_signal[node] = s
        approaches = in_groups[node]
        groups = group_approaches(
            [bearings[li][1] for li in approaches], [capacity[li] for li in approaches]
        )
        n_phases = 0
        for group in groups:
            links = [approaches[pos] for pos in group]
            all_movs = [mv for li in links for mv in range(mov_offsets[li], mov_offsets[li + 1])]
            lefts = [mv for mv in all_movs if turn[mv] in (TURN_LEFT, TURN_U)]
            mains = [mv for mv in all_movs if turn[mv] not in (TURN_LEFT, TURN_U)]
            # a left is opposed when the opposing approach goes in the same phase and has
            # through traffic; otherwise the left needs no phase of its own
            facing = [
                li
                for li in links
                if opposing[li] in links
                and TURN_THROUGH in turn[mov_offsets[opposing[li]] : mov_offsets[opposing[li] + 1]]
            ]
            wants = [
                li
                for li in facing
                if _left_wants_protection(li, movs, mov_offsets, lanes, opposing, link_turn_lanes)
            ]
            opposed = [
                li for li in facing if TURN_LEFT in turn[mov_offsets[li] : mov_offsets[li + 1]]
            ]
            protect = bool(wants) if protected_left is None else protected_left and bool(opposed)
            if protect and lefts and mains:
                phases += [lefts, mains]
                n_phases += 2
                protected_axes += 1
                for li in links:
                    if lanes[li] >= WIDE_APPROACH_LANES and not link_turn_lanes[li]:
                        _reserve_left_lane(li, movs, mov_offsets, int(lanes[li]))
            else:
                phases.append(all_movs)
                n_phases += 1
        protected_signals += n_phases > len(groups)
        phase_counts.append(n_phases)
    report.protected_left_signals = int(protected_signals)
    report.protected_left_axes = int(protected_axes)
    osm_offsets, osm_ids = _csr((by_node[n] for n in sig_nodes), dtype=np.int64)
    phase_offsets = np.zeros(len(sig_nodes) + 1, dtype=np.int64)
    phase_offsets[1:] = np.cumsum(phase_counts)
    phase_mov_offsets, phase_movs = _csr(phases)
    return {
        "node": np.array(sig_nodes, dtype=np.int32),
        "node_signal": node_signal,
        "osm_offsets": osm_offsets,
        "osm_ids": osm_ids,
        "phase_offsets": phase_offsets,
        "phase_mov_offsets": phase_mov_offsets,
        "phase_movs": phase_movs,
    }


def _left_wants_protection(li, movs, mov_offsets, lanes, opposing, link_turn_lanes) -> bool:
    """An opposed left turn from a mapped left-turn lane or from a wide approach."""
    if opposing[li] < 0:  # nobody to give way to: the left needs no phase of its own
        return False
    sl = slice(mov_offsets[li], mov_offsets[li + 1])
    turns = movs["turn"][sl].tolist()
    if TURN_LEFT not in turns:
        return False
    if link_turn_lanes[li]:
        ranges = list(
            zip(movs["lane_first"][sl].tolist(), movs["lane_last"][sl].tolist(), strict=True)
        )
        return left_only_lane(turns, ranges)
    return int(lanes[li]) >= WIDE_APPROACH_LANES


def _reserve_left_lane(li, movs, mov_offsets, n_lanes: int) -> None:
    """Give a wide approach's leftmost lane to its left and U-turns only."""
    top = n_lanes - 1
    sl = range(mov_offsets[li], mov_offsets[li + 1])
    if not any(
        movs["turn"][mv] not in (TURN_LEFT, TURN_U) and movs["lane_last"][mv] == top for mv in sl
    ):
        return
    for mv in sl:
        if movs["turn"][mv] in (TURN_LEFT, TURN_U):
            movs["lane_first"][mv] = movs["lane_last"][mv] = top
        else:
            movs["lane_last"][mv] = min(int(movs["lane_last"][mv]), top - 1)
            movs["lane_first"][mv] = min(int(movs["lane_first"][mv]), top - 1)


def _road_rank(code: int) -> int:
    return DRIVABLE_HIGHWAYS.get(HIGHWAY_CLASSES[code], DRIVABLE_HIGHWAYS["road"])


def _controls(
    signs: list[dict],
    osm_to_node: dict[int, int],
    node_signal: np.ndarray,
    in_groups,
    geoms,
    highway: np.ndarray,
    roundabout: np.ndarray,
    report: BuildReport,
) -> tuple[np.ndarray, np.ndarray]:
    """(node_control, link_sign) from the attached signs, roundabouts and signals."""
    n_nodes, n_links = len(node_signal), len(highway)
    link_sign = np.full(n_links, SIGN_NONE, dtype=np.int8)
    all_way: set[int] = set()
    dropped = Counter(report.signs_dropped)
    attached = unattributed = at_signals = 0
    for sign in signs:
        node = osm_to_node.get(sign["junction"])
        if node is None:
            dropped["outside the routing component"] += 1
            continue
        if node_signal[node] >= 0:
            at_signals += 1
            continue
        approaches = list(in_groups[node])
        if not approaches:
            dropped["junction has no approach"] += 1
            continue
        value = SIGN_STOP if sign["kind"] == "stop" else SIGN_GIVE_WAY
        if sign["all_way"]:
            all_way.add(node)
            targets = approaches
        elif sign["on_junction"]:
            ranks = [_road_rank(int(highway[li])) for li in approaches]
            if len(set(ranks)) < 2:  # one road class: which approach is meant is unknown
                unattributed += 1
                continue
            targets = [li for li, r in zip(approaches, ranks, strict=True) if r == min(ranks)]
        else:
            point = Point(sign["x"], sign["y"])
            targets = [min(approaches, key=lambda li: (LineString(geoms[li]).distance(point), li))]
        for li in targets:
            link_sign[li] = max(link_sign[li], value)
        attached += 1
    report.signs_dropped = dict(dropped)
    report.signs_attached = attached
    report.signs_unattributed = unattributed
    report.signs_at_signals = at_signals
    report.stop_approaches = int((link_sign == SIGN_STOP).sum())
    report.give_way_approaches = int((link_sign == SIGN_GIVE_WAY).sum())

    control = np.where(node_signal >= 0, CTRL_SIGNAL, CTRL_PRIORITY).astype(np.int8)
    n_roundabout = n_all_way = n_two_way = 0
    for node in range(n_nodes):
        if control[node] == CTRL_SIGNAL:
            continue
        approaches = list(in_groups[node])
        ring = [li for li in approaches if roundabout[li]]
        entries = [li for li in approaches if not roundabout[li]]
        stops = [li for li in approaches if link_sign[li] == SIGN_STOP]
        if ring and entries:
            control[node] = CTRL_ROUNDABOUT
            for li in entries:
                link_sign[li] = max(link_sign[li], SIGN_GIVE_WAY)
            n_roundabout += 1
        elif node in all_way or (len(approaches) >= 3 and len(stops) == len(approaches)):
            control[node] = CTRL_ALL_WAY_STOP
            n_all_way += 1
        elif any(link_sign[li] != SIGN_NONE for li in approaches):
            n_two_way += 1
    report.roundabout_links = int(roundabout.sum())
    report.roundabout_junctions = n_roundabout
    report.all_way_stop_junctions = n_all_way
    report.two_way_sign_junctions = n_two_way
    return control, link_sign
