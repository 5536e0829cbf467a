"""The Numba router (twin.traffic.routing_kernel) against the reference, scipy's dijkstra.

The reference is the same :class:`Router` computing its routes with
:func:`scipy.sparse.csgraph.dijkstra` (``_backend = "scipy"``, the router as it was before the
kernel). On the shipped maps every route must be the reference's, link for link, and valid: a
chain of compiled movements from an out-link of the origin to an in-link of the destination,
over no closed link, costing what the router says.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from twin.network.road import RoadNet
from twin.network.synthetic import grid_roadnet
from twin.traffic.routing import ASTAR_MAX_DESTS, N_LANDMARKS, Router, RouteSet
from twin.traffic.routing_kernel import _bound_s, _goal_landmarks, route_trips

SHIPPED = ("baltimore", "dortmund")  # the maps of scenarios/baltimore.toml and dortmund.toml
N_PAIRS = 3000


class ScipyRouter(Router):
    """The reference: the same router, its routes from scipy.sparse.csgraph.dijkstra."""

    _backend = "scipy"


@pytest.fixture(scope="module")
def maps(roadnet: Callable[[str], RoadNet]) -> dict[str, RoadNet]:
    """Shared compiled maps (conftest's session fixture); never modified here."""
    return {name: roadnet(name) for name in SHIPPED}


def assert_same(got: RouteSet, ref: RouteSet) -> None:
    assert got.offsets.dtype == ref.offsets.dtype == np.int64
    assert got.links.dtype == ref.links.dtype == np.int32
    assert np.array_equal(got.offsets, ref.offsets)
    assert np.array_equal(got.links, ref.links)
    assert np.array_equal(got.time_s, ref.time_s)  # bit for bit, inf included
    assert np.array_equal(got.ok, ref.ok)


def assert_valid(
    router: Router, rs: RouteSet, origins: np.ndarray, dests: np.ndarray, *, from_links=False
) -> None:
    """Every routed trip: consecutive links joined by a movement, the first leaving the origin
    node (or a movement off the origin link), the last entering the destination, no closed
    link, and the cost (link times and turn penalties) the route's time within 1e-9 s."""
    net = router.net
    ok = np.flatnonzero(rs.ok)
    n = np.diff(rs.offsets)
    assert np.all(n[~rs.ok] == 0) and np.all(np.isinf(rs.time_s[~rs.ok]))
    assert not np.isin(rs.links, router.closed_links).any()
    mov_key = net.mov_from_link.astype(np.int64) * net.n_links + net.mov_to_link
    mov_order = np.argsort(mov_key)
    turn_s = np.asarray(router._turn_penalty_s)

    def movement_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        key = a.astype(np.int64) * net.n_links + b
        pos = np.minimum(np.searchsorted(mov_key, key, sorter=mov_order), len(mov_key) - 1)
        assert np.array_equal(mov_key[mov_order[pos]], key), "a step that is no movement"
        return turn_s[net.mov_turn[mov_order[pos]]]

    full = ok[n[ok] > 0]
    first, last = rs.links[rs.offsets[full]], rs.links[rs.offsets[full + 1] - 1]
    assert np.array_equal(net.link_to[last], dests[full])
    cost = np.zeros(len(rs))
    if from_links:
        cost[full] += movement_cost(origins[full], first)
        empty = ok[n[ok] == 0]  # the current link ends at the destination
        assert np.array_equal(net.link_to[origins[empty]], dests[empty])
        assert np.all(rs.time_s[empty] == 0.0)
    else:
        assert np.array_equal(net.link_from[first], origins[full])
        assert np.all(n[ok] >= 1)
    inner = np.ones(len(rs.links), dtype=bool)
    inner[rs.offsets[1:][n > 0] - 1] = False  # the last link of each route starts no step
    steps = np.flatnonzero(inner)
    trip = np.repeat(np.arange(len(rs)), n)
    np.add.at(cost, trip[steps], movement_cost(rs.links[steps], rs.links[steps + 1]))
    np.add.at(cost, trip, router.link_time_s[rs.links])
    assert np.allclose(cost[ok], rs.time_s[ok], rtol=0, atol=1e-9)


def random_pairs(net: RoadNet, seed: int, n: int = N_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random node pairs, some repeated and some with origin == destination."""
    rng = np.random.default_rng(seed)
    o, d = rng.integers(0, net.n_nodes, (2, n))
    o[:30], d[:30] = o[30:60], d[30:60]  # repeated pairs
    d[60:80] = o[60:80]  # not routed
    return o, d


def congest_and_close(routers: list[Router], seed: int, share_closed: float = 0.02) -> None:
    """The same changed link times and closures on each router."""
    net = routers[0].net
    rng = np.random.default_rng(seed)
    times = net.link_length_m / net.link_speed_mps * rng.uniform(0.5, 4.0, net.n_links)
    closed = rng.choice(net.n_links, int(share_closed * net.n_links), replace=False)
    for router in routers:
        router.set_link_times(times)
        router.close_links(closed)


@pytest.mark.parametrize("name", SHIPPED)
def test_routes_are_the_references_on_shipped_maps(maps, name) -> None:
    net = maps[name]
    o, d = random_pairs(net, seed=11)
    router, ref = Router(net), ScipyRouter(net)
    got = router.routes(o, d)
    assert_same(got, ref.routes(o, d))
    assert_valid(router, got, o, d)
    assert np.array_equal(got.ok, o != d)  # one strongly connected network
    assert (router.cache_hits, router.cache_misses) == (ref.cache_hits, ref.cache_misses)


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("from_links", [False, True])
def test_origins_with_few_and_many_destinations_get_the_references_routes(
    maps, name, from_links
) -> None:
    # an origin with up to ASTAR_MAX_DESTS destinations gets an A* search per destination,
    # one with more a single Dijkstra search: both must give the reference's routes
    net = maps[name]
    rng = np.random.default_rng(17)
    n_origins = net.n_links if from_links else net.n_nodes
    sizes = [2, ASTAR_MAX_DESTS, ASTAR_MAX_DESTS + 1, 60]
    origins = np.repeat(rng.choice(n_origins, len(sizes), replace=False), sizes)
    dests = rng.integers(0, net.n_nodes, len(origins))
    router, ref = Router(net), ScipyRouter(net)
    congest_and_close([router, ref], seed=18, share_closed=0.0)
    if from_links:
        got, want = router.routes_from_links(origins, dests), ref.routes_from_links(origins, dests)
    else:
        got, want = router.routes(origins, dests), ref.routes(origins, dests)
    assert_same(got, want)
    assert_valid(router, got, origins, dests, from_links=from_links)


@pytest.mark.parametrize("name", SHIPPED)
def test_routes_with_closures_and_changed_times_are_the_references(maps, name) -> None:
    net = maps[name]
    o, d = random_pairs(net, seed=12)
    router, ref = Router(net), ScipyRouter(net)
    free = router.routes(o, d)
    # close links the free-flow routes use, and more at random
    used = np.unique(free.links)
    congest_and_close([router, ref], seed=13)
    on_routes = np.random.default_rng(14).choice(used, len(used) // 20, replace=False)
    for r in (router, ref):
        r.close_links(on_routes)
    got = router.routes(o, d)
    assert_same(got, ref.routes(o, d))
    assert_valid(router, got, o, d)
    assert not np.array_equal(got.links, free.links)


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("closures", [False, True])
def test_routes_from_links_are_the_references(maps, name, closures) -> None:
    net = maps[name]
    rng = np.random.default_rng(15)
    links = rng.integers(0, net.n_links, N_PAIRS)
    dests = rng.integers(0, net.n_nodes, N_PAIRS)
    dests[:40] = net.link_to[links[:40]]  # already on the last link: an empty continuation
    dests[40:60] = net.link_from[links[40:60]]  # back where it came from, no free U-turn
    router, ref = Router(net), ScipyRouter(net)
    if closures:
        congest_and_close([router, ref], seed=16)
        closed = router.closed_links[:20]
        links[60 : 60 + len(closed)] = closed  # vehicles on a link closed under them
    got = router.routes_from_links(links, dests)
    assert_same(got, ref.routes_from_links(links, dests))
    assert_valid(router, got, links, dests, from_links=True)
    assert got.ok[:40].all() and np.all(np.diff(got.offsets)[:40] == 0)


def kernel_args(router: Router, origins: np.ndarray, dests: np.ndarray) -> tuple:
    """route_trips' arguments for node pairs (grouped by origin here), without n_chunks."""
    net = router.net
    order = np.argsort(origins, kind="stable")
    o, d = origins[order], dests[order]
    uniq, first = np.unique(o, return_index=True)
    return (
        net.n_links + uniq,
        np.append(first, len(o)).astype(np.int64),
        d.astype(np.int64),
        router.kernel_graph(),
    )


def test_results_do_not_depend_on_threads_or_chunks(maps) -> None:
    net = maps["baltimore"]
    o, d = random_pairs(net, seed=17, n=1000)
    keep = o != d
    args = kernel_args(Router(net), o[keep], d[keep])
    first = route_trips(*args, 1)
    for n_chunks in (2, 5, 64):
        for a, b in zip(first, route_trips(*args, n_chunks), strict=True):
            assert np.array_equal(a, b)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = Router(net).routes(o, d)
    finally:
        numba.set_num_threads(threads)
    assert_same(Router(net).routes(o, d), one)


def test_ties_go_to_the_reference_and_are_equal_cost() -> None:
    """Without turn penalties a grid is full of equally fast routes meeting at one link with
    the same cost: the kernel flags them, the router takes the reference's, and the kernel's
    own choices were equally fast and valid."""
    net = grid_roadnet(6, 5, spacing_m=200.0)
    no_penalty = (0.0, 0.0, 0.0, 0.0)
    o, d = (a.ravel() for a in np.meshgrid(np.arange(net.n_nodes), np.arange(net.n_nodes)))
    keep = o != d
    o, d = o[keep], d[keep]
    router = Router(net, turn_penalty_s=no_penalty)
    offsets, links, time_s, tied = route_trips(*kernel_args(router, o, d), 4)
    assert tied.sum() > len(tied) // 4  # many trips meet a tie
    ref = ScipyRouter(net, turn_penalty_s=no_penalty).routes(o, d)
    assert_same(router.routes(o, d), ref)
    order = np.argsort(o, kind="stable")
    own = RouteSet(offsets, links, time_s, np.isfinite(time_s))
    assert_valid(router, own, o[order], d[order])
    assert np.array_equal(own.time_s, ref.time_s[order])  # equally fast, bit for bit
    differ = sum(
        not np.array_equal(own.route(i), ref.route(order[i])) for i in np.flatnonzero(tied)
    )
    assert differ > 0  # the heap did choose otherwise somewhere: the hand-over matters
    assert not any(
        not np.array_equal(own.route(i), ref.route(order[i])) for i in np.flatnonzero(~tied)
    )


def test_the_kernel_matches_its_python_version() -> None:
    """route_trips run as plain Python (prange as range; the helpers compiled) on a grid."""
    net = grid_roadnet(4, 3, spacing_m=150.0)
    o, d = (a.ravel() for a in np.meshgrid(np.arange(net.n_nodes), np.arange(net.n_nodes)))
    keep = o != d
    args = kernel_args(Router(net), o[keep], d[keep])
    for a, b in zip(route_trips(*args, 3), route_trips.py_func(*args, 3), strict=True):
        assert np.array_equal(a, b)


def test_cache_counts_and_invalidation_follow_the_reference(maps) -> None:
    net = maps["dortmund"]
    o, d = random_pairs(net, seed=18, n=500)
    router, ref = Router(net), ScipyRouter(net)

    def step(call: Callable[[Router], object]) -> None:
        out = [call(router), call(ref)]
        if isinstance(out[0], RouteSet):
            assert_same(*out)
        assert (router.cache_hits, router.cache_misses) == (ref.cache_hits, ref.cache_misses)

    step(lambda r: r.routes(o, d))
    step(lambda r: r.routes(o[::-1], d[::-1]))  # all hits
    step(lambda r: r.routes(o[:7], d[:7]))
    step(lambda r: r.clear_cache())
    step(lambda r: r.routes(o, d))
    step(lambda r: r.set_link_times(r.link_time_s * 1.5))
    step(lambda r: r.routes(o[:100], d[:100]))
    step(lambda r: r.close_links(np.unique(r.routes(o[:5], d[:5]).links)))
    step(lambda r: r.routes(o, d))
    step(lambda r: r.open_links(r.closed_links))
    step(lambda r: r.routes(d, o))
    step(lambda r: r.routes([], []))
    assert router.cache_hits > 0 and router.cache_misses > 0


def test_landmarks_stay_a_lower_bound_as_times_and_closures_change(maps) -> None:
    """Landmarks computed on a slowed graph with closures no longer bound it once links
    reopen or get faster: the router computes them again, and its routes stay the
    reference's (a stale, too-high bound would make A* miss faster routes)."""
    net = maps["dortmund"]
    o, d = random_pairs(net, seed=21, n=300)  # few origins: landmarks kept while valid
    router, ref = Router(net), ScipyRouter(net)
    free = net.link_length_m / net.link_speed_mps
    closed = np.random.default_rng(22).choice(net.n_links, net.n_links // 20, replace=False)
    for r in (router, ref):
        r.set_link_times(free * 3.0)
        r.close_links(closed)
    assert_same(router.routes(o, d), ref.routes(o, d))
    for r in (router, ref):
        r.open_links(closed)
    assert_same(router.routes(d, o), ref.routes(d, o))
    for r in (router, ref):
        r.set_link_times(free)
    assert_same(router.routes(o, d), ref.routes(o, d))
    for r in (router, ref):
        r.set_link_times(free * 2.0)  # dearer: the free-flow landmarks still bound it
    got = router.routes(o, d)
    assert_same(got, ref.routes(o, d))
    assert_valid(router, got, o, d)


@pytest.mark.parametrize("name", SHIPPED)
def test_landmark_tables_are_scipys_dijkstra(maps, name) -> None:
    """The landmarks' times from and to every vertex (the kernel's one_to_all_s, forward and
    on the reversed graph) are scipy's dijkstra's, bit for bit, with closures and new times."""
    net = maps[name]
    router = Router(net)
    congest_and_close([router], seed=23)
    weight, keep = router._edges()
    from_s, to_s = router._landmarks(weight, keep, exact=True)
    graph = router._scipy_graph(weight, keep)
    marks = router._landmark_vertices()
    assert len(marks) == N_LANDMARKS
    shrink = 1.0 - 1e-6
    want_from = dijkstra(graph, directed=True, indices=marks).T * shrink
    want_to = dijkstra(graph.T.tocsr(), directed=True, indices=marks).T * shrink
    np.testing.assert_array_equal(from_s, want_from)
    np.testing.assert_array_equal(to_s, want_to)
    assert np.isinf(from_s).any()  # closures cut some vertices off: inf, as scipy says


def test_the_a_star_bound_is_consistent_and_below_the_true_time(maps) -> None:
    """The bound A* adds (straight line and landmarks) at every vertex, towards a few goals:
    never above the true time to the goal (scipy, on the reversed graph), 0 at the goal's
    in-links, and consistent over every edge (h(u) <= w(u, v) + h(v))."""
    net = maps["baltimore"]
    router = Router(net)
    router.set_link_times(net.link_length_m / net.link_speed_mps * 1.7)  # above the marks'
    g = router.kernel_graph()
    assert g.from_landmark_s.shape == (len(g.indptr) - 1, N_LANDMARKS)
    tail = np.repeat(np.arange(len(g.indptr) - 1), np.diff(g.indptr))
    reverse = router._link_graph().T.tocsr()
    n_vertices = len(g.indptr) - 1
    for goal in np.random.default_rng(23).integers(0, net.n_nodes, 5):
        gfrom, gto = _goal_landmarks(goal, g, N_LANDMARKS)
        at = net.n_links + goal
        h = np.array(
            [
                _bound_s(j, g.vertex_x_s[at], g.vertex_y_s[at], gfrom, gto, g)
                for j in range(n_vertices)
            ]
        )
        ins = net.node_in_links[net.node_in_offsets[goal] : net.node_in_offsets[goal + 1]]
        true_s = dijkstra(reverse, indices=ins, min_only=True)
        assert np.all(h[ins] == 0.0)
        reach = np.isfinite(true_s)
        assert np.all(h[reach] <= true_s[reach])
        assert np.all(np.isinf(h[~reach]) | (h[~reach] >= 0))
        fin = np.isfinite(h[tail]) & np.isfinite(h[g.head])
        assert np.all(h[tail][fin] <= g.weight[fin] + h[g.head][fin] + 1e-9)
        # and not trivial: the landmarks are at free flow, so at best 1 / 1.7 of the time
        assert np.mean(h[reach] / np.maximum(true_s[reach], 1e-9)) > 0.4


def test_routes_from_links_rejects_bad_indices() -> None:
    router = Router(grid_roadnet(2, 2))
    with pytest.raises(ValueError, match="out of range"):
        router.routes_from_links([router.net.n_links], [0])
    with pytest.raises(ValueError, match="out of range"):
        router.routes_from_links([0], [-1])


@pytest.mark.slow
def test_routes_are_the_references_on_columbus(roadnet) -> None:
    """The largest shipped map (~35 s to build), where a few trips meet ties."""
    net = roadnet("columbus")
    o, d = random_pairs(net, seed=19, n=20_000)
    router = Router(net)
    got = router.routes(o, d)
    assert_same(got, ScipyRouter(net).routes(o, d))
    assert_valid(router, got, o, d)
    lk = np.random.default_rng(20).integers(0, net.n_links, 5000)
    assert_same(
        router.routes_from_links(lk, d[:5000]), ScipyRouter(net).routes_from_links(lk, d[:5000])
    )
