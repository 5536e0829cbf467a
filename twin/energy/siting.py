"""Where a synthesised grid's substations and MV/LV transformers stand, and whom they serve.

The road graph is the RoadNet taken as undirected: one edge per pair of adjacent nodes, of the
shortest link between them (cables follow streets in both directions). Every distance here is
a road distance over that graph unless it says otherwise.

**Primary substations** (:func:`primary_sites`): mapped ``power=substation`` /
``sub_station`` of any kind except ``minor_distribution`` (MV/LV kiosks) and ``traction``
(railway supply), and ``power=transformer`` nodes at ``HV_MIN_KV`` or more (a substation's
transformers, often mapped without the substation). Candidates closer than
``substation_merge_m`` to one already kept join it (substations first, by OSM id); each is
snapped to the nearest road node and dropped if that is farther than ``substation_snap_m``
(outside the mapped streets). With none left, one is placed at the road node nearest the
households' centroid. Once the MV/LV transformers stand (:func:`add_primaries`), each feeds
from its nearest substation by road; a substation whose design load would exceed
``max_substation_mva`` gains a neighbour, placed by 2-means over its transformers' sites
(weighted by households, the substation held fixed) at the transformer node nearest the new
centre, until none is over (or the load left sits at a substation's own node).

**MV/LV transformer sites** (:func:`transformer_sites`), for households at road nodes:

1. A node with ``max_households`` or more households (a large block of flats) gets
   ``n // max_households`` transformers of its own, each serving ``max_households`` of them;
   the rest join the pool.
2. Anchors: mapped ``substation=minor_distribution`` kiosks and ``power=transformer`` nodes
   below ``HV_MIN_KV`` (or of unknown voltage), snapped to the nearest node holding pool
   households if that is within ``anchor_snap_m``; they stay where they are.
3. ``k = ceil(pool / (INITIAL_FILL * max_households))`` centres (at least one per anchor):
   k-means on the households' coordinates (gathered per home node: their mean position,
   weighted by their number), seeded by k-means++ from the named stream ``grid.lv_sites``,
   anchors held fixed; each free centre is snapped to the nearest node holding pool
   households.
4. Each household belongs to its nearest site by road distance (a multi-source Dijkstra: a
   Voronoi partition of the road graph, so the shortest-path trees of the sites never share a
   road node). A site whose cell holds more than ``max_households`` households, or one farther
   than ``max_lv_feeder_m`` along the roads, is split in two by 2-means on its households
   (anchors keep their place and gain a neighbour), or, when that does not give two new
   nodes, a new site is added at its farthest household node; repeated until no cell breaks a
   limit (after ``SPLIT_ROUNDS`` rounds only the farthest-node rule is used, which always ends).

Every step is deterministic: the same inputs and seed give the same sites.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from twin.energy.osm_power import MINOR_DISTRIBUTION, PowerFeatures
from twin.network.road import RoadNet
from twin.rng import stream

HV_MIN_KV = 35.0  # a transformer with a primary at or above this belongs to a substation
EXCLUDED_SUBSTATIONS = (MINOR_DISTRIBUTION, "traction")  # substation=* that are not primaries
INITIAL_FILL = 0.75  # initial transformers: households / (this x max households per one)
KMEANS_ITER = 30  # Lloyd iterations of the initial k-means
SPLIT_ROUNDS = 30  # rounds of 2-means splits before only farthest-node sites are added
MIN_EDGE_M = 1.0  # shortest road edge (and cable) length, m; scipy's graphs drop zero weights


@dataclass(eq=False)
class RoadGraph:
    """The RoadNet as an undirected graph: one edge per adjacent node pair (its shortest link)."""

    matrix: csr_matrix  # (n_nodes, n_nodes), upper triangle, weights = edge_length_m
    edge_key: np.ndarray  # int64 sorted min(u, v) * n_nodes + max(u, v)
    edge_length_m: np.ndarray  # float64 per edge, at least MIN_EDGE_M
    edge_link: np.ndarray  # int32 the RoadNet link of each edge

    @property
    def n_nodes(self) -> int:
        return self.matrix.shape[0]

    def edges(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Edge indices of the node pairs (u[i], v[i]) (which must be adjacent)."""
        n = self.n_nodes
        key = np.minimum(u, v).astype(np.int64) * n + np.maximum(u, v)
        idx = np.minimum(np.searchsorted(self.edge_key, key), len(self.edge_key) - 1)
        if len(key) and not np.array_equal(self.edge_key[idx], key):
            raise ValueError("edges(): a node pair is not adjacent")
        return idx


