"""Tests for twin.network: OSM reading, graph building, RoadNet compilation and the cache.

Layers, as in the style guide:

* an analytic check of the compiler on a hand-made four-arm crossing (every count known);
* every shipped map in maps/ loads, and the invariants the traffic kernels rely on hold on each
  (CSR relations, positive lengths, movements that chain, lanes in range, a strongly connected
  link graph, signal phases that cover each approach once, every signal node accounted for);
* the simplified graph agrees with what osmnx itself builds from the same drivable ways;
* golden figures of each map, regenerated only on purpose (see GOLDEN below);
* clipped extracts, bad input, and the on-disk cache.

Columbus takes ~35 s to build: its cases are marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import bz2
import math
import shutil
import xml.sax.saxutils
from dataclasses import fields
from pathlib import Path

import numpy as np
import osmium
import osmnx as ox
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from twin.errors import MapError
from twin.network import cache as cache_module
from twin.network import road as road_module
from twin.network.cache import build_roadnet, cache_key, load_roadnet
from twin.network.graph import BuildReport, attach_signals, raw_graph
from twin.network.osm import OsmExtract, read_osm
from twin.network.road import TURN_LEFT, TURN_RIGHT, TURN_THROUGH, TURN_U, BuildOptions, RoadNet

MAPS = Path(__file__).resolve().parent.parent / "maps"

SLOW = pytest.mark.slow
FAST_MAPS = ["west-oakland", "aguascalientes", "baltimore", "baltimore-pbf", "dortmund"]
ALL_MAPS = [*FAST_MAPS, pytest.param("columbus", marks=SLOW)]
# the invariants must hold on a repaired, clipped extract too
CHECKED_MAPS = [*ALL_MAPS, "aguascalientes-clipped"]

SIGNAL_TAGS = (("highway", "traffic_signals"), ("crossing", "traffic_signals"))


def array_fields() -> list[str]:
    return [f.name for f in fields(RoadNet) if f.name != "meta"]


def assert_same_arrays(a: RoadNet, b: RoadNet) -> None:
    for name in array_fields():
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert np.array_equal(x, y), name


def haversine_m(lon1, lat1, lon2, lat2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def count_signal_nodes(path: Path) -> dict[str, set[int]]:
    """Signal nodes in a file, counted with pyosmium apart from twin's reader."""
    found: dict[str, set[int]] = {"highway": set(), "crossing": set()}
    nodes = osmium.FileProcessor(str(path), osmium.osm.NODE)
    for node in nodes.with_filter(osmium.filter.TagFilter(*SIGNAL_TAGS)):
        for key, value in SIGNAL_TAGS:
            if node.tags.get(key) == value:
                found[key].add(node.id)
    return found


def write_osm(path: Path, body: str) -> Path:
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n{body}</osm>\n')
    return path


def osm_node(nid: int, lat: float, lon: float, **tags: str) -> str:
    tag_xml = "".join(
        f"<tag k={xml.sax.saxutils.quoteattr(k)} v={xml.sax.saxutils.quoteattr(v)}/>"
        for k, v in tags.items()
    )
    return f'<node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}">{tag_xml}</node>\n'


def osm_way(wid: int, refs: list[int], tags: dict[str, str]) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    tag_xml = "".join(
        f"<tag k={xml.sax.saxutils.quoteattr(k)} v={xml.sax.saxutils.quoteattr(v)}/>"
        for k, v in tags.items()
    )
    return f'<way id="{wid}">{nds}{tag_xml}</way>\n'


# --- an analytic check: a hand-made signalised four-arm crossing ---------------------------

LAT0, LON0, ARM_DEG = 52.0, 13.0, 0.001  # arms: ~111 m north/south, ~68 m east/west


def cross_map(tmp_path: Path) -> Path:
    """A signalised crossing of a 4-lane primary road (N-S) and a residential street (E-W).

    Signal nodes: on the junction (1), on a stop line 0.0001 deg (~11 m) south of it (2), mid
    block on the north arm at ~56 m (3), and a lone node on no road (4).
    """
    c, n, e, s, w, stop, mid = 10, 11, 12, 13, 14, 15, 16
    sig = {"highway": "traffic_signals"}
    body = (
        osm_node(c, LAT0, LON0, **sig)
        + osm_node(n, LAT0 + ARM_DEG, LON0)
        + osm_node(e, LAT0, LON0 + ARM_DEG)
        + osm_node(s, LAT0 - ARM_DEG, LON0)
        + osm_node(w, LAT0, LON0 - ARM_DEG)
        + osm_node(stop, LAT0 - ARM_DEG / 10, LON0, **sig)
        + osm_node(mid, LAT0 + ARM_DEG / 2, LON0, **sig)
        + osm_node(20, LAT0 + 0.01, LON0 + 0.01, crossing="traffic_signals")
        + osm_way(1, [s, stop, c, mid, n], {"highway": "primary", "lanes": "4"})
        + osm_way(2, [w, c, e], {"highway": "residential"})
        + osm_way(3, [w, n], {"highway": "footway"})
    )
    return write_osm(tmp_path / "cross.osm", body)


