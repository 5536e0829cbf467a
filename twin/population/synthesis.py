"""A city's population from its map: homes, households, destinations and the day's trips.

``synthesize(net, map_file, cfg, seed)`` runs every step and returns :class:`PopulationData`:
the households as arrays, the gravity model, the default tours of every household, and the
boundary gateways of through traffic and of the residents' trips that leave the map
(twin/population/external.py). ``day_legs`` turns tours (default or from agents'
``plan_day``) into the legs of the day, through traffic included.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyproj import Transformer

from twin.network.road import RoadNet
from twin.network.tags import DRIVABLE_HIGHWAYS
from twin.population.config import PopulationConfig
from twin.population.destinations import Gravity, Zones, attractions, build_zones
from twin.population.external import ExternalModel, cut_ends
from twin.population.features import MapFeatures, read_features
from twin.population.homes import Homes, place_homes
from twin.population.households import HouseholdArrays
from twin.population.households import synthesize as synthesize_households
from twin.population.plans import (
    Legs,
    Tours,
    plan_tours,
    through_legs,
    tours_to_legs,
    with_extra_legs,
)
from twin.rng import stream

log = logging.getLogger(__name__)

GATEWAY_MARGIN_M = 250.0  # a node this close to the network's bounding box is at its edge
GATEWAY_MIN_RANK = DRIVABLE_HIGHWAYS["tertiary_link"]  # through traffic uses tertiary and up
THROUGH_MIN_SEPARATION = 0.5  # share of the bounding-box diagonal between entry and exit
MAX_REPLICAS = 30  # demand_scale above this is refused (car ids of replicas must fit int16)
REPLICA_CAR_STRIDE = 1000  # replica r of a tour drives car ``car + r * stride``


@dataclass(eq=False)
class Gateways:
    """Boundary nodes where through traffic enters and leaves the map."""

    out_node: np.ndarray  # int32 entry nodes (with links into the map)
    out_weight: np.ndarray  # float64, capacity of their out-links
    in_node: np.ndarray  # int32 exit nodes
    in_weight: np.ndarray
    allowed: np.ndarray  # bool (n_out, n_in): far enough apart


@dataclass(eq=False)
class PopulationData:
    """Everything synthesised for one map, scenario and seed."""

    net: RoadNet
    cfg: PopulationConfig
    seed: int
    features: MapFeatures
    homes: Homes
    households: HouseholdArrays
    zones: Zones
    gravity: Gravity
    default_tours: Tours
    gateways: Gateways
    timings_s: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        order = np.argsort(self.default_tours.household, kind="stable")
        self._by_household = order
        self._hh_offsets = np.searchsorted(
            self.default_tours.household[order], np.arange(len(self.households) + 1)
        )
        self.custom_rng = stream(self.seed, "plans.custom")

    def __len__(self) -> int:
        return len(self.households)

    def default_tours_of(self, household: int) -> Tours:
        """The default tours of one household."""
        idx = self._by_household[self._hh_offsets[household] : self._hh_offsets[household + 1]]
        return self.default_tours.take(np.sort(idx))

    def summary(self) -> dict[str, float]:
        hh = self.households
        return {
            "households": len(hh),
            "households_in_buildings": self.homes.from_buildings,
            "households_along_streets": self.homes.from_streets,
            "dwellings_in_buildings": self.homes.dwellings_in_buildings,
            "persons": int(hh.persons.sum()),
            "workers": int(hh.workers.sum()),
            "cars": int(hh.cars.sum()),
            "evs": int(hh.has_ev.sum()),
            "zones": self.zones.n_zones,
        }


def find_gateways(net: RoadNet) -> Gateways:
    """Nodes on tertiary or bigger roads at the edge of the network's bounding box, or where
    such a road was cut by the extract (:func:`~twin.population.external.cut_ends`)."""
    x, y = net.node_x_m, net.node_y_m
    edge = (
        (x - x.min() < GATEWAY_MARGIN_M)
        | (x.max() - x < GATEWAY_MARGIN_M)
        | (y - y.min() < GATEWAY_MARGIN_M)
        | (y.max() - y < GATEWAY_MARGIN_M)
        | cut_ends(net)
    )
    ranks = np.array([DRIVABLE_HIGHWAYS.get(name, 0) for name in net.highway_names])
    big = ranks[net.link_highway] >= GATEWAY_MIN_RANK
    if not (big & edge[net.link_from]).any():
        big = np.ones(net.n_links, dtype=bool)
    cap = net.link_capacity_vph * big
    w_out = np.bincount(net.link_from, cap, net.n_nodes) * edge
    w_in = np.bincount(net.link_to, cap, net.n_nodes) * edge
    out_node, in_node = np.flatnonzero(w_out > 0), np.flatnonzero(w_in > 0)
    diag = np.hypot(np.ptp(x), np.ptp(y))
    d = np.hypot(
        x[out_node][:, None] - x[in_node][None, :], y[out_node][:, None] - y[in_node][None, :]
    )
    far = d >= THROUGH_MIN_SEPARATION * diag
    # a gateway with no other THROUGH_MIN_SEPARATION of the diagonal away (e.g. a cut end in
    # the middle of the map) takes no through trips
    if far.any():
        keep_out, keep_in = far.any(axis=1), far.any(axis=0)
        out_node, in_node, far = out_node[keep_out], in_node[keep_in], far[keep_out][:, keep_in]
    return Gateways(
        out_node.astype(np.int32), w_out[out_node], in_node.astype(np.int32), w_in[in_node], far
    )


def external_model(net: RoadNet, cfg: PopulationConfig) -> ExternalModel | None:
    """Where stops beyond the map's edge go (None with ``external_trips = false``)."""
    if not cfg.external_trips:
        return None
    return ExternalModel.build(net, cfg.trip_length_scale)