def road_graph(net: RoadNet) -> RoadGraph:
    """The undirected road graph of ``net`` (parallel and opposite links merged, shortest kept)."""
    n = net.n_nodes
    u, v = net.link_from.astype(np.int64), net.link_to.astype(np.int64)
    keep = u != v
    a, b = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
    length = np.maximum(net.link_length_m[keep], MIN_EDGE_M)
    link = np.flatnonzero(keep)
    key = a * n + b
    order = np.lexsort((link, length, key))  # by key, then shortest, then lowest link id
    key, length, link = key[order], length[order], link[order]
    first = np.concatenate([[True], key[1:] != key[:-1]])
    key, length, link = key[first], length[first], link[first]
    m = csr_matrix((length, (key // n, key % n)), shape=(n, n))
    return RoadGraph(m, key, length, link.astype(np.int32))


@dataclass(eq=False)
class Voronoi:
    """Nearest site of every road node (multi-source Dijkstra) and the shortest-path forest."""

    dist_m: np.ndarray  # float64 road distance to the nearest site (inf: unreachable)
    pred: np.ndarray  # int32 next node towards the site; -1 at a site or unreachable
    site: np.ndarray  # int32 index of the nearest site; -1 unreachable


def voronoi(graph: RoadGraph, site_nodes: np.ndarray) -> Voronoi:
    """Partition the road nodes by their nearest site (ties as scipy's Dijkstra breaks them)."""
    n = graph.n_nodes
    dist, pred, src = dijkstra(
        graph.matrix, directed=False, indices=site_nodes, min_only=True, return_predecessors=True
    )
    site_of_node = np.full(n, -1, dtype=np.int64)
    site_of_node[site_nodes] = np.arange(len(site_nodes))
    site = np.where(src >= 0, site_of_node[np.maximum(src, 0)], -1)
    return Voronoi(dist, np.where(pred >= 0, pred, -1).astype(np.int32), site.astype(np.int32))


def tree_nodes(vor: Voronoi, needed: np.ndarray) -> np.ndarray:
    """bool per node: on the shortest path from its site to some ``needed`` node."""
    on = needed.copy()
    for v in np.flatnonzero(needed):
        p = vor.pred[v]
        while p >= 0 and not on[p]:  # a node already on the tree has its path marked (or will)
            on[p] = True
            p = vor.pred[p]
    return on


def downstream_sum(vor: Voronoi, on: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per node of the forest ``on``: the sum of ``value`` over the node and all below it."""
    total = np.where(on, value, 0).astype(np.float64)
    nodes = np.flatnonzero(on)
    for v in nodes[np.argsort(-vor.dist_m[nodes], kind="stable")]:  # leaves first
        p = vor.pred[v]
        if p >= 0:
            total[p] += total[v]
    return total


# ---------------------------------------------------------------------------------------------
# primary substations


@dataclass(eq=False)
class PrimarySites:
    """Primary (HV/MV) substations: one row each."""

    node: np.ndarray  # int32 road node of the MV busbar
    x_m: np.ndarray  # float64 the site (the mapped feature, or the node when placed)
    y_m: np.ndarray
    osm_id: np.ndarray  # int64 OSM id of the mapped feature; -1 when placed
    osm_is_way: np.ndarray  # bool
    merged: np.ndarray  # int32 mapped features merged into the site (0 when placed)
    name: np.ndarray  # object


def primary_sites(
    net: RoadNet,
    power: PowerFeatures,
    home_x_m: np.ndarray,
    home_y_m: np.ndarray,
    *,
    merge_m: float,
    snap_m: float,
) -> PrimarySites:
    """Primary substations from the mapped features, or one at the load centre (see module)."""
    subs = np.flatnonzero(~np.isin(power.sub_kind, EXCLUDED_SUBSTATIONS))
    subs = subs[np.argsort(power.sub_osm_id[subs], kind="stable")]
    hv = np.flatnonzero(power.trafo_primary_kv >= HV_MIN_KV)
    hv = hv[np.argsort(power.trafo_osm_id[hv], kind="stable")]
    cx = np.concatenate([power.sub_x_m[subs], power.trafo_x_m[hv]])
    cy = np.concatenate([power.sub_y_m[subs], power.trafo_y_m[hv]])
    cid = np.concatenate([power.sub_osm_id[subs], power.trafo_osm_id[hv]])
    cway = np.concatenate([power.sub_is_way[subs], np.zeros(len(hv), dtype=bool)])
    cname = np.concatenate([power.sub_name[subs], np.full(len(hv), "", dtype=object)])
    kept: list[int] = []
    merged: list[int] = []
    for i in range(len(cx)):
        if kept:
            d = np.hypot(cx[kept] - cx[i], cy[kept] - cy[i])
            j = int(np.argmin(d))
            if d[j] < merge_m:
                merged[j] += 1
                continue
        kept.append(i)
        merged.append(1)
    node_tree = cKDTree(np.column_stack([net.node_x_m, net.node_y_m]))
    rows: list[tuple[int, float, float, int, bool, int, str]] = []
    seen: set[int] = set()
    for i, m in zip(kept, merged, strict=True):
        d, node = node_tree.query([cx[i], cy[i]])
        if d > snap_m or int(node) in seen:
            continue
        seen.add(int(node))
        rows.append((int(node), cx[i], cy[i], int(cid[i]), bool(cway[i]), m, str(cname[i])))
    if not rows:
        _, node = node_tree.query([float(np.mean(home_x_m)), float(np.mean(home_y_m))])
        node = int(node)
        rows.append((node, net.node_x_m[node], net.node_y_m[node], -1, False, 0, ""))
    cols = list(zip(*rows, strict=True))
    return PrimarySites(
        node=np.asarray(cols[0], dtype=np.int32),
        x_m=np.asarray(cols[1], dtype=np.float64),
        y_m=np.asarray(cols[2], dtype=np.float64),
        osm_id=np.asarray(cols[3], dtype=np.int64),
        osm_is_way=np.asarray(cols[4], dtype=bool),
        merged=np.asarray(cols[5], dtype=np.int32),
        name=np.asarray(cols[6], dtype=object),
    )


def add_primaries(
    net: RoadNet,
    graph: RoadGraph,
    subs: PrimarySites,
    trafo_node: np.ndarray,
    trafo_households: np.ndarray,
    need_mva: Callable[[np.ndarray], np.ndarray],
    *,
    max_mva: float,
) -> tuple[PrimarySites, Voronoi]:
    """Add substations until none would carry more than ``max_mva`` (see the module), and the
    road Voronoi partition of the transformers' nodes by substation."""
    nodes = [int(n) for n in subs.node]
    node_xy = np.column_stack([net.node_x_m, net.node_y_m])
    while True:
        vor = voronoi(graph, np.asarray(nodes, dtype=np.int64))
        sub_of = vor.site[trafo_node]
        load = need_mva(np.bincount(sub_of[sub_of >= 0], trafo_households[sub_of >= 0], len(nodes)))
        added: list[int] = []
        for s in np.flatnonzero(load > max_mva).tolist():
            members = np.flatnonzero((sub_of == s) & (trafo_node != nodes[s]))
            if members.size == 0:
                continue  # all its load at its own node: parallel units will have to do
            xy, w = node_xy[trafo_node[members]], trafo_households[members].astype(np.float64)
            c0 = node_xy[nodes[s]]
            c1 = xy[np.argmax(vor.dist_m[trafo_node[members]])]
            for _ in range(10):  # 2-means with the substation held fixed
                far = ((xy - c1) ** 2).sum(-1) < ((xy - c0) ** 2).sum(-1)
                if far.any():
                    c1 = (xy[far] * w[far, None]).sum(0) / w[far].sum()
            new = int(trafo_node[members][np.argmin(((xy - c1) ** 2).sum(-1))])
            if new not in nodes and new not in added:
                added.append(new)
        if not added:
            break
        nodes.extend(added)
    n_new = len(nodes) - len(subs.node)
    new_nodes = np.asarray(nodes[len(subs.node) :], dtype=np.int64)
    out = PrimarySites(
        node=np.asarray(nodes, dtype=np.int32),
        x_m=np.concatenate([subs.x_m, net.node_x_m[new_nodes]]),
        y_m=np.concatenate([subs.y_m, net.node_y_m[new_nodes]]),
        osm_id=np.concatenate([subs.osm_id, np.full(n_new, -1, dtype=np.int64)]),
        osm_is_way=np.concatenate([subs.osm_is_way, np.zeros(n_new, dtype=bool)]),
        merged=np.concatenate([subs.merged, np.zeros(n_new, dtype=np.int32)]),
        name=np.concatenate([subs.name, np.full(n_new, "", dtype=object)]),
    )
    return out, vor


# ---------------------------------------------------------------------------------------------
# MV/LV transformer sites


@dataclass(eq=False)
class TransformerSites:
    """MV/LV transformer sites and the households each serves."""

    node: np.ndarray  # int32 road node of each transformer
    dedicated: np.ndarray  # bool: serves only households at its own node (a large block)
    anchor_osm_id: np.ndarray  # int64 OSM id of the mapped kiosk/transformer it stands for; -1
    household_site: np.ndarray  # int32 per household: its transformer
    vor: Voronoi  # the road Voronoi partition of the pool (non-dedicated) sites


def lv_anchors(power: PowerFeatures) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mapped MV/LV kiosks and distribution transformers: (x_m, y_m, osm_id), by OSM id."""
    kiosk = np.flatnonzero(power.sub_minor)
    lv = np.flatnonzero(~(power.trafo_primary_kv >= HV_MIN_KV))
    x = np.concatenate([power.sub_x_m[kiosk], power.trafo_x_m[lv]])
    y = np.concatenate([power.sub_y_m[kiosk], power.trafo_y_m[lv]])
    ids = np.concatenate([power.sub_osm_id[kiosk], power.trafo_osm_id[lv]])
    order = np.argsort(ids, kind="stable")
    return x[order], y[order], ids[order]


def transformer_sites(
    net: RoadNet,
    graph: RoadGraph,
    home_node: np.ndarray,
    home_x_m: np.ndarray,
    home_y_m: np.ndarray,
    anchors: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    max_households: int,
    max_lv_feeder_m: float,
    anchor_snap_m: float,
    seed: int,
) -> TransformerSites:
    """Site MV/LV transformers for the households (see the module docstring for the rules)."""
    n_hh, n_nodes = len(home_node), net.n_nodes
    household_site = np.full(n_hh, -1, dtype=np.int32)
    # 1. dedicated transformers for nodes with max_households or more
    count = np.bincount(home_node, minlength=n_nodes)
    ded_nodes: list[int] = []
    pool = np.ones(n_hh, dtype=bool)
    by_node = np.argsort(home_node, kind="stable")
    starts = np.searchsorted(home_node[by_node], np.arange(n_nodes + 1))
    ded_members: list[np.ndarray] = []
    for node in np.flatnonzero(count >= max_households):
        members = by_node[starts[node] : starts[node + 1]]
        for k in range(len(members) // max_households):
            chunk = members[k * max_households : (k + 1) * max_households]
            ded_nodes.append(int(node))
            ded_members.append(chunk)
            pool[chunk] = False
    pool_idx = np.flatnonzero(pool)
    pts = np.column_stack([home_x_m[pool_idx], home_y_m[pool_idx]])
    pool_nodes = np.unique(home_node[pool_idx])
    sites: np.ndarray = np.zeros(0, dtype=np.int64)
    anchor_id: dict[int, int] = {}
    inf = np.full(n_nodes, np.inf)
    vor = Voronoi(inf, np.full(n_nodes, -1, dtype=np.int32), np.full(n_nodes, -1, dtype=np.int32))
    if len(pool_idx):
        node_xy = np.column_stack([net.node_x_m[pool_nodes], net.node_y_m[pool_nodes]])
        node_tree = cKDTree(node_xy)
        # 2. anchors
        ax, ay, aid = anchors
        fixed_xy: list[tuple[float, float]] = []
        fixed_nodes: list[int] = []
        if len(ax):
            d, j = node_tree.query(np.column_stack([ax, ay]))
            for i in range(len(ax)):
                node = int(pool_nodes[j[i]])
                if d[i] <= anchor_snap_m and node not in anchor_id:
                    anchor_id[node] = int(aid[i])
                    fixed_nodes.append(node)
                    fixed_xy.append((float(ax[i]), float(ay[i])))
        # 3. k-means with the anchors fixed, over the households gathered by home node (their
        # mean position, weighted by their number)
        k = max(len(fixed_nodes), math.ceil(len(pool_idx) / (INITIAL_FILL * max_households)))
        inv = np.searchsorted(pool_nodes, home_node[pool_idx])
        w = np.bincount(inv, minlength=len(pool_nodes)).astype(np.float64)
        mean_xy = (
            np.column_stack(
                [
                    np.bincount(inv, pts[:, 0], len(pool_nodes)),
                    np.bincount(inv, pts[:, 1], len(pool_nodes)),
                ]
            )
            / w[:, None]
        )
        centres = _kmeans(mean_xy, w, np.asarray(fixed_xy).reshape(-1, 2), k, seed)
        _, j = node_tree.query(centres[len(fixed_nodes) :])
        free = pool_nodes[np.atleast_1d(j)]
        sites = _unique_in_order(np.concatenate([fixed_nodes, free]).astype(np.int64))
        # 4. split cells until every one keeps the limits
        sites, vor = _split_until_valid(
            graph, sites, set(anchor_id), home_node[pool_idx], pts,
            np.column_stack([net.node_x_m, net.node_y_m]),
            max_households=max_households, max_lv_feeder_m=max_lv_feeder_m,
        )  # fmt: skip
        household_site[pool_idx] = vor.site[home_node[pool_idx]]
    n_pool_sites = len(sites)
    for k, chunk in enumerate(ded_members):
        household_site[chunk] = n_pool_sites + k
    node = np.concatenate([sites, np.asarray(ded_nodes, dtype=np.int64)]).astype(np.int32)
    dedicated = np.arange(len(node)) >= n_pool_sites
    anchor_osm = np.array([anchor_id.get(int(s), -1) for s in sites] + [-1] * len(ded_nodes))
    return TransformerSites(node, dedicated, anchor_osm.astype(np.int64), household_site, vor)


def _unique_in_order(a: np.ndarray) -> np.ndarray:
    _, first = np.unique(a, return_index=True)
    return a[np.sort(first)]


def _kmeans(
    pts: np.ndarray, weight: np.ndarray, fixed: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """k centres of the weighted points: the ``fixed`` ones first (never moved), the rest
    seeded by k-means++ (D^2 x weight sampling) from the stream ``grid.lv_sites`` and moved by
    weighted Lloyd iterations."""
    rng = stream(seed, "grid.lv_sites")
    centres = list(fixed)
    if not centres:
        centres.append(pts[int(np.searchsorted(np.cumsum(weight), rng.random() * weight.sum()))])
    d2 = cKDTree(np.asarray(centres)).query(pts)[0] ** 2
    while len(centres) < k:
        cum = np.cumsum(d2 * weight)
        if cum[-1] <= 0:
            break  # every point is a centre already
        i = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(pts) - 1)
        centres.append(pts[i])
        d2 = np.minimum(d2, ((pts - pts[i]) ** 2).sum(-1))
    c = np.asarray(centres, dtype=np.float64)
    n_fixed = len(fixed)
    for _ in range(KMEANS_ITER):
        _, lab = cKDTree(c).query(pts)
        w = np.bincount(lab, weight, minlength=len(c))
        sx = np.bincount(lab, weight * pts[:, 0], minlength=len(c))
        sy = np.bincount(lab, weight * pts[:, 1], minlength=len(c))
        new = c.copy()
        move = (w > 0) & (np.arange(len(c)) >= n_fixed)
        new[move, 0] = sx[move] / w[move]
        new[move, 1] = sy[move] / w[move]
        shift = np.abs(new - c).max() if len(c) else 0.0
        c = new
        if shift < 1.0:
            break
    return c


def _split_until_valid(
    graph: RoadGraph,
    sites: np.ndarray,
    anchors: set[int],
    hh_node: np.ndarray,
    hh_xy: np.ndarray,
    node_xy: np.ndarray,
    *,
    max_households: int,
    max_lv_feeder_m: float,
) -> tuple[np.ndarray, Voronoi]:
    """Add sites until no cell has too many households or one too far (see module, step 4)."""
    rounds = 0
    while True:
        vor = voronoi(graph, sites)
        cell = vor.site[hh_node]
        dist = vor.dist_m[hh_node]
        n_sites = len(sites)
        count = np.bincount(cell, minlength=n_sites)
        far = np.zeros(n_sites)
        np.maximum.at(far, cell, dist)
        bad = np.flatnonzero((count > max_households) | (far > max_lv_feeder_m))
        if bad.size == 0:
            return sites, vor
        site_set = set(sites.tolist())
        new_sites = list(sites)
        removed: set[int] = set()
        for c in bad:
            s = int(sites[c])
            members = np.flatnonzero(cell == c)
            m_nodes, m_xy, m_dist = hh_node[members], hh_xy[members], dist[members]
            farthest = int(m_nodes[np.argmax(m_dist)])
            added: list[int] = []
            if rounds < SPLIT_ROUNDS:
                added = _two_means_sites(s, s in anchors, m_nodes, m_xy, m_dist, node_xy)
                if any(a in site_set and a != s for a in added) or len(set(added)) < len(added):
                    added = []
            if added and s not in anchors:
                if s not in added:  # the two new sites replace this one
                    removed.add(s)
                    site_set.discard(s)
            else:
                added = [a for a in added if a != s] or [farthest]
            for a in added:
                if a not in site_set:
                    site_set.add(a)
                    new_sites.append(a)
        sites = np.asarray([s for s in new_sites if s not in removed], dtype=np.int64)
        rounds += 1


def _two_means_sites(
    site: int,
    is_anchor: bool,
    m_nodes: np.ndarray,
    m_xy: np.ndarray,
    m_dist: np.ndarray,
    node_xy: np.ndarray,
) -> list[int]:
    """Two new site nodes for a cell split by 2-means on its households' coordinates (an
    anchor keeps its place: one new node); each snapped to the nearest node of the cell that
    holds households."""
    a = int(np.argmax(m_dist))
    b = int(np.argmax(((m_xy - m_xy[a]) ** 2).sum(-1)))
    c = np.stack([m_xy[a], m_xy[b]]).astype(np.float64)
    if is_anchor:
        own = m_xy[m_nodes == site]
        c[0] = own.mean(axis=0) if len(own) else m_xy[np.argmin(m_dist)]
        c[1] = m_xy[a]
    for _ in range(10):
        lab = (((m_xy - c[1]) ** 2).sum(-1) < ((m_xy - c[0]) ** 2).sum(-1)).astype(np.int64)
        for k in (0, 1):
            if is_anchor and k == 0:
                continue
            if (lab == k).any():
                c[k] = m_xy[lab == k].mean(axis=0)
    nodes = np.unique(m_nodes)
    out = []
    for k in (1,) if is_anchor else (0, 1):
        d = ((node_xy[nodes] - c[k]) ** 2).sum(-1)
        out.append(int(nodes[np.argmin(d)]))
    return out