def test_four_arm_crossing_compiles_to_known_arrays(tmp_path: Path) -> None:
    net = build_roadnet(cross_map(tmp_path))
    report = net.meta["report"]
    assert (net.n_nodes, net.n_links) == (5, 8)  # stop-line and mid-block nodes simplified away
    # 4 approaches x 4 exits at the centre + a U-turn at each dead end
    assert net.n_movements == 4 * 4 + 4
    centre = int(np.flatnonzero(net.node_osmid == 10)[0])
    assert sorted(net.node_osmid.tolist()) == [10, 11, 12, 13, 14]
    assert np.all(net.node_osmid[net.link_from] != net.node_osmid[net.link_to])

    # lengths: 0.001 deg of latitude ~ 111.3 m; of longitude at 52 N ~ 68.5 m
    ns = np.isin(net.node_osmid[net.link_from], [11, 13]) | np.isin(
        net.node_osmid[net.link_to], [11, 13]
    )
    lat_m = haversine_m(LON0, LAT0, LON0, LAT0 + ARM_DEG)
    lon_m = haversine_m(LON0, LAT0, LON0 + ARM_DEG, LAT0)
    np.testing.assert_allclose(net.link_length_m[ns], lat_m, rtol=0.01)
    np.testing.assert_allclose(net.link_length_m[~ns], lon_m, rtol=0.01)
    # lanes=4 on a two-way road: 2 each way; residential default 1; both 50 km/h urban
    assert set(net.link_lanes[ns].tolist()) == {2}
    assert set(net.link_lanes[~ns].tolist()) == {1}
    np.testing.assert_allclose(net.link_speed_mps, 50 / 3.6)
    np.testing.assert_allclose(net.link_capacity_vph[ns], 2 * 1900.0)

    # at the centre each approach has one U, left, through and right movement
    for link in net.in_links(centre):
        movs = list(net.movements_from(int(link)))
        turns = sorted(net.mov_turn[movs].tolist())
        assert turns == sorted([TURN_U, TURN_LEFT, TURN_THROUGH, TURN_RIGHT])
        for m in movs:
            to = int(net.mov_to_link[m])
            if net.mov_turn[m] == TURN_U:
                assert net.link_to[to] == net.link_from[link]
            else:  # a right-angled crossing: through ~0, turns ~90 degrees
                nominal = 0.0 if net.mov_turn[m] == TURN_THROUGH else 90.0
                assert abs(abs(float(net.mov_angle_deg[m])) - nominal) < 5.0
        lanes = int(net.link_lanes[link])
        ranges = {int(net.mov_turn[m]): (net.mov_lane_first[m], net.mov_lane_last[m]) for m in movs}
        top = lanes - 1
        assert ranges[TURN_RIGHT] == (0, 0)
        assert ranges[TURN_THROUGH] == (0, top)
        assert ranges[TURN_LEFT] == (top, top)
    # the heading from the south arm (north): turning east is a right turn
    from_south = next(
        int(li) for li in net.in_links(centre) if net.node_osmid[net.link_from[li]] == 13
    )
    for m in net.movements_from(from_south):
        target = net.node_osmid[net.link_to[net.mov_to_link[m]]]
        expected = {12: TURN_RIGHT, 14: TURN_LEFT, 11: TURN_THROUGH, 13: TURN_U}[int(target)]
        assert net.mov_turn[m] == expected
        if target == 12:
            assert net.mov_angle_deg[m] == pytest.approx(90.0, abs=1.0)

    # one signal, at the centre, standing for the junction node and the stop-line node
    assert net.n_signals == 1 and net.signal_node.tolist() == [centre]
    assert net.node_signal[centre] == 0 and (np.delete(net.node_signal, centre) == -1).all()
    assert net.signal_osm_ids.tolist() == [10, 15]
    assert report["signal_nodes"] == 4
    assert report["signals_on_junction"] == 1 and report["signals_snapped"] == 1
    assert report["signals_dropped"] == {
        "mid-block: no junction within 30 m": 1,
        "not on a drivable road": 1,
    }
    # two phases: the primary road (heavier) first, then the residential street
    assert net.n_phases == 2
    phases = [
        set(net.phase_movs[net.phase_mov_offsets[p] : net.phase_mov_offsets[p + 1]].tolist())
        for p in range(2)
    ]
    for p, arms in enumerate(([11, 13], [12, 14])):
        expected = {
            m
            for li in net.in_links(centre)
            if net.node_osmid[net.link_from[li]] in arms
            for m in net.movements_from(int(li))
        }
        assert phases[p] == expected and len(expected) == 8
    assert report["excluded_ways"] == {"highway=footway": 1}
    assert report["highway_ways"] == 3 and report["drivable_ways"] == 2


def test_one_way_street_alone_has_no_routable_network(tmp_path: Path) -> None:
    body = (
        osm_node(1, LAT0, LON0)
        + osm_node(2, LAT0 + ARM_DEG, LON0)
        + osm_way(1, [1, 2], {"highway": "primary", "oneway": "yes"})
    )
    path = write_osm(tmp_path / "oneway.osm", body)
    with pytest.raises(MapError, match="no routable roads") as err:
        build_roadnet(path, BuildOptions(consolidate_m=0))
    assert str(path) in str(err.value)


def single_street(tmp_path: Path) -> Path:
    body = (
        osm_node(1, LAT0, LON0)
        + osm_node(2, LAT0 + ARM_DEG, LON0)
        + osm_way(1, [1, 2], {"highway": "residential"})
    )
    return write_osm(tmp_path / "street.osm", body)


def test_single_street_without_consolidation(tmp_path: Path) -> None:
    net = build_roadnet(single_street(tmp_path), BuildOptions(consolidate_m=0))
    assert (net.n_nodes, net.n_links, net.n_movements) == (2, 2, 2)
    assert (net.mov_turn == TURN_U).all()


def test_single_street_with_default_options(tmp_path: Path) -> None:
    net = build_roadnet(single_street(tmp_path))
    assert (net.n_nodes, net.n_links) == (2, 2)


