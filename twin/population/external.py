"""Trips that leave the map: tour stops outside a clipped extract, reached through gateways.

A map is an extract: many of its residents' workplaces, shops and schools lie beyond its
edge. For each stop of a default tour (:func:`~twin.population.plans.plan_tours`) the trip
length L (road distance) is drawn from the purpose's survey trip-length distribution
(:data:`TRIP_LENGTH_KM`, times ``[population] trip_length_scale``) and a direction theta
uniformly; the stop lies outside the map when ``L / DETOUR`` (straight line) is beyond the map
boundary (the convex hull of the network's nodes) seen from the trip's origin in that
direction. So P(outside) = the mean over directions of the share of that purpose's
trip-length distribution beyond the distance to the boundary: near zero in the middle of a
big map, near one on a tiny extract. A stop inside keeps the gravity model's destination.

An outside stop's node is an **exit gateway** (a node within ``EDGE_MARGIN_M`` of the
boundary, on any road: residents leave by the streets they would use; or a **cut end**, where
a road of tertiary class or above ends with no other road: where the extract cut it, which
may lie well inside the hull of an irregular extract) drawn by the capacity of its links times
``exp(-d / GATEWAY_DECAY_M)``, d the distance from the point where the straight line leaves
the map; the car comes back through the nearest **entry gateway** to it (the other
carriageway, or the same node). Its ``outside_m`` is the road distance driven beyond the
gateway, ``max(L - d_inside, MIN_OUTSIDE_M)`` (d_inside: the road distance from the origin to
the gateway), so the whole trip is about L long. A stop chained after an outside stop (a shop
on the way home from an outside workplace) is outside too, near it: its ``outside_m`` is the
hop from the previous stop (a length of its purpose's distribution, drawn afresh), and the car
comes back from the first outside stop's distance. The car is out of the simulation between
arriving at the exit gateway and re-entering: the outside driving time (at
``OUTSIDE_SPEED_MPS``) there and back plus the activity (see
:func:`~twin.population.plans.chain_legs`). Through traffic is separate and unchanged.

Trip-length distributions (road distance, vehicle trips), lognormal per purpose:

- shop (shopping, errands, leisure; the "all purposes" fit): NHTS 2017 (FHWA, Summary of
  Travel Trends 2017, FHWA-PL-18-019): mean vehicle trip 10.5 mi (16.9 km), and more than
  35 % of vehicle trips are under 2 mi; a lognormal with both has sigma 1.48 and median
  3.5 mi (5.7 km);
- work: NHTS 2017 mean commute (to/from work) vehicle trip about 12 mi (19.3 km); sigma 1.0
  (judgement: commute lengths are less skewed), median 11.7 km;
- school: median 4 km, sigma 1.0 (judgement; school trips are the shortest purpose in NHTS).

Lengths are capped at ``MAX_TRIP_KM`` (100 mi: a day trip; trips of 100 mi or more are under
1 % of vehicle trips but about 15 % of vehicle miles, FHWA "Our Nation's Highways 2008",
Fig. 4-5, so the mean of the capped distribution is about 9 mi). ``DETOUR`` is the road
circuity factor, 1.2 for US roads (Ballou, Rahardja & Sakai 2002, "Selected country
circuity factors for road travel distance estimation", Transportation Research A 36).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import ConvexHull, cKDTree

from twin.network.road import RoadNet
from twin.network.tags import CUT_END_MIN_RANK, DRIVABLE_HIGHWAYS
from twin.population.destinations import SCHOOL, SHOP, WORK, Gravity

KM_PER_MI = 1.609344
# purpose -> (median km, sigma of ln km): see the module docstring
TRIP_LENGTH_KM = {
    SHOP: (5.68, 1.476),
    WORK: (11.7, 1.0),
    SCHOOL: (4.0, 1.0),
}
MAX_TRIP_KM = 100 * KM_PER_MI
DETOUR = 1.2  # road distance / straight line (Ballou et al. 2002, US)
OUTSIDE_SPEED_MPS = 45 / 3.6  # mean speed outside the map (NHTS 2017: ~10.5 mi in ~22 min)
EDGE_MARGIN_M = 250.0  # a node this close to the hull's boundary is a gateway
GATEWAY_DECAY_M = 1000.0  # gateway choice: weight exp(-d / this) from the boundary crossing
MIN_OUTSIDE_M = 500.0  # an outside stop is at least this far beyond its gateway


def cut_ends(net: RoadNet) -> np.ndarray:
    """Mask of the nodes where a road of tertiary class or above (a link of it) ends with no
    other neighbouring node, or where a one-way carriageway of such a road cut by the extract
    left the routing component (``meta["cut_end_nodes"]``, see :mod:`twin.network.graph`): a
    road cut by the extract's boundary."""
    a = np.concatenate([net.link_from, net.link_to])
    b = np.concatenate([net.link_to, net.link_from])
    pairs = np.unique(np.column_stack([a, b])[a != b], axis=0)
    neighbours = np.bincount(pairs[:, 0], minlength=net.n_nodes)
    rank = np.array([DRIVABLE_HIGHWAYS.get(n, 0) for n in net.highway_names])[net.link_highway]
    top = np.zeros(net.n_nodes, dtype=np.int64)
    np.maximum.at(top, net.link_from, rank)
    np.maximum.at(top, net.link_to, rank)
    cut = (neighbours == 1) & (top >= CUT_END_MIN_RANK)
    cut[np.asarray(net.meta.get("cut_end_nodes", []), dtype=np.int64)] = True
    return cut


