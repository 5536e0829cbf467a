"""Turn an OSM extract into a clean, routable road graph (an osmnx MultiDiGraph).

The steps, in order, each counted in the :class:`BuildReport`:

1. one directed edge per way segment and travel direction (``oneway`` honoured), with the
   road attributes parsed from the way's tags;
2. traffic signals attached to the junction they control (a signal node that is not itself a
   junction, such as a stop-line node a few metres before one, goes to the nearest junction
   within ``signal_snap_m`` downstream along the roads, else in either direction);
   Stop and give-way nodes are attached the same way (along the direction they face when
   ``direction=forward|backward`` says, within ``sign_snap_m``); they do not stop a link
   from simplifying: the compiler gives each sign to the approach passing closest to it;
3. osmnx simplification (interstitial nodes removed; a change of road attributes along a way
   keeps its node, so every link is uniform);
4. projection to UTM, then osmnx intersection consolidation: junction nodes closer than
   ``2 x consolidate_m`` that are connected form one intersection (as SUMO's
   ``--junctions.join``); signalised junctions use the larger radius ``signal_join_m``, so the
   nodes of one signalised crossing of dual carriageways become one controlled intersection;
5. the largest strongly connected component is kept for routing. A one-way carriageway cut by
   the extract (a dual carriageway or a motorway leaving the map) ends in a dead end that no
   route can leave, so the filter drops it back to its last junction; the nodes of the kept
   component where a road of tertiary class or above led into or out of such a dropped stub
   are marked ``cut_end``: the road leaves the map there (a gateway, see
   :func:`~twin.population.external.cut_ends`).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
import osmnx as ox
from pyproj import Transformer

from twin.network.osm import OsmExtract
from twin.network.road import BuildOptions
from twin.network.tags import (
    CUT_END_MIN_RANK,
    DRIVABLE_HIGHWAYS,
    is_roundabout_way,
    road_attributes,
    turn_lanes_by_direction,
)


@dataclass
class BuildReport:
    """What happened to the file's ways, nodes and signals on the way to the road graph."""

    highway_ways: int = 0
    drivable_ways: int = 0
    excluded_ways: dict[str, int] = field(default_factory=dict)
    ways_repaired: int = 0
    ways_dropped_missing_nodes: int = 0
    node_refs_missing: int = 0
    raw_nodes: int = 0
    raw_edges: int = 0
    simplified_nodes: int = 0
    simplified_edges: int = 0
    consolidated_nodes: int = 0
    consolidated_edges: int = 0
    self_loops_dropped: int = 0
    scc_nodes_dropped: int = 0
    scc_edges_dropped: int = 0
    scc_cut_ends: int = 0  # kept nodes where a dropped stub of a cut carriageway began
    signal_nodes: int = 0
    signals_on_junction: int = 0
    signals_snapped: int = 0
    signals_dropped: dict[str, int] = field(default_factory=dict)
    # stop / give-way nodes: read by kind ("stop", "all-way stop", "give_way"), attached to a
    # junction in the raw graph (on it or snapped), dropped by reason; then, at compile time,
    # given to approaches, on a junction with no attributable approach, or ignored at signals
    sign_nodes: dict[str, int] = field(default_factory=dict)
    signs_on_junction: int = 0
    signs_snapped: int = 0
    signs_dropped: dict[str, int] = field(default_factory=dict)
    signs_attached: int = 0
    signs_unattributed: int = 0
    signs_at_signals: int = 0
    stop_approaches: int = 0
    give_way_approaches: int = 0
    all_way_stop_junctions: int = 0
    two_way_sign_junctions: int = 0
    roundabout_links: int = 0
    roundabout_junctions: int = 0
    roundabouts_merged: int = 0  # roundabouts consolidated into one (priority) node
    turn_lane_links: int = 0  # links whose movement lanes come from OSM turn:lanes
    turn_lanes_fallback: dict[str, int] = field(default_factory=dict)  # mapped, not used: why
    protected_left_signals: int = 0
    protected_left_axes: int = 0


