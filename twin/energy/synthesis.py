"""A city's electricity distribution grid from its map and households: :func:`synthesize_grid`.

Distribution cables are almost never mapped, so the grid is synthesised along the streets,
European style (110 / 20 / 0.4 kV, see :mod:`twin.energy.catalogue`), as ONE radial
:class:`~twin.energy.grid.Grid` with one slack bus:

- **Feeding grid**: one 110 kV slack bus; from it one HV/MV transformer (110/20 kV) per
  primary substation, its on-load tap changer represented by the fixed tap that holds the MV
  busbar at ``mv_setpoint_pu`` under the design load. Substations are the mapped ones, or one
  placed at the load centre, and more where one would carry over ``max_substation_mva``
  (:mod:`twin.energy.siting`).
- **MV/LV transformers** (20/0.4 kV) are sited over clusters of households within
  ``max_households_per_transformer`` and ``max_lv_feeder_m`` (road distance to the farthest
  home node); mapped kiosks and distribution transformers anchor clusters where they exist
  (:mod:`twin.energy.siting`).
- **MV feeders**: each transformer is fed from its nearest substation by road (a multi-source
  Dijkstra); the union of the shortest paths from a substation to its transformers is a tree,
  and each road edge on it becomes an MV cable between the MV buses of its two road nodes.
- **LV feeders**: the shortest-path tree of the road graph from each transformer's node to its
  households' home nodes (its road Voronoi cell, so no two LV networks share a road node); each
  road edge on it carries a street cable of the edge's length, split into segments at the
  houses' tees (below), so the segments of an edge sum to its length.
- **House connections** tee onto the street cable at the point of the household's street
  nearest its home (``home_link``; the projection of ``home_x_m, home_y_m`` onto the link's
  polyline, as a fraction of its length, scaled to the cable's road edge):

  * the street is the road edge between the home link's two nodes (either direction, or a
    parallel link: the graph keeps the shortest). If that edge is on the household's LV tree
    the house tees onto it. Otherwise (a one-way link whose node pair the tree reaches
    another way, a street between two nodes the tree reaches from elsewhere, a dead-end stub
    beyond the tree) a **spur** extends the LV network: a street cable from the household's
    home node along that street to the farthest tee on it (spurs from a street's two ends
    never join: the gap between them stands for the open point real LV networks keep). A spur
    hangs off its home node's bus, so the network stays radial; it is an LV cable with
    ``branch_spur`` set, and spurs are the LV cable beyond the road edges of the trees.
    (A loop link, from a node back to itself, is reached from both ends as two spurs.)
  * along a street, tees closer than ``tee_group_m`` to a road node hang on its bus, and the
    others are grouped greedily (each group spans at most ``tee_group_m``) onto one tee bus at
    the middle of its group: a tee stands within ``tee_group_m`` of the point nearest its
    home, and segments are at least ``tee_group_m / 2`` long.
  * a **connection point** is a building, not a dwelling: the households of one mapped
    building (served by one transformer) share one house connection, the service cable from
    the tee bus to the building's bus, where each household's own load hangs (so loads, EVs and
    results stay per household, and the households of a building see one voltage); a home
    placed along a street is a connection of its own. The service cable's length is the
    building's distance from its street polyline, clipped to [``min_service_m``,
    ``max_service_m``] (a building farther than ``max_service_m`` is a large building's
    centroid or a lot set back from the mapped streets; its connection is taken to be
    ``max_service_m`` long), and it is sized for the design load of the building's
    households. Households of a large block with a transformer of its own connect straight to
    its LV busbar at the road node, over the straight-line distance from the node (clipped the
    same way).
- A **feeder** is the part of an MV or LV network behind one branch leaving a substation's MV
  busbar or a transformer's LV busbar (house connections at an LV busbar form one feeder).

**Sizing** (so the base case is plausible, not overloaded): see :mod:`twin.energy.design`.

The grid's own loads (``load_p_mw``) are each household's share of the city's design load
(``P(N) / N``, about 1 kW) at cos phi 0.95; profiles are passed to the solver per snapshot.
Everything is deterministic: the same inputs and seed give identical arrays.

Known limits: ``max_lv_feeder_m`` bounds the home nodes' road distance from their transformer,
so a house teed along a long street may be up to half that street's length farther
(baltimore: 148 of 20,000 households beyond 500 m, the farthest 880 m); MV networks are radial
trees without the normally-open ties of real ring mains; the MV/LV transformers' off-load taps
are left at neutral; cable data are the 50 Hz catalogue's even in a 60 Hz country.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from twin.energy.catalogue import (
    F_HZ,
    HV_KV,
    HV_MV_TRANSFORMERS,
    LV_CABLES,
    LV_KV,
    MV_CABLES,
    MV_KV,
    MV_LV_TRANSFORMERS,
    CableType,
    TransformerType,
    choose_transformer,
    transformer_impedance,
)
from twin.energy.design import (
    GridConfig,
    cable_rank,
    design_load_kw,
    need_kva,
    oltc_taps,
    rank_type,
    tree_cable_ranks,
)
from twin.energy.grid import INDEX, Grid
from twin.energy.osm_power import PowerFeatures
from twin.energy.siting import (
    MIN_EDGE_M,
    RoadGraph,
    Voronoi,
    add_primaries,
    downstream_sum,
    lv_anchors,
    primary_sites,
    road_graph,
    transformer_sites,
    tree_nodes,
)
from twin.errors import GridError
from twin.network.road import RoadNet
from twin.population.homes import link_points
from twin.population.households import HouseholdArrays

__all__ = [
    "KIND_LV_CABLE", "KIND_MV_CABLE", "KIND_MV_LV", "KIND_NAMES", "KIND_PRIMARY", "KIND_SERVICE",
    "LEVEL_HV", "LEVEL_LV", "LEVEL_MV", "LEVEL_NAMES", "CityGrid", "GridConfig",
    "design_load_kw", "synthesize_grid",
]  # fmt: skip

# voltage levels (bus_level, feeder_level)
log = logging.getLogger(__name__)


class GridSynthesisError(RuntimeError):
    """Grid synthesis produced an invalid grid from a valid map: a bug in twin (exit 3)."""


LEVEL_HV, LEVEL_MV, LEVEL_LV = 0, 1, 2
LEVEL_NAMES = ("HV", "MV", "LV")
# kinds of branch (branch_kind)
KIND_PRIMARY, KIND_MV_CABLE, KIND_MV_LV, KIND_LV_CABLE, KIND_SERVICE = 0, 1, 2, 3, 4
KIND_NAMES = ("HV/MV transformer", "MV cable", "MV/LV transformer", "LV cable", "house connection")


@dataclass(eq=False)
class CityGrid:
    """A synthesised city grid: the :class:`Grid` and what each of its parts stands for."""

    grid: Grid
    cfg: GridConfig
    seed: int
    # per bus
    bus_level: np.ndarray  # int8 LEVEL_*
    bus_node: np.ndarray  # int32 road node; -1 (slack, house buses)
    bus_road_m: np.ndarray  # float64 road distance from its substation / transformer (tees
    # included); nan (slack, house buses)
    bus_feeder: np.ndarray  # int32 feeder; -1 (slack, busbars)
    # per branch
    branch_kind: np.ndarray  # int8 KIND_*
    branch_type: np.ndarray  # object catalogue type name
    branch_parallel: np.ndarray  # int16 parallel cables / transformer units
    branch_link: np.ndarray  # int32 RoadNet link a cable follows; -1
    branch_link_frac_from: np.ndarray  # float64 fraction along that link's polyline at the
    branch_link_frac_to: np.ndarray  # cable's from / to bus (0: the link's from node); nan
    branch_spur: np.ndarray  # bool an LV cable on a street off its tree (see the module)
    branch_households: np.ndarray  # int32 households behind it (what it is sized for)
    branch_feeder: np.ndarray  # int32 feeder; -1 (HV/MV transformers)
    # per household (rows of the HouseholdArrays)
    household_bus: np.ndarray  # int32 its building's bus (where its own load hangs)
    household_load: np.ndarray  # int32 its load index
    household_transformer: np.ndarray  # int32 its MV/LV transformer
    household_service: np.ndarray  # int32 branch of its house connection (shared in a building)
    household_connection: np.ndarray  # int32 its connection point
    # connection points: a building's households (on one transformer), or one street home
    connection_bus: np.ndarray  # int32 the building's bus
    connection_service: np.ndarray  # int32 its service cable (KIND_SERVICE branch)
    connection_building: np.ndarray  # int32 mapped building (HouseholdArrays.home_building); -1
    connection_households: np.ndarray  # int32 households behind it
    # MV/LV transformers
    trafo_branch: np.ndarray  # int32
    trafo_node: np.ndarray  # int32 road node of the site
    trafo_hv_bus: np.ndarray  # int32 MV bus
    trafo_lv_bus: np.ndarray  # int32 LV busbar
    trafo_kva: np.ndarray  # float64 rating of one unit
    trafo_parallel: np.ndarray  # int16 units in parallel
    trafo_households: np.ndarray  # int32 households served
    trafo_substation: np.ndarray  # int32 substation feeding it
    trafo_dedicated: np.ndarray  # bool serves one large block (households at its node only)
    trafo_anchor_osm_id: np.ndarray  # int64 mapped kiosk/transformer it stands for; -1
    # primary substations
    sub_node: np.ndarray  # int32 road node of the MV busbar
    sub_x_m: np.ndarray  # float64 site
    sub_y_m: np.ndarray
    sub_osm_id: np.ndarray  # int64 mapped feature; -1 placed at the load centre
    sub_osm_is_way: np.ndarray  # bool
    sub_merged: np.ndarray  # int32 mapped features merged into it
    sub_name: np.ndarray  # object
    sub_mv_bus: np.ndarray  # int32
    sub_branch: np.ndarray  # int32 its HV/MV transformer
    sub_mva: np.ndarray  # float64 rating of one unit
    sub_parallel: np.ndarray  # int16 units in parallel
    sub_households: np.ndarray  # int32
    # feeders
    feeder_level: np.ndarray  # int8 LEVEL_MV / LEVEL_LV
    feeder_root_bus: np.ndarray  # int32 the busbar it leaves
    feeder_owner: np.ndarray  # int32 substation (MV) or transformer (LV)
    feeder_households: np.ndarray  # int32
    feeder_length_m: np.ndarray  # float64 road distance to its farthest road-node bus
    feeder_cable_km: np.ndarray  # float64 cable in it (house connections included)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def n_households(self) -> int:
        return len(self.household_bus)

    @property
    def n_connections(self) -> int:
        return len(self.connection_bus)

    @property
    def n_transformers(self) -> int:
        return len(self.trafo_branch)

    @property
    def n_substations(self) -> int:
        return len(self.sub_node)

    @property
    def n_feeders(self) -> int:
        return len(self.feeder_level)


_BUS_COLUMNS = ("vn", "x", "y", "node", "level", "road", "name")
_BRANCH_COLUMNS = (
    "fr", "to", "r", "x", "g", "b", "trafo", "len_km", "imax_ka", "sn_mva", "vn_from",
    "vn_to", "shift", "tap_from", "kind", "type", "par", "link", "hh", "f0", "f1", "spur",
)  # fmt: skip


class _Builder:
    """Buses and branches, appended a block of rows at a time (scalars are broadcast)."""

    def __init__(self) -> None:
        self.bus: dict[str, list[np.ndarray]] = {k: [] for k in _BUS_COLUMNS}
        self.br: dict[str, list[np.ndarray]] = {k: [] for k in _BRANCH_COLUMNS}
        self.n_bus = 0
        self.n_br = 0

    @staticmethod
    def _append(table: dict[str, list[np.ndarray]], n: int, cols: dict[str, Any]) -> None:
        if set(cols) != set(table):
            raise AssertionError(f"columns {sorted(set(table) ^ set(cols))}")
        for k, v in cols.items():
            arr = np.asarray(v)
            table[k].append(np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr)

    def buses(self, n: int, **cols: Any) -> np.ndarray:
        """Append ``n`` buses; returns their indices."""
        self._append(self.bus, n, cols)
        self.n_bus += n
        return np.arange(self.n_bus - n, self.n_bus, dtype=np.int64)

    def branches(self, n: int, **cols: Any) -> np.ndarray:
        """Append ``n`` branches; returns their indices."""
        self._append(self.br, n, cols)
        self.n_br += n
        return np.arange(self.n_br - n, self.n_br, dtype=np.int64)

    def cables(
        self, fr, to, length_m, types: tuple[CableType, ...], rank, kind, link, hh, f0, f1, spur
    ):
        """Cables of the given catalogue ranks (see :func:`cable_rank`); ``f0``/``f1``: the
        fractions along ``link`` at their ends."""
        idx, par = rank_type(np.asarray(rank), len(types))
        km = np.asarray(length_m, dtype=np.float64) / 1000.0
        omega = 2 * math.pi * F_HZ
        return self.branches(
            len(km), fr=fr, to=to,
            r=np.array([c.r_ohm_per_km for c in types])[idx] * km / par,
            x=np.array([c.x_ohm_per_km for c in types])[idx] * km / par,
            g=0.0,
            b=omega * np.array([c.c_nf_per_km for c in types])[idx] * 1e-3 * km * par,  # µS
            trafo=False, len_km=km,
            imax_ka=np.array([c.max_i_ka for c in types])[idx] * par,
            sn_mva=np.nan, vn_from=types[0].vn_kv, vn_to=types[0].vn_kv, shift=0.0, tap_from=1.0,
            kind=kind,
            type=np.array([c.name for c in types], dtype=object)[idx], par=par, link=link, hh=hh,
            f0=f0, f1=f1, spur=spur,
        )  # fmt: skip

    def transformers(self, fr, to, rows: list[tuple[TransformerType, int]], kind, hh, tap_from):
        """Transformers of the given (type, parallel units) rows and HV-side tap factors."""
        t_of = [t for t, _ in rows]
        par = np.array([p for _, p in rows], dtype=np.int64)
        r, x, g, b = np.array([transformer_impedance(t, p) for t, p in rows]).reshape(-1, 4).T
        return self.branches(
            len(rows), fr=fr, to=to, r=r, x=x, g=g, b=b, trafo=True, len_km=np.nan,
            imax_ka=np.nan, sn_mva=np.array([t.sn_mva for t in t_of]) * par,
            vn_from=np.array([t.vn_hv_kv for t in t_of]),
            vn_to=np.array([t.vn_lv_kv for t in t_of]),
            shift=np.array([t.shift_degree for t in t_of]), tap_from=tap_from, kind=kind,
            type=np.array([t.name for t in t_of], dtype=object), par=par, link=-1, hh=hh,
            f0=np.nan, f1=np.nan, spur=False,
        )  # fmt: skip

    @staticmethod
    def column(table: dict[str, list[np.ndarray]], key: str, dtype: Any) -> np.ndarray:
        return np.concatenate(table[key]).astype(dtype)


def synthesize_grid(
    net: RoadNet,
    households: HouseholdArrays,
    power: PowerFeatures,
    cfg: GridConfig | None = None,
    seed: int = 0,
) -> CityGrid:
    """The city's distribution grid for ``households`` on ``net`` (see the module docstring).

    ``power`` is :func:`twin.energy.osm_power.read_power_features` of the same map (or
    :func:`~twin.energy.osm_power.empty_power_features` to ignore what is mapped). Raises
    :class:`~twin.errors.GridError` when there are no households to connect.
    """
    cfg = cfg or GridConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    n_hh = len(households)
    if n_hh == 0:
        raise GridError("no households to connect: the grid is built for a population")
    home_node = households.home_node.astype(np.int64)
    hx, hy = households.home_x_m, households.home_y_m
    graph = road_graph(net)
    subs = primary_sites(
        net, power, hx, hy, merge_m=cfg.substation_merge_m, snap_m=cfg.substation_snap_m
    )
    sites = transformer_sites(
        net, graph, home_node, hx, hy, lv_anchors(power),
        max_households=cfg.max_households_per_transformer,
        max_lv_feeder_m=cfg.max_lv_feeder_m, anchor_snap_m=cfg.anchor_snap_m, seed=seed,
    )  # fmt: skip
    tr_hh = np.bincount(sites.household_site, minlength=len(sites.node))
    subs, mv_vor = add_primaries(
        net, graph, subs, sites.node.astype(np.int64), tr_hh,
        lambda n: need_kva(n, cfg) / 1000.0, max_mva=cfg.max_substation_mva,
    )  # fmt: skip
    timings["siting"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:  # the map was valid: a grid that fails its checks is twin's fault, not the user's
        out = _build(net, graph, households, subs, mv_vor, sites, cfg, seed)
        out.grid.validate()
    except GridError as exc:
        raise GridSynthesisError(f"grid synthesis built an invalid grid: {exc}") from exc
    timings["build"] = time.perf_counter() - t0
    out.timings_s = timings
    idle = int((out.sub_households == 0).sum())
    if idle:
        log.warning(
            "%d of %d substations feed no transformer (no households in their area); they "
            "stay connected to the feeding grid, idle", idle, len(out.sub_node),
        )  # fmt: skip
    return out


def _build(net, graph, households, subs, mv_vor, sites, cfg: GridConfig, seed: int) -> CityGrid:
    n_nodes, n_hh = net.n_nodes, len(households)
    home_node = households.home_node.astype(np.int64)
    nx, ny = net.node_x_m, net.node_y_m
    n_tr = len(sites.node)
    tr_hh = np.bincount(sites.household_site, minlength=n_tr)
    # MV forest: every transformer node fed from its nearest substation (mv_vor)
    need_mv = np.zeros(n_nodes, dtype=bool)
    need_mv[sites.node] = True
    # a substation whose road cell holds no transformer (few households, or a mapped one at
    # the edge) keeps its MV busbar: connected to the feeding grid, idle (see grid_summary)
    need_mv[subs.node] = True
    mv_on = tree_nodes(mv_vor, need_mv)
    mv_down = downstream_sum(mv_vor, mv_on, np.bincount(sites.node, tr_hh, minlength=n_nodes))
    tr_sub = mv_vor.site[sites.node]
    if (tr_sub < 0).any():  # the RoadNet is one strongly connected component: not expected
        raise GridError("a transformer site has no road path to any substation")
    # LV forest: the pool transformers' road Voronoi cells
    lv_vor = sites.vor
    pool_hh = ~sites.dedicated[sites.household_site]
    pool_count = np.bincount(home_node[pool_hh], minlength=n_nodes)
    lv_on = tree_nodes(lv_vor, pool_count > 0)
    lines = _link_lines(net)
    street_m = shapely.distance(
        lines[households.home_link], shapely.points(households.home_x_m, households.home_y_m)
    )
    lv = _lv_cables(net, graph, lv_vor, lv_on, households, pool_hh, lines, cfg.tee_group_m)

    b = _Builder()
    slack = b.buses(
        1, vn=HV_KV, x=subs.x_m.mean(), y=subs.y_m.mean(), node=-1, level=LEVEL_HV,
        road=np.nan, name="feeding grid",
    )  # fmt: skip
    mv_nodes = np.flatnonzero(mv_on)
    mv_bus = np.full(n_nodes, -1, dtype=np.int64)
    mv_name = np.full(len(mv_nodes), "", dtype=object)
    mv_name[np.searchsorted(mv_nodes, subs.node)] = [
        f"substation {i} MV" for i in range(len(subs.node))
    ]
    mv_bus[mv_nodes] = b.buses(
        len(mv_nodes), vn=MV_KV, x=nx[mv_nodes], y=ny[mv_nodes], node=mv_nodes, level=LEVEL_MV,
        road=mv_vor.dist_m[mv_nodes], name=mv_name,
    )  # fmt: skip
    busbar = b.buses(
        n_tr, vn=LV_KV, x=nx[sites.node], y=ny[sites.node], node=sites.node, level=LEVEL_LV,
        road=0.0, name=np.array([f"transformer {t} LV" for t in range(n_tr)], dtype=object),
    )  # fmt: skip
    pool_tr = np.flatnonzero(~sites.dedicated)
    lv_bus = np.full(n_nodes, -1, dtype=np.int64)
    lv_bus[sites.node[pool_tr]] = busbar[pool_tr]
    lv_nodes = np.flatnonzero(lv_on & (lv_bus < 0))
    lv_bus[lv_nodes] = b.buses(
        len(lv_nodes), vn=LV_KV, x=nx[lv_nodes], y=ny[lv_nodes], node=lv_nodes, level=LEVEL_LV,
        road=lv_vor.dist_m[lv_nodes], name="",
    )  # fmt: skip
    conn_of_hh, first = _connections(households.home_building, sites.household_site)
    n_conn = len(first)
    conn_hh = np.bincount(conn_of_hh, minlength=n_conn)
    n_tee = len(lv.tee_x_m)
    tee = b.buses(
        n_tee, vn=LV_KV, x=lv.tee_x_m, y=lv.tee_y_m, node=-1, level=LEVEL_LV,
        road=lv.point_depth_m[n_nodes:], name="",
    )  # fmt: skip
    point_bus = np.concatenate([lv_bus, tee])
    house = b.buses(
        n_conn, vn=LV_KV, x=households.home_x_m[first], y=households.home_y_m[first], node=-1,
        level=LEVEL_LV, road=np.nan, name="",
    )  # fmt: skip

    # MV cables: one per edge of the MV forest (sized first: their charging enters the taps)
    child = mv_nodes[mv_vor.pred[mv_nodes] >= 0]
    parent = mv_vor.pred[child].astype(np.int64)
    edge = graph.edges(parent, child)
    hh_mv = mv_down[child].astype(np.int64)
    rank = tree_cable_ranks(
        MV_CABLES, graph.edge_length_m[edge], hh_mv, child, parent, mv_vor.dist_m,
        cfg.max_mv_drop_percent, cfg,
    )  # fmt: skip
    idx, par = rank_type(rank, len(MV_CABLES))
    c_nf = np.array([c.c_nf_per_km for c in MV_CABLES])[idx] * par * graph.edge_length_m[edge]
    charging_mvar = np.bincount(
        mv_vor.site[child], 2 * math.pi * F_HZ * c_nf * 1e-12 * MV_KV**2, len(subs.node)
    )  # Q = V^2 omega C (nF*m -> F: 1e-12)
    # HV/MV transformers
    sub_hh = np.bincount(tr_sub, tr_hh, minlength=len(subs.node)).astype(np.int64)
    sub_rows = [choose_transformer(HV_MV_TRANSFORMERS, s) for s in need_kva(sub_hh, cfg) / 1000.0]
    sub_branch = b.transformers(
        np.full(len(subs.node), slack[0]), mv_bus[subs.node], sub_rows, KIND_PRIMARY, sub_hh,
        oltc_taps(sub_rows, sub_hh, charging_mvar, cfg),
    )  # fmt: skip
    mv_fwd = net.link_from[graph.edge_link[edge]] == parent
    b.cables(
        mv_bus[parent], mv_bus[child], graph.edge_length_m[edge], MV_CABLES, rank,
        KIND_MV_CABLE, graph.edge_link[edge], hh_mv, np.where(mv_fwd, 0.0, 1.0),
        np.where(mv_fwd, 1.0, 0.0), False,
    )  # fmt: skip
    # MV/LV transformers
    tr_rows = [choose_transformer(MV_LV_TRANSFORMERS, s) for s in need_kva(tr_hh, cfg) / 1000.0]
    trafo_branch = b.transformers(mv_bus[sites.node], busbar, tr_rows, KIND_MV_LV, tr_hh, 1.0)
    # LV cables: the LV forest's road edges split at the houses' tees, and spurs
    rank = tree_cable_ranks(
        LV_CABLES, lv.seg_length_m, lv.seg_households, lv.seg_child, lv.seg_parent,
        lv.point_depth_m, cfg.max_lv_drop_percent, cfg,
    )  # fmt: skip
    b.cables(
        point_bus[lv.seg_parent], point_bus[lv.seg_child], lv.seg_length_m, LV_CABLES, rank,
        KIND_LV_CABLE, lv.seg_link, lv.seg_households, lv.seg_frac_from, lv.seg_frac_to,
        lv.seg_spur,
    )  # fmt: skip
    # house connections, one per connection point: from the tee (a large block's: from its
    # transformer's busbar) to the building's bus
    service = np.arange(b.n_br, b.n_br + n_conn)
    hh_tr = sites.household_site
    pool_c = pool_hh[first]
    from_bus = np.where(
        pool_c, point_bus[np.maximum(lv.household_point[first], 0)], busbar[hh_tr[first]]
    )
    to_node = np.hypot(households.home_x_m - nx[home_node], households.home_y_m - ny[home_node])
    length = np.clip(
        np.where(pool_hh, street_m, to_node)[first], cfg.min_service_m, cfg.max_service_m
    )
    need_ka = need_kva(conn_hh, cfg) / (math.sqrt(3) * LV_KV) / 1000.0
    b.cables(
        from_bus, house, length, LV_CABLES, cable_rank(LV_CABLES, need_ka), KIND_SERVICE,
        -1, conn_hh, np.nan, np.nan, False,
    )  # fmt: skip
    if (
        (pool_hh & (lv.household_point < 0)).any()
        or (from_bus < 0).any()
        or (lv.household_point != lv.household_point[first[conn_of_hh]]).any()
    ):  # a bug: a building's households share their home, hence their tee
        raise AssertionError("a household has no LV bus, or a building's households two")
    hh_bus = house[conn_of_hh]

    p_kw = float(design_load_kw(n_hh, cfg)) / n_hh
    q_kvar = p_kw * math.tan(math.acos(cfg.power_factor))
    bus = {k: b.column(b.bus, k, object if k == "name" else np.float64) for k in _BUS_COLUMNS}
    br = {k: b.column(b.br, k, object if k == "type" else np.float64) for k in _BRANCH_COLUMNS}
    grid = Grid(
        bus_vn_kv=bus["vn"],
        branch_from=br["fr"],
        branch_to=br["to"],
        branch_r_ohm=br["r"],
        branch_x_ohm=br["x"],
        slack_bus=int(slack[0]),
        slack_vm_pu=cfg.slack_vm_pu,
        f_hz=F_HZ,
        name=f"{Path(str(net.meta.get('source', 'city'))).name} grid (seed {seed})",
        bus_name=bus["name"],
        bus_x_m=bus["x"],
        bus_y_m=bus["y"],
        branch_g_us=br["g"],
        branch_b_us=br["b"],
        branch_is_trafo=br["trafo"].astype(bool),
        branch_length_km=br["len_km"],
        branch_max_i_ka=br["imax_ka"],
        branch_sn_mva=br["sn_mva"],
        branch_vn_from_kv=br["vn_from"],
        branch_vn_to_kv=br["vn_to"],
        branch_shift_degree=br["shift"],
        branch_tap_from_pu=br["tap_from"],
        branch_name=br["type"],
        load_bus=hh_bus,
        load_p_mw=np.full(n_hh, p_kw / 1000.0),
        load_q_mvar=np.full(n_hh, q_kvar / 1000.0),
    ).validate()
    kind = br["kind"].astype(np.int8)
    roots = np.concatenate([mv_bus[subs.node], busbar])
    bus_feeder, feeder_level, feeder_root = _feeders(grid, kind, roots)
    to_bus = np.where(kind == KIND_MV_LV, grid.branch_from, grid.branch_to)
    branch_feeder = np.where(kind == KIND_PRIMARY, -1, bus_feeder[to_bus]).astype(INDEX)
    n_f = len(feeder_level)
    root_owner = np.full(grid.n_bus, -1, dtype=np.int64)
    root_owner[mv_bus[subs.node]] = np.arange(len(subs.node))
    root_owner[busbar] = np.arange(n_tr)
    road = bus["road"].astype(np.float64)
    f_len = np.zeros(n_f)
    ok = (bus_feeder >= 0) & (bus["node"] >= 0) & np.isfinite(road)
    np.maximum.at(f_len, bus_feeder[ok], road[ok])
    is_line = ~grid.branch_is_trafo & (branch_feeder >= 0)
    f_km = np.bincount(branch_feeder[is_line], grid.branch_length_km[is_line], minlength=n_f)
    f_hh = np.bincount(bus_feeder[hh_bus], minlength=n_f)
    return CityGrid(
        grid=grid,
        cfg=cfg,
        seed=seed,
        bus_level=bus["level"].astype(np.int8),
        bus_node=bus["node"].astype(np.int32),
        bus_road_m=road,
        bus_feeder=bus_feeder,
        branch_kind=kind,
        branch_type=br["type"],
        branch_parallel=br["par"].astype(np.int16),
        branch_link=br["link"].astype(np.int32),
        branch_link_frac_from=br["f0"].astype(np.float64),
        branch_link_frac_to=br["f1"].astype(np.float64),
        branch_spur=br["spur"].astype(bool),
        branch_households=br["hh"].astype(np.int32),
        branch_feeder=branch_feeder,
        household_bus=hh_bus.astype(INDEX),
        household_load=np.arange(n_hh, dtype=INDEX),
        household_transformer=hh_tr.astype(INDEX),
        household_service=service[conn_of_hh].astype(INDEX),
        household_connection=conn_of_hh.astype(INDEX),
        connection_bus=house.astype(INDEX),
        connection_service=service.astype(INDEX),
        connection_building=households.home_building[first].astype(INDEX),
        connection_households=conn_hh.astype(INDEX),
        trafo_branch=trafo_branch.astype(INDEX),
        trafo_node=sites.node.astype(INDEX),
        trafo_hv_bus=mv_bus[sites.node].astype(INDEX),
        trafo_lv_bus=busbar.astype(INDEX),
        trafo_kva=np.array([t.sn_kva for t, _ in tr_rows]),
        trafo_parallel=np.array([p for _, p in tr_rows], dtype=np.int16),
        trafo_households=tr_hh.astype(INDEX),
        trafo_substation=tr_sub.astype(INDEX),
        trafo_dedicated=sites.dedicated.copy(),
        trafo_anchor_osm_id=sites.anchor_osm_id.copy(),
        sub_node=subs.node.copy(),
        sub_x_m=subs.x_m.copy(),
        sub_y_m=subs.y_m.copy(),
        sub_osm_id=subs.osm_id.copy(),
        sub_osm_is_way=subs.osm_is_way.copy(),
        sub_merged=subs.merged.copy(),
        sub_name=subs.name.copy(),
        sub_mv_bus=mv_bus[subs.node].astype(INDEX),
        sub_branch=sub_branch.astype(INDEX),
        sub_mva=np.array([t.sn_mva for t, _ in sub_rows]),
        sub_parallel=np.array([p for _, p in sub_rows], dtype=np.int16),
        sub_households=sub_hh.astype(INDEX),
        feeder_level=feeder_level,
        feeder_root_bus=feeder_root,
        feeder_owner=root_owner[feeder_root].astype(INDEX),
        feeder_households=f_hh.astype(INDEX),
        feeder_length_m=f_len,
        feeder_cable_km=f_km,
    )


def _connections(building: np.ndarray, site: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(connection point of each household, the first household of each connection): the
    households of one mapped building on one transformer share one; a household along a street
    (``building`` -1) has its own. Connections are numbered in the order of their first
    household."""
    n = len(building)
    own = np.where(building >= 0, building.astype(np.int64), -1 - np.arange(n, dtype=np.int64))
    _, first, inv = np.unique(
        np.column_stack([own, site.astype(np.int64)]), axis=0, return_index=True,
        return_inverse=True,
    )  # fmt: skip
    order = np.argsort(first, kind="stable")
    number = np.empty(len(first), dtype=np.int64)
    number[order] = np.arange(len(first))
    return number[inv.reshape(-1)], first[order].astype(np.int64)