def synthesize(
    net: RoadNet,
    map_file: str | Path,
    cfg: PopulationConfig,
    seed: int,
    *,
    features: MapFeatures | None = None,
    zones: Zones | None = None,
) -> PopulationData:
    """Homes, households, destinations, zones and default tours for ``net`` (see module).

    ``features`` and ``zones``, when given, are the map's already read (``read_features``)
    and built (``build_zones(net)``); :mod:`twin.synth_cache` passes them from its cache."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if features is None:
        features = read_features(map_file, net.meta["crs"])
    timings["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    homes = place_homes(net, features, cfg, stream(seed, "population.homes"))
    to_lonlat = Transformer.from_crs(net.meta["crs"], "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(homes.x_m, homes.y_m)
    households = synthesize_households(homes, cfg, seed, (np.asarray(lon), np.asarray(lat)))
    timings["households"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if zones is None:
        zones = build_zones(net)
    gravity = Gravity(
        zones, attractions(net, features, zones, (homes.x_m, homes.y_m), cfg.local_shares)
    )
    gateways = find_gateways(net)
    timings["zones"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    external = external_model(net, cfg)
    tours = plan_tours(households, cfg, gravity, seed, external=external)
    timings["plans"] = time.perf_counter() - t0
    log.info(
        "population: %d households (%d in mapped buildings, %d along streets), %d tours",
        len(households),
        homes.from_buildings,
        homes.from_streets,
        len(tours),
    )
    return PopulationData(
        net, cfg, seed, features, homes, households, zones, gravity, tours, gateways, timings
    )


def scale_tours(tours: Tours, scale: float, seed: int) -> Tours:
    """``scale`` x the tours: each kept with probability ``scale`` (<= 1), or replicated
    ``floor(scale)`` times plus once more with the fractional probability; a replica drives
    its own car (``car + r * REPLICA_CAR_STRIDE``)."""
    if scale == 1.0:
        return tours
    if scale > MAX_REPLICAS:
        raise ValueError(f"demand_scale {scale:g} is above the supported {MAX_REPLICAS}")
    rng = stream(seed, "demand.scale")
    u = rng.random(len(tours))
    copies = np.floor(scale).astype(int) + (u < scale - np.floor(scale))
    parts = []
    for r in range(int(copies.max(initial=0))):
        part = tours.select(copies > r)
        if r:
            part.car = np.where(part.car >= 0, part.car + r * REPLICA_CAR_STRIDE, -1).astype(
                np.int16
            )
        parts.append(part)
    return Tours.concat(parts) if parts else tours.select(np.zeros(len(tours), dtype=bool))


def day_legs(data: PopulationData, tours: Tours) -> Legs:
    """The legs of ``tours`` plus through traffic (``through_share`` of all driven legs)."""
    legs = tours_to_legs(tours, data.households, data.gravity)
    share = data.cfg.through_share
    n_hh_driven = int(legs.driven.sum())
    n = round(share / (1.0 - share) * n_hh_driven) if share > 0 else 0
    g = data.gateways
    if n == 0 or len(g.out_node) == 0 or len(g.in_node) == 0:
        return legs
    o, d, dep = through_legs(
        g.out_node, g.in_node, g.out_weight, g.in_weight, n, stream(data.seed, "through"),
        g.allowed,
    )  # fmt: skip
    return with_extra_legs(legs, o, d, dep)
