"""The city grid synthesised from OSM and households: power features, catalogue, topology,
sizing, house connections (one per building) teed onto their street, determinism, a plausible
base case, and agreement with pandapower."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import shapely
from pydantic import ValidationError

from twin.energy import cable_geometry
from twin.energy.catalogue import (
    HV_MV_TRANSFORMERS,
    LV_CABLES,
    LV_KV,
    MV_CABLES,
    MV_KV,
    MV_LV_TRANSFORMERS,
    choose_cable,
    choose_transformer,
    transformer_impedance,
)
from twin.energy.design import GridConfig, cable_rank, design_load_kw, need_kva
from twin.energy.grid import Grid
from twin.energy.osm_power import (
    LINE_KINDS,
    PowerFeatures,
    empty_power_features,
    parse_voltage_kv,
    read_power_features,
)
from twin.energy.plot import plot_grid
from twin.energy.powerflow import solve
from twin.energy.siting import MIN_EDGE_M, road_graph
from twin.energy.summary import grid_summary
from twin.energy.synthesis import (
    KIND_LV_CABLE,
    KIND_MV_CABLE,
    KIND_MV_LV,
    KIND_PRIMARY,
    KIND_SERVICE,
    LEVEL_LV,
    CityGrid,
    synthesize_grid,
)
from twin.errors import GridError
from twin.geometry import grid_lines_table
from twin.network.road import RoadNet
from twin.network.synthetic import ORIGIN_X_M, ORIGIN_Y_M, grid_roadnet
from twin.population.config import PopulationConfig
from twin.population.homes import link_points
from twin.population.households import HouseholdArrays
from twin.population.synthesis import synthesize

SEED = 7
BALTIMORE_SUBSTATIONS = {62046966, 69697770, 280778764}  # 2 power=substation + 1 sub_station


@dataclasses.dataclass
class City:
    net: RoadNet
    households: HouseholdArrays
    power: PowerFeatures
    grid: CityGrid


@pytest.fixture(scope="module")
def city(
    roadnet: Callable[[str], RoadNet], map_file: Callable[[str], Path]
) -> Callable[[str], City]:
    """``city(name)``: a map's network, households, power features and grid, built once."""
    built: dict[str, City] = {}

    def get(name: str) -> City:
        if name not in built:
            net = roadnet(name)
            hh = synthesize(net, map_file(name), PopulationConfig(), SEED).households
            power = read_power_features(map_file(name), net.meta["crs"])
            built[name] = City(net, hh, power, synthesize_grid(net, hh, power, GridConfig(), SEED))
        return built[name]

    return get


def path_counts(grid: Grid, kind: np.ndarray, k: int) -> np.ndarray:
    """Per bus: branches of kind ``k`` on its path to the slack."""
    rad = grid.radial
    count = np.zeros(grid.n_bus, dtype=np.int64)
    for b in rad.order[1:]:
        count[b] = count[rad.parent_bus[b]] + (kind[rad.parent_branch[b]] == k)
    return count


def below(grid: Grid, bus_value: np.ndarray) -> np.ndarray:
    """Per bus: the sum of ``bus_value`` over the bus and every bus below it."""
    rad = grid.radial
    total = np.asarray(bus_value, dtype=np.float64).copy()
    parent = rad.parent_bus.tolist()
    for b in rad.order[:0:-1].tolist():  # leaves first
        total[parent[b]] += total[b]
    return total


def child_bus(grid: Grid) -> np.ndarray:
    """Per branch: its end away from the slack."""
    rad = grid.radial
    to_is_child = rad.parent_branch[grid.branch_to] == np.arange(grid.n_branch)
    return np.where(to_is_child, grid.branch_to, grid.branch_from)


def link_lines(net: RoadNet) -> np.ndarray:
    """Each link's polyline as a shapely LineString."""
    return shapely.linestrings(
        net.link_geom_xy_m,
        indices=np.repeat(np.arange(net.n_links), np.diff(net.link_geom_offsets)),
    )


# ---------------------------------------------------------------------------------------------
# power features


def test_baltimore_power_features(map_file: Callable[[str], Path]) -> None:
    p = read_power_features(map_file("baltimore-pbf"), "EPSG:32618")
    assert set(p.sub_osm_id.tolist()) == BALTIMORE_SUBSTATIONS
    assert sorted(p.sub_kind.tolist()) == ["", "", "distribution"]
    assert not p.sub_minor.any()
    assert p.n_transformers == 4 and np.all(p.trafo_primary_kv == 115.0)
    assert p.n_lines == 8 and np.all(p.line_kind == LINE_KINDS.index("line"))
    assert np.nanmax(p.line_voltage_kv) == 115.0
    assert p.line_in_substation.sum() == 5  # busbars and bays
    # the substations lie in the map (UTM zone 18N metres near Baltimore)
    assert np.all((p.sub_x_m > 3.5e5) & (p.sub_x_m < 3.8e5))
    # the XML file holds the same features
    q = read_power_features(map_file("baltimore"), "EPSG:32618")
    for f in dataclasses.fields(PowerFeatures):
        a, b = getattr(p, f.name), getattr(q, f.name)
        if isinstance(a, np.ndarray) and a.dtype != object:
            np.testing.assert_allclose(a, b, err_msg=f.name)


def test_power_features_unsorted_and_empty(map_file: Callable[[str], Path]) -> None:
    col = read_power_features(map_file("columbus"), "EPSG:32617")  # not sorted by id
    assert col.n_substations == 1 and col.sub_osm_id[0] == 154204810  # power=sub_station
    assert col.n_lines == 27 and col.skipped_missing_nodes == 0
    assert col.summary()["minor_lines"] == 1
    none = read_power_features(map_file("west-oakland"), "EPSG:32610")
    assert none.summary()["substations"] == 0 and none.n_transformers == 0 and none.n_lines == 0