def test_carriageways_cut_by_the_extract_leave_gateways_where_they_were_dropped(
    tmp_path: Path,
) -> None:
    """A dual carriageway cut by the extract: its outbound one-way ends in a dead end and its
    inbound one-way starts in one, so the strongly connected filter drops both back to the
    square of streets they hang on. The two corners they hung on are marked as cut ends (the
    road leaves the map there: exit and entry gateways); a one-way residential dead end is
    dropped too but marks nothing (streets that small do end for real)."""
    from twin.population.external import ExternalModel, cut_ends

    d = 0.002  # ~220 m north-south, ~140 m east-west
    a, b, c, e = 1, 2, 3, 4  # the square: a (SW), b (SE), c (NE), e (NW)
    body = (
        osm_node(a, LAT0, LON0)
        + osm_node(b, LAT0, LON0 + d)
        + osm_node(c, LAT0 + d, LON0 + d)
        + osm_node(e, LAT0 + d, LON0)
        + osm_node(11, LAT0, LON0 + 2 * d)  # outbound carriageway, cut at 12
        + osm_node(12, LAT0, LON0 + 3 * d)
        + osm_node(21, LAT0 + d, LON0 + 3 * d)  # inbound carriageway, cut at 21
        + osm_node(22, LAT0 + d, LON0 + 2 * d)
        + osm_node(31, LAT0 + 2 * d, LON0)  # a one-way residential dead end
        + osm_way(1, [a, b, c, e, a], {"highway": "residential"})
        + osm_way(2, [b, 11, 12], {"highway": "primary", "oneway": "yes", "lanes": "2"})
        + osm_way(3, [21, 22, c], {"highway": "primary", "oneway": "yes", "lanes": "2"})
        + osm_way(4, [e, 31], {"highway": "residential", "oneway": "yes"})
    )
    net = build_roadnet(write_osm(tmp_path / "cut.osm", body), BuildOptions(consolidate_m=0))
    # the stubs' ends are dropped (a, 11 and 22 are no junctions: simplified away)
    assert sorted(net.node_osmid.tolist()) == [b, c, e]
    assert net.meta["report"]["scc_nodes_dropped"] == 3  # 12, 21 and 31
    node = {int(osm): i for i, osm in enumerate(net.node_osmid)}
    assert sorted(net.meta["cut_end_nodes"]) == sorted([node[b], node[c]])
    assert net.summary()["cut_carriageway_ends"] == 2
    assert np.flatnonzero(cut_ends(net)).tolist() == sorted([node[b], node[c]])
    ext = ExternalModel.build(net)
    assert {node[b], node[c]} <= set(ext.exit_node.tolist())


# --- every shipped map loads --------------------------------------------------------------


def test_every_shipped_map_is_covered() -> None:
    shipped = sorted(p.name for p in MAPS.iterdir() if p.name != "ATTRIBUTION.md")
    from conftest import SHIPPED_MAPS  # the fixtures' table of maps

    assert shipped == sorted(SHIPPED_MAPS.values())


@pytest.mark.parametrize("name", ALL_MAPS)
def test_map_loads_with_sane_figures(name, roadnet) -> None:
    net = roadnet(name)
    s = net.summary()
    assert net.n_nodes > 10 and net.n_links > 20
    assert 1.5 <= net.n_links / net.n_nodes <= 3.5  # mostly two-way streets
    assert 1.5 <= net.n_movements / net.n_links <= 5.0
    mean_link_m = float(net.link_length_m.mean())
    assert 40.0 <= mean_link_m <= 400.0
    assert s["lane_km"] >= s["road_km"] > 0
    assert net.link_lanes.min() >= 1 and net.link_lanes.max() <= 12
    assert (net.link_speed_mps > 1.0).all() and (net.link_speed_mps < 45.0).all()
    assert (net.link_capacity_vph > 0).all()
    assert net.meta["crs"].upper().startswith("EPSG:326")  # northern-hemisphere UTM
    # the network lies within the nodes of the file
    west, south, east, north = s["bbox_lonlat"]
    assert west < east and south < north
    assert (east - west) < 1.0 and (north - south) < 1.0


# golden figures at default BuildOptions, pinned within 2% (and at least 1) so that a change in the
# build is noticed but a harmless reordering in osmnx is not. Regenerate on purpose only:
#   python tests/test_network.py   (prints this table; paste it here and review the diff)
GOLDEN_KEYS = ("nodes", "links", "movements", "signals", "signal_nodes_attached", "road_km")
GOLDEN: dict[str, tuple[float, ...]] = {
    "west-oakland": (21, 48, 142, 1, 2, 10.983),
    "aguascalientes": (551, 1186, 2918, 5, 19, 95.627),
    "baltimore": (1913, 5050, 15164, 176, 289, 633.31),
    "baltimore-pbf": (1913, 5050, 15164, 176, 289, 633.31),
    "dortmund": (303, 610, 1521, 42, 287, 56.911),  # turn:lanes changes keep 16 nodes
    "columbus": (12939, 36255, 115023, 287, 310, 5937.018),
}
GOLDEN_REL = 0.02


def golden_figures(net: RoadNet) -> tuple[float, ...]:
    s = net.summary()
    return (
        s["nodes"],
        s["links"],
        s["movements"],
        s["signalised_intersections"],
        s["signal_nodes_attached"],
        s["road_km"],
    )


@pytest.mark.parametrize("name", ALL_MAPS)
def test_golden_figures(name, roadnet) -> None:
    got = dict(zip(GOLDEN_KEYS, golden_figures(roadnet(name)), strict=True))
    want = dict(zip(GOLDEN_KEYS, GOLDEN[name], strict=True))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=GOLDEN_REL, abs=1), (key, got)


def test_baltimore_bz2_and_pbf_compile_to_identical_arrays(roadnet) -> None:
    xml_net, pbf_net = roadnet("baltimore"), roadnet("baltimore-pbf")
    assert_same_arrays(xml_net, pbf_net)
    assert xml_net.meta["report"] == pbf_net.meta["report"]
    assert xml_net.meta["crs"] == pbf_net.meta["crs"]


