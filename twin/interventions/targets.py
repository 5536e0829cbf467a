"""Find what an intervention names on the map and the grid, or say clearly why not."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from twin.errors import ScenarioError

if TYPE_CHECKING:
    from twin.energy.synthesis import CityGrid
    from twin.interventions.config import TransformerOutage, TransformerRating, _Roads
    from twin.network.road import RoadNet

#: parts of one street name farther apart than this are different streets (m)
SAME_STREET_GAP_M = 300.0


def road_links(net: RoadNet, item: _Roads, where: str) -> np.ndarray:
    """The links (both directions) of the ways or the street ``item`` names."""
    if item.way:
        links = np.flatnonzero(np.isin(net.link_way_id, item.way))
        missing = sorted(set(item.way) - set(net.link_way_id[links].tolist()))
        if missing:
            raise ScenarioError(
                f"{where}: OSM way {', '.join(map(str, missing))} is not a road of this map "
                "(not drivable, outside the extract, or merged into a link of another way; "
                'try street = "name")'
            )
    else:
        links = _street_links(net, item.street, where)
    if item.bbox is not None:
        w, s, e, n = item.bbox
        a, b = net.link_from[links], net.link_to[links]
        lon = (net.node_lon[a] + net.node_lon[b]) / 2
        lat = (net.node_lat[a] + net.node_lat[b]) / 2
        links = links[(lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)]
        if len(links) == 0:
            raise ScenarioError(f"{where}: no link of {item.roads()} lies inside bbox")
    elif not item.way:
        _check_one_street(net, links, item.street, where)
    return links


def _street_links(net: RoadNet, street: str, where: str) -> np.ndarray:
    names = net.meta.get("link_names") or [""] * net.n_links
    wanted = street.strip().casefold()
    links = np.flatnonzero([n.casefold() == wanted for n in names])
    if len(links) == 0:
        known = sorted({n for n in names if n})
        close = difflib.get_close_matches(street, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ScenarioError(f"{where}: no street named {street!r} on this map{hint}")
    return links


def _check_one_street(net: RoadNet, links: np.ndarray, street: str, where: str) -> None:
    """A name used by several streets far apart needs a bbox to say which."""
    nodes = np.unique(np.concatenate([net.link_from[links], net.link_to[links]]))
    xy = np.column_stack([net.node_x_m[nodes], net.node_y_m[nodes]])
    pairs = cKDTree(xy).query_pairs(SAME_STREET_GAP_M, output_type="ndarray")
    n = len(nodes)
    ends = np.searchsorted(nodes, [net.link_from[links], net.link_to[links]])  # a link joins
    rows = np.concatenate([pairs[:, 0], ends[0]])
    cols = np.concatenate([pairs[:, 1], ends[1]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    k, label = connected_components(graph, directed=False)
    if k > 1:
        parts = []
        for c in range(min(k, 4)):
            sel = nodes[label == c]
            parts.append(
                f"[{net.node_lon[sel].min():.4f}, {net.node_lat[sel].min():.4f}, "
                f"{net.node_lon[sel].max():.4f}, {net.node_lat[sel].max():.4f}]"
            )
        raise ScenarioError(
            f"{where}: {street!r} names {k} streets more than {SAME_STREET_GAP_M:g} m apart; "
            f"add bbox = [west, south, east, north] to pick one, e.g. {'; '.join(parts)}"
        )


def signal_node(net: RoadNet, osm_id: int, where: str) -> int:
    """The road node of the signalised junction that OSM node ``osm_id`` belongs to."""
    sig = np.flatnonzero(net.signal_osm_ids == osm_id)
    if len(sig):
        s = int(np.searchsorted(net.signal_osm_offsets, sig[0], side="right") - 1)
        return int(net.signal_node[s])
    nodes = np.flatnonzero(net.node_osmid == osm_id)
    if len(nodes) and net.node_signal[nodes[0]] >= 0:
        return int(nodes[0])
    what = "not signalised" if len(nodes) else "not a junction of this map"
    raise ScenarioError(
        f"{where}: OSM node {osm_id} is {what} (`twin map info MAP --junctions` lists the "
        "signalised junctions and their nodes)"
    )


def junction_node(net: RoadNet, osm_id: int) -> int:
    """The road node OSM node ``osm_id`` stands for (as a junction or a signal node)."""
    sig = np.flatnonzero(net.signal_osm_ids == osm_id)
    if len(sig):
        return int(net.signal_node[np.searchsorted(net.signal_osm_offsets, sig[0], "right") - 1])
    return int(np.flatnonzero(net.node_osmid == osm_id)[0])


def place_node(net: RoadNet, lon: float, lat: float, where: str, max_m: float = 1000.0) -> int:
    """The road node nearest to a point; ScenarioError if it is off the map."""
    w, s, e, n = net.bbox_lonlat()
    d = np.hypot(
        (net.node_lon - lon) * 111_320.0 * np.cos(np.radians(lat)), (net.node_lat - lat) * 110_540.0
    )
    i = int(np.argmin(d))
    if d[i] > max_m:
        raise ScenarioError(
            f"{where}: place [{lon}, {lat}] is {d[i]:,.0f} m from the nearest road of the map "
            f"(at most {max_m:g} m; the map spans lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f})"
        )
    return i


def transformers(
    city: CityGrid, item: TransformerOutage | TransformerRating, where: str
) -> np.ndarray:
    """The MV/LV transformers an intervention names (by id, or every one on a feeder)."""
    n = len(city.trafo_branch)
    ids = np.asarray(item.transformers, dtype=np.int64)
    bad = ids[(ids < 0) | (ids >= n)]
    if len(bad):
        raise ScenarioError(
            f"{where}: transformer {', '.join(map(str, bad))} does not exist (this grid has "
            f"{n} MV/LV transformers, ids 0..{n - 1}: see transformers.csv of a run)"
        )
    feeder = getattr(item, "feeder", None)
    if feeder is not None:
        from twin.energy.synthesis import LEVEL_MV

        mv = np.flatnonzero(city.feeder_level == LEVEL_MV)
        if feeder not in mv.tolist():
            raise ScenarioError(
                f"{where}: MV feeder {feeder} does not exist (MV feeders: "
                f"{', '.join(map(str, mv[:20]))}{' ...' if len(mv) > 20 else ''})"
            )
        on = np.flatnonzero(city.bus_feeder[city.trafo_hv_bus] == feeder)
        ids = np.union1d(ids, on)
    return np.unique(ids)