def test_parse_voltage() -> None:
    assert parse_voltage_kv("115000") == 115.0
    assert parse_voltage_kv("110000;20000") == 110.0
    assert parse_voltage_kv("400") == 0.4
    assert math.isnan(parse_voltage_kv("medium"))
    assert math.isnan(parse_voltage_kv(None))


# ---------------------------------------------------------------------------------------------
# catalogue


def test_catalogue_is_ordered_and_chooses_the_smallest() -> None:
    for types in (MV_LV_TRANSFORMERS, HV_MV_TRANSFORMERS):
        sizes = [t.sn_mva for t in types]
        assert sizes == sorted(sizes)
    assert [t.vn_lv_kv for t in MV_LV_TRANSFORMERS] == [LV_KV] * len(MV_LV_TRANSFORMERS)
    for cables, vn in ((LV_CABLES, LV_KV), (MV_CABLES, MV_KV)):
        assert [c.max_i_ka for c in cables] == sorted(c.max_i_ka for c in cables)
        assert all(c.vn_kv == vn for c in cables)
    assert choose_transformer(MV_LV_TRANSFORMERS, 0.3)[0].name == "0.4 MVA 20/0.4 kV"
    assert choose_transformer(MV_LV_TRANSFORMERS, 0.25) == (MV_LV_TRANSFORMERS[2], 1)
    assert choose_transformer(MV_LV_TRANSFORMERS, 1.0) == (MV_LV_TRANSFORMERS[-1], 2)
    assert choose_cable(LV_CABLES, 0.2)[0].name == "NAYY 4x120 SE"
    assert choose_cable(LV_CABLES, 0.6) == (LV_CABLES[-1], 3)
    # two parallel units: half the impedance, twice the admittance
    one, two = (
        transformer_impedance(MV_LV_TRANSFORMERS[3]),
        transformer_impedance(MV_LV_TRANSFORMERS[3], 2),
    )
    np.testing.assert_allclose(two, [one[0] / 2, one[1] / 2, one[2] * 2, one[3] * 2])


def test_catalogue_matches_pandapower_std_types() -> None:
    pp = pytest.importorskip("pandapower")
    net = pp.create_empty_network()
    for t in (*MV_LV_TRANSFORMERS, *HV_MV_TRANSFORMERS):
        if t.source != "PP":
            continue
        std = pp.load_std_type(net, t.name, "trafo")
        for f in ("sn_mva", "vn_hv_kv", "vn_lv_kv", "vk_percent", "vkr_percent", "pfe_kw",
                  "i0_percent", "shift_degree"):  # fmt: skip
            assert getattr(t, f) == pytest.approx(std[f]), (t.name, f)
    for c in (*LV_CABLES, *MV_CABLES):
        std = pp.load_std_type(net, c.name, "line")
        for f in ("r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km", "max_i_ka", "q_mm2"):
            assert getattr(c, f) == pytest.approx(std[f]), (c.name, f)


# ---------------------------------------------------------------------------------------------
# topology


def test_every_household_hangs_on_its_buildings_bus_below_two_transformers(
    city: Callable[[str], City],
) -> None:
    c = city("baltimore-pbf")
    g, cg, hh = c.grid.grid, c.grid, c.households
    n_hh = len(hh)
    assert cg.n_households == n_hh
    # one connection point per building (per building and transformer), one per street home
    in_bldg = hh.home_building >= 0
    pairs = np.unique(
        np.column_stack([hh.home_building, cg.household_transformer])[in_bldg], axis=0
    )
    assert cg.n_connections == len(pairs) + int((~in_bldg).sum())
    assert 0.8 * n_hh < cg.n_connections < n_hh  # some buildings hold several households
    np.testing.assert_array_equal(cg.connection_building[cg.household_connection], hh.home_building)
    np.testing.assert_array_equal(
        cg.connection_households, np.bincount(cg.household_connection, minlength=cg.n_connections)
    )
    assert len(np.unique(cg.connection_bus)) == cg.n_connections
    np.testing.assert_array_equal(cg.household_bus, cg.connection_bus[cg.household_connection])
    # every household keeps a load of its own, on its building's bus
    np.testing.assert_array_equal(cg.household_load, np.arange(n_hh))
    np.testing.assert_array_equal(g.load_bus[cg.household_load], cg.household_bus)
    np.testing.assert_array_equal(
        np.bincount(g.load_bus, minlength=g.n_bus)[cg.connection_bus], cg.connection_households
    )
    assert np.all(g.bus_vn_kv[cg.household_bus] == LV_KV)
    for kind in (KIND_MV_LV, KIND_PRIMARY, KIND_SERVICE):
        assert np.all(path_counts(g, cg.branch_kind, kind)[cg.household_bus] == 1)
    # one service cable per connection point, carrying its households
    np.testing.assert_array_equal(
        np.flatnonzero(cg.branch_kind == KIND_SERVICE), np.sort(cg.connection_service)
    )
    np.testing.assert_array_equal(g.branch_to[cg.connection_service], cg.connection_bus)
    np.testing.assert_array_equal(
        cg.branch_households[cg.connection_service], cg.connection_households
    )
    np.testing.assert_array_equal(
        cg.household_service, cg.connection_service[cg.household_connection]
    )
    # the MV/LV transformer on the path is the household's transformer
    rad = g.radial
    svc = cg.household_service
    assert np.all(cg.branch_kind[svc] == KIND_SERVICE)
    np.testing.assert_array_equal(g.branch_to[svc], cg.household_bus)
    bus = g.branch_from[svc].copy()
    trafo_of_lv_bus = np.full(g.n_bus, -1)
    trafo_of_lv_bus[cg.trafo_lv_bus] = np.arange(cg.n_transformers)
    for _ in range(int(rad.depth.max())):
        climbing = trafo_of_lv_bus[bus] < 0
        if not climbing.any():
            break
        bus[climbing] = rad.parent_bus[bus[climbing]]
    np.testing.assert_array_equal(trafo_of_lv_bus[bus], cg.household_transformer)


