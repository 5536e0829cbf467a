"""Where people go: attraction points by purpose, travel-time zones, and a gravity model.

Attraction, in m2 of floor-area equivalent (judgement; the README lists it):

- work: floor area (footprint x levels) of non-residential buildings (WORK_BUILDINGS and
  ``building=yes`` outside residential areas), ``POI_FLOOR_M2`` per shop, amenity, office or
  school point, and ``LANDUSE_FAR`` x the area of commercial/retail/industrial/institutional
  land use (for the many extracts where those buildings are not mapped);
- shop (shopping, errands, leisure): shop and amenity points at ``POI_FLOOR_M2``, retail
  building floor area, ``LANDUSE_FAR`` x retail land use;
- school: one unit per school point or school building.

A ``local_shares`` part of each purpose's attraction serves the neighbourhood (shops, schools,
local jobs, which extracts often leave unmapped) and lies at the homes, equally per home; the
rest is the mapped attraction above. A purpose with nothing mapped goes to the homes alone,
and with no homes either to every network node (a warning says so).

Zones are square cells of at least ``ZONE_CELL_M`` over the network nodes (grown so there are
at most ``MAX_ZONES``); the free-flow travel time between zone representatives comes from one
Dijkstra per zone on the node graph (link length / speed limit). Destination choice is a
doubly-indexed gravity model: P(zone d | origin zone o) ~ A_d F(t_od), with the gamma
deterrence F(t) = t^b exp(c t), t in minutes, from NCHRP Report 716 (Cambridge Systematics
et al. 2012), Table 4.5 (large-MPO values): home-based work b = -0.020, c = -0.123;
home-based non-work b = -1.285, c = -0.094 (used for shop and school). Intra-zonal time is
half the time to the nearest other zone (the usual convention). Within the chosen zone a
destination point is drawn in proportion to its attraction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from twin.network.road import RoadNet
from twin.population.features import (
    POI_KINDS,
    SCHOOL_BUILDINGS,
    SHOP_BUILDINGS,
    WORK_BUILDINGS,
    WORK_LANDUSE,
    MapFeatures,
)
from twin.population.homes import residential_buildings

log = logging.getLogger(__name__)

PURPOSES = ("work", "shop", "school")
WORK, SHOP, SCHOOL = 0, 1, 2
HOME = 3  # the purpose of a leg that ends at home
THROUGH = 4  # a through-traffic leg, boundary to boundary
PURPOSE_NAMES = (*PURPOSES, "home", "through")

POI_FLOOR_M2 = 250.0  # floor-area equivalent of one shop/amenity/office point (judgement)
LANDUSE_FAR = 0.25  # floor-area ratio assumed for mapped land use without buildings
ZONE_CELL_M = 500.0
MAX_ZONES = 800
SNAP_MAX_M = 500.0  # attraction points farther than this from any network node are dropped
# gamma deterrence (b, c) per purpose, t in minutes: NCHRP Report 716 Table 4.5
DETERRENCE = {WORK: (-0.020, -0.123), SHOP: (-1.285, -0.094), SCHOOL: (-1.285, -0.094)}
MIN_TIME_MIN = 1.0  # deterrence is evaluated at >= 1 min (t^b diverges at 0)


@dataclass(eq=False)
class Zones:
    """Square zones over the network nodes and their free-flow travel times."""

    node_zone: np.ndarray  # int32 zone of every network node
    rep_node: np.ndarray  # int32 representative network node of each zone
    time_min: np.ndarray  # float64 (Z, Z) free-flow minutes between representatives
    dist_km: np.ndarray  # float64 (Z, Z) shortest road distance between representatives, km

    @property
    def n_zones(self) -> int:
        return len(self.rep_node)


def node_graph(net: RoadNet, link_weight: np.ndarray) -> csr_matrix:
    """Directed graph on the network nodes weighted per link (parallel links: the lightest)."""
    order = np.lexsort((link_weight, net.link_to, net.link_from))
    f, t, w = net.link_from[order], net.link_to[order], link_weight[order]
    first = np.ones(len(f), dtype=bool)
    first[1:] = (f[1:] != f[:-1]) | (t[1:] != t[:-1])
    return csr_matrix((w[first], (f[first], t[first])), shape=(net.n_nodes, net.n_nodes))


def build_zones(net: RoadNet, cell_m: float = ZONE_CELL_M, max_zones: int = MAX_ZONES) -> Zones:
    """Zones of ``cell_m`` squares (grown until at most ``max_zones``) and their time skim."""
    x, y = net.node_x_m, net.node_y_m
    while True:
        cx = np.floor((x - x.min()) / cell_m).astype(np.int64)
        cy = np.floor((y - y.min()) / cell_m).astype(np.int64)
        cells, node_zone = np.unique(cx * (cy.max() + 1) + cy, return_inverse=True)
        if len(cells) <= max_zones:
            break
        cell_m *= 1.25
    n_zones = len(cells)
    mx = np.bincount(node_zone, x, n_zones) / np.bincount(node_zone, minlength=n_zones)
    my = np.bincount(node_zone, y, n_zones) / np.bincount(node_zone, minlength=n_zones)
    # representative: the node of the zone nearest its nodes' mean position
    d2 = (x - mx[node_zone]) ** 2 + (y - my[node_zone]) ** 2
    order = np.lexsort((d2, node_zone))
    first = np.ones(len(order), dtype=bool)
    first[1:] = node_zone[order][1:] != node_zone[order][:-1]
    rep = order[first].astype(np.int32)
    free_flow_s = net.link_length_m / net.link_speed_mps
    time_min = dijkstra(node_graph(net, free_flow_s), indices=rep)[:, rep] / 60.0
    dist_km = dijkstra(node_graph(net, net.link_length_m), indices=rep)[:, rep] / 1000.0
    _intra_zonal(time_min, isolated=2.0)
    _intra_zonal(dist_km, isolated=1.0)
    return Zones(node_zone.astype(np.int32), rep, time_min, dist_km)


def _intra_zonal(skim: np.ndarray, *, isolated: float) -> None:
    """Set the diagonal to half the nearest other zone's value (``isolated`` if none)."""
    off = skim + np.diag(np.full(len(skim), np.inf))
    nearest = off.min(axis=1)
    skim[np.diag_indices(len(skim))] = np.where(np.isfinite(nearest), nearest, isolated) / 2.0


