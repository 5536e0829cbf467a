"""Compile a clean road graph (see :mod:`twin.network.graph`) into a :class:`RoadNet`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict

import networkx as nx
import numpy as np
from shapely.geometry import LineString

from twin.network.graph import BuildReport
from twin.network.movements import (
    assign_lanes,
    bearing_deg,
    classify_turn,
    group_approaches,
    turning_angle_deg,
)
from twin.network.road import (
    CTRL_PRIORITY,
    CTRL_SIGNAL,
    FORMAT_VERSION,
    OPPOSING_MIN_DEG,
    SIGN_NONE,
    BuildOptions,
    RoadNet,
)
from twin.network.tags import HIGHWAY_CLASSES

BEARING_REACH_M = 20.0  # m, a link's end bearings are measured over this much of its line
MIN_LINK_LENGTH_M = 1.0  # m, shorter links (rare, from consolidation) are lengthened to this


def _first(value):
    return value[0] if isinstance(value, list) else value


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
    geom_offsets = np.zeros(m + 1, dtype=np.int64)
    geom_offsets[1:] = np.cumsum([len(g) for g in geoms])

    out_groups = [[] for _ in node_keys]
    in_groups = [[] for _ in node_keys]
    for li in range(m):
        out_groups[link_from[li]].append(li)
        in_groups[link_to[li]].append(li)

    bearings = [_end_bearings(g, length[i]) for i, g in enumerate(geoms)]
    movs = _movements(link_from, link_to, lanes, bearings, out_groups)
    mov_offsets = np.zeros(m + 1, dtype=np.int64)
    np.add.at(mov_offsets, movs["from"] + 1, 1)
    mov_offsets = np.cumsum(mov_offsets)

    signals = _signals(
        G,
        node_keys,
        index,
        attached,
        in_groups,
        bearings,
        cap_lane * lanes,
        movs,
        mov_offsets,
        report,
    )

    out_off, out_links = _csr(out_groups)
    in_off, in_links = _csr(in_groups)
    meta = {
        "format_version": FORMAT_VERSION,
        "source": source,
        "crs": str(G.graph.get("crs", "")),
        "options": asdict(options),
        "report": asdict(report),
        "highway_classes": list(HIGHWAY_CLASSES),
        "links_lengthened": int(sum(float(d["length"]) < MIN_LINK_LENGTH_M for *_, d in edges)),
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
        node_control=np.where(signals["node_signal"] >= 0, CTRL_SIGNAL, CTRL_PRIORITY).astype(
            np.int8
        ),
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
        link_sign=np.full(m, SIGN_NONE, dtype=np.int8),
        link_roundabout=np.zeros(m, dtype=np.bool_),
        link_turn_lanes=np.zeros(m, dtype=np.bool_),
        link_opposing=opposing_links(in_groups, [b[1] for b in bearings], m),
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


def _movements(link_from, link_to, lanes, bearings, out_groups) -> dict[str, np.ndarray]:
    """Every in-link to every out-link at each node (U-turns included, typed as such)."""
    rows = []
    for li in range(len(link_from)):
        outs = out_groups[link_to[li]]
        angles = [turning_angle_deg(bearings[li][1], bearings[lo][0]) for lo in outs]
        turns = [
            classify_turn(a, returns_to_origin=link_to[lo] == link_from[li])
            for a, lo in zip(angles, outs, strict=True)
        ]
        for lo, a, t, (l0, l1) in zip(
            outs, angles, turns, assign_lanes(turns, int(lanes[li])), strict=True
        ):
            rows.append((li, lo, t, a, l0, l1))
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return {
        "from": np.array(cols[0], dtype=np.int32),
        "to": np.array(cols[1], dtype=np.int32),
        "turn": np.array(cols[2], dtype=np.int8),
        "angle": np.array(cols[3], dtype=np.float32),
        "lane_first": np.array(cols[4], dtype=np.int16),
        "lane_last": np.array(cols[5], dtype=np.int16),
    }


def _signals(
    G,
    node_keys,
    index,
    attached,
    in_groups,
    bearings,
    capacity,
    movs,
    mov_offsets,
    report: BuildReport,
) -> dict[str, np.ndarray]:
    """Signalised intersections, the OSM signal nodes behind each, and two-phase plans."""
    osm_to_node = {}
    for n in node_keys:
        for osmid in _osmids(G.nodes[n]["osmid_original"]):
            osm_to_node[osmid] = index[n]
    by_node: dict[int, list[int]] = {}
    dropped = Counter(report.signals_dropped)
    for sid, junction in sorted(attached.items()):
        node = osm_to_node.get(junction)
        if node is None:
            dropped["outside the routing component"] += 1
        else:
            by_node.setdefault(node, []).append(sid)
    report.signals_dropped = dict(dropped)

    sig_nodes = sorted(by_node)
    node_signal = np.full(len(node_keys), -1, dtype=np.int32)
    phases: list[list[int]] = []
    phase_counts = []
    for s, node in enumerate(sig_nodes):
        node_signal[node] = s
        approaches = in_groups[node]
        groups = group_approaches(
            [bearings[li][1] for li in approaches], [capacity[li] for li in approaches]
        )
        for group in groups:
            phases.append(
                [
                    mv
                    for pos in group
                    for mv in range(mov_offsets[approaches[pos]], mov_offsets[approaches[pos] + 1])
                ]
            )
        phase_counts.append(len(groups))
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