def test_grid_is_one_radial_tree(city: Callable[[str], City]) -> None:
    for name in ("baltimore-pbf", "west-oakland"):
        g = city(name).grid.grid
        g.validate()
        assert g.n_branch == g.n_bus - 1
        assert g.bus_vn_kv[g.slack_bus] == 110.0
        assert sorted(set(g.bus_vn_kv.tolist())) == [LV_KV, MV_KV, 110.0]
        # every transformer steps down from its HV bus to its LV bus
        t = g.branch_is_trafo
        assert np.all(g.bus_vn_kv[g.branch_from[t]] > g.bus_vn_kv[g.branch_to[t]])


def test_limits_and_transformer_sizes(city: Callable[[str], City]) -> None:
    c = city("baltimore-pbf")
    cg, cfg = c.grid, c.grid.cfg
    n = cg.trafo_households
    assert n.sum() == len(c.households) and n.min() >= 1
    assert n.max() <= cfg.max_households_per_transformer
    # the road nodes of the LV networks (the households' home nodes and the junctions on the
    # way) lie within the limit of their transformer; tees may lie beyond along their street
    road_node = (cg.bus_level == LEVEL_LV) & (cg.bus_node >= 0)
    assert np.nanmax(cg.bus_road_m[road_node]) <= cfg.max_lv_feeder_m
    # loading at households x design load (ADMD) stays below 100 %, with the margin kept
    loading = design_load_kw(n, cfg) / cfg.power_factor / (cg.trafo_kva * cg.trafo_parallel)
    assert loading.max() < 1.0 / (1.0 + cfg.sizing_margin) + 1e-12
    # and each is the smallest catalogue size that does so
    sizes = np.array([t.sn_kva for t in MV_LV_TRANSFORMERS])
    smaller = sizes[np.maximum(np.searchsorted(sizes, cg.trafo_kva) - 1, 0)]
    single = cg.trafo_parallel == 1
    need = design_load_kw(n, cfg) / cfg.power_factor * (1 + cfg.sizing_margin)
    assert np.all((smaller[single] < need[single]) | (cg.trafo_kva[single] == sizes[0]))
    # the substations likewise, for all their households
    sub_load = design_load_kw(cg.sub_households, cfg) / cfg.power_factor / 1000.0
    assert np.all(sub_load < cg.sub_mva * cg.sub_parallel)
    # a block with a transformer of its own: all its households at that node
    ded = np.flatnonzero(cg.trafo_dedicated)
    assert ded.size  # baltimore has large blocks of flats
    for t in ded:
        members = np.flatnonzero(cg.household_transformer == t)
        assert len(members) == cfg.max_households_per_transformer
        assert np.all(c.households.home_node[members] == cg.trafo_node[t])


def test_cables_follow_the_roads(city: Callable[[str], City]) -> None:
    c = city("baltimore-pbf")
    g, cg, net = c.grid.grid, c.grid, c.net
    edge_m = np.maximum(net.link_length_m, MIN_EDGE_M)  # a road edge's cable length
    # MV cables: whole road edges between the MV buses of their two nodes
    k = np.flatnonzero(cg.branch_kind == KIND_MV_CABLE)
    link = cg.branch_link[k]
    np.testing.assert_allclose(g.branch_length_km[k] * 1000.0, edge_m[link])
    ends = np.sort(np.column_stack([cg.bus_node[g.branch_from[k]], cg.bus_node[g.branch_to[k]]]))
    links = np.sort(np.column_stack([net.link_from[link], net.link_to[link]]))
    np.testing.assert_array_equal(ends, links)
    assert np.all(np.abs(cg.branch_link_frac_to[k] - cg.branch_link_frac_from[k]) == 1.0)
    # no shorter link joins the same two nodes
    for a, b, length in zip(links[:, 0], links[:, 1], g.branch_length_km[k][:50], strict=False):
        same = ((net.link_from == a) & (net.link_to == b)) | (
            (net.link_from == b) & (net.link_to == a)
        )
        assert net.link_length_m[same].min() >= length * 1000 - 1e-9
    # LV cables: each follows a stretch of its link, as long as that stretch of the road edge
    lv = cg.branch_kind == KIND_LV_CABLE
    k = np.flatnonzero(lv)
    link = cg.branch_link[k]
    assert np.all(link >= 0)
    f0, f1 = cg.branch_link_frac_from[k], cg.branch_link_frac_to[k]
    assert np.all((f0 >= 0) & (f0 <= 1) & (f1 >= 0) & (f1 <= 1))
    np.testing.assert_allclose(g.branch_length_km[k] * 1000.0, np.abs(f1 - f0) * edge_m[link])
    assert g.branch_length_km[k].min() * 1000.0 >= cg.cfg.tee_group_m / 2 - 1e-9
    # the bus at a cable's fraction 0 / 1 end is the link's from / to node's; inside, a tee's
    fr_bus, to_bus = g.branch_from[k], g.branch_to[k]
    for f, bus in ((f0, fr_bus), (f1, to_bus)):
        node = cg.bus_node[bus]
        np.testing.assert_array_equal(node[f == 0.0], net.link_from[link[f == 0.0]])
        np.testing.assert_array_equal(node[f == 1.0], net.link_to[link[f == 1.0]])
        inner = (f > 0.0) & (f < 1.0)
        assert np.all(node[inner] == -1) and np.all(cg.bus_level[bus] == LEVEL_LV)
    # a tree edge's segments chain from one node to the other and sum to the edge's length
    tree = np.flatnonzero(~cg.branch_spur[k])
    lo, hi = np.minimum(f0, f1)[tree], np.maximum(f0, f1)[tree]
    order = np.lexsort((lo, link[tree]))
    t_link, lo, hi = link[tree][order], lo[order], hi[order]
    first = np.concatenate([[True], t_link[1:] != t_link[:-1]])
    last = np.concatenate([t_link[1:] != t_link[:-1], [True]])
    assert np.all(lo[first] == 0.0) and np.all(hi[last] == 1.0)
    np.testing.assert_allclose(hi[~last], lo[1:][~last[:-1]], rtol=0, atol=1e-12)
    seg_m = g.branch_length_km[k][tree][order] * 1000.0
    sums = np.add.reduceat(seg_m, np.flatnonzero(first))
    np.testing.assert_allclose(sums, edge_m[t_link[first]])
    assert cg.branch_spur[k].any() and (~cg.branch_spur).any()
    assert not cg.branch_spur[cg.branch_kind != KIND_LV_CABLE].any()
    # the LV km of the trees is the length of the road edges they use
    assert g.branch_length_km[k][tree].sum() == pytest.approx(edge_m[np.unique(t_link)].sum() / 1e3)
    # a spur leaves a road-node bus at one end of its link and stops at its last tee, short of
    # the other end
    spur = np.flatnonzero(cg.branch_spur[k])
    from_end = np.isin(f0[spur], (0.0, 1.0))
    assert np.all(cg.bus_node[fr_bus[spur][from_end]] >= 0)
    assert np.all(cg.bus_node[fr_bus[spur][~from_end]] == -1)
    assert np.all(cg.bus_node[to_bus[spur]] == -1)
    assert np.all(~np.isin(f1[spur], (0.0, 1.0)))
    # tee buses stand on their link's polyline at the cable's fraction
    inner = (f1 > 0.0) & (f1 < 1.0)
    x, y = link_points(net, link[inner], f1[inner])
    np.testing.assert_allclose(g.bus_x_m[to_bus[inner]], x, atol=1e-6)
    np.testing.assert_allclose(g.bus_y_m[to_bus[inner]], y, atol=1e-6)


