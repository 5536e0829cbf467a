"""The city grid synthesised from OSM and households: power features, catalogue, topology,
sizing, determinism, a plausible base case, and agreement with pandapower."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

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
from twin.energy.design import GridConfig, design_load_kw
from twin.energy.grid import Grid
from twin.energy.osm_power import (
    LINE_KINDS,
    PowerFeatures,
    empty_power_features,
    parse_voltage_kv,
    read_power_features,
)
from twin.energy.plot import grid_summary, plot_grid
from twin.energy.powerflow import solve
from twin.energy.siting import MIN_EDGE_M
from twin.energy.synthesis import (
    KIND_LV_CABLE,
    KIND_MV_CABLE,
    KIND_MV_LV,
    KIND_PRIMARY,
    KIND_SERVICE,
    CityGrid,
    synthesize_grid,
)
from twin.errors import GridError
from twin.network.road import RoadNet
from twin.population.config import PopulationConfig
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


def test_every_household_hangs_on_its_own_bus_below_two_transformers(
    city: Callable[[str], City],
) -> None:
    c = city("baltimore-pbf")
    g, cg = c.grid.grid, c.grid
    n_hh = len(c.households)
    assert cg.n_households == n_hh
    assert len(np.unique(cg.household_bus)) == n_hh
    np.testing.assert_array_equal(g.load_bus[cg.household_load], cg.household_bus)
    assert np.all(np.bincount(g.load_bus, minlength=g.n_bus)[cg.household_bus] == 1)
    assert np.all(g.bus_vn_kv[cg.household_bus] == LV_KV)
    for kind in (KIND_MV_LV, KIND_PRIMARY):
        assert np.all(path_counts(g, cg.branch_kind, kind)[cg.household_bus] == 1)
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
    # the households' road distance to their transformer
    lv_road = cg.bus_road_m[c.grid.grid.branch_from[cg.household_service]]
    assert np.nanmax(lv_road) <= cfg.max_lv_feeder_m
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
    for kind in (KIND_LV_CABLE, KIND_MV_CABLE):
        k = np.flatnonzero(cg.branch_kind == kind)
        link = cg.branch_link[k]
        assert np.all(link >= 0)
        # length = the road edge's length (its shortest link between the two nodes)
        np.testing.assert_allclose(
            g.branch_length_km[k] * 1000.0, np.maximum(net.link_length_m[link], MIN_EDGE_M)
        )
        ends = np.sort(
            np.column_stack([cg.bus_node[g.branch_from[k]], cg.bus_node[g.branch_to[k]]])
        )
        links = np.sort(np.column_stack([net.link_from[link], net.link_to[link]]))
        np.testing.assert_array_equal(ends, links)
        # no shorter link joins the same two nodes
        for a, b, length in zip(links[:, 0], links[:, 1], g.branch_length_km[k][:50], strict=False):
            same = ((net.link_from == a) & (net.link_to == b)) | (
                (net.link_from == b) & (net.link_to == a)
            )
            assert net.link_length_m[same].min() >= length * 1000 - 1e-9
    # house connections: home to node distance, at least min_service_m
    svc = cg.household_service
    node = c.households.home_node
    d = np.hypot(
        c.households.home_x_m - net.node_x_m[node], c.households.home_y_m - net.node_y_m[node]
    )
    np.testing.assert_allclose(g.branch_length_km[svc] * 1000, np.maximum(d, cg.cfg.min_service_m))


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