@dataclass(eq=False)
class _LVCables:
    """The LV street cables of the pool transformers as segments between points: road nodes
    are points ``0..n_nodes-1``, tees ``n_nodes + t``. A run is the cable along one road edge:
    a tree edge's run goes from its parent node to its child node, a spur from a home node to
    its last tee."""

    tee_x_m: np.ndarray  # float64 per tee
    tee_y_m: np.ndarray
    point_depth_m: np.ndarray  # float64 per point: road distance from its transformer
    seg_parent: np.ndarray  # int64 point
    seg_child: np.ndarray  # int64 point (each point is the child of at most one segment)
    seg_length_m: np.ndarray  # float64
    seg_link: np.ndarray  # int64 the RoadNet link it follows
    seg_frac_from: np.ndarray  # float64 fraction along that link's polyline at seg_parent
    seg_frac_to: np.ndarray  # float64 ... at seg_child
    seg_spur: np.ndarray  # bool
    seg_households: np.ndarray  # int64 households behind it
    household_point: np.ndarray  # int64 per household: the point its service tees off; -1


def _link_lines(net: RoadNet) -> np.ndarray:
    """Each link's polyline as a shapely LineString."""
    return shapely.linestrings(
        net.link_geom_xy_m,
        indices=np.repeat(np.arange(net.n_links), np.diff(net.link_geom_offsets)),
    )


