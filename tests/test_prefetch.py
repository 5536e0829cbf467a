"""Routes computed ahead in a second thread (twin.traffic.prefetch): the same run as with
every route computed up front, whatever the thread's timing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.rng import stream
from twin.traffic.demand import random_trips
from twin.traffic.prefetch import RoutePrefetch, block_bounds, can_prefetch
from twin.traffic.routing import Router
from twin.traffic.sim import TrafficSim

START_S = 7 * 3600.0

pytestmark = pytest.mark.skipif(
    not can_prefetch(), reason="Numba's threading layer runs one parallel kernel at a time"
)


def _demand(net, n_trips: int, seed: int = 5):
    return random_trips(
        net,
        rng=stream(seed, "demand"),
        start_s=START_S,
        end_s=START_S + 1800.0,
        n_trips=n_trips,
        profile="flat",
    )


def _run(net, trips, prefetch: bool, steps: int = 2400, block: int = 300, each=None, **kw):
    sim = TrafficSim(net, trips, seed=5, start_s=START_S, prefetch_routes=prefetch, **kw)
    while sim.step_no < steps:
        sim.advance(block)
        if each is not None:
            each(sim)
    return sim


def test_block_sizes_double_from_the_first_up_to_the_most():
    assert block_bounds(0) == [0]
    assert block_bounds(10, first=4, most=16) == [0, 4, 10]
    assert block_bounds(100, first=4, most=16) == [0, 4, 12, 28, 44, 60, 76, 92, 100]


def test_routes_computed_ahead_give_the_run_of_routes_computed_up_front(roadnet):
    """Baltimore, 3,000 trips over half an hour: the trip table, the link statistics and
    the first routes are the same either way, and the thread did route them."""
    net = roadnet("baltimore")
    trips = _demand(net, 3000)
    ahead, up_front = _run(net, trips, True), _run(net, trips, False)
    assert len(ahead._route_parts) > 5  # the thread's blocks, installed one by one
    assert len(up_front._route_parts) == 1
    pd.testing.assert_frame_equal(ahead.trip_table(), up_front.trip_table())
    for a, b in zip(ahead.stats, up_front.stats, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ahead.routes.offsets, up_front.routes.offsets)
    np.testing.assert_array_equal(ahead.routes.links, up_front.routes.links)
    np.testing.assert_array_equal(ahead.routable, up_front.routable)
    assert ahead.counts() == up_front.counts()


def test_departures_rerouted_on_live_times_and_closures_match_up_front(roadnet):
    """Routing at departure on current times (which replaces routes of trips not yet
    released) and a closure with detours mid-run: the same as with every route up front."""
    net = roadnet("baltimore")
    trips = _demand(net, 3000, seed=6)
    closed = np.flatnonzero(net.link_lanes >= 2)[:40]

    def live(sim):
        sim.route_departures(sim.t_s + 300.0)
        if sim.step_no == 900:
            sim.router.close_links(closed)
            sim.arrays.link_closed[closed] = True
            sim.detour(sim.routes_through(closed))

    ahead = _run(net, trips, True, each=live)
    up_front = _run(net, trips, False, each=live)
    assert ahead.routed_at_departure == up_front.routed_at_departure > 0
    pd.testing.assert_frame_equal(ahead.trip_table(), up_front.trip_table())


def test_routes_computed_ahead_reach_renumbered_vehicles(roadnet):
    """With the running fleet renumbered every 50 steps while routes are still coming in
    (running vehicles trade ids; the scheduled ones, which get the routes, keep theirs), the
    run is the same as with every route up front."""
    net = roadnet("baltimore")
    trips = _demand(net, 3000, seed=7)
    kw = {"renumber_every_steps": 50, "renumber_min_running": 10}
    ahead, up_front = _run(net, trips, True, **kw), _run(net, trips, False, **kw)
    assert ahead._renumbered and len(ahead._route_parts) > 5
    pd.testing.assert_frame_equal(ahead.trip_table(), up_front.trip_table())


def test_a_run_given_up_early_stops_the_thread(roadnet):
    net = roadnet("baltimore")
    sim = TrafficSim(net, _demand(net, 2000), seed=5, start_s=START_S)
    sim.advance(10)
    sim.close()
    assert not sim._prefetch._thread.is_alive()
    sim.advance(600)  # the blocks left are routed as they fall due
    table = sim.trip_table()
    assert table["route_length_m"].gt(0).all()
    up_front = TrafficSim(net, sim.trips, seed=5, start_s=START_S, prefetch_routes=False)
    up_front.advance(610)
    pd.testing.assert_frame_equal(table, up_front.trip_table())


def test_surely_routable_trips_have_routes(roadnet):
    """The check that sends trips to the thread never calls an unroutable trip routable,
    with closures too; and it knows most trips without a search."""
    for name in ("dortmund", "west-oakland"):
        net = roadnet(name)
        rng = np.random.default_rng(1)
        o = rng.integers(0, net.n_nodes, 4000)
        d = rng.integers(0, net.n_nodes, 4000)
        router = Router(net)
        router.close_links(rng.choice(net.n_links, net.n_links // 50, replace=False))
        sure = router.surely_routable(o, d)
        found = router.routes(o, d)
        assert found.ok[sure].all()
        assert sure.sum() >= 0.9 * found.ok.sum()


def test_an_error_in_the_thread_reaches_the_loop():
    def route(origins, dests):
        raise ValueError("boom")

    def route_here(origins, dests):
        raise AssertionError("the thread had started this block")

    o, d = np.zeros(100, dtype=np.int64), np.ones(100, dtype=np.int64)
    pf = RoutePrefetch(route, route_here, o, d, np.arange(100))
    pf._thread.join()
    with pytest.raises(RuntimeError, match="routing ahead") as info:
        pf.take(0)
    assert isinstance(info.value.__cause__, ValueError)


def test_blocks_are_shared_between_the_two_threads_and_taken_in_order():
    """Whoever routes a block, each is routed once and handed over once, in order."""
    calls = {"ahead": [], "here": []}

    def router(who):
        def route(origins, dests):
            calls[who].append(int(origins[0]))
            return origins * 10  # stands for a block's routes

        return route

    trips = np.arange(3000)
    pf = RoutePrefetch(router("ahead"), router("here"), trips, trips, trips)
    got = [pf.take(k) for k in range(pf.n_blocks)]
    np.testing.assert_array_equal(np.concatenate(got), trips * 10)
    starts = sorted(calls["ahead"] + calls["here"])
    assert starts == pf.bounds[:-1]


def test_a_stand_in_router_routes_everything_up_front(roadnet):
    """A router of the user's own (only ``routes``, as the kernel benchmark's) is asked for
    every route at the start, however many trips there are."""
    net = roadnet("baltimore")

    class Mine:
        def __init__(self) -> None:
            self.inner = Router(net)

        def routes(self, origins, dests):
            return self.inner.routes(origins, dests)

    trips = _demand(net, 1000)
    sim = TrafficSim(net, trips, seed=5, start_s=START_S, router=Mine())  # type: ignore[arg-type]
    assert sim._prefetch is None
    sim.advance(300)
    assert sim.counts().running > 0
