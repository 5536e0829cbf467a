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
  road edge becomes an LV cable of the edge's length between road-node buses.
- **House connections**: a service cable from the household's road-node bus to its own bus,
  of the straight-line distance from the home to the node (at least ``min_service_m``); the
  household's load hangs there. Households of a large block with a transformer of its own
  connect straight to its LV busbar.
- A **feeder** is the part of an MV or LV network behind one branch leaving a substation's MV
  busbar or a transformer's LV busbar (house connections at an LV busbar form one feeder).

**Sizing** (so the base case is plausible, not overloaded): see :mod:`twin.energy.design`.

The grid's own loads (``load_p_mw``) are each household's share of the city's design load
(``P(N) / N``, about 1 kW) at cos phi 0.95; profiles are passed to the solver per snapshot.
Everything is deterministic: the same inputs and seed give identical arrays.

Known limits: a house connection runs from the home to its home node (the nearer end of its
street link, as the population model snaps homes), so on a long link it also stands for a
stretch of street cable (baltimore: median 35 m, 99th percentile ~320 m); MV networks are
radial trees without the normally-open ties of real ring mains; the MV/LV transformers' off-load
taps are left at neutral; cable data are the 50 Hz catalogue's even in a 60 Hz country.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
from twin.population.households import HouseholdArrays

__all__ = [
    "KIND_LV_CABLE", "KIND_MV_CABLE", "KIND_MV_LV", "KIND_NAMES", "KIND_PRIMARY", "KIND_SERVICE",
    "LEVEL_HV", "LEVEL_LV", "LEVEL_MV", "LEVEL_NAMES", "CityGrid", "GridConfig",
    "design_load_kw", "synthesize_grid",
]  # fmt: skip

# voltage levels (bus_level, feeder_level)
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
    bus_road_m: np.ndarray  # float64 road distance from its substation / transformer; nan
    bus_feeder: np.ndarray  # int32 feeder; -1 (slack, busbars)
    # per branch
    branch_kind: np.ndarray  # int8 KIND_*
    branch_type: np.ndarray  # object catalogue type name
    branch_parallel: np.ndarray  # int16 parallel cables / transformer units
    branch_link: np.ndarray  # int32 RoadNet link a cable follows; -1
    branch_households: np.ndarray  # int32 households behind it (what it is sized for)
    branch_feeder: np.ndarray  # int32 feeder; -1 (HV/MV transformers)
    # per household (rows of the HouseholdArrays)
    household_bus: np.ndarray  # int32 its own bus (where its load hangs)
    household_load: np.ndarray  # int32 its load index
    household_transformer: np.ndarray  # int32 its MV/LV transformer
    household_service: np.ndarray  # int32 branch of its house connection
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
    "vn_to", "shift", "tap_from", "kind", "type", "par", "link", "hh",
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

    def cables(self, fr, to, length_m, types: tuple[CableType, ...], rank, kind, link, hh):
        """Cables of the given catalogue ranks (see :func:`cable_rank`)."""
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
    out = _build(net, graph, households, subs, mv_vor, sites, cfg, seed)
    timings["build"] = time.perf_counter() - t0
    out.timings_s = timings
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
    lv_down = downstream_sum(lv_vor, lv_on, pool_count)

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
    house = b.buses(
        n_hh, vn=LV_KV, x=households.home_x_m, y=households.home_y_m, node=-1, level=LEVEL_LV,
        road=np.nan, name="",
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
    b.cables(
        mv_bus[parent], mv_bus[child], graph.edge_length_m[edge], MV_CABLES, rank,
        KIND_MV_CABLE, graph.edge_link[edge], hh_mv,
    )  # fmt: skip
    # MV/LV transformers
    tr_rows = [choose_transformer(MV_LV_TRANSFORMERS, s) for s in need_kva(tr_hh, cfg) / 1000.0]
    trafo_branch = b.transformers(mv_bus[sites.node], busbar, tr_rows, KIND_MV_LV, tr_hh, 1.0)
    # LV cables: one per edge of the LV forest
    lv_tree = np.flatnonzero(lv_on)
    child = lv_tree[lv_vor.pred[lv_tree] >= 0]
    parent = lv_vor.pred[child].astype(np.int64)
    edge = graph.edges(parent, child)
    hh_lv = lv_down[child].astype(np.int64)
    rank = tree_cable_ranks(
        LV_CABLES, graph.edge_length_m[edge], hh_lv, child, parent, lv_vor.dist_m,
        cfg.max_lv_drop_percent, cfg,
    )  # fmt: skip
    b.cables(
        lv_bus[parent], lv_bus[child], graph.edge_length_m[edge], LV_CABLES, rank,
        KIND_LV_CABLE, graph.edge_link[edge], hh_lv,
    )  # fmt: skip
    # house connections
    service = np.arange(b.n_br, b.n_br + n_hh)
    hh_tr = sites.household_site
    from_bus = np.where(pool_hh, lv_bus[home_node], busbar[hh_tr])
    length = np.maximum(
        np.hypot(households.home_x_m - nx[home_node], households.home_y_m - ny[home_node]),
        cfg.min_service_m,
    )
    one_home_ka = need_kva(np.ones(n_hh), cfg) / (math.sqrt(3) * LV_KV) / 1000.0
    b.cables(
        from_bus, house, length, LV_CABLES, cable_rank(LV_CABLES, one_home_ka), KIND_SERVICE,
        -1, 1,
    )  # fmt: skip
    if (from_bus < 0).any():  # a bug, not a user error: every home node is on its LV tree
        raise AssertionError("a household has no LV bus")

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
        load_bus=house,
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
    ok = (bus_feeder >= 0) & np.isfinite(road)
    np.maximum.at(f_len, bus_feeder[ok], road[ok])
    is_line = ~grid.branch_is_trafo & (branch_feeder >= 0)
    f_km = np.bincount(branch_feeder[is_line], grid.branch_length_km[is_line], minlength=n_f)
    f_hh = np.bincount(bus_feeder[house], minlength=n_f)
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
        branch_households=br["hh"].astype(np.int32),
        branch_feeder=branch_feeder,
        household_bus=house.astype(INDEX),
        household_load=np.arange(n_hh, dtype=INDEX),
        household_transformer=hh_tr.astype(INDEX),
        household_service=service.astype(INDEX),
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


def _feeders(grid: Grid, kind: np.ndarray, roots: np.ndarray) -> tuple[np.ndarray, ...]:
    """Feeder of every bus (-1 for the slack and busbars), and each feeder's level and root."""
    rad = grid.radial
    is_root = np.zeros(grid.n_bus, dtype=bool)
    is_root[roots] = True
    bus_feeder = np.full(grid.n_bus, -1, dtype=INDEX)
    level: list[int] = []
    root: list[int] = []
    services_of: dict[int, int] = {}
    parent_bus, parent_branch = rad.parent_bus, rad.parent_branch
    for bus in rad.order[1:].tolist():
        k = parent_branch[bus]
        if kind[k] in (KIND_PRIMARY, KIND_MV_LV):
            continue
        p = int(parent_bus[bus])
        if not is_root[p]:
            bus_feeder[bus] = bus_feeder[p]
            continue
        if kind[k] == KIND_SERVICE and p in services_of:
            bus_feeder[bus] = services_of[p]
            continue
        bus_feeder[bus] = len(level)
        if kind[k] == KIND_SERVICE:
            services_of[p] = len(level)
        level.append(LEVEL_MV if kind[k] == KIND_MV_CABLE else LEVEL_LV)
        root.append(p)
    return bus_feeder, np.asarray(level, dtype=np.int8), np.asarray(root, dtype=INDEX)