def _lv_cables(
    net: RoadNet,
    graph: RoadGraph,
    vor: Voronoi,
    on: np.ndarray,
    households: HouseholdArrays,
    pool_hh: np.ndarray,
    lines: np.ndarray,
    group_m: float,
) -> _LVCables:
    """Split the LV forest's street cables at the houses' tees (see the module docstring)."""
    n = net.n_nodes
    pred = vor.pred.astype(np.int64)
    link_from = net.link_from.astype(np.int64)
    # runs along the tree's edges, one per child node
    t_child = np.flatnonzero(on & (pred >= 0))
    t_parent = pred[t_child]
    t_edge = graph.edges(t_parent, t_child)
    # each pool household's run and its tee's distance from the run's start
    idx = np.flatnonzero(pool_hh)
    link = households.home_link[idx].astype(np.int64)
    u, v = link_from[link], net.link_to[link].astype(np.int64)
    home = households.home_node[idx].astype(np.int64)
    loop = u == v
    e = np.zeros(len(idx), dtype=np.int64)
    e[~loop] = graph.edges(u[~loop], v[~loop])
    child = np.where(on[v] & (pred[v] == u), v, np.where(on[u] & (pred[u] == v), u, -1))
    child[loop] = -1
    on_tree = child >= 0
    run_link = np.where(loop, link, graph.edge_link[e])
    length = np.where(loop, np.maximum(net.link_length_m[link], MIN_EDGE_M), graph.edge_length_m[e])
    # the point of the cable's link nearest the home (its home link, the same street's other
    # direction, or a parallel link), as a fraction of the link from its from node
    pts = shapely.points(households.home_x_m[idx], households.home_y_m[idx])
    phi = np.clip(shapely.line_locate_point(lines[run_link], pts, normalized=True), 0.0, 1.0)
    start = np.where(on_tree, np.where(child == v, u, v), home)
    side = loop & (phi >= 0.5)  # a loop link's far half is reached from its end
    fwd = (link_from[run_link] == start) & ~side
    pos = np.where(fwd, phi, 1.0 - phi) * length
    # spur runs: one per (home node, link, side)
    spur = np.flatnonzero(~on_tree)
    keys, first, inv = np.unique(
        np.column_stack([start[spur], run_link[spur], side[spur]]),
        axis=0, return_index=True, return_inverse=True,
    )  # fmt: skip
    run = np.empty(len(idx), dtype=np.int64)
    run[on_tree] = np.searchsorted(t_child, child[on_tree])
    run[spur] = len(t_child) + inv.reshape(-1)
    r_start = np.concatenate([t_parent, keys[:, 0]])
    r_end = np.concatenate([t_child, np.full(len(keys), -1)])
    r_link = np.concatenate([graph.edge_link[t_edge], keys[:, 1]])
    r_len = np.concatenate([graph.edge_length_m[t_edge], length[spur][first]])
    r_side = np.concatenate([np.zeros(len(t_child), dtype=np.int64), keys[:, 2]])
    r_fwd = (link_from[r_link] == r_start) & (r_side == 0)
    # tees: along each run, houses within group_m of a node hang on its bus, the others on
    # tee buses grouped greedily (a group spans at most group_m; its tee at its middle)
    point = [0] * len(idx)
    tee_run: list[int] = []
    tee_pos: list[float] = []
    members: list[int] = []
    lo = hi = 0.0

    def close() -> None:
        if members:
            for m in members:
                point[m] = n + len(tee_run)
            tee_run.append(cur)
            tee_pos.append((lo + hi) / 2.0)
            members.clear()

    cur = -1
    run_l, pos_l = run.tolist(), pos.tolist()
    r_start_l, r_end_l, r_len_l = r_start.tolist(), r_end.tolist(), r_len.tolist()
    for k in np.lexsort((np.arange(len(idx)), pos, run)).tolist():
        r, s = run_l[k], pos_l[k]
        if r != cur:
            close()
            cur = r
        end, big = r_end_l[r], r_len_l[r]
        if s <= (min(group_m, big / 2.0) if end >= 0 else group_m):
            point[k] = r_start_l[r]
        elif end >= 0 and s >= big - group_m:
            point[k] = end
        elif members and s <= lo + group_m:
            members.append(k)
            hi = s
        else:
            close()
            members.append(k)
            lo = hi = s
    close()
    point = np.asarray(point, dtype=np.int64)
    t_run = np.asarray(tee_run, dtype=np.int64)
    t_pos = np.asarray(tee_pos, dtype=np.float64)
    n_tee = len(t_run)
    # segments: into each tee from the previous point of its run, and the last one of every
    # tree run into its child node
    new_run = np.ones(n_tee, dtype=bool)
    new_run[1:] = t_run[1:] != t_run[:-1]
    tee_pt = n + np.arange(n_tee)
    prev_pt = np.where(new_run, r_start[t_run], tee_pt - 1)
    prev_pos = np.where(new_run, 0.0, np.concatenate([[0.0], t_pos[:-1]]))
    last_tee = np.full(len(r_start), -1, dtype=np.int64)
    last_tee[t_run] = np.arange(n_tee)  # the last write per run wins: its farthest tee
    tr = np.arange(len(t_child))
    tr_prev_pt = np.where(last_tee[tr] >= 0, n + last_tee[tr], r_start[tr])
    tr_prev_pos = np.concatenate([t_pos, [0.0]])[last_tee[tr]]  # -1: no tee, from 0
    seg_run = np.concatenate([t_run, tr])
    seg_parent = np.concatenate([prev_pt, tr_prev_pt])
    seg_child = np.concatenate([tee_pt, t_child])
    s0 = np.concatenate([prev_pos, tr_prev_pos])
    s1 = np.concatenate([t_pos, r_len[tr]])
    order = np.lexsort((s1, seg_run))
    seg_run, seg_parent, seg_child, s0, s1 = (
        a[order] for a in (seg_run, seg_parent, seg_child, s0, s1)
    )
    big, fw = r_len[seg_run], r_fwd[seg_run]
    depth = np.concatenate([vor.dist_m, vor.dist_m[r_start[t_run]] + t_pos])
    tee_phi = np.where(r_fwd[t_run], t_pos / r_len[t_run], 1.0 - t_pos / r_len[t_run])
    tee_x, tee_y = link_points(net, r_link[t_run], tee_phi)
    # households behind each segment: children before their parents
    total = np.bincount(point, minlength=n + n_tee).tolist()
    par_l, chi_l = seg_parent.tolist(), seg_child.tolist()
    for j in np.argsort(-depth[seg_child], kind="stable").tolist():
        total[par_l[j]] += total[chi_l[j]]
    hh_point = np.full(len(households), -1, dtype=np.int64)
    hh_point[idx] = point
    return _LVCables(
        tee_x_m=tee_x,
        tee_y_m=tee_y,
        point_depth_m=depth,
        seg_parent=seg_parent,
        seg_child=seg_child,
        seg_length_m=s1 - s0,
        seg_link=r_link[seg_run],
        seg_frac_from=np.where(fw, s0 / big, 1.0 - s0 / big),
        seg_frac_to=np.where(fw, s1 / big, 1.0 - s1 / big),
        seg_spur=r_end[seg_run] < 0,
        seg_households=np.asarray(total, dtype=np.int64)[seg_child],
        household_point=hh_point,
    )


