"""Where households live: dwellings in mapped buildings, the rest along residential streets.

1. Dwellings per residential building: ``building:flats`` where mapped; one for a house
   (house, detached, semidetached_house, bungalow); otherwise gross floor area (footprint x
   levels) / ``floor_m2_per_dwelling``, at least one.
2. If the scenario asks for fewer households than there are dwellings, that many dwellings are
   drawn; if for more (or "auto" finds the buildings too thin), the remaining households are
   placed along residential streets (highway residential, living_street, road): first those
   inside ``landuse=residential`` areas, then the others, each pool up to
   ``households_per_street_km`` and in proportion to street length; an explicit count beyond
   both pools' capacity goes over all residential streets, then over every non-motorway road.
3. Each home snaps to the nearest road that is not a motorway or trunk (its home link) and to
   the nearer end of that link (its home node, where its trips start and end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from twin.network.road import RoadNet
from twin.population.config import PopulationConfig
from twin.population.features import (
    ONE_DWELLING_BUILDINGS,
    RESIDENTIAL_BUILDINGS,
    MapFeatures,
)

STREET_CLASSES = ("residential", "living_street", "road")
NO_HOMES_CLASSES = ("motorway", "motorway_link", "trunk", "trunk_link")
HOME_FROM_BUILDING, HOME_FROM_STREET = 0, 1


@dataclass(eq=False)
class Homes:
    """One row per household home."""

    x_m: np.ndarray  # float64, UTM (the building centroid or the point on the street)
    y_m: np.ndarray
    link: np.ndarray  # int32 home link
    node: np.ndarray  # int32 home node (RoadNet index), where the household's trips start
    source: np.ndarray  # int8, HOME_FROM_BUILDING or HOME_FROM_STREET
    building: np.ndarray  # int32 index into MapFeatures' buildings, -1 for street homes
    dwellings_in_buildings: int  # dwellings the mapped buildings hold

    def __len__(self) -> int:
        return len(self.x_m)

    @property
    def from_buildings(self) -> int:
        return int((self.source == HOME_FROM_BUILDING).sum())

    @property
    def from_streets(self) -> int:
        return int((self.source == HOME_FROM_STREET).sum())


def residential_buildings(features: MapFeatures) -> np.ndarray:
    """Mask of the buildings that hold dwellings."""
    kind = features.bldg_type
    listed = np.isin(kind, list(RESIDENTIAL_BUILDINGS))
    yes = kind == "yes"
    yes[yes] = features.in_residential(features.bldg_x_m[yes], features.bldg_y_m[yes])
    return listed | yes


def dwellings_per_building(features: MapFeatures, floor_m2_per_dwelling: float) -> np.ndarray:
    """Dwellings in each building (0 for non-residential ones)."""
    by_area = np.maximum(1, np.round(features.bldg_floor_m2 / floor_m2_per_dwelling))
    n = np.where(np.isin(features.bldg_type, list(ONE_DWELLING_BUILDINGS)), 1, by_area)
    n = np.where(features.bldg_flats >= 1, features.bldg_flats, n)
    return np.where(residential_buildings(features), n, 0).astype(np.int64)


def _class_mask(net: RoadNet, classes: tuple[str, ...]) -> np.ndarray:
    codes = [i for i, name in enumerate(net.highway_names) if name in classes]
    return np.isin(net.link_highway, codes)


def street_weights(net: RoadNet) -> np.ndarray:
    """Centreline km of each link: a two-way street's length is split over its two links."""
    pair = {(int(a), int(b)) for a, b in zip(net.link_from, net.link_to, strict=True)}
    twin_link = np.fromiter(
        ((int(b), int(a)) in pair for a, b in zip(net.link_from, net.link_to, strict=True)),
        bool,
        net.n_links,
    )
    return net.link_length_m / 1000.0 / np.where(twin_link, 2.0, 1.0)