def test_house_connections_tee_onto_the_street_next_to_the_home(
    city: Callable[[str], City],
) -> None:
    c = city("baltimore-pbf")
    g, cg, net, hh, cfg = c.grid.grid, c.grid, c.net, c.households, c.grid.cfg
    svc = cg.household_service
    svc_m = g.branch_length_km[svc] * 1000.0
    ded = cg.trafo_dedicated[cg.household_transformer]
    # a pool household's service is as long as the home is far from its street, clipped
    lines = link_lines(net)
    pts = shapely.points(hh.home_x_m, hh.home_y_m)
    d = shapely.distance(lines[hh.home_link], pts)
    lo, hi = cfg.min_service_m, cfg.max_service_m
    np.testing.assert_allclose(svc_m[~ded], np.clip(d, lo, hi)[~ded])
    # a large block's runs from its transformer's busbar at the road node
    node = hh.home_node[ded]
    to_node = np.hypot(hh.home_x_m[ded] - net.node_x_m[node], hh.home_y_m[ded] - net.node_y_m[node])
    np.testing.assert_allclose(svc_m[ded], np.clip(to_node, lo, hi))
    np.testing.assert_array_equal(
        g.branch_from[svc[ded]], cg.trafo_lv_bus[cg.household_transformer[ded]]
    )
    # a tee bus stands within tee_group_m / 2 along its cable of the point of the cable's link
    # nearest the home; a house within tee_group_m of a road node hangs on the node's bus
    tee = g.branch_from[svc]
    on_tee = np.flatnonzero(~ded & (cg.bus_node[tee] < 0))
    cable_link = cg.branch_link[g.radial.parent_branch[tee[on_tee]]]
    near = shapely.get_coordinates(shapely.shortest_line(lines[cable_link], pts[on_tee]))[::2]
    gap = np.hypot(g.bus_x_m[tee[on_tee]] - near[:, 0], g.bus_y_m[tee[on_tee]] - near[:, 1])
    assert gap.max() <= cfg.tee_group_m / 2 * 1.01  # polylines are ~1 % off the link lengths
    # and the cable's link is the home link's street: the home link itself, its other
    # direction, or (rarely) a parallel link between the same two nodes
    home_link = hh.home_link[on_tee]
    same_street = np.sort(np.column_stack([net.link_from[cable_link], net.link_to[cable_link]]))
    np.testing.assert_array_equal(
        same_street, np.sort(np.column_stack([net.link_from[home_link], net.link_to[home_link]]))
    )
    assert np.mean(cable_link == home_link) > 0.3
    near = shapely.get_coordinates(shapely.shortest_line(lines[hh.home_link], pts))[::2]
    gap = np.hypot(g.bus_x_m[tee] - near[:, 0], g.bus_y_m[tee] - near[:, 1])
    assert np.quantile(gap[~ded], 0.99) <= cfg.tee_group_m * 1.01
    # the service run, in total, is about the connection points times their setback
    s = grid_summary(cg)
    assert s["median_service_m"] == cfg.min_service_m  # most homes are placed on the street
    conn_m = g.branch_length_km[cg.connection_service] * 1000.0
    assert s["service_km"] == pytest.approx(conn_m.sum() / 1000.0)
    assert s["service_km"] < 0.02 * cg.n_connections  # under 20 m a building on average
    assert s["max_service_m"] == cfg.max_service_m and s["services_at_max"] > 0