def _way_edges(
    G: nx.MultiDiGraph, extract: OsmExtract, untagged_lanes: dict[str, int] | None = None
) -> None:
    for way in extract.ways:
        attrs = road_attributes(way.tags, untagged_lanes=untagged_lanes)
        fwd = dict(
            osmid=way.way_id,
            highway=attrs.highway,
            lanes=attrs.lanes_forward,
            speed_mps=attrs.speed_forward_mps,
            capacity_vph_per_lane=attrs.capacity_vph_per_lane,
            speed_default=attrs.speed_from_default,
            lanes_default=attrs.lanes_from_default,
            name=way.tags.get("name", ""),
        )
        fwd["roundabout"] = is_roundabout_way(way.tags)
        fwd["turn_lanes"], turn_bwd = turn_lanes_by_direction(way.tags, attrs.oneway)
        bwd = dict(
            fwd,
            lanes=attrs.lanes_backward,
            speed_mps=attrs.speed_backward_mps,
            turn_lanes=turn_bwd,
        )
        # the same key on both directions, so an asymmetric two-way road still simplifies
        key = (
            attrs.highway,
            fwd["roundabout"],
            *sorted(
                [
                    (fwd["lanes"], fwd["speed_mps"], fwd["turn_lanes"]),
                    (bwd["lanes"], bwd["speed_mps"], bwd["turn_lanes"]),
                ]
            ),
        )
        seg_key = "|".join(map(str, key))
        refs = way.node_ids
        for a, b in itertools.pairwise(refs):
            if a == b:
                continue
            if attrs.oneway in (0, 1):
                G.add_edge(a, b, oneway=attrs.oneway != 0, reversed=False, seg=seg_key, **fwd)
            if attrs.oneway in (0, -1):
                G.add_edge(b, a, oneway=attrs.oneway != 0, reversed=True, seg=seg_key, **bwd)