def link_points(net: RoadNet, links: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, ...]:
    """Points at fraction ``frac`` of each link's polyline length: (x_m, y_m)."""
    xy = net.link_geom_xy_m
    off = net.link_geom_offsets
    seg = np.hypot(*np.diff(xy, axis=0).T)
    seg[off[1:-1] - 1] = 0.0  # no segment from one link's last point to the next link's first
    cum = np.concatenate([[0.0], np.cumsum(seg)])  # distance along the concatenated polylines
    start = cum[off[links]]
    total = cum[off[links + 1] - 1] - start
    target = start + frac * total
    i = np.searchsorted(cum, target, side="right") - 1
    i = np.clip(i, off[links], off[links + 1] - 2)
    t = np.where(seg[i] > 0, (target - cum[i]) / np.where(seg[i] > 0, seg[i], 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    return xy[i, 0] + t * (xy[i + 1, 0] - xy[i, 0]), xy[i, 1] + t * (xy[i + 1, 1] - xy[i, 1])


def snap_to_links(net: RoadNet, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nearest home-able link of each point and the nearer end node: (link, node)."""
    ok = np.flatnonzero(~_class_mask(net, NO_HOMES_CLASSES))
    lines = shapely.linestrings(
        net.link_geom_xy_m,
        indices=np.repeat(np.arange(net.n_links), np.diff(net.link_geom_offsets)),
    )[ok]
    pts = shapely.points(x_m, y_m)
    tree = shapely.STRtree(lines)
    p_idx, l_idx = tree.query_nearest(pts, all_matches=False)
    link = np.empty(len(x_m), dtype=np.int32)
    link[p_idx] = ok[l_idx]
    frac = shapely.line_locate_point(lines[l_idx], pts[p_idx], normalized=True)
    near_end = np.empty(len(x_m), dtype=bool)
    near_end[p_idx] = frac >= 0.5
    node = np.where(near_end, net.link_to[link], net.link_from[link]).astype(np.int32)
    return link, node


def place_homes(
    net: RoadNet, features: MapFeatures, cfg: PopulationConfig, rng: np.random.Generator
) -> Homes:
    """Homes for the scenario's households (see the module docstring for the rules)."""
    per_bldg = dwellings_per_building(features, cfg.floor_m2_per_dwelling)
    bldg_of_dwelling = np.repeat(np.arange(len(per_bldg)), per_bldg)
    n_dwellings = len(bldg_of_dwelling)

    weights = street_weights(net)
    street = _class_mask(net, STREET_CLASSES)
    mid_x, mid_y = link_points(net, np.arange(net.n_links), np.full(net.n_links, 0.5))
    in_res = features.in_residential(mid_x, mid_y)
    pools = [street & in_res, street & ~in_res]
    caps = [cfg.households_per_street_km * weights[p].sum() for p in pools]

    target = max(n_dwellings, round(sum(caps))) if cfg.households == "auto" else int(cfg.households)

    if target <= n_dwellings:
        chosen = np.sort(rng.choice(n_dwellings, size=target, replace=False))
        bldg = bldg_of_dwelling[chosen]
        n_street = 0
    else:
        bldg = bldg_of_dwelling
        n_street = target - n_dwellings

    street_links: list[np.ndarray] = []
    remaining = n_street
    fallbacks = [street, ~_class_mask(net, NO_HOMES_CLASSES)]
    for k, pool in enumerate([*pools, *fallbacks]):
        if remaining <= 0:
            break
        w = weights * pool
        if w.sum() <= 0:
            continue
        cap = round(caps[k]) if k < len(pools) else remaining
        take = min(remaining, cap)
        counts = rng.multinomial(take, w / w.sum())
        street_links.append(np.repeat(np.arange(net.n_links), counts))
        remaining -= take
    s_link = np.concatenate(street_links) if street_links else np.empty(0, dtype=np.int64)
    s_frac = rng.random(len(s_link))
    s_x, s_y = link_points(net, s_link, s_frac)
    s_node = np.where(s_frac >= 0.5, net.link_to[s_link], net.link_from[s_link])

    b_x, b_y = features.bldg_x_m[bldg], features.bldg_y_m[bldg]
    b_link, b_node = snap_to_links(net, b_x, b_y)
    nb, ns = len(bldg), len(s_link)
    return Homes(
        x_m=np.concatenate([b_x, s_x]),
        y_m=np.concatenate([b_y, s_y]),
        link=np.concatenate([b_link, s_link]).astype(np.int32),
        node=np.concatenate([b_node, s_node]).astype(np.int32),
        source=np.concatenate(
            [np.full(nb, HOME_FROM_BUILDING), np.full(ns, HOME_FROM_STREET)]
        ).astype(np.int8),
        building=np.concatenate([bldg, np.full(ns, -1)]).astype(np.int32),
        dwellings_in_buildings=n_dwellings,
    )