def test_cables_rated_for_their_households_and_trunks_thicker(city: Callable[[str], City]) -> None:
    c = city("baltimore-pbf")
    g, cg, cfg = c.grid.grid, c.grid, c.grid.cfg
    for kind, vn in ((KIND_LV_CABLE, LV_KV), (KIND_MV_CABLE, MV_KV), (KIND_SERVICE, LV_KV)):
        k = np.flatnonzero(cg.branch_kind == kind)
        need_ka = (
            design_load_kw(cg.branch_households[k], cfg) / cfg.power_factor
            * (1 + cfg.sizing_margin) / (math.sqrt(3) * vn) / 1000.0
        )  # fmt: skip
        assert np.all(g.branch_max_i_ka[k] >= need_ka - 1e-12)
    # a cable's parent cable (towards the busbar) is at least as strong
    rad = g.radial
    for kind in (KIND_LV_CABLE, KIND_MV_CABLE):
        k = np.flatnonzero(cg.branch_kind == kind)
        upper = np.where(rad.parent_is_from[g.branch_to[k]], g.branch_from[k], g.branch_to[k])
        up_branch = rad.parent_branch[upper]
        same = (up_branch >= 0) & (cg.branch_kind[np.maximum(up_branch, 0)] == kind)
        assert np.all(g.branch_max_i_ka[up_branch[same]] >= g.branch_max_i_ka[k[same]])
    assert g.branch_max_i_ka[cg.branch_kind == KIND_LV_CABLE].max() > LV_CABLES[0].max_i_ka


def test_every_branch_is_sized_for_the_households_behind_it(city: Callable[[str], City]) -> None:
    c = city("baltimore-pbf")
    g, cg, cfg = c.grid.grid, c.grid, c.grid.cfg
    homes = np.bincount(cg.household_bus, minlength=g.n_bus).astype(np.float64)
    behind = below(g, homes)[child_bus(g)]
    np.testing.assert_array_equal(cg.branch_households, behind)
    # LV voltage drop at the design load (the linear estimate the sizing uses), busbar to every
    # road-node and tee bus, stays within the budget: cables were thickened where needed
    lv = cg.branch_kind == KIND_LV_CABLE
    p_mw = design_load_kw(cg.branch_households, cfg) / 1000.0
    q_mvar = p_mw * math.tan(math.acos(cfg.power_factor))
    drop = (p_mw * g.branch_r_ohm + q_mvar * g.branch_x_ohm) / LV_KV**2 * 100.0
    bus_drop = np.zeros(g.n_bus)
    rad = g.radial
    for b in rad.order[1:].tolist():
        k = rad.parent_branch[b]
        if lv[k]:
            bus_drop[b] = bus_drop[rad.parent_bus[b]] + drop[k]
    assert 0.5 * cfg.max_lv_drop_percent < bus_drop.max() <= cfg.max_lv_drop_percent + 1e-9
    need_ka = need_kva(cg.branch_households, cfg) / (math.sqrt(3) * LV_KV) / 1000.0
    rated = np.array([t.max_i_ka for t in LV_CABLES])[
        np.minimum(cable_rank(LV_CABLES, need_ka), len(LV_CABLES) - 1)
    ]
    assert (g.branch_max_i_ka[lv] > rated[lv] + 1e-12).sum() > 100  # thickened for the drop


def test_feeders(city: Callable[[str], City]) -> None:
    cg = city("baltimore-pbf").grid
    assert cg.n_feeders and set(cg.feeder_level.tolist()) == {1, 2}
    assert cg.feeder_households[cg.feeder_level == 2].sum() == cg.n_households
    lines = ~cg.grid.branch_is_trafo
    assert np.all(cg.branch_feeder[lines] >= 0)
    assert np.all(cg.branch_feeder[cg.branch_kind == KIND_PRIMARY] == -1)
    lv = cg.feeder_level == 2
    assert cg.feeder_length_m[lv].max() <= cg.cfg.max_lv_feeder_m
    # every LV feeder leaves its owner's busbar
    np.testing.assert_array_equal(cg.trafo_lv_bus[cg.feeder_owner[lv]], cg.feeder_root_bus[lv])


# ---------------------------------------------------------------------------------------------
# house connections on a street grid, by hand


def households_at(net: RoadNet, xy: np.ndarray, link: np.ndarray) -> HouseholdArrays:
    """Households at ``xy`` (m from the grid's origin) on the given home links, each with its
    home node at the nearer end of its link (as the population model snaps homes)."""
    n = len(xy)
    x, y = ORIGIN_X_M + xy[:, 0], ORIGIN_Y_M + xy[:, 1]
    line = link_lines(net)[link]
    frac = shapely.line_locate_point(line, shapely.points(x, y), normalized=True)
    node = np.where(frac >= 0.5, net.link_to[link], net.link_from[link])
    one = np.ones(n, dtype=np.int8)
    return HouseholdArrays(
        home_x_m=x, home_y_m=y, home_lon=np.zeros(n), home_lat=np.zeros(n),
        home_link=link.astype(np.int32), home_node=node.astype(np.int32),
        home_source=np.zeros(n, dtype=np.int8), home_building=np.full(n, -1, dtype=np.int32),
        persons=one, adults=one, workers=one, cars=one, has_ev=np.zeros(n, dtype=bool),
    )  # fmt: skip


def kiosk_at(net: RoadNet, node: int) -> PowerFeatures:
    """Power features holding one mapped MV/LV kiosk at ``node`` (to fix the transformer)."""
    kiosk = empty_power_features(net.meta["crs"])
    kiosk.sub_x_m, kiosk.sub_y_m = net.node_x_m[[node]], net.node_y_m[[node]]
    kiosk.sub_kind = np.array(["minor_distribution"], dtype=object)
    kiosk.sub_minor = np.ones(1, dtype=bool)
    kiosk.sub_voltage_kv = np.full(1, np.nan)
    kiosk.sub_osm_id = np.array([1])
    kiosk.sub_is_way = np.zeros(1, dtype=bool)
    kiosk.sub_name = np.array([""], dtype=object)
    return kiosk