def _feeders(grid: Grid, kind: np.ndarray, roots: np.ndarray) -> tuple[np.ndarray, ...]:
    """Feeder of every bus (-1 for the slack and busbars), and each feeder's level and root."""
    rad = grid.radial
    is_root = np.zeros(grid.n_bus, dtype=bool)
    is_root[roots] = True
    level: list[int] = []
    root: list[int] = []
    services_of: dict[int, int] = {}
    parent_bus, parent_branch = rad.parent_bus.tolist(), rad.parent_branch.tolist()
    kind_l, root_l = kind.tolist(), is_root.tolist()
    feeder = [-1] * grid.n_bus
    for bus in rad.order[1:].tolist():
        k = kind_l[parent_branch[bus]]
        if k in (KIND_PRIMARY, KIND_MV_LV):
            continue
        p = parent_bus[bus]
        if not root_l[p]:
            feeder[bus] = feeder[p]
            continue
        if k == KIND_SERVICE and p in services_of:
            feeder[bus] = services_of[p]
            continue
        feeder[bus] = len(level)
        if k == KIND_SERVICE:
            services_of[p] = len(level)
        level.append(LEVEL_MV if k == KIND_MV_CABLE else LEVEL_LV)
        root.append(p)
    bus_feeder = np.asarray(feeder, dtype=INDEX)
    return bus_feeder, np.asarray(level, dtype=np.int8), np.asarray(root, dtype=INDEX)
