"""Tests for twin.traffic.routing: turn-aware fastest routes on the link graph."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import networkx as nx
import numpy as np
import pytest

from twin.network.road import RoadNet
from twin.network.synthetic import corridor_roadnet, grid_roadnet
from twin.traffic.routing import TURN_PENALTY_S, Router, RouteSet


@pytest.fixture(scope="module")
def maps(roadnet: Callable[[str], RoadNet]) -> dict[str, RoadNet]:
    """Shared compiled maps (conftest's session fixture); never modified here."""
    return {name: roadnet(name) for name in ("west-oakland", "baltimore")}


def assert_valid(net: RoadNet, route: np.ndarray, origin: int, dest: int) -> None:
    """A chain of movements from an out-link of ``origin`` to an in-link of ``dest``."""
    assert route.dtype == np.int32 and len(route) >= 1
    assert route[0] in net.out_links(origin) and route[-1] in net.in_links(dest)
    for a, b in itertools.pairwise(route.tolist()):
        assert b in net.mov_to_link[net.link_mov_offsets[a] : net.link_mov_offsets[a + 1]]


def line_graph(net: RoadNet, link_time_s: np.ndarray) -> nx.DiGraph:
    """An explicit line graph: links are vertices, movements edges; node ``n`` is a sink."""
    G = nx.DiGraph()
    for a, b, turn in zip(net.mov_from_link, net.mov_to_link, net.mov_turn, strict=True):
        G.add_edge(int(a), int(b), w=link_time_s[b] + TURN_PENALTY_S[turn])
    for n in range(net.n_nodes):
        for li in net.in_links(n):
            G.add_edge(int(li), ("node", n), w=0.0)
    return G


def reference_costs(G: nx.DiGraph, net: RoadNet, link_time_s: np.ndarray, origin: int):
    """Cost (s) to every node from ``origin`` by networkx (inf where unreachable)."""
    G.add_weighted_edges_from(
        [("src", int(li), link_time_s[li]) for li in net.out_links(origin)], weight="w"
    )
    dist = nx.single_source_dijkstra_path_length(G, "src", weight="w")
    G.remove_node("src")
    return np.array([dist.get(("node", n), np.inf) for n in range(net.n_nodes)])


def test_grid_routes_are_manhattan_and_valid() -> None:
    net = grid_roadnet(5, 4, spacing_m=200.0)
    router = Router(net)
    ij = np.column_stack([np.arange(20) % 5, np.arange(20) // 5])
    o, d = np.meshgrid(np.arange(20), np.arange(20))
    o, d = o.ravel(), d.ravel()
    rs = router.routes(o, d)
    assert isinstance(rs, RouteSet) and len(rs) == 400
    assert rs.offsets.dtype == np.int64 and rs.links.dtype == np.int32
    assert np.array_equal(rs.ok, o != d)
    for t in np.flatnonzero(rs.ok):
        route = rs.route(t)
        assert_valid(net, route, o[t], d[t])
        manhattan_m = 200.0 * np.abs(ij[o[t]] - ij[d[t]]).sum()
        assert net.link_length_m[route].sum() == pytest.approx(manhattan_m)
        assert rs.time_s[t] == pytest.approx(router.route_time_s(route))
        assert rs.time_s[t] >= manhattan_m / 13.89


def test_origin_equals_destination_is_not_routed() -> None:
    router = Router(grid_roadnet(3, 3))
    assert router.route(4, 4) is None
    rs = router.routes([4, 0], [4, 8])
    assert rs.ok.tolist() == [False, True] and len(rs.route(0)) == 0 and rs.time_s[0] == np.inf


def test_costs_match_networkx_line_graph(maps) -> None:
    for name, n_origins in (("west-oakland", None), ("baltimore", 6)):
        net = maps[name]
        router = Router(net)
        G = line_graph(net, router.link_time_s)
        rng = np.random.default_rng(1)
        origins = range(net.n_nodes) if n_origins is None else rng.choice(net.n_nodes, n_origins)
        for o in origins:
            ref = reference_costs(G, net, router.link_time_s, int(o))
            dests = np.array([d for d in range(net.n_nodes) if d != o])
            rs = router.routes(np.full(len(dests), o), dests)
            assert np.array_equal(rs.ok, np.isfinite(ref[dests]))
            assert np.allclose(rs.time_s[rs.ok], ref[dests][rs.ok], rtol=1e-12)
            assert np.all(np.diff(rs.offsets)[~rs.ok] == 0)
            for t in np.flatnonzero(rs.ok)[::25]:  # a sample of the routes themselves
                assert_valid(net, rs.route(t), int(o), int(dests[t]))
                assert router.route_time_s(rs.route(t)) == pytest.approx(rs.time_s[t])


def test_closing_and_reopening_a_link(maps) -> None:
    net = maps["baltimore"]
    router = Router(net)
    rng = np.random.default_rng(2)
    checked = 0
    for o, d in rng.integers(0, net.n_nodes, (40, 2)):
        best = router.route(int(o), int(d))
        if best is None or len(best) < 3:
            continue
        closed = int(best[len(best) // 2])
        old_s = router.routes([o], [d]).time_s[0]
        router.close_links([closed])
        assert router.closed_links.tolist() == [closed]
        detour = router.route(int(o), int(d))
        if detour is not None:  # the closed link may have been the only way
            assert closed not in detour and not np.array_equal(detour, best)
            assert_valid(net, detour, int(o), int(d))
            assert router.routes([o], [d]).time_s[0] >= old_s
            checked += 1
        router.open_links([closed])
        assert np.array_equal(router.route(int(o), int(d)), best)
    assert checked >= 10


def test_closing_all_in_links_makes_a_node_unreachable() -> None:
    net = grid_roadnet(4, 4)
    router = Router(net)
    target = 5
    assert router.route(0, target) is not None
    router.close_links(net.in_links(target))
    rs = router.routes([0, 15, 3, target], [target, target, 12, 0])
    assert rs.ok.tolist() == [False, False, True, True]  # leaving it is still possible
    assert np.isinf(rs.time_s[:2]).all() and rs.offsets[2] == 0
    assert not np.isin(rs.links, net.in_links(target)).any()
    router.open_links(net.in_links(target))
    assert router.route(0, target) is not None


def test_slow_link_is_avoided() -> None:
    net = grid_roadnet(4, 3)
    router = Router(net)
    straight = router.route(0, 3)  # along the bottom row
    assert len(straight) == 3
    times = net.link_length_m / net.link_speed_mps
    times[straight[1]] *= 20.0
    router.set_link_times(times)
    detour = router.route(0, 3)
    assert straight[1] not in detour
    assert net.link_length_m[detour].sum() == pytest.approx(5 * 200.0)  # around one block
    assert Router(net, link_time_s=times).route(0, 3).tolist() == detour.tolist()


def test_batched_equals_single_and_cache_counts(maps) -> None:
    net = maps["baltimore"]
    router = Router(net)
    rng = np.random.default_rng(3)
    o, d = rng.integers(0, net.n_nodes, (2, 300))
    o[:20], d[:20] = o[20:40], d[20:40]  # some repeated pairs
    rs = router.routes(o, d)
    assert router.cache_misses == len({(a, b) for a, b in zip(o, d, strict=True) if a != b})
    single = Router(net)
    for t in range(len(o)):
        route = single.route(int(o[t]), int(d[t]))
        if route is None:
            assert not rs.ok[t]
        else:
            assert np.array_equal(route, rs.route(t))
    hits = router.cache_hits
    again = router.routes(o, d)
    assert router.cache_hits == hits + int(np.count_nonzero(o != d))
    assert np.array_equal(again.links, rs.links) and np.array_equal(again.offsets, rs.offsets)
    router.set_link_times(router.link_time_s * 2.0)  # invalidates the cache
    misses = router.cache_misses
    doubled = router.routes(o, d)
    assert router.cache_misses > misses
    ok = rs.ok
    assert np.all(doubled.time_s[ok] >= rs.time_s[ok])
    assert np.all(doubled.time_s[ok] <= 2.0 * rs.time_s[ok] + 1e-9)  # the old route, twice


def test_every_baltimore_pair_is_routable(maps) -> None:
    net = maps["baltimore"]
    rng = np.random.default_rng(4)
    o, d = rng.integers(0, net.n_nodes, (2, 200))
    keep = o != d
    rs = Router(net).routes(o[keep], d[keep])
    assert rs.ok.all() and np.isfinite(rs.time_s).all()
    assert np.all(np.diff(rs.offsets) >= 1)


def test_corridor_free_flow_time() -> None:
    lengths = [100.0, 250.0, 400.0]
    net = corridor_roadnet(lengths, speed_mps=10.0, signal_nodes=(1,))
    router = Router(net)
    rs = router.routes([0, 3, 1], [3, 0, 2])
    assert rs.ok.tolist() == [True, False, True]  # one-way: no way back
    assert rs.route(0).tolist() == [0, 1, 2]
    assert rs.time_s[0] == pytest.approx(sum(lengths) / 10.0)  # through movements: no penalty
    assert rs.time_s[2] == pytest.approx(25.0)


def test_validation() -> None:
    net = grid_roadnet(2, 2)
    router = Router(net)
    with pytest.raises(ValueError, match="shape"):
        router.set_link_times(np.ones(3))
    with pytest.raises(ValueError, match="> 0"):
        router.set_link_times(np.zeros(net.n_links))
    with pytest.raises(ValueError, match="out of range"):
        router.routes([0], [4])
    with pytest.raises(ValueError, match="out of range"):
        router.close_links([net.n_links])
    with pytest.raises(ValueError, match="destinations"):
        router.routes([0, 1], [2])
    with pytest.raises(ValueError, match="no movement"):
        router.route_time_s(np.array([0, 0]))


def test_routes_from_a_link_count_the_first_turn():
    """Re-routing starts from the vehicle's link: the turn off it is costed (no free U-turn)
    and every step of the continuation is a movement."""
    net = grid_roadnet(3, 3, spacing_m=200.0, signals=False)
    router = Router(net)
    here = int(np.flatnonzero((net.link_from == 3) & (net.link_to == 4))[0])  # heading east
    found = router.routes_from_links([here], [3])  # back where it came from
    route = found.route(0)
    assert found.ok[0] and route[0] != int(
        np.flatnonzero((net.link_from == 4) & (net.link_to == 3))[0]
    )  # the U-turn (60 s penalty) loses to going round the block
    chain = np.concatenate([[here], route])
    assert found.time_s[0] == pytest.approx(router.route_time_s(chain) - router.link_time_s[here])
    # from a node the turn off the current link is not seen: that route is the U-turn
    assert len(router.route(4, 3)) == 1


def test_routes_from_a_link_ending_at_the_destination_are_empty():
    net = grid_roadnet(3, 3, spacing_m=200.0, signals=False)
    here = int(np.flatnonzero((net.link_from == 3) & (net.link_to == 4))[0])
    found = Router(net).routes_from_links([here], [4])
    assert found.ok[0] and len(found.route(0)) == 0 and found.time_s[0] == 0.0