def test_houses_tee_onto_their_street_on_a_hand_built_grid() -> None:
    """A 200 m square of streets, nodes 0 (0, 0), 1 (200, 0), 2 (0, 200), 3 (200, 200), the
    transformer at node 0. No home snaps to node 3, so the LV tree is the streets 0-1 and 0-2,
    and street 1-3 is reached by a spur from node 1."""
    net = grid_roadnet(2, 2, spacing_m=200.0)

    def link(a: int, b: int) -> int:
        return int(np.flatnonzero((net.link_from == a) & (net.link_to == b))[0])

    graph = road_graph(net)
    kept_02 = int(graph.edge_link[graph.edges(np.array([0]), np.array([2]))[0]])
    other_02 = link(2, 0) if kept_02 == link(0, 2) else link(0, 2)
    xy = np.array([
        [50.0, 30.0],  # a: street 0-1, 50 m along, 30 m off
        [51.0, -20.0],  # b: 1 m from a along the street: a's tee
        [150.0, 0.0],  # c: on the street: the shortest service
        [198.0, 5.0],  # d: 2 m from node 1: on its bus
        [250.0, 40.0],  # e: street 1-3, off the tree: a spur from node 1
        [330.0, 60.0],  # f: on the spur, 130 m off: the longest service
        [-10.0, 120.0],  # g: street 0-2, home link the direction the graph did not keep
    ])  # fmt: skip
    links = np.array([link(0, 1)] * 4 + [link(1, 3)] * 2 + [other_02])
    hh = households_at(net, xy, links)
    np.testing.assert_array_equal(hh.home_node, [0, 0, 1, 1, 1, 1, 2])
    cfg = GridConfig(max_service_m=100.0, min_service_m=10.0, tee_group_m=5.0)
    cg = synthesize_grid(net, hh, kiosk_at(net, 0), cfg, SEED)
    g = cg.grid.validate()
    assert cg.n_transformers == 1 and cg.trafo_node[0] == 0
    # house connections: the distance from the street, clipped to [10, 100] m
    svc = cg.household_service
    np.testing.assert_allclose(g.branch_length_km[svc] * 1000, [30, 20, 10, 10, 50, 100, 10])
    tee = g.branch_from[svc]
    tee_xy = np.column_stack([g.bus_x_m[tee] - ORIGIN_X_M, g.bus_y_m[tee] - ORIGIN_Y_M])
    np.testing.assert_allclose(
        tee_xy,
        [[50.5, 0], [50.5, 0], [150, 0], [200, 0], [200, 40], [200, 60], [0, 120]],
        atol=1e-9,
    )
    assert tee[0] == tee[1] and cg.bus_node[tee[3]] == 1
    # street cables: segments between the tees, carrying the households beyond them
    lv = np.flatnonzero(cg.branch_kind == KIND_LV_CABLE)
    got = {}
    for k in lv.tolist():
        a, b = sorted((int(net.link_from[cg.branch_link[k]]), int(net.link_to[cg.branch_link[k]])))
        got.setdefault((a, b), []).append(
            (round(g.branch_length_km[k] * 1000, 6), int(cg.branch_households[k]),
             bool(cg.branch_spur[k]))
        )  # fmt: skip
    assert got == {
        (0, 1): [(50.5, 6, False), (99.5, 4, False), (50.0, 3, False)],
        (0, 2): [(120.0, 1, False), (80.0, 0, False)],
        (1, 3): [(40.0, 2, True), (20.0, 1, True)],
    }
    s = grid_summary(cg)
    assert s["lv_km"] == pytest.approx(0.46) and s["lv_spur_km"] == pytest.approx(0.06)
    assert s["tee_buses"] == 5 and s["services_at_max"] == 1
    assert s["service_km"] == pytest.approx(0.23)
    # the power flow runs on it
    r = solve(g)
    assert r.converged.all() and r.vm_pu.min() > 0.95