def trip_length_km(purpose: int, u: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Trip lengths (km) of ``purpose`` at the standard-normal quantiles ``u``, capped."""
    median, sigma = TRIP_LENGTH_KM[purpose]
    return np.minimum(scale * median * np.exp(sigma * u), MAX_TRIP_KM)


@dataclass(eq=False)
class ExternalModel:
    """The map's boundary and gateways, for placing tour stops outside the map."""

    hull_x_m: np.ndarray  # float64 convex hull of the network nodes, counter-clockwise
    hull_y_m: np.ndarray
    exit_node: np.ndarray  # int32 gateways a car leaves the map at (links into them)
    exit_weight: np.ndarray  # float64 capacity
    entry_of_exit: np.ndarray  # int32 entry gateway (links out of it) nearest each exit
    node_x_m: np.ndarray
    node_y_m: np.ndarray
    scale: float = 1.0  # multiplies the trip lengths (``trip_length_scale``)

    @classmethod
    def build(cls, net: RoadNet, scale: float = 1.0) -> ExternalModel | None:
        """From the network: its nodes' convex hull, and as gateways the nodes within
        ``EDGE_MARGIN_M`` of the hull's boundary and the cut ends, weighted by the capacity of
        their links (in for an exit, out for an entry); None when the map has no area or no
        such node."""
        if net.n_nodes < 3:
            return None
        pts = np.column_stack([net.node_x_m, net.node_y_m])
        try:
            hull = ConvexHull(pts)
        except Exception:  # all nodes on a line: no area
            return None
        v = hull.vertices  # counter-clockwise in 2-D
        ring = shapely.LinearRing(pts[v])
        edge = (shapely.distance(shapely.points(pts), ring) < EDGE_MARGIN_M) | cut_ends(net)
        cap = net.link_capacity_vph
        w_in = np.bincount(net.link_to, cap, net.n_nodes) * edge
        w_out = np.bincount(net.link_from, cap, net.n_nodes) * edge
        exit_node, entry_node = np.flatnonzero(w_in > 0), np.flatnonzero(w_out > 0)
        if len(exit_node) == 0 or len(entry_node) == 0:
            return None
        exit_weight = w_in[exit_node]
        tree = cKDTree(pts[entry_node])
        _, k = tree.query(pts[exit_node])
        return cls(
            pts[v, 0].copy(), pts[v, 1].copy(), np.asarray(exit_node, dtype=np.int32),
            np.asarray(exit_weight, dtype=np.float64),
            np.asarray(entry_node, dtype=np.int32)[k], net.node_x_m, net.node_y_m, scale,
        )  # fmt: skip

    def boundary_m(self, x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Distance from (x, y) along direction ``theta`` to where it leaves the hull: the
        farthest crossing (a point on the boundary looking inwards crosses its own edge at 0
        first); 0 looking outwards from the boundary, or from outside."""
        ax, ay = self.hull_x_m, self.hull_y_m
        bx, by = np.roll(ax, -1), np.roll(ay, -1)
        ex, ey = bx - ax, by - ay  # edges
        dx, dy = np.cos(theta)[:, None], np.sin(theta)[:, None]
        # solve p + t d = a + s e for t >= 0, 0 <= s <= 1
        den = dx * ey[None, :] - dy * ex[None, :]
        wx, wy = ax[None, :] - x[:, None], ay[None, :] - y[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (wx * ey[None, :] - wy * ex[None, :]) / den
            s = (wx * dy - wy * dx) / den
        ok = (np.abs(den) > 1e-12) & (t >= 0) & (s >= -1e-9) & (s <= 1 + 1e-9)
        return np.where(ok, t, 0.0).max(axis=1)

    def choose_exit(self, px: np.ndarray, py: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An exit gateway index for each boundary point, weighted by capacity and nearness."""
        gx, gy = self.node_x_m[self.exit_node], self.node_y_m[self.exit_node]
        out = np.empty(len(px), dtype=np.int64)
        u = rng.random(len(px))
        for a in range(0, len(px), 4096):
            b = min(a + 4096, len(px))
            d = np.hypot(px[a:b, None] - gx[None, :], py[a:b, None] - gy[None, :])
            w = self.exit_weight[None, :] * np.exp(-(d - d.min(axis=1, keepdims=True))
                                                   / GATEWAY_DECAY_M)  # fmt: skip
            cdf = np.cumsum(w, axis=1)
            out[a:b] = (cdf < u[a:b, None] * cdf[:, -1:]).sum(axis=1)
        return np.minimum(out, len(self.exit_node) - 1)

    def place(
        self,
        purpose: int,
        origin_node: np.ndarray,
        rng: np.random.Generator,
        gravity: Gravity,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For trips of ``purpose`` from ``origin_node``: (outside?, exit gateway node, entry
        gateway node, outside_m), see the module docstring."""
        n = len(origin_node)
        length_m = 1000.0 * trip_length_km(purpose, rng.standard_normal(n), self.scale)
        theta = rng.uniform(0.0, 2.0 * np.pi, n)
        x, y = self.node_x_m[origin_node], self.node_y_m[origin_node]
        reach = self.boundary_m(x, y, theta)
        outside = length_m / DETOUR > reach
        idx = np.flatnonzero(outside)
        exit_node = np.full(n, -1, dtype=np.int32)
        entry_node = np.full(n, -1, dtype=np.int32)
        outside_m = np.zeros(n)
        if len(idx):
            px = x[idx] + reach[idx] * np.cos(theta[idx])
            py = y[idx] + reach[idx] * np.sin(theta[idx])
            g = self.choose_exit(px, py, rng)
            exit_node[idx] = self.exit_node[g]
            entry_node[idx] = self.entry_of_exit[g]
            z = gravity.zones
            zo, zx = z.node_zone[origin_node[idx]], z.node_zone[exit_node[idx]]
            inside_m = 1000.0 * z.dist_km[zo, zx]
            inside_m = np.where(np.isfinite(inside_m), inside_m, DETOUR * reach[idx])
            outside_m[idx] = np.maximum(length_m[idx] - inside_m, MIN_OUTSIDE_M)
        return outside, exit_node, entry_node, outside_m

    def hop_m(self, purpose: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Lengths (m) of ``n`` trips of ``purpose`` between two stops outside the map."""
        return 1000.0 * trip_length_km(purpose, rng.standard_normal(n), self.scale)


def outside_time_s(distance_m: np.ndarray) -> np.ndarray:
    """Driving time outside the map for ``distance_m`` metres."""
    return np.asarray(distance_m, dtype=np.float64) / OUTSIDE_SPEED_MPS
