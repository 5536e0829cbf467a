"""Renumbering the running fleet in lane order (twin.traffic.renumber) changes no result."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from twin.network.road import RoadNet
from twin.traffic.demand import Trips
from twin.traffic.renumber import lane_order
from twin.traffic.sim import TrafficSim
from twin.traffic.state import RUNNING


def _trips(net: RoadNet, n: int, seed: int) -> Trips:
    """Random trips over 15 minutes; every fifth one chained after the one before it."""
    rng = np.random.default_rng(seed)
    o = rng.integers(0, net.n_nodes, n)
    d = rng.integers(0, net.n_nodes, n)
    ids = np.arange(n, dtype=np.int64)
    after = np.where((ids % 5 == 4), ids - 1, -1)
    return Trips(ids, o, d, np.sort(rng.uniform(0, 900, n)), after, np.full(n, 30.0))


def _run(net: RoadNet, trips: Trips, every: int) -> TrafficSim:
    sim = TrafficSim(
        net, trips, seed=7, start_s=0.0, renumber_every_steps=every, renumber_min_running=0
    )
    rng = np.random.default_rng(1)
    for _ in range(12):  # 20 minutes, re-routing a tenth of the running vehicles each 100 s
        sim.advance(100)
        sim.reroute(0.1, rng)
    sim.advance(300)
    return sim


@pytest.fixture(scope="module")
def baltimore(roadnet: Callable[[str], RoadNet]) -> RoadNet:
    return roadnet("baltimore")


def test_renumbered_runs_give_the_same_trips_and_link_figures(baltimore: RoadNet) -> None:
    trips = _trips(baltimore, 3000, seed=3)
    plain = _run(baltimore, trips, every=0)
    assert plain.counts().running > 100  # the fleet is busy when it is renumbered
    for every in (1, 37):
        sim = _run(baltimore, trips, every=every)
        assert not np.array_equal(sim.fleet.trip, np.arange(len(trips)))  # it did renumber
        pd.testing.assert_frame_equal(sim.trip_table(), plain.trip_table())
        for a, b in zip(sim.stats, plain.stats, strict=True):
            np.testing.assert_array_equal(a, b)
        assert sim.counts() == plain.counts() and sim.rerouted == plain.rerouted
        # vehicle_of_trip and Fleet.trip are inverse permutations
        np.testing.assert_array_equal(sim.fleet.trip[sim.vehicle_of_trip], np.arange(len(trips)))


def test_after_a_renumbering_the_lanes_are_visited_in_id_order(baltimore: RoadNet) -> None:
    sim = TrafficSim(baltimore, _trips(baltimore, 3000, seed=4), seed=1, start_s=0.0,
                     renumber_every_steps=0)  # fmt: skip
    sim.advance(600)
    fl = sim.fleet
    n_run = int(fl.run_count[0])
    visit = np.empty(n_run, dtype=np.int32)
    assert lane_order(fl.lane_head, fl.behind, visit) == n_run
    assert np.any(np.diff(visit) < 0)  # numbered by trip: visited out of order
    running_before = set(np.flatnonzero(fl.state == RUNNING))
    sim.renumber()
    lane_order(fl.lane_head, fl.behind, visit)
    assert np.all(np.diff(visit) > 0)
    assert set(np.flatnonzero(fl.state == RUNNING)) == running_before  # the same ids reused
    # lists stay consistent: each vehicle's neighbours point back at it
    running = fl.run_list[:n_run]
    assert np.array_equal(np.sort(running), np.sort(visit))
    assert np.all(fl.run_pos[running] == np.arange(n_run))
    has_ahead = fl.ahead[running] >= 0
    assert np.all(fl.behind[fl.ahead[running][has_ahead]] == running[has_ahead])


def test_a_city_run_is_the_same_renumbered_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """Households' EVs and home arrivals read the fleet by trip: a model run renumbered at
    every step gives the same KPIs and tables as one never renumbered."""
    from pathlib import Path

    import twin.traffic.sim as sim_module
    from twin.model import CityModel
    from twin.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / "baltimore-evening-ev.toml").with_overrides(
        {"time.start": "17:00", "time.duration": "30min", "demand.demand_scale": 0.3}
    )
    results = []
    for every in (0, 1):
        monkeypatch.setattr(sim_module, "RENUMBER_EVERY_STEPS", every)
        monkeypatch.setattr(sim_module, "RENUMBER_MIN_RUNNING", 0)
        results.append(CityModel(sc).run(progress=False))
    plain, renumbered = results
    assert plain.kpi("energy.evs") > 0 and plain.kpi("population.home_arrivals") > 0
    skip = ("wall_s",)
    a = {k: v for k, v in plain.kpi_dict().items() if not k.endswith(skip)}
    b = {k: v for k, v in renumbered.kpi_dict().items() if not k.endswith(skip)}
    assert a == b
    for name in ("trips", "home_arrivals", "evs"):
        pd.testing.assert_frame_equal(plain.tables[name], renumbered.tables[name])


def test_the_waiting_queue_keeps_the_fleets_first_links_and_leaders(baltimore: RoadNet) -> None:
    # the insert pass reads each waiting vehicle's first link and leader from copies in the
    # queue: they must follow new routes (a detour) and renumbered leaders
    trips = _trips(baltimore, 6000, seed=5)
    sim = TrafficSim(
        baltimore, trips, seed=2, start_s=0.0, renumber_every_steps=37, renumber_min_running=0
    )
    rng = np.random.default_rng(6)
    detoured = 0
    for _ in range(8):
        sim.advance(60)
        wq, n, fl = sim._wait, sim._n_waiting, sim.fleet
        waiting = wq.vehicle[:n]
        # make the first links of half the waiting vehicles slow, and route those again
        chosen = waiting[rng.random(n) < 0.5]
        times = sim.router.link_time_s.copy()
        times[fl.route_links[fl.route_start[chosen]]] *= 50.0
        sim.router.set_link_times(times)
        detoured += sim.detour(chosen)[0]
        fl = sim.fleet  # a grown route store replaces the fleet's arrays
        np.testing.assert_array_equal(wq.first_link[:n], fl.route_links[fl.route_start[waiting]])
        np.testing.assert_array_equal(wq.after[:n], fl.after[waiting])
    assert detoured > 100 and sim.counts().held > 0  # it was tested on detours and leaders