def test_a_buildings_households_share_one_house_connection() -> None:
    """Three flats of building 0 and two of building 1 along street 0-1 of the square, and a
    home placed on the street: three house connections, and every household a load of its
    own on its connection's bus."""
    net = grid_roadnet(2, 2, spacing_m=200.0)
    link01 = int(np.flatnonzero((net.link_from == 0) & (net.link_to == 1))[0])
    xy = np.array([[60.0, 30.0]] * 3 + [[140.0, -25.0]] * 2 + [[100.0, 0.0]])
    hh = dataclasses.replace(
        households_at(net, xy, np.full(6, link01)),
        home_building=np.array([0, 0, 0, 1, 1, -1], dtype=np.int32),
    )
    cfg = GridConfig()
    cg = synthesize_grid(net, hh, kiosk_at(net, 0), cfg, SEED)
    g = cg.grid
    assert cg.n_connections == 3 and (cg.branch_kind == KIND_SERVICE).sum() == 3
    np.testing.assert_array_equal(cg.household_connection, [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(cg.connection_building, [0, 1, -1])
    np.testing.assert_array_equal(cg.connection_households, [3, 2, 1])
    svc = cg.connection_service
    np.testing.assert_allclose(g.branch_length_km[svc] * 1000, [30, 25, 10])
    np.testing.assert_array_equal(cg.branch_households[svc], [3, 2, 1])
    need_ka = need_kva(np.array([3, 2, 1]), cfg) / (math.sqrt(3) * LV_KV) / 1000.0
    assert np.all(g.branch_max_i_ka[svc] >= need_ka)
    np.testing.assert_array_equal(g.load_bus, cg.connection_bus[[0, 0, 0, 1, 1, 2]])
    # the households' loads add up on their building's bus: moving load between the flats of
    # a building changes nothing in the grid
    p = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) / 1000.0
    moved = np.array([6.0, 0.0, 0.0, 0.0, 9.0, 6.0]) / 1000.0
    a, b = solve(g, p_mw=p[None, :]), solve(g, p_mw=moved[None, :])
    assert a.converged.all()
    np.testing.assert_allclose(a.vm_pu, b.vm_pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.branch_loading_percent, b.branch_loading_percent, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# mapped features, determinism


def test_mapped_substations_are_used(city: Callable[[str], City]) -> None:
    cg = city("baltimore-pbf").grid
    assert set(cg.sub_osm_id.tolist()) == BALTIMORE_SUBSTATIONS
    assert np.all(cg.sub_households > 0)
    assert cg.sub_merged.sum() == 3 + 4  # the 115 kV transformers joined their substation
    assert sorted(set(cg.trafo_substation.tolist())) == [0, 1, 2]


def test_a_map_without_power_features_gets_a_grid(city: Callable[[str], City]) -> None:
    c = city("west-oakland")
    assert c.power.n_substations == 0
    cg = c.grid
    assert cg.n_substations == 1 and cg.sub_osm_id[0] == -1
    assert cg.n_households == len(c.households) > 0
    cg.grid.validate()


def test_mapped_kiosks_anchor_transformers(city: Callable[[str], City]) -> None:
    c = city("west-oakland")
    hh, net = c.households, c.net
    homes = np.unique(hh.home_node)
    nodes = homes[[0, len(homes) // 2, len(homes) - 1]]
    kiosks = empty_power_features(net.meta["crs"])
    kiosks.sub_x_m, kiosks.sub_y_m = net.node_x_m[nodes] + 5.0, net.node_y_m[nodes]
    kiosks.sub_kind = np.full(3, "minor_distribution", dtype=object)
    kiosks.sub_minor = np.ones(3, dtype=bool)
    kiosks.sub_voltage_kv = np.full(3, np.nan)
    kiosks.sub_osm_id = np.array([11, 12, 13])
    kiosks.sub_is_way = np.zeros(3, dtype=bool)
    kiosks.sub_name = np.full(3, "", dtype=object)
    cg = synthesize_grid(net, hh, kiosks, GridConfig(), SEED)
    anchored = np.flatnonzero(cg.trafo_anchor_osm_id >= 0)
    got = dict(
        zip(
            cg.trafo_anchor_osm_id[anchored].tolist(), cg.trafo_node[anchored].tolist(), strict=True
        )
    )
    assert got == dict(zip([11, 12, 13], nodes.tolist(), strict=True))
    assert np.all(cg.trafo_households[anchored] > 0)
    assert cg.sub_osm_id[0] == -1  # kiosks are not primary substations
    cg.grid.validate()


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


def test_same_seed_same_grid(city: Callable[[str], City]) -> None:
    c = city("baltimore-pbf")
    again = synthesize_grid(c.net, c.households, c.power, GridConfig(), SEED)
    for f in dataclasses.fields(CityGrid):
        if f.name not in ("grid", "timings_s", "cfg"):
            assert _equal(getattr(c.grid, f.name), getattr(again, f.name)), f.name
    for f in dataclasses.fields(Grid):
        assert _equal(getattr(c.grid.grid, f.name), getattr(again.grid, f.name)), f.name
    other = synthesize_grid(c.net, c.households, c.power, GridConfig(), SEED + 1)
    other.grid.validate()
    assert not np.array_equal(other.trafo_node, c.grid.trafo_node)


def test_config_and_inputs_are_checked(city: Callable[[str], City]) -> None:
    with pytest.raises(ValidationError):
        GridConfig(max_households_per_trafo=10)  # unknown key
    with pytest.raises(ValidationError):
        GridConfig(max_lv_feeder_m=-1.0)
    with pytest.raises(ValidationError, match="max_service_m"):
        GridConfig(min_service_m=20.0, max_service_m=15.0)
    c = city("west-oakland")
    none = dataclasses.replace(
        c.households, **{f.name: getattr(c.households, f.name)[:0]
                         for f in dataclasses.fields(HouseholdArrays)}
    )  # fmt: skip
    with pytest.raises(GridError, match="no households"):
        synthesize_grid(c.net, none, c.power)


def test_tighter_limits_give_more_transformers(city: Callable[[str], City]) -> None:
    c = city("west-oakland")
    cfg = GridConfig(max_households_per_transformer=20, max_lv_feeder_m=150.0)
    cg = synthesize_grid(c.net, c.households, c.power, cfg, SEED)
    assert cg.n_transformers > c.grid.n_transformers
    assert cg.trafo_households.max() <= 20
    assert cg.feeder_length_m[cg.feeder_level == 2].max() <= 150.0


# ---------------------------------------------------------------------------------------------
# power flow: a plausible base case, and the same answer as pandapower


def one_kw_each(grid: Grid) -> Grid:
    p = np.full(grid.n_load, 0.001)
    return dataclasses.replace(grid, load_p_mw=p, load_q_mvar=p * math.tan(math.acos(0.95)))


def test_base_case_is_plausible(city: Callable[[str], City]) -> None:
    g = one_kw_each(city("baltimore-pbf").grid.grid)
    r = solve(g)
    assert r.converged.all()
    assert 0.9 <= r.vm_pu.min() <= 1.0
    assert np.nanmax(r.branch_loading_percent) <= 100.0
    # energy balance: the slack feeds the loads and the losses
    assert r.slack_p_mw[0] == pytest.approx(g.load_p_mw.sum() + r.losses_mw[0], rel=1e-9)
    # at the grid's own design snapshot too
    r = solve(city("baltimore-pbf").grid.grid)
    assert r.vm_pu.min() >= 0.9 and np.nanmax(r.branch_loading_percent) <= 100.0


def test_pandapower_agrees_on_the_synthesised_grid(city: Callable[[str], City]) -> None:
    pp = pytest.importorskip("pandapower")
    from twin.energy.pandapower_io import to_pandapower

    g = one_kw_each(city("baltimore-pbf").grid.grid)
    net = to_pandapower(g)
    pp.runpp(net, tolerance_mva=1e-9)
    r = solve(g)
    np.testing.assert_allclose(net.res_bus.vm_pu.to_numpy(), r.vm_pu[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(net.res_bus.va_degree.to_numpy(), r.va_degree[0], atol=1e-4)


# ---------------------------------------------------------------------------------------------
# plot and summary


def test_plot_and_summary(city: Callable[[str], City], tmp_path: Path) -> None:
    c = city("west-oakland")
    s = grid_summary(c.grid)
    json.dumps(s)
    assert s["households_connected"] == s["households"] == len(c.households)
    assert s["buses"] == c.grid.grid.n_bus and s["substations"] == 1
    assert sum(s["mv_lv_transformers_by_kva"].values()) == int(c.grid.trafo_parallel.sum())
    assert s["lv_km"] > 0 and s["mv_km"] > 0 and s["service_km"] > 0
    assert s["max_lv_feeder_m"] <= c.grid.cfg.max_lv_feeder_m
    out = plot_grid(c.grid, c.net, tmp_path / "grid.png", power=c.power)
    assert out.stat().st_size > 10_000


def test_the_cable_table_needs_no_plotting_library(
    city: Callable[[str], City], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run writes its cables' polylines (grid_lines) without importing matplotlib."""
    c = city("west-oakland")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it now fails
    monkeypatch.delitem(sys.modules, "twin.energy.plot", raising=False)
    kind = c.grid.branch_kind
    table = grid_lines_table(c.grid, c.net, np.zeros(c.grid.grid.n_branch))
    cables = (kind == KIND_MV_CABLE) | (kind == KIND_LV_CABLE)
    assert len(table) == cables.sum() > 0
    assert table["geometry_wkt"].str.startswith("LINESTRING (").all()


def _piece_reference(xy: np.ndarray, f0: float, f1: float) -> np.ndarray:
    """One cable's stretch of its link's polyline, by np.interp over the cumulative length."""
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if cum[-1] <= 0:
        return xy[[0, -1]]
    lo, hi = sorted((f0 * cum[-1], f1 * cum[-1]))
    at = np.concatenate([[lo], cum[(cum > lo) & (cum < hi)], [hi]])
    return np.column_stack([np.interp(at, cum, xy[:, 0]), np.interp(at, cum, xy[:, 1])])


@pytest.mark.parametrize("name", ["west-oakland", "dortmund"])
def test_cable_polylines_are_their_links_stretches(
    city: Callable[[str], City], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All cables' polylines at once (blocks of padded links) are, point for point, each
    cable's own interpolation along its link, or the straight line between its buses."""
    monkeypatch.setattr(cable_geometry, "PAD_POINTS", 500)  # many blocks, sorted by length
    c = city(name)
    g = c.grid.grid
    kinds = (KIND_MV_CABLE, KIND_LV_CABLE, KIND_SERVICE)
    branches = np.flatnonzero(np.isin(c.grid.branch_kind, kinds))[::-1]  # any order
    lines = cable_geometry.cable_polylines(c.grid, c.net, branches)
    assert len(lines) == len(branches)
    along = 0
    for k, line in zip(branches.tolist(), lines, strict=True):
        link = int(c.grid.branch_link[k])
        if link >= 0:
            along += 1
            want = _piece_reference(
                c.net.link_geometry(link),
                c.grid.branch_link_frac_from[k],
                c.grid.branch_link_frac_to[k],
            )
        else:
            a, b = g.branch_from[k], g.branch_to[k]
            want = np.array([[g.bus_x_m[a], g.bus_y_m[a]], [g.bus_x_m[b], g.bus_y_m[b]]])
        np.testing.assert_array_equal(line, want)
    assert 0 < along < len(branches)  # both kinds checked


def test_a_substation_with_no_transformer_in_its_area_stays_idle(roadnet, map_file) -> None:
    """Few households: some of Baltimore's three mapped substations feed nothing. The grid is
    still built (they stay connected, idle) and says so, instead of failing on a busbar that
    never joined the MV network (issue 15)."""
    path = map_file("baltimore")
    net = roadnet("baltimore")
    data = synthesize(net, path, PopulationConfig(households=3), 0)
    power = read_power_features(path, net.meta["crs"])
    city = synthesize_grid(net, data.households, power, GridConfig(), 0)
    summary = grid_summary(city)
    assert summary["substations"] == 3
    fed = len(set(city.trafo_substation.tolist()))
    assert summary["substations_idle"] == 3 - fed >= 1
    assert (city.sub_mv_bus >= 0).all()
    assert city.sub_households.sum() == 3
    assert solve(city.grid.validate(), p_mw=np.full((1, city.grid.n_load), 0.002)).converged.all()


def test_an_invalid_synthesised_grid_is_an_internal_error(roadnet, map_file, monkeypatch):
    """A valid map that yields an invalid grid is twin's fault: not a user error (exit 2)."""
    from twin.energy import synthesis
    from twin.errors import TwinError

    def broken(grid):
        raise GridError("branch_to[2] = -1 is not a bus")

    monkeypatch.setattr(synthesis.Grid, "validate", broken)
    net = roadnet("west-oakland")
    hh = synthesize(net, map_file("west-oakland"), PopulationConfig(households=20), 0).households
    power = read_power_features(map_file("west-oakland"), net.meta["crs"])
    with pytest.raises(synthesis.GridSynthesisError) as err:
        synthesize_grid(net, hh, power, GridConfig(), 0)
    assert not isinstance(err.value, TwinError)