def raw_graph(extract: OsmExtract, untagged_lanes: dict[str, int] | None = None) -> nx.MultiDiGraph:
    """The unsimplified directed road graph, in osmnx's format (unprojected, EPSG:4326);
    ``untagged_lanes``: lanes a direction by class where OSM tags none (else the default)."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for nid in {r for w in extract.ways for r in w.node_ids}:
        lon, lat = extract.node_lonlat[nid]
        G.add_node(nid, x=lon, y=lat, lon=lon, lat=lat, signal=0)
    _way_edges(G, extract, untagged_lanes)
    G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    nx.set_node_attributes(G, ox.stats.count_streets_per_node(G), "street_count")
    return ox.distance.add_edge_lengths(G)


def _is_junction(G: nx.MultiDiGraph, node: int) -> bool:
    return len(set(G.predecessors(node)) | set(G.successors(node))) >= 3


def attach_signals(
    G: nx.MultiDiGraph, extract: OsmExtract, snap_m: float, report: BuildReport
) -> dict[int, int]:
    """Mark each signal's junction with ``signal=1``; return {signal node id: junction id}.

    A signal on a junction controls it. Otherwise the nearest junction reached by driving on
    from the signal node (never through another junction) within ``snap_m`` gets it, or failing
    that the nearest one in either direction (a signal mapped just past its junction). Signals
    on no drivable road, or with no junction in reach (mid-block crossings), are dropped and
    counted by reason.
    """
    attached: dict[int, int] = {}
    dropped: Counter = Counter()
    for sid in sorted(extract.signal_nodes):
        if sid not in G:
            dropped["not on a drivable road"] += 1
            continue
        if _is_junction(G, sid):
            attached[sid] = sid
            report.signals_on_junction += 1
            continue
        target = _nearest_junction(G, sid, snap_m, directed=True)
        if target is None:  # mapped just past its junction, or on the other carriageway
            target = _nearest_junction(G, sid, snap_m, directed=False)
        if target is None:
            dropped[f"mid-block: no junction within {snap_m:g} m"] += 1
            continue
        attached[sid] = target
        report.signals_snapped += 1
    for junction in attached.values():
        G.nodes[junction]["signal"] = 1
    report.signal_nodes = len(extract.signal_nodes)
    report.signals_dropped = dict(dropped)
    return attached


def attach_signs(
    G: nx.MultiDiGraph, extract: OsmExtract, snap_m: float, report: BuildReport
) -> dict[int, int]:
    """{sign node id: junction id} for the stop / give-way nodes of the file.

    As :func:`attach_signals`, except that a sign with ``direction=forward|backward`` goes
    only to the nearest junction ahead of the traffic it faces (its first step follows the
    way's node order, or the reverse); without a direction, ahead along either travel
    direction, else in either direction.
    """
    attached: dict[int, int] = {}
    dropped: Counter = Counter()
    kinds: Counter = Counter()
    for sid in sorted(extract.sign_nodes):
        sign = extract.sign_nodes[sid]
        kinds["all-way stop" if sign.all_way else sign.kind] += 1
        if sid not in G:
            dropped["not on a drivable road"] += 1
            continue
        if _is_junction(G, sid):
            attached[sid] = sid
            report.signs_on_junction += 1
            continue
        if sign.direction:
            target = _nearest_junction(
                G, sid, snap_m, directed=True, first_reversed=sign.direction < 0
            )
        else:
            target = _nearest_junction(G, sid, snap_m, directed=True)
            if target is None:
                target = _nearest_junction(G, sid, snap_m, directed=False)
        if target is None:
            ahead = " ahead" if sign.direction else ""
            dropped[f"no junction within {snap_m:g} m{ahead}"] += 1
            continue
        attached[sid] = target
        report.signs_snapped += 1
    report.sign_nodes = dict(kinds)
    report.signs_dropped = dict(dropped)
    return attached


def _nearest_junction(
    G: nx.MultiDiGraph,
    source: int,
    snap_m: float,
    *,
    directed: bool,
    first_reversed: bool | None = None,
) -> int | None:
    """Dijkstra from ``source`` (along the travel direction if ``directed``), not passing
    through junctions; the nearest junction within ``snap_m`` or None. With
    ``first_reversed`` set, the first step takes only edges whose ``reversed`` flag equals it
    (against the way's node order when True)."""
    dist = {source: 0.0}
    frontier = [(0.0, source)]
    best: tuple[float, int] | None = None

    while frontier:
        d, node = heapq.heappop(frontier)
        if d > dist.get(node, float("inf")):
            continue
        if node != source and _is_junction(G, node):
            if best is None or (d, node) < best:
                best = (d, node)
            continue
        steps = [
            (v, e["length"])
            for _, v, e in G.out_edges(node, data=True)
            if node != source or first_reversed is None or e["reversed"] == first_reversed
        ]
        if not directed:
            steps += [(u, e["length"]) for u, _, e in G.in_edges(node, data=True)]
        for nxt, length_m in steps:
            nd = d + length_m
            if nd <= snap_m and nd < dist.get(nxt, float("inf")):
                dist[nxt] = nd
                heapq.heappush(frontier, (nd, nxt))
    return None if best is None else best[1]


def build_graph(
    extract: OsmExtract, options: BuildOptions
) -> tuple[nx.MultiDiGraph, BuildReport, dict[int, int]]:
    """Steps 1-5 above; returns the projected graph, the report and the signal attachments.

    Nodes of the result carry ``osmid_original`` (an OSM node id or a list of them), ``x``/``y``
    (metres, UTM), ``lon``/``lat`` and ``signal`` (0/1).
    """
    report = BuildReport(
        highway_ways=extract.highway_ways,
        drivable_ways=len({w.way_id for w in extract.ways}) + extract.ways_dropped_missing_nodes,
        excluded_ways=dict(extract.excluded),
        ways_repaired=extract.ways_repaired,
        ways_dropped_missing_nodes=extract.ways_dropped_missing_nodes,
        node_refs_missing=extract.node_refs_missing,
    )
    G = raw_graph(extract, dict(options.untagged_lanes))
    report.raw_nodes, report.raw_edges = len(G), G.number_of_edges()
    attached = attach_signals(G, extract, options.signal_snap_m, report)
    signs = attach_signs(G, extract, options.sign_snap_m, report)
    roundabouts = _roundabouts(G)

    G = ox.simplify_graph(G, edge_attrs_differ=["seg"])
    report.simplified_nodes, report.simplified_edges = len(G), G.number_of_edges()
    G = ox.project_graph(G)
    # buffer junctions only: a dead end is merged only where it lies inside a junction's
    # buffer, and is never removed (osmnx's dead_ends=False would delete cul-de-sacs).
    # Signalised junctions reach further: the nodes of one signalised crossing of dual
    # carriageways are often 20-30 m apart (SUMO joins signals within 20 m: --tls.join)
    signal_m = max(options.consolidate_m, options.signal_join_m)
    tolerance = {
        n: signal_m if G.nodes[n]["signal"] else options.consolidate_m
        for n, c in ox.stats.count_streets_per_node(G).items()
        if c >= 3
    }
    if options.consolidate_m > 0 and tolerance:
        G = ox.consolidate_intersections(
            G,
            tolerance=tolerance,
            rebuild_graph=True,
            dead_ends=True,
            reconnect_edges=True,
            node_attr_aggs={"signal": "max", "lon": "mean", "lat": "mean"},
        )
    else:  # nothing to merge (consolidation off, or a map without junctions)
        for n, data in G.nodes(data=True):
            data["osmid_original"] = n
    loops = list(nx.selfloop_edges(G, keys=True))
    G.remove_edges_from(loops)
    report.self_loops_dropped = len(loops)
    kept = {
        w for *_, ids in G.edges(data="osmid") for w in (ids if isinstance(ids, list) else [ids])
    }
    report.roundabouts_merged = sum(1 for ways in roundabouts if not ways & kept)
    G.graph["signs"] = _sign_records(G, extract, signs)
    report.consolidated_nodes, report.consolidated_edges = len(G), G.number_of_edges()

    if options.keep_largest_scc and len(G):
        keep = max(nx.strongly_connected_components(G), key=len)
        n0, e0 = len(G), G.number_of_edges()
        cut = _cut_carriageway_ends(G, keep)
        G = G.subgraph(keep).copy()
        for n in cut:
            G.nodes[n]["cut_end"] = True
        report.scc_cut_ends = len(cut)
        report.scc_nodes_dropped = n0 - len(G)
        report.scc_edges_dropped = e0 - G.number_of_edges()
    return G, report, attached


def _big(highway: str | list[str] | None) -> bool:
    """Whether a road of this class (the biggest of a list) is tertiary_link or above."""
    names = highway if isinstance(highway, list) else [highway]
    return max(DRIVABLE_HIGHWAYS.get(str(h), 0) for h in names) >= CUT_END_MIN_RANK


def _cut_carriageway_ends(G: nx.MultiDiGraph, keep: set[int]) -> set[int]:
    """Nodes of ``keep`` where a road of tertiary class or above leads into (or comes out of) a
    part the strongly connected filter drops that holds a dead end of such a road: a one-way
    carriageway cut by the extract, dropped back to its last junction."""
    dropped = G.subgraph([n for n in G if n not in keep])
    ends = {
        n
        for n in dropped
        if (G.out_degree(n) == 0 and any(_big(h) for *_, h in G.in_edges(n, data="highway")))
        or (G.in_degree(n) == 0 and any(_big(h) for *_, h in G.out_edges(n, data="highway")))
    }
    cut: set[int] = set()
    for part in nx.weakly_connected_components(dropped):
        if part & ends:
            for n in part:
                cut.update(u for u, _, h in G.in_edges(n, data="highway") if u in keep and _big(h))
                cut.update(w for _, w, h in G.out_edges(n, data="highway") if w in keep and _big(h))
    return cut


def _roundabouts(G: nx.MultiDiGraph) -> list[set[int]]:
    """The way ids of each roundabout (roundabout ways that share nodes) in the raw graph."""
    ring = nx.Graph()
    for u, v, d in G.edges(data=True):
        if d.get("roundabout"):
            ring.add_edge(u, v)
    ways = []
    for nodes in nx.connected_components(ring):
        ways.append(
            {d["osmid"] for u, v, d in G.edges(nodes, data=True) if d["roundabout"] and v in nodes}
        )
    return ways


def _sign_records(G: nx.MultiDiGraph, extract: OsmExtract, signs: dict[int, int]) -> list[dict]:
    """The attached signs as the compiler reads them (``G.graph["signs"]``): OSM id, kind,
    all-way, junction OSM id, whether it sits on the junction, and its projected x/y."""
    if not signs:
        return []
    to_xy = Transformer.from_crs("EPSG:4326", G.graph["crs"], always_xy=True)
    records = []
    for sid, junction in sorted(signs.items()):
        sign = extract.sign_nodes[sid]
        x, y = to_xy.transform(*sign.lonlat)
        records.append(
            dict(
                osmid=sid,
                kind=sign.kind,
                all_way=sign.all_way,
                junction=junction,
                on_junction=sid == junction,
                x=float(x),
                y=float(y),
            )
        )
    return records