@dataclass(eq=False)
class Attraction:
    """Destination points of one purpose: their network node, zone and weight."""

    node: np.ndarray  # int32
    weight: np.ndarray  # float64 > 0
    zone_total: np.ndarray  # float64 (Z,) attraction per zone
    order: np.ndarray  # points sorted by zone
    cum: np.ndarray  # cumulative weight in that order
    zone_start: np.ndarray  # cum value where each zone's points begin


def _snap(
    tree: cKDTree, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(node, weight) of the points of positive weight within SNAP_MAX_M of a node."""
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    dist, node = tree.query(np.column_stack([x, y])) if len(x) else (np.empty(0), np.empty(0))
    near = dist <= SNAP_MAX_M
    return np.asarray(node, dtype=np.int32)[near], w[near]


def _attraction(zones: Zones, node: np.ndarray, w: np.ndarray) -> Attraction:
    zone = zones.node_zone[node]
    order = np.argsort(zone, kind="stable")
    cum = np.cumsum(w[order])
    zone_total = np.bincount(zone, w, zones.n_zones)
    zone_start = np.concatenate([[0.0], np.cumsum(zone_total)[:-1]])
    return Attraction(node, w, zone_total, order.astype(np.int64), cum, zone_start)


def attractions(
    net: RoadNet,
    features: MapFeatures,
    zones: Zones,
    homes_xy_m: tuple[np.ndarray, np.ndarray] | None = None,
    local_shares: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> list[Attraction]:
    """Attraction of work, shop and school destinations (indexed by WORK, SHOP, SCHOOL):
    the mapped features, and ``local_shares[purpose]`` of it at the homes ``homes_xy_m``."""
    f = features
    tree = cKDTree(np.column_stack([net.node_x_m, net.node_y_m]))
    res = residential_buildings(f)
    floor = f.bldg_floor_m2
    kind = f.bldg_type
    work_b = ~res & (np.isin(kind, list(WORK_BUILDINGS)) | (kind == "yes"))
    shop_b = np.isin(kind, list(SHOP_BUILDINGS))
    school_b = np.isin(kind, list(SCHOOL_BUILDINGS))
    lu = f.landuse_type
    poi = f.poi_kind
    is_shop = np.isin(poi, [POI_KINDS.index("shop"), POI_KINDS.index("errand")])
    is_school = poi == POI_KINDS.index("school")
    sets = {
        WORK: [
            (f.bldg_x_m, f.bldg_y_m, floor * work_b),
            (f.poi_x_m, f.poi_y_m, np.full(len(poi), POI_FLOOR_M2)),
            (f.landuse_x_m, f.landuse_y_m, LANDUSE_FAR * f.landuse_area_m2
             * np.isin(lu, list(WORK_LANDUSE))),
        ],
        SHOP: [
            (f.bldg_x_m, f.bldg_y_m, floor * shop_b),
            (f.poi_x_m, f.poi_y_m, POI_FLOOR_M2 * is_shop),
            (f.landuse_x_m, f.landuse_y_m, LANDUSE_FAR * f.landuse_area_m2 * (lu == "retail")),
        ],
        SCHOOL: [
            (f.bldg_x_m, f.bldg_y_m, 1.0 * school_b),
            (f.poi_x_m, f.poi_y_m, 1.0 * is_school),
        ],
    }  # fmt: skip
    out = []
    for purpose in (WORK, SHOP, SCHOOL):
        x = np.concatenate([s[0] for s in sets[purpose]])
        y = np.concatenate([s[1] for s in sets[purpose]])
        w = np.concatenate([np.asarray(s[2], dtype=np.float64) for s in sets[purpose]])
        node, w = _snap(tree, x, y, w)
        mapped = w.sum()
        share = local_shares[purpose]
        if homes_xy_m is not None and len(homes_xy_m[0]) and (share > 0 or mapped <= 0):
            hx, hy = homes_xy_m
            # each home: its equal part of share / (1 - share) x the mapped attraction
            per_home = 1.0 if share >= 1 or mapped <= 0 else share / (1 - share) * mapped / len(hx)
            h_node, h_w = _snap(tree, hx, hy, np.full(len(hx), per_home))
            if share >= 1:  # the homes alone
                node, w = node[:0], w[:0]
            node, w = np.concatenate([node, h_node]), np.concatenate([w, h_w])
        a = _attraction(zones, node, w)
        if mapped <= 0:
            where = "the homes" if a.weight.sum() > 0 else "any network node"
            log.warning("no %s destinations on the map: %s trips go to %s",
                        PURPOSES[purpose], PURPOSES[purpose], where)  # fmt: skip
        if a.weight.sum() <= 0:
            a = _attraction(zones, *_snap(tree, net.node_x_m, net.node_y_m, np.ones(net.n_nodes)))
        out.append(a)
    return out


class Gravity:
    """Gravity-model destination choice over zones, then over points within the zone."""

    def __init__(self, zones: Zones, attraction: list[Attraction]) -> None:
        self.zones = zones
        self.attraction = attraction
        t = np.maximum(zones.time_min, MIN_TIME_MIN)
        self._cdf: dict[int, np.ndarray] = {}
        for purpose, (b, c) in DETERRENCE.items():
            w = attraction[purpose].zone_total[None, :] * t**b * np.exp(c * t)
            w[~np.isfinite(w)] = 0.0
            cdf = np.cumsum(w, axis=1)
            total = cdf[:, -1:]
            # an origin zone that reaches no destination (isolated) takes the plain attraction
            fallback = np.cumsum(attraction[purpose].zone_total)[None, :]
            cdf = np.where(
                total > 0, cdf / np.where(total > 0, total, 1.0), fallback / fallback[0, -1]
            )
            self._cdf[purpose] = cdf

    def choose(self, purpose: int, origin_node: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A destination network node for each origin node, for ``purpose``."""
        origin_zone = self.zones.node_zone[origin_node]
        u_zone, u_point = rng.random(len(origin_node)), rng.random(len(origin_node))
        cdf = self._cdf[purpose]
        dest_zone = np.empty(len(origin_node), dtype=np.int64)
        order = np.argsort(origin_zone, kind="stable")
        bounds = np.searchsorted(origin_zone[order], np.arange(self.zones.n_zones + 1))
        for z in np.flatnonzero(np.diff(bounds)):
            idx = order[bounds[z] : bounds[z + 1]]
            dest_zone[idx] = np.searchsorted(cdf[z], u_zone[idx], side="right")
        dest_zone = np.minimum(dest_zone, self.zones.n_zones - 1)
        a = self.attraction[purpose]
        target = a.zone_start[dest_zone] + u_point * a.zone_total[dest_zone]
        k = np.minimum(np.searchsorted(a.cum, target, side="right"), len(a.cum) - 1)
        return a.node[a.order[k]]

    def time_min(self, origin_node: np.ndarray, dest_node: np.ndarray) -> np.ndarray:
        """Free-flow minutes between the zones of two node arrays."""
        z = self.zones.node_zone
        return self.zones.time_min[z[origin_node], z[dest_node]]
