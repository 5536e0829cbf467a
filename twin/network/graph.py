"""Turn an OSM extract into a clean, routable road graph (an osmnx MultiDiGraph).

The steps, in order, each counted in the :class:`BuildReport`:

1. one directed edge per way segment and travel direction (``oneway`` honoured), with the
   road attributes parsed from the way's tags;
2. traffic signals attached to the junction they control (a signal node that is not itself a
   junction, such as a stop-line node a few metres before one, goes to the nearest junction
   within ``signal_snap_m`` downstream along the roads, else in either direction);
3. osmnx simplification (interstitial nodes removed; a change of road attributes along a way
   keeps its node, so every link is uniform);
4. projection to UTM, then osmnx intersection consolidation: junction nodes closer than
   ``2 x consolidate_m`` that are connected form one intersection (as SUMO's
   ``--junctions.join``); signalised junctions use the larger radius ``signal_join_m``, so the
   nodes of one signalised crossing of dual carriageways become one controlled intersection;
5. the largest strongly connected component is kept for routing.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
import osmnx as ox

from twin.network.osm import OsmExtract
from twin.network.road import BuildOptions
from twin.network.tags import road_attributes


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
    signal_nodes: int = 0
    signals_on_junction: int = 0
    signals_snapped: int = 0
    signals_dropped: dict[str, int] = field(default_factory=dict)


def _way_edges(G: nx.MultiDiGraph, extract: OsmExtract) -> None:
    for way in extract.ways:
        attrs = road_attributes(way.tags)
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
        bwd = dict(fwd, lanes=attrs.lanes_backward, speed_mps=attrs.speed_backward_mps)
        # the same key on both directions, so an asymmetric two-way road still simplifies
        key = (
            attrs.highway,
            *sorted([(fwd["lanes"], fwd["speed_mps"]), (bwd["lanes"], bwd["speed_mps"])]),
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


def raw_graph(extract: OsmExtract) -> nx.MultiDiGraph:
    """The unsimplified directed road graph, in osmnx's format (unprojected, EPSG:4326)."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for nid in {r for w in extract.ways for r in w.node_ids}:
        lon, lat = extract.node_lonlat[nid]
        G.add_node(nid, x=lon, y=lat, lon=lon, lat=lat, signal=0)
    _way_edges(G, extract)
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


def _nearest_junction(
    G: nx.MultiDiGraph, source: int, snap_m: float, *, directed: bool
) -> int | None:
    """Dijkstra from ``source`` (along the travel direction if ``directed``), not passing
    through junctions; the nearest junction within ``snap_m`` or None."""
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
        steps = [(v, e["length"]) for _, v, e in G.out_edges(node, data=True)]
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
    G = raw_graph(extract)
    report.raw_nodes, report.raw_edges = len(G), G.number_of_edges()
    attached = attach_signals(G, extract, options.signal_snap_m, report)

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
    report.consolidated_nodes, report.consolidated_edges = len(G), G.number_of_edges()

    if options.keep_largest_scc and len(G):
        keep = max(nx.strongly_connected_components(G), key=len)
        n0, e0 = len(G), G.number_of_edges()
        G = G.subgraph(keep).copy()
        report.scc_nodes_dropped = n0 - len(G)
        report.scc_edges_dropped = e0 - G.number_of_edges()
    return G, report, attached