@pytest.mark.parametrize(
    ("name", "highway_ways", "highway_signals"),
    [  # figures from maps/ATTRIBUTION.md, measured independently of twin
        ("west-oakland", 31, 4),
        ("aguascalientes", 674, 33),
        ("baltimore", None, 336),
        ("dortmund", None, 128),
        pytest.param("columbus", 12006, None, marks=SLOW),
    ],
)
def test_file_figures_match_attribution(name, highway_ways, highway_signals, roadnet, map_file):
    report = roadnet(name).meta["report"]
    if highway_ways is not None:
        assert report["highway_ways"] == highway_ways
    if highway_signals is not None:
        assert len(count_signal_nodes(map_file(name))["highway"]) == highway_signals


# --- invariants the traffic kernels rely on ------------------------------------------------


def check_csr(offsets: np.ndarray, n_groups: int, n_flat: int) -> None:
    assert offsets.dtype == np.int64
    assert len(offsets) == n_groups + 1
    assert offsets[0] == 0 and offsets[-1] == n_flat
    assert (np.diff(offsets) >= 0).all()


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_links_have_positive_length_and_matching_geometry(name, roadnet) -> None:
    net = roadnet(name)
    assert np.isfinite(net.link_length_m).all()
    assert (net.link_length_m > 0).all()
    assert (net.link_from != net.link_to).all()  # self-loops are dropped
    check_csr(net.link_geom_offsets, net.n_links, len(net.link_geom_xy_m))
    assert (np.diff(net.link_geom_offsets) >= 2).all()
    starts = net.link_geom_xy_m[net.link_geom_offsets[:-1]]
    ends = net.link_geom_xy_m[net.link_geom_offsets[1:] - 1]
    np.testing.assert_allclose(starts[:, 0], net.node_x_m[net.link_from], atol=0.01)
    np.testing.assert_allclose(starts[:, 1], net.node_y_m[net.link_from], atol=0.01)
    np.testing.assert_allclose(ends[:, 0], net.node_x_m[net.link_to], atol=0.01)
    np.testing.assert_allclose(ends[:, 1], net.node_y_m[net.link_to], atol=0.01)
    # geodesic length vs the UTM polyline: the projection's scale error is well under 1%
    seg = np.hypot(*np.diff(net.link_geom_xy_m, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    poly_m = cum[net.link_geom_offsets[1:] - 1] - cum[net.link_geom_offsets[:-1]]
    np.testing.assert_allclose(poly_m, net.link_length_m, rtol=0.01)


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_node_and_link_csr_relations(name, roadnet) -> None:
    net = roadnet(name)
    n, m = net.n_nodes, net.n_links
    check_csr(net.node_out_offsets, n, len(net.node_out_links))
    check_csr(net.node_in_offsets, n, len(net.node_in_links))
    # every link appears once among the out-links of its from-node and once among the
    # in-links of its to-node
    assert sorted(net.node_out_links.tolist()) == list(range(m))
    assert sorted(net.node_in_links.tolist()) == list(range(m))
    out_owner = np.repeat(np.arange(n), np.diff(net.node_out_offsets))
    in_owner = np.repeat(np.arange(n), np.diff(net.node_in_offsets))
    assert np.array_equal(net.link_from[net.node_out_links], out_owner)
    assert np.array_equal(net.link_to[net.node_in_links], in_owner)
    assert ((net.link_from >= 0) & (net.link_from < n)).all()
    assert ((net.link_to >= 0) & (net.link_to < n)).all()
    # stable numbering: nodes by OSM id, links by from-node
    assert (np.diff(net.node_osmid) > 0).all()
    assert (np.diff(net.link_from) >= 0).all()
    assert len(net.node_lon) == len(net.node_lat) == len(net.node_y_m) == n
    assert np.isfinite(net.node_x_m).all() and np.isfinite(net.node_y_m).all()


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_movements_chain_links_and_lanes_are_in_range(name, roadnet) -> None:
    net = roadnet(name)
    check_csr(net.link_mov_offsets, net.n_links, net.n_movements)
    owner = np.repeat(np.arange(net.n_links), np.diff(net.link_mov_offsets))
    assert np.array_equal(net.mov_from_link, owner)
    # every movement's to-link starts where its from-link ends
    assert np.array_equal(net.link_to[net.mov_from_link], net.link_from[net.mov_to_link])
    # no movement twice
    pairs = net.mov_from_link.astype(np.int64) * net.n_links + net.mov_to_link
    assert len(np.unique(pairs)) == net.n_movements
    # every link can be left and entered (the network is strongly connected)
    assert (np.diff(net.link_mov_offsets) >= 1).all()
    assert len(np.unique(net.mov_to_link)) == net.n_links
    # lanes: 0..lanes-1 of the from-link, and every lane of an approach leads somewhere
    lanes = net.link_lanes[net.mov_from_link]
    assert (net.mov_lane_first >= 0).all()
    assert (net.mov_lane_first <= net.mov_lane_last).all()
    assert (net.mov_lane_last <= lanes - 1).all()
    served = np.zeros(int(net.link_lanes.astype(np.int64).sum()), dtype=bool)
    lane_base = np.concatenate([[0], np.cumsum(net.link_lanes.astype(np.int64))])
    for mv in range(net.n_movements):
        b = lane_base[net.mov_from_link[mv]]
        served[b + net.mov_lane_first[mv] : b + net.mov_lane_last[mv] + 1] = True
    assert served.all()
    # turn types agree with the angles; going back to the node one came from is a U-turn
    assert set(np.unique(net.mov_turn).tolist()) <= {TURN_U, TURN_LEFT, TURN_THROUGH, TURN_RIGHT}
    # (-180, 180] in float64; float32 storage rounds -179.9999999 of a U-turn to -180
    assert (np.abs(net.mov_angle_deg) <= 180.0).all()
    back = net.link_to[net.mov_to_link] == net.link_from[net.mov_from_link]
    assert (net.mov_turn[back] == TURN_U).all()
    assert (np.abs(net.mov_angle_deg[net.mov_turn == TURN_THROUGH]) <= 30.0).all()
    assert (net.mov_angle_deg[net.mov_turn == TURN_RIGHT] > 0).all()
    assert (net.mov_angle_deg[net.mov_turn == TURN_LEFT] < 0).all()


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_link_graph_is_strongly_connected(name, roadnet) -> None:
    """Every link can be reached from every other one by following turn movements."""
    net = roadnet(name)
    m = net.n_links
    adj = coo_matrix(
        (np.ones(net.n_movements, dtype=np.int8), (net.mov_from_link, net.mov_to_link)),
        shape=(m, m),
    ).tocsr()
    n_comp, _ = connected_components(adj, directed=True, connection="strong")
    assert n_comp == 1


def test_without_largest_scc_the_link_graph_falls_apart(roadnet) -> None:
    """The option the strong-connectivity check guards: keep_largest_scc=False keeps the
    one-way stubs and islands, and then some links cannot be reached or left."""
    default = roadnet("west-oakland")
    net = build_roadnet(MAPS / "west-oakland.osm.bz2", BuildOptions(keep_largest_scc=False))
    report = net.meta["report"]
    assert report["scc_nodes_dropped"] == 0
    assert net.n_nodes == report["consolidated_nodes"]
    assert net.n_nodes == default.n_nodes + default.meta["report"]["scc_nodes_dropped"]
    m = net.n_links
    adj = coo_matrix(
        (np.ones(net.n_movements, dtype=np.int8), (net.mov_from_link, net.mov_to_link)),
        shape=(m, m),
    ).tocsr()
    assert connected_components(adj, directed=True, connection="strong")[0] > 1


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_signal_phases_cover_each_approach_once(name, roadnet) -> None:
    net = roadnet(name)
    k = net.n_signals
    check_csr(net.signal_phase_offsets, k, net.n_phases)
    check_csr(net.phase_mov_offsets, net.n_phases, len(net.phase_movs))
    check_csr(net.signal_osm_offsets, k, len(net.signal_osm_ids))
    assert (np.diff(net.signal_osm_offsets) >= 1).all()  # each stands for some OSM node
    phases_per_signal = np.diff(net.signal_phase_offsets)
    assert ((phases_per_signal >= 1) & (phases_per_signal <= 4)).all()  # 2 axes, +left each
    # node_signal is the inverse of signal_node
    assert len(np.unique(net.signal_node)) == k
    assert np.array_equal(net.node_signal[net.signal_node], np.arange(k))
    assert (net.node_signal >= 0).sum() == k
    for s in range(k):
        node = int(net.signal_node[s])
        expected = sorted(m for li in net.in_links(node) for m in net.movements_from(int(li)))
        served = []
        for p in range(net.signal_phase_offsets[s], net.signal_phase_offsets[s + 1]):
            movs = net.phase_movs[net.phase_mov_offsets[p] : net.phase_mov_offsets[p + 1]]
            assert len(movs) > 0
            served.extend(movs.tolist())
        assert sorted(served) == expected  # each in-link movement exactly once


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_every_signal_node_is_accounted_for(name, roadnet, map_file, osm_extract) -> None:
    net = roadnet(name)
    report = net.meta["report"]
    in_file = count_signal_nodes(map_file(name))
    all_signals = in_file["highway"] | in_file["crossing"]
    dropped = sum(report["signals_dropped"].values())
    assert report["signal_nodes"] == len(all_signals)
    assert report["signal_nodes"] == len(net.signal_osm_ids) + dropped
    attached_in_graph = report["signals_on_junction"] + report["signals_snapped"]
    assert (
        attached_in_graph
        + dropped
        - report["signals_dropped"].get("outside the routing component", 0)
        == report["signal_nodes"]
    )
    # each attached OSM signal node is a real signal node of the file, attached once, to a
    # signalised intersection near it (snap distance + the radius of a merged junction)
    assert len(np.unique(net.signal_osm_ids)) == len(net.signal_osm_ids)
    assert set(net.signal_osm_ids.tolist()) <= all_signals
    options = BuildOptions()
    reach_m = options.signal_snap_m + 2 * max(options.consolidate_m, options.signal_join_m)
    signal_lonlat = osm_extract(name).signal_nodes
    owner = np.repeat(np.arange(net.n_signals), np.diff(net.signal_osm_offsets))
    for sid, s in zip(net.signal_osm_ids.tolist(), owner.tolist(), strict=True):
        node = int(net.signal_node[s])
        assert net.node_signal[node] == s >= 0
        lon, lat = signal_lonlat[sid]
        assert haversine_m(lon, lat, net.node_lon[node], net.node_lat[node]) <= reach_m


@pytest.mark.parametrize("name", CHECKED_MAPS)
def test_report_arithmetic(name, roadnet) -> None:
    net = roadnet(name)
    r = net.meta["report"]
    assert r["drivable_ways"] + sum(r["excluded_ways"].values()) == r["highway_ways"]
    assert r["raw_nodes"] >= r["simplified_nodes"] >= r["consolidated_nodes"]
    assert r["consolidated_nodes"] - r["scc_nodes_dropped"] == net.n_nodes
    assert r["consolidated_edges"] - r["scc_edges_dropped"] == net.n_links
    assert net.meta["options"] == {
        f.name: getattr(BuildOptions(), f.name) for f in fields(BuildOptions)
    } | {"untagged_lanes": {}}


def test_dortmund_stop_line_signals_are_snapped(roadnet, map_file, osm_extract) -> None:
    """Dortmund maps highway=traffic_signals on stop-line nodes before the junction."""
    net = roadnet("dortmund")
    assert net.meta["report"]["signals_snapped"] > 0
    highway_signals = count_signal_nodes(map_file("dortmund"))["highway"]
    extract = osm_extract("dortmund")
    G = raw_graph(extract)
    attached = attach_signals(G, extract, BuildOptions().signal_snap_m, BuildReport())
    snapped = {sid for sid, junction in attached.items() if junction != sid}
    on_junction = {sid for sid, junction in attached.items() if junction == sid}
    assert len(highway_signals & snapped) > len(highway_signals) / 2  # most of them
    assert len(highway_signals & on_junction) < len(highway_signals) / 4
    # and most end up at a signalised intersection of the compiled network
    assert len(highway_signals & set(net.signal_osm_ids.tolist())) > len(highway_signals) / 2


# --- graph counts against osmnx's own build -----------------------------------------------


def write_drivable_xml(extract: OsmExtract, path: Path) -> Path:
    """The file's drivable ways (as twin selects them) and their nodes, as plain OSM XML."""
    quote = xml.sax.saxutils.quoteattr
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="twin">']
    for nid in sorted({r for w in extract.ways for r in w.node_ids}):
        lon, lat = extract.node_lonlat[nid]
        lines.append(f'<node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for way in extract.ways:
        nds = "".join(f'<nd ref="{r}"/>' for r in way.node_ids)
        tags = "".join(f"<tag k={quote(k)} v={quote(v)}/>" for k, v in way.tags.items())
        lines.append(f'<way id="{way.way_id}">{nds}{tags}</way>')
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _segs_at(G, node) -> set[str]:
    return {d["seg"] for *_, d in G.in_edges(node, data=True)} | {
        d["seg"] for *_, d in G.out_edges(node, data=True)
    }


@pytest.mark.parametrize("name", ["west-oakland", "aguascalientes"])
def test_graph_counts_agree_with_osmnx(name, roadnet, osm_extract, tmp_path) -> None:
    """twin's raw and simplified graphs against osmnx 2.x graph_from_xml on the same ways.

    Tolerance: the raw graphs agree exactly. osmnx's simplification keeps a node only where
    the topology needs it; twin also keeps a node where the road attributes change along a way
    (lanes, speed, class: ``seg``), so each link is uniform. The simplified counts therefore
    differ by exactly those nodes (and the edges that pass through them), and by no more than
    3% (or 2 on tiny West Oakland) on these maps.
    """
    report = roadnet(name).meta["report"]
    extract = osm_extract(name)
    xml_path = write_drivable_xml(extract, tmp_path / f"{name}-drivable.osm")
    ref_raw = ox.graph_from_xml(xml_path, simplify=False, retain_all=True)
    ref = ox.graph_from_xml(xml_path, simplify=True, retain_all=True)

    assert report["raw_nodes"] == len(ref_raw)
    assert report["raw_edges"] == ref_raw.number_of_edges()

    G = raw_graph(extract)
    assert set(G.nodes) == set(ref_raw.nodes)
    assert set(ox.simplify_graph(G.copy()).nodes) == set(ref.nodes)  # same topology rule
    kept_for_attrs = [n for n in G if n not in ref and len(_segs_at(G, n)) > 1]
    assert report["simplified_nodes"] == len(ref) + len(kept_for_attrs)
    # an interstitial node splits one edge per direction of travel through it
    extra_edges = sum(G.out_degree(n) for n in kept_for_attrs)
    assert report["simplified_edges"] == ref.number_of_edges() + extra_edges
    assert report["simplified_nodes"] == pytest.approx(len(ref), rel=0.03, abs=2)
    assert report["simplified_edges"] == pytest.approx(ref.number_of_edges(), rel=0.03, abs=2)


# --- clipped extracts ----------------------------------------------------------------------


def test_clipped_extract_is_repaired_and_loads(roadnet, map_file, osm_extract) -> None:
    net = roadnet("aguascalientes-clipped")
    r = net.meta["report"]
    assert r["ways_repaired"] > 0
    assert r["node_refs_missing"] > 0
    assert net.n_nodes > 100 and net.n_links > 200
    # smaller than the whole map, and inside the box it was cut to
    full = roadnet("aguascalientes")
    assert net.n_nodes < full.n_nodes and net.n_links < full.n_links
    lon, lat = [], []
    for node in osmium.FileProcessor(str(map_file("aguascalientes-clipped")), osmium.osm.NODE):
        lon.append(node.location.lon)
        lat.append(node.location.lat)
    assert (net.node_lon >= min(lon)).all() and (net.node_lon <= max(lon)).all()
    assert (net.node_lat >= min(lat)).all() and (net.node_lat <= max(lat)).all()
    # every repaired piece references only nodes present in the file
    extract = osm_extract("aguascalientes-clipped")
    for way in extract.ways:
        assert len(way.node_ids) >= 2
        assert all(ref in extract.node_lonlat for ref in way.node_ids)


def test_clipped_extract_breaks_plain_osmnx(map_file) -> None:
    """What twin repairs: osmnx refuses a file whose ways reference missing nodes."""
    with pytest.raises(ValueError, match="missing nodes"):
        ox.graph_from_xml(map_file("aguascalientes-clipped"), simplify=True, retain_all=True)


def test_repair_splits_ways_at_missing_nodes(tmp_path: Path) -> None:
    present = [1, 2, 4, 5, 7, 8, 10, 11, 12]
    body = "".join(osm_node(n, LAT0 + n * 1e-4, LON0) for n in present)
    body += osm_way(100, [1, 2, 3, 4, 5, 6, 7], {"highway": "residential"})  # 3, 6 missing
    body += osm_way(101, [8, 99], {"highway": "residential"})  # 99 missing: nothing left
    body += osm_way(102, [10, 11, 12], {"highway": "residential"})  # complete
    extract = read_osm(write_osm(tmp_path / "clipped.osm", body))
    pieces = {(w.way_id, tuple(w.node_ids)) for w in extract.ways}
    assert pieces == {(100, (1, 2)), (100, (4, 5)), (102, (10, 11, 12))}
    assert extract.ways_repaired == 1
    assert extract.ways_dropped_missing_nodes == 1
    assert extract.node_refs_missing == 3


# --- bad input -----------------------------------------------------------------------------


def _truncated(src: Path, dst: Path, n_bytes: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n_bytes])
    return dst


def bad_file(kind: str, tmp: Path) -> Path:
    if kind == "missing":
        return tmp / "nowhere.osm.bz2"
    if kind == "not osm text":
        (p := tmp / "x.osm").write_text("these are my notes, not a map\n")
        return p
    if kind == "html":
        (p := tmp / "map.osm").write_text(
            "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
            "<body><h1>Not Found</h1></body></html>\n"
        )
        return p
    if kind == "truncated bz2":
        return _truncated(MAPS / "aguascalientes.osm.bz2", tmp / "cut.osm.bz2", 8 * 1024)
    if kind == "truncated pbf":
        return _truncated(MAPS / "baltimore.osm.pbf", tmp / "cut.osm.pbf", 20 * 1024)
    if kind == "truncated xml":
        xml_bytes = bz2.decompress((MAPS / "west-oakland.osm.bz2").read_bytes())
        (p := tmp / "cut.osm").write_bytes(xml_bytes[: len(xml_bytes) // 2])
        return p
    if kind == "empty":
        (p := tmp / "empty.osm.pbf").write_bytes(b"")
        return p
    if kind == "only footways":
        body = (
            osm_node(1, LAT0, LON0)
            + osm_node(2, LAT0 + ARM_DEG, LON0)
            + osm_node(3, LAT0 + ARM_DEG, LON0 + ARM_DEG)
            + osm_way(1, [1, 2], {"highway": "footway"})
            + osm_way(2, [2, 3], {"highway": "cycleway"})
            + osm_way(3, [1, 3], {"building": "yes"})
        )
        return write_osm(tmp / "paths.osm", body)
    if kind == "unsupported suffix":
        p = tmp / "map.txt"
        shutil.copy(MAPS / "west-oakland.osm.bz2", p)
        return p
    if kind == "directory":
        (p := tmp / "folder.osm").mkdir()
        return p
    raise AssertionError(kind)


BAD_KINDS = {
    "missing": "not found",
    "not osm text": "not a readable OSM file",
    "html": "not a readable OSM file",
    "truncated bz2": "not a readable OSM file",
    "truncated pbf": "not a readable OSM file",
    "truncated xml": "not a readable OSM file",
    "empty": "not a readable OSM file",
    "only footways": "no drivable roads",
    "unsupported suffix": "unsupported map file type",
    "directory": "not",
}


@pytest.mark.parametrize("loader", [load_roadnet, build_roadnet, read_osm])
@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_bad_map_raises_map_error_naming_the_file(kind, loader, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    path = bad_file(kind, tmp_path)
    with pytest.raises(MapError) as err:
        loader(path)
    message = str(err.value)
    assert str(path) in message
    assert BAD_KINDS[kind] in message
    assert "\n" not in message  # the CLI prints it on one line
    assert entries(tmp_path / "cache") == []


# --- the cache -----------------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("TWIN_CACHE_DIR", str(d))
    return d


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch):
    """Make any rebuild fail, to prove a load came from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("rebuilt although a cache entry exists")

    def apply() -> None:
        monkeypatch.setattr(cache_module, "build_roadnet", refuse)

    return apply


WEST_OAKLAND = MAPS / "west-oakland.osm.bz2"


def entries(d: Path) -> list[Path]:
    return sorted(d.glob("*.npz")) if d.exists() else []


def test_cache_writes_one_entry_and_reads_it_back(cache_dir, no_build) -> None:
    first = load_roadnet(WEST_OAKLAND)
    (entry,) = entries(cache_dir)
    assert first.meta["cache"] == str(entry)
    no_build()
    second = load_roadnet(WEST_OAKLAND)
    assert_same_arrays(first, second)
    assert second.meta["cache"] == str(entry) and second.meta["source"] == str(WEST_OAKLAND)
    assert second.meta["report"] == first.meta["report"]
    assert second.meta["options"] == first.meta["options"]
    assert entries(cache_dir) == [entry]


def test_cache_matches_a_fresh_build(cache_dir, roadnet) -> None:
    load_roadnet(WEST_OAKLAND)
    assert_same_arrays(load_roadnet(WEST_OAKLAND), roadnet("west-oakland"))


def test_cache_entry_per_option(cache_dir) -> None:
    default = load_roadnet(WEST_OAKLAND)
    tighter = load_roadnet(WEST_OAKLAND, BuildOptions(consolidate_m=2.0))
    assert len(entries(cache_dir)) == 2
    assert tighter.meta["cache"] != default.meta["cache"]
    assert tighter.meta["options"]["consolidate_m"] == 2.0
    assert cache_key(WEST_OAKLAND, BuildOptions()) != cache_key(
        WEST_OAKLAND, BuildOptions(consolidate_m=2.0)
    )
    # each option set gets its own network back
    assert load_roadnet(WEST_OAKLAND).meta["cache"] == default.meta["cache"]
    assert_same_arrays(load_roadnet(WEST_OAKLAND, BuildOptions(consolidate_m=2.0)), tighter)


def test_cache_use_cache_false_writes_nothing(cache_dir) -> None:
    net = load_roadnet(WEST_OAKLAND, use_cache=False)
    assert net.n_links > 0 and "cache" not in net.meta
    assert entries(cache_dir) == []


def _with_maxspeed(src: Path, dst: Path, maxspeed: str) -> Path:
    """A copy of ``src`` with ``maxspeed`` set on every highway way (one tag changed)."""
    with osmium.SimpleWriter(str(dst), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(src)):
            if obj.is_way() and "highway" in obj.tags:
                writer.add(obj.replace(tags={**dict(obj.tags), "maxspeed": maxspeed}))
            else:
                writer.add(obj)
    return dst


def test_cache_key_follows_file_content(cache_dir, tmp_path, no_build) -> None:
    original = tmp_path / "oakland.osm"
    original.write_bytes(bz2.decompress(WEST_OAKLAND.read_bytes()))
    base = load_roadnet(original)
    # a copy under another name has the same bytes: same key, served from the cache
    copy = tmp_path / "copy-of-oakland.osm"
    shutil.copy(original, copy)
    assert cache_key(copy, BuildOptions()) == cache_key(original, BuildOptions())
    changed = _with_maxspeed(original, tmp_path / "changed.osm", "20 mph")
    assert cache_key(changed, BuildOptions()) != cache_key(original, BuildOptions())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache_module, "build_roadnet", lambda *a, **k: pytest.fail("rebuilt"))
        from_copy = load_roadnet(copy)
    assert_same_arrays(from_copy, base)
    assert from_copy.meta["source"] == str(copy)
    # the changed file is rebuilt, and its change shows
    changed_net = load_roadnet(changed)
    assert len(entries(cache_dir)) == 2
    np.testing.assert_allclose(changed_net.link_speed_mps, 20 * 0.44704)
    assert not np.allclose(base.link_speed_mps, changed_net.link_speed_mps)
    # recompressing changes the bytes and so the key, though not the network
    recompressed = tmp_path / "oakland.osm.bz2"
    recompressed.write_bytes(bz2.compress(original.read_bytes(), compresslevel=1))
    assert cache_key(recompressed, BuildOptions()) != cache_key(WEST_OAKLAND, BuildOptions())
    assert_same_arrays(load_roadnet(recompressed), base)
    assert len(entries(cache_dir)) == 3
    no_build()
    assert_same_arrays(load_roadnet(changed), changed_net)


def _corrupt(entry: Path, how: str) -> None:
    data = entry.read_bytes()
    if how == "garbage":
        entry.write_bytes(b"this is not an npz file at all")
    elif how == "foreign npz":
        with entry.open("wb") as fh:
            np.savez(fh, something_else=np.arange(3))
    elif how == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        entry.write_bytes(b"")
    elif how == "flipped bytes":
        mid = len(data) // 2
        entry.write_bytes(
            data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]
        )
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "garbage",
        "foreign npz",
        "truncated",
        "empty",
        "flipped bytes",
    ],
)
def test_corrupt_cache_entry_is_rebuilt(how, cache_dir) -> None:
    good = load_roadnet(WEST_OAKLAND)
    (entry,) = entries(cache_dir)
    _corrupt(entry, how)
    again = load_roadnet(WEST_OAKLAND)
    assert_same_arrays(again, good)
    assert entries(cache_dir) == [entry]
    assert_same_arrays(RoadNet.load(entry), good)  # and the entry is whole again


def test_cache_entry_of_another_format_version_is_rebuilt(cache_dir, monkeypatch) -> None:
    good = load_roadnet(WEST_OAKLAND)
    (entry,) = entries(cache_dir)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(road_module, "FORMAT_VERSION", road_module.FORMAT_VERSION + 100)
        good.save(entry)
    with pytest.raises(ValueError, match="format"):
        RoadNet.load(entry)
    assert_same_arrays(load_roadnet(WEST_OAKLAND), good)
    assert RoadNet.load(entry).meta["format_version"] == road_module.FORMAT_VERSION


def test_unwritable_cache_does_not_stop_a_load(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache directory cannot be created here")
    monkeypatch.setenv("TWIN_CACHE_DIR", str(blocker / "cache"))
    net = load_roadnet(WEST_OAKLAND)
    assert net.n_links > 0 and "cache" not in net.meta


def test_roadnet_save_load_round_trip(roadnet, tmp_path) -> None:
    net = roadnet("dortmund")
    path = tmp_path / "dortmund.npz"
    net.save(path)
    back = RoadNet.load(path)
    assert_same_arrays(back, net)
    for name in array_fields():
        assert getattr(back, name).dtype != object, name
    assert back.meta == net.meta
    assert back.meta["format_version"] == road_module.FORMAT_VERSION
    assert back.summary() == net.summary()
    assert not list(tmp_path.glob("*.tmp*"))  # the temporary file was moved into place


if __name__ == "__main__":  # regenerate GOLDEN (see above)
    from conftest import SHIPPED_MAPS

    print("GOLDEN: dict[str, tuple[float, ...]] = {")
    for map_name, file_name in SHIPPED_MAPS.items():
        print(f'    "{map_name}": {golden_figures(build_roadnet(MAPS / file_name))},')
    print("}")


def test_untagged_lanes_set_the_lanes_of_roads_osm_does_not_tag(tmp_path: Path) -> None:
    """``[map] untagged_lanes``: a class's lanes a direction where the way has no lanes tag;
    a tagged way keeps its tag, another class its default."""
    ways = [
        {"highway": "secondary"},
        {"highway": "secondary", "lanes": "2"},
        {"highway": "tertiary"},
    ]
    body = ""
    for w, tags in enumerate(ways):  # three separate two-way streets
        lon = LON0 + w * ARM_DEG
        body += osm_node(10 * w + 1, LAT0, lon) + osm_node(10 * w + 2, LAT0 + ARM_DEG, lon)
        body += osm_way(w + 1, [10 * w + 1, 10 * w + 2], tags)
    path = write_osm(tmp_path / "lanes.osm", body)

    def lanes(untagged: tuple[tuple[str, int], ...]) -> dict[tuple[int, bool], int]:
        options = BuildOptions(consolidate_m=0, keep_largest_scc=False, untagged_lanes=untagged)
        net = build_roadnet(path, options)
        per_link = zip(net.link_way_id, net.link_lanes_default, net.link_lanes, strict=True)
        return {(int(w), bool(d)): int(n) for w, d, n in per_link}

    assert lanes(()) == {(1, True): 1, (2, False): 1, (3, True): 1}  # "2": one a direction
    assert lanes((("secondary", 3),)) == {(1, True): 3, (2, False): 1, (3, True): 1}
