"""Traffic engine: analytic checks of the physics, conservation, determinism, a reference step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.network.synthetic import corridor_roadnet, grid_roadnet, t_junction_roadnet
from twin.rng import stream
from twin.traffic import kernel
from twin.traffic.demand import Trips, random_trips
from twin.traffic.lanes import lane_append, lane_remove
from twin.traffic.signals import SignalPlans, webster_plans
from twin.traffic.sim import TrafficSim
from twin.traffic.state import ARRIVED, GREEN, RED, RUNNING, YELLOW, Params

SPEED_MPS = 13.89


def trips(origins, dests, departs) -> Trips:
    n = len(departs)
    return Trips(
        trip_id=np.arange(n),
        origin_node=np.asarray(origins, dtype=np.int32),
        dest_node=np.asarray(dests, dtype=np.int32),
        depart_s=np.asarray(departs, dtype=float),
    )


def red_then_green(red_s: float, green_s: float) -> SignalPlans:
    """A plan for a corridor's one signal: its movement red for ``red_s``, then green.

    Two phases: phase 0 serves the corridor, phase 1 serves nothing (the red); the plan
    starts in phase 1, so the corridor sees red, yellow, all-red of phase 1, then green.
    """
    return SignalPlans(
        phase_offsets=np.array([0, 2]),
        phase_mov_offsets=np.array([0, 1, 1]),
        phase_movs=np.array([0], dtype=np.int32),
        green_s=np.array([green_s, red_s]),
        yellow_s=3.0,
        all_red_s=2.0,
        cycle_s=np.array([red_s + green_s + 10.0]),
        offset_s=np.zeros(1),
        phase=np.array([1], dtype=np.int32),
        stage=np.zeros(1, dtype=np.int8),
        left_s=np.array([red_s]),
    )


def movement_from(net, link: int) -> int:
    return int(net.link_mov_offsets[link])


# -- analytic checks ---------------------------------------------------------------------------


def test_free_flow_travel_time_is_length_over_speed():
    net = corridor_roadnet([1500.0, 1500.0, 2000.0], speed_mps=SPEED_MPS)
    sim = TrafficSim(
        net, trips([0], [3], [0.0]), seed=1, start_s=0.0, params=Params(sigma=0.0, speed_dev=0.0)
    )
    sim.run_until(1000.0)
    table = sim.trip_table()
    assert table["status"][0] == "arrived"
    expected_s = 5000.0 / SPEED_MPS
    assert abs(table["duration_s"][0] - expected_s) / expected_s < 0.02
    assert table["route_length_m"][0] == 5000.0
    assert table["stops"][0] == 0 and table["wait_s"][0] == 0.0


def test_dawdling_slows_a_lone_vehicle_like_sumo():
    """With sigma = 0.5 the mean speed drops by about sigma * accel * dt / 2 (SUMO's Krauss)."""
    net = corridor_roadnet([5000.0], speed_mps=SPEED_MPS)
    params = Params(speed_dev=0.0)  # everyone at the speed limit (no speed factors)
    sim = TrafficSim(net, trips([0], [1], [0.0]), seed=3, start_s=0.0, params=params)
    sim.run_until(1000.0)
    mean_speed = 5000.0 / sim.trip_table()["duration_s"][0]
    assert SPEED_MPS - 1.0 < mean_speed < SPEED_MPS - 0.3


def discharge_headways(sim: TrafficSim, net, t_green: float, t_end: float) -> np.ndarray:
    """Times at which vehicles cross the stop line (leave link 0) after the green."""
    crossed, prev = [], sim.fleet.route_idx.copy()
    while sim.t_s < t_end:
        sim.step()
        now = sim.fleet.route_idx
        crossed += [sim.t_s] * int(((now > 0) & (prev == 0)).sum())
        prev = now.copy()
    return np.asarray([t for t in crossed if t > t_green])


def test_saturation_flow_at_a_green_signal():
    """A long queue discharging at green: 1,700-2,000 veh/h of green (HCM base 1,900).
    Measured: ~1,940 veh/h (sigma 0.5); `pytest -s -k saturation_flow` prints it."""
    net = corridor_roadnet([3000.0, 1000.0], speed_mps=SPEED_MPS, signal_nodes=(1,))
    n = 120
    params = Params(teleport=False)
    sim = TrafficSim(
        net,
        trips([0] * n, [2] * n, np.arange(n) * 2.0),
        seed=1,
        start_s=0.0,
        params=params,
        plans=red_then_green(red_s=600.0, green_s=1e6),
    )
    sim.run_until(600.0)
    halted = (sim.fleet.state == RUNNING) & (sim.fleet.speed_mps < 0.1)
    assert halted.sum() >= 100  # a long standing queue at the red
    t_green = 605.0  # red, yellow 3 s, all-red 2 s of the empty phase, then green
    cross = discharge_headways(sim, net, t_green, 1000.0)
    assert len(cross) == n
    saturation_vph = 3600.0 / np.diff(cross[4:]).mean()  # HCM: skip the first four
    print("saturation flow, veh/h of green:", round(saturation_vph))
    assert 1700.0 <= saturation_vph <= 2000.0, saturation_vph


def test_spill_back_blocks_the_upstream_junction_then_clears():
    # link 0 (long) -> link 1 (short, holds ~8 cars) -> link 2; signal at node 2 (end of link 1)
    net = corridor_roadnet([2000.0, 60.0, 1000.0], speed_mps=SPEED_MPS, signal_nodes=(2,))
    n = 40
    plans = red_then_green(red_s=400.0, green_s=1e6)
    plans.phase_movs[0] = movement_from(net, 1)
    sim = TrafficSim(
        net,
        trips([0] * n, [3] * n, np.arange(n) * 3.0),
        seed=2,
        start_s=0.0,
        params=Params(teleport=False),
        plans=plans,
    )
    sim.run_until(400.0)
    fl = sim.fleet
    on_short = (fl.link == 1) & (fl.state == RUNNING)
    assert 7 <= on_short.sum() <= 9  # the short link is full: 60 m / 7.5 m per car
    assert (fl.link[fl.state == RUNNING] != 2).all()  # nobody passed the red
    # link 1 is full, so the head of link 0 stands at the (unsignalised) junction 1
    heads = [fl.lane_head[s] for s in range(net.link_lanes[0])]
    head = max(heads, key=lambda v: fl.pos_m[v] if v >= 0 else -1)
    assert fl.pos_m[head] > 2000.0 - 10.0 and fl.speed_mps[head] < 0.1
    sim.run_until(2000.0)
    assert (fl.state == ARRIVED).all()


def test_gridlocked_vehicles_are_teleported_and_counted():
    net = corridor_roadnet([500.0, 500.0], speed_mps=SPEED_MPS, signal_nodes=(1,))
    sim = TrafficSim(
        net,
        trips([0, 0], [2, 2], [0.0, 5.0]),
        seed=1,
        start_s=0.0,
        params=Params(stuck_limit_s=60.0),
        plans=red_then_green(1e6, 10.0),
    )
    sim.run_until(400.0)
    table = sim.trip_table()
    assert (table["teleports"] >= 1).all()
    assert (table["status"] == "arrived").all()
    assert sim.counts().teleported == 2


def test_a_closed_link_is_never_entered():
    net = corridor_roadnet([500.0, 500.0], speed_mps=SPEED_MPS)
    sim = TrafficSim(
        net, trips([0], [2], [0.0]), seed=1, start_s=0.0, params=Params(teleport=False)
    )
    sim.arrays.link_closed[1] = True
    sim.run_until(300.0)
    fl = sim.fleet
    assert fl.link[0] == 0 and fl.state[0] == RUNNING
    assert fl.pos_m[0] <= 500.0 and fl.speed_mps[0] < 0.1


# -- signals -----------------------------------------------------------------------------------


def test_webster_plans_alternate_green_yellow_red_without_conflicts():
    net = grid_roadnet(4, 4, spacing_m=150.0, lanes=1)
    plans = webster_plans(net, stream(0, "signal-offsets"))
    assert (plans.cycle_s >= 40.0).all() and (plans.cycle_s <= 140.0).all()
    assert (plans.green_s >= 7.0).all()
    sim = TrafficSim(net, trips([0], [15], [1e9]), seed=0, start_s=0.0, plans=plans)
    greens_seen = np.zeros(net.n_phases, dtype=int)
    for _ in range(200):
        sim.step()
        state = sim.arrays.mov_state
        for s in range(net.n_signals):
            live = []
            for ph in range(net.signal_phase_offsets[s], net.signal_phase_offsets[s + 1]):
                movs = net.phase_movs[net.phase_mov_offsets[ph] : net.phase_mov_offsets[ph + 1]]
                states = set(state[movs].tolist())
                assert len(states) == 1  # a phase switches as one
                if states & {GREEN, YELLOW}:
                    live.append(ph)
                greens_seen[ph] += GREEN in states
            assert len(live) <= 1  # never two phases of one signal at once
    assert (greens_seen > 0).all()  # every phase got its green within 200 s
    assert RED in set(sim.arrays.mov_state.tolist())


# -- conservation and determinism on a real map ------------------------------------------------


@pytest.fixture(scope="module")
def baltimore_run(roadnet):
    net = roadnet("baltimore")
    demand = random_trips(
        net, rng=stream(7, "demand"), start_s=0.0, end_s=900.0, trips_per_hour=4000.0
    )
    sim = TrafficSim(net, demand, seed=7, start_s=0.0)
    snapshots, bins = [], []
    for _ in range(12):
        sim.advance(100)
        snapshots.append(check_invariants(sim))
        bins.append(sim.flush_link_bin())
    return sim, snapshots, bins


def check_invariants(sim: TrafficSim) -> dict:
    fl, net, p = sim.fleet, sim.net, sim.params
    c = sim.counts()
    running = np.flatnonzero(fl.state == RUNNING)
    # per link: vehicles that entered minus those that left (or were teleported away) since
    # the last check are the change in vehicles on it (a flush_link_bin empties the counters:
    # callers flush right after a check, never between)
    s = sim.stats
    on_link = np.bincount(fl.link[running], minlength=net.n_links)
    counters = (s.entries.copy(), s.exits.copy(), s.removed.copy())
    prev = getattr(sim, "_test_prev", None)
    if prev is None:
        prev = (np.zeros(net.n_links, dtype=np.int64), *(np.zeros_like(a) for a in counters), 0.0)
    on0, e0, x0, r0, bin0 = prev
    if sim._bin_start_s != bin0:  # flushed right after the last check
        e0, x0, r0 = (np.zeros_like(a) for a in counters)
    entered, left, removed = (a - b for a, b in zip(counters, (e0, x0, r0), strict=True))
    assert np.array_equal(on0 + entered - left - removed, on_link)
    sim._test_prev = (on_link, *counters, sim._bin_start_s)
    assert (fl.speed_mps[running] >= 0).all()
    assert (fl.pos_m[running] >= 0).all()
    assert (fl.pos_m[running] <= net.link_length_m[fl.link[running]] + 1e-9).all()
    lead = fl.ahead[running]
    has = lead >= 0
    gaps = fl.pos_m[lead[has]] - p.length_m - fl.pos_m[running[has]]
    assert (gaps >= -1e-9).all()  # no two vehicles on a lane overlap
    assert (fl.link[lead[has]] == fl.link[running[has]]).all()
    assert int(fl.run_count[0]) == len(running)
    on_lanes = sum(1 for s in range(len(fl.lane_head)) for _ in lane_walk(fl, s))
    assert on_lanes == len(running)
    return {"running": c.running, "arrived": c.arrived, "waiting": c.waiting}


def lane_walk(fl, slot):
    v = fl.lane_head[slot]
    while v >= 0:
        yield v
        v = fl.behind[v]


def test_link_max_queue_is_never_below_its_mean_queue(baltimore_run):
    """max_queue_veh counts a link's halted vehicles over all its lanes at once."""
    _, _, bins = baltimore_run
    table = pd.concat(bins)
    multi = table[table["max_queue_veh"] > 0]
    assert len(multi) > 50
    assert (table["max_queue_veh"] + 1e-9 >= table["mean_queue_veh"]).all()


def test_conservation_on_baltimore(baltimore_run):
    sim, snapshots, _ = baltimore_run
    assert snapshots[-1]["arrived"] > 0 and max(s["running"] for s in snapshots) > 100
    table = sim.trip_table()
    done = table[table["status"] == "arrived"]
    # every completed trip drove its whole route (inserted one car length into the first link)
    assert np.allclose(done["dist_m"], done["route_length_m"] - 5.0, atol=1e-6)
    assert (done["duration_s"] > 0).all() and (done["time_loss_s"] >= 0).all()


def test_same_seed_same_trips_and_results(roadnet):
    net = roadnet("aguascalientes")

    def run(seed):
        demand = random_trips(
            net, rng=stream(seed, "demand"), start_s=0.0, end_s=600.0, trips_per_hour=3000.0
        )
        sim = TrafficSim(net, demand, seed=seed, start_s=0.0)
        sim.run_until(900.0)
        return sim.trip_table()

    a, b, c = run(5), run(5), run(6)
    assert a.equals(b)
    assert not a["duration_s"].equals(c["duration_s"])


# -- the kernel against a plain-Python reference -----------------------------------------------


def reference_plan(pos, speed, lane, link_len, v_max, p: Params, seed, step, dt, stop_line):
    """Krauss as written in SUMO's documentation, one lane at a time by sorting positions."""
    v_next = np.zeros_like(speed)
    for ln in np.unique(lane):
        idx = np.flatnonzero(lane == ln)
        idx = idx[np.argsort(-pos[idx])]  # front first
        for k, v in enumerate(idx):
            if k > 0:
                lead = idx[k - 1]
                gap = pos[lead] - p.length_m - p.min_gap_m - pos[v]
                vl = speed[lead]
            else:
                gap = (link_len - pos[v]) if stop_line else np.inf
                vl = 0.0
            v_safe = (
                0.0
                if gap <= 0
                else (
                    np.inf
                    if not np.isfinite(gap)
                    else -p.decel_mps2 * p.tau_s
                    + np.sqrt((p.decel_mps2 * p.tau_s) ** 2 + vl**2 + 2 * p.decel_mps2 * gap)
                )
            )
            v_top = v_max[v] if np.ndim(v_max) else v_max  # per vehicle: limit x speed factor
            v_des = min(speed[v] + p.accel_mps2 * dt, v_top, v_safe)
            with np.errstate(over="ignore"):  # the hash wraps around 2**64 on purpose
                r = kernel.uniform01.py_func(seed, v, step)
            if v_des < p.accel_mps2 * dt:
                v_des -= p.sigma * v_des * r
            else:
                v_des -= p.sigma * p.accel_mps2 * dt * r
            v_next[v] = max(0.0, v_des)
    return v_next


@pytest.mark.parametrize("case", range(5))
def test_kernel_step_matches_reference_on_random_states(case):
    rng = np.random.default_rng(case)
    length_m = 2000.0
    net = corridor_roadnet([length_m, 500.0], lanes=3, speed_mps=SPEED_MPS, signal_nodes=(1,))
    n = 90
    sim = TrafficSim(
        net,
        trips([0] * n, [2] * n, np.zeros(n)),
        seed=case,
        start_s=0.0,
        params=Params(teleport=False),
        plans=red_then_green(1e6, 10.0),
    )
    fl, p = sim.fleet, sim.params
    # a random state: 30 vehicles per lane, spaced at least one car length apart
    order = np.argsort(rng.random(n))
    lanes = order % 3
    for ln in range(3):
        members = np.flatnonzero(lanes == ln)
        gaps = p.length_m + rng.exponential(25.0, len(members))
        positions = length_m - 1.0 - np.cumsum(gaps)[::-1] + gaps[-1]
        positions = np.clip(positions, 5.0, length_m)
        for v, x in zip(members[np.argsort(-positions)], np.sort(positions)[::-1], strict=True):
            kernel.lane_append(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v, ln)
            kernel.running_add(fl.run_list, fl.run_pos, fl.run_count, v)
            fl.state[v] = RUNNING
            fl.link[v] = 0
            fl.pos_m[v] = x
            fl.speed_mps[v] = rng.uniform(0.0, SPEED_MPS)
    fl.depart_s[:] = 0.0
    sim._next_due = len(sim._order)
    pos0, speed0, lane0 = fl.pos_m.copy(), fl.speed_mps.copy(), fl.lane.copy()
    step_no = sim.step_no
    sim.step()
    expected_v = reference_plan(
        pos0,
        speed0,
        lane0,
        length_m,
        SPEED_MPS * fl.speed_factor,
        p,
        sim._seed,
        step_no,
        1.0,
        stop_line=True,
    )
    # Euler update, never overlapping the vehicle ahead (its new position)
    expected_x = np.empty(n)
    for ln in range(3):
        idx = np.flatnonzero(lane0 == ln)
        idx = idx[np.argsort(-pos0[idx])]
        for k, v in enumerate(idx):
            x = pos0[v] + expected_v[v]
            if k > 0:
                x = min(x, expected_x[idx[k - 1]] - p.length_m)
            expected_x[v] = max(min(x, length_m), pos0[v])
    assert np.allclose(fl.pos_m, expected_x, rtol=0, atol=1e-9)
    moved = np.minimum(expected_v, expected_x - pos0)
    assert np.allclose(fl.speed_mps, moved, rtol=0, atol=1e-9)


def test_minor_road_gives_way_to_the_major_stream():
    net = t_junction_roadnet()
    west, east, south = 0, 2, 3
    n_major, n_minor = 150, 10
    major = trips([west] * n_major, [east] * n_major, np.arange(n_major) * 3.0)
    minor_departs = 100.0 + np.arange(n_minor) * 10.0

    def minor_delays(with_major: bool):
        demand = trips([south] * n_minor, [east] * n_minor, minor_departs)
        if with_major:
            demand = Trips(
                trip_id=np.arange(n_major + n_minor),
                origin_node=np.concatenate([major.origin_node, demand.origin_node]),
                dest_node=np.concatenate([major.dest_node, demand.dest_node]),
                depart_s=np.concatenate([major.depart_s, demand.depart_s]),
            )
        sim = TrafficSim(net, demand, seed=4, start_s=0.0, params=Params(teleport=False))
        sim.run_until(2000.0)
        table = sim.trip_table()
        assert (table["status"] == "arrived").all()
        is_minor = table["origin_node"] == south
        return table[is_minor]["wait_s"].to_numpy(), table[~is_minor]["wait_s"].to_numpy()

    alone, _ = minor_delays(with_major=False)
    yielding, major_waits = minor_delays(with_major=True)
    assert alone.max() == 0.0  # an empty major road: the minor road flows freely
    assert yielding.mean() > 5.0  # with a major stream every 3 s, minor vehicles wait for gaps
    assert major_waits.max() == 0.0  # the major road never waits for the minor one


def test_rerouting_moves_vehicles_off_a_jammed_route(roadnet):
    """Block a busy link: with re-routing, vehicles find other ways and more trips finish."""
    net = roadnet("aguascalientes")
    demand = random_trips(
        net, rng=stream(3, "demand"), start_s=0.0, end_s=900.0, trips_per_hour=3000.0
    )

    def run(reroute: bool) -> TrafficSim:
        sim = TrafficSim(net, demand, seed=3, start_s=0.0, params=Params(teleport=False))
        used = np.bincount(sim.routes.links, minlength=net.n_links)
        sim.arrays.link_closed[np.argsort(used)[-3:]] = True  # the three busiest links
        rng = stream(3, "reroute")
        for _ in range(18):
            sim.advance(100)
            if reroute:
                sim.reroute(0.5, rng)
        return sim

    stuck, rerouted = run(False), run(True)
    assert rerouted.rerouted > 0
    assert rerouted.counts().arrived > stuck.counts().arrived
    fl = rerouted.fleet
    for v in np.flatnonzero(fl.state == ARRIVED):  # every driven route is a chain of movements
        links = fl.route_links[fl.route_start[v] : fl.route_end[v]]
        assert (net.link_to[links[:-1]] == net.link_from[links[1:]]).all()
    done = rerouted.trip_table().query("status == 'arrived'")
    assert np.allclose(done["dist_m"], done["route_length_m"] - 5.0, atol=1e-6)


def test_recent_link_times_follow_littles_law():
    """The routing times: vehicle-seconds on a link over the vehicles that left it since the
    last call, across a flushed statistics bin; checked against the trips' own durations."""
    net = corridor_roadnet([500.0, 500.0], speed_mps=SPEED_MPS, signal_nodes=(1,))
    n = 10
    sim = TrafficSim(
        net, trips([0] * n, [2] * n, np.arange(n) * 2.0), seed=3, start_s=0.0,
        params=Params(teleport=False), plans=red_then_green(red_s=60.0, green_s=1e6),
    )  # fmt: skip
    free_s = net.link_length_m / net.link_speed_mps
    sim.run_until(30.0)
    first = sim.link_times_s().copy()
    assert first[1] == free_s[1]  # nobody on it yet: free flow
    # none has left link 0: the time is the vehicle-seconds on it since each entered
    entered = sim.fleet.depart_s[np.isfinite(sim.fleet.depart_s)]
    assert len(entered) >= 5 and abs(first[0] - (30.0 - entered).sum()) <= len(entered)
    assert sim.link_times_s() is sim.link_times_s()  # the same step: the same times
    sim.run_until(200.0)
    sim.flush_link_bin()
    sim.run_until(400.0)
    table = sim.trip_table()
    assert (table["status"] == "arrived").all()
    later = sim.link_times_s()
    # every vehicle left both links in the second window: Little's law over the whole run
    total_s = (table["arrive_s"] - table["depart_s"]).sum()
    assert abs(first[0] + n * (later[0] + later[1]) - total_s) <= n * 1.0  # arrival step
    assert later[1] < free_s[1] + 5.0  # the second link flowed freely
    on_first_s = (first[0] + n * later[0]) / n  # the mean time on link 0, both windows
    assert free_s[0] + 10.0 < on_first_s < free_s[0] + 65.0  # the red's wait, averaged


def test_trips_set_out_on_the_route_that_is_fastest_when_they_leave():
    """A queue stands on the short way (0-1-2) of a 3x2 grid; trips due in the next window
    take the long way round (0-3-4-5-2), trips due later keep their free-flow route."""
    net = grid_roadnet(3, 2, signals=False)
    first = int(np.flatnonzero((net.link_from == 0) & (net.link_to == 1))[0])
    blocked = int(np.flatnonzero((net.link_from == 1) & (net.link_to == 2))[0])
    departs = np.concatenate([np.arange(10) * 3.0, 200.0 + np.arange(10) * 10.0, [900.0]])
    n = len(departs)
    # and one trip along the free top row (3-4-5), due in the window: its route is as fast
    # as at free flow, so it keeps it
    demand = trips([0] * n + [3], [2] * n + [5], np.append(departs, 250.0))

    def run(at_departure: bool) -> TrafficSim:
        sim = TrafficSim(net, demand, seed=2, start_s=0.0, params=Params(teleport=False))
        sim.arrays.link_closed[blocked] = True  # a queue the router does not know of
        sim.advance(150)
        if at_departure:
            assert sim.route_departures(until_s=450.0) == 10  # the ten due 200-290 s
        sim.advance(350)
        return sim

    stuck, routed = run(False), run(True)
    fl = routed.fleet
    origin = routed.trips.origin_node[fl.trip]  # per vehicle (the trip table is by departure)
    depart = routed.trips.depart_s[fl.trip]
    for v in range(n + 1):
        links = fl.route_links[fl.route_start[v] : fl.route_end[v]]
        assert (net.link_to[links[:-1]] == net.link_from[links[1:]]).all()
        if origin[v] == 3:
            assert list(net.link_to[links]) == [4, 5]
        else:  # the first wave (already out) and the 900 s trip (not due yet) keep the short way
            assert (first in links) == (depart[v] < 100 or depart[v] > 450), v
    assert routed.routed_at_departure == 10 and stuck.routed_at_departure == 0
    later = (depart >= 200) & (depart < 450)
    assert (fl.state[later] == ARRIVED).all()  # 800 m at most ~60 s: all in by 500 s
    assert not (stuck.fleet.state == ARRIVED)[origin == 0].any()


def test_gridlock_is_counted_even_without_teleporting():
    net = corridor_roadnet([500.0, 500.0], speed_mps=SPEED_MPS, signal_nodes=(1,))
    sim = TrafficSim(
        net,
        trips([0, 0], [2, 2], [0.0, 5.0]),
        seed=1,
        start_s=0.0,
        params=Params(stuck_limit_s=60.0, teleport=False),
        plans=red_then_green(1e6, 10.0),
    )
    sim.run_until(400.0)
    c = sim.counts()
    assert c.gridlocked == 2 and c.teleported == 0 and c.running == 2
    assert sim.network_kpis()["vehicles_gridlocked"] == 2


# -- trip chaining -----------------------------------------------------------------------------


def chained(origins, dests, departs, after, dwell=None) -> Trips:
    """Trips numbered 0..n-1 in the order given; ``after`` holds trip ids (-1 none)."""
    return Trips(
        np.arange(len(departs)), origins, dests, departs, after_trip_id=after, min_dwell_s=dwell
    )


def by_id(sim: TrafficSim):
    return sim.trip_table().set_index("trip_id")


@pytest.mark.parametrize("dwell_s", [0.0, 30.0, 12.5])
def test_return_trip_waits_for_the_outbound_arrival_plus_dwell(dwell_s):
    """Home (node 0) -> work (node 2) -> home on a two-way road: the return is planned to
    leave long before the outbound can arrive, so it leaves exactly at arrival + dwell
    (rounded up to the next step when that falls between steps)."""
    net = grid_roadnet(3, 1, spacing_m=1000.0, signals=False)
    sim = TrafficSim(
        net, chained([0, 2], [2, 0], [0.0, 10.0], [-1, 0], [0.0, dwell_s]), seed=1, start_s=0.0
    )
    sim.run_until(100.0)  # the outbound is on its way, the return is due but held
    c = sim.counts()
    assert (c.running, c.waiting, c.held) == (1, 1, 1)
    kpis = sim.network_kpis()
    assert kpis["vehicles_waiting"] == 1 and kpis["vehicles_held"] == 1
    assert np.isnan(sim.fleet.depart_s[1])
    sim.run_until(600.0)
    t = by_id(sim)
    assert (t["status"] == "arrived").all()
    release_s = t.loc[0, "arrive_s"] + dwell_s
    assert t.loc[1, "depart_s"] == np.ceil(release_s)  # 1 s steps from t = 0
    assert t.loc[1, "depart_delay_s"] == np.ceil(release_s) - 10.0
    assert t.loc[1, "after_trip_id"] == 0 and t.loc[0, "after_trip_id"] == -1
    assert t.loc[1, "duration_s"] > 100.0  # it drove the whole way back
    assert sim.counts().held == 0


def test_a_return_planned_after_the_arrival_leaves_on_time():
    net = grid_roadnet(3, 1, spacing_m=1000.0, signals=False)
    sim = TrafficSim(
        net, chained([0, 2], [2, 0], [0.0, 400.0], [-1, 0], [0.0, 60.0]), seed=1, start_s=0.0
    )
    sim.run_until(900.0)
    t = by_id(sim)
    assert t.loc[0, "arrive_s"] + 60.0 < 400.0
    assert t.loc[1, "depart_s"] == 400.0 and t.loc[1, "depart_delay_s"] == 0.0


def test_a_three_leg_tour_departs_leg_after_leg():
    """home 0 -> work 2 -> shop 1 -> home 0, all planned at t = 0: each leg waits for the
    one before it; an unchained trip planned at the same time is not held."""
    net = grid_roadnet(3, 1, spacing_m=800.0, signals=False)
    sim = TrafficSim(
        net,
        chained([0, 2, 1, 1], [2, 1, 0, 2], [0.0] * 4, [-1, 0, 1, -1], [0.0, 5.0, 7.0, 0.0]),
        seed=4,
        start_s=0.0,
    )
    sim.run_until(1000.0)
    t = by_id(sim)
    assert (t["status"] == "arrived").all()
    assert t.loc[1, "depart_s"] == t.loc[0, "arrive_s"] + 5.0
    assert t.loc[2, "depart_s"] == t.loc[1, "arrive_s"] + 7.0
    assert t.loc[3, "depart_s"] == 0.0


def test_a_chain_whose_previous_leg_has_no_route_departs_on_time():
    # a one-way corridor: node 2 -> node 0 has no route, so that trip never runs
    net = corridor_roadnet([500.0, 500.0], speed_mps=SPEED_MPS)
    sim = TrafficSim(
        net, chained([2, 0], [0, 2], [0.0, 5.0], [-1, 0], [0.0, 30.0]), seed=1, start_s=0.0
    )
    assert sim.counts().unroutable == 1
    sim.run_until(200.0)
    t = by_id(sim)
    assert t.loc[0, "status"] == "unroutable" and t.loc[1, "status"] == "arrived"
    assert t.loc[1, "depart_s"] == 5.0 and t.loc[1, "depart_delay_s"] == 0.0


def test_a_teleported_arrival_releases_the_next_leg():
    """The outbound is stuck behind a red that never ends and is teleported to its end: that
    counts as its arrival."""
    net = corridor_roadnet([500.0, 500.0], speed_mps=SPEED_MPS, signal_nodes=(1,))
    sim = TrafficSim(
        net,
        chained([0, 0], [2, 2], [0.0, 5.0], [-1, 0], [0.0, 10.0]),
        seed=1,
        start_s=0.0,
        params=Params(stuck_limit_s=60.0),
        plans=red_then_green(1e6, 10.0),
    )
    sim.run_until(600.0)
    t = by_id(sim)
    assert t.loc[0, "teleports"] >= 1 and t.loc[0, "status"] == "arrived"
    assert t.loc[1, "depart_s"] == t.loc[0, "arrive_s"] + 10.0


def test_a_congested_outbound_trip_delays_the_return():
    """The same tour alone and behind heavy traffic to the same place: the jammed outbound
    arrives later, and the return leaves exactly that much later."""
    net = grid_roadnet(3, 3, spacing_m=300.0)
    n_bg = 60

    def run(background: bool):
        o, d, t = [0, 8], [8, 0], [20.0, 60.0]
        if background:  # from node 0 and node 1 towards node 8 in the first minute
            o += [1] * n_bg + [0] * n_bg
            d += [8] * (2 * n_bg)
            t += list(np.linspace(0.0, 60.0, n_bg)) * 2
        after = np.full(len(o), -1)
        after[1] = 0
        dwell = np.zeros(len(o))
        dwell[1] = 20.0
        sim = TrafficSim(net, chained(o, d, t, after, dwell), seed=2, start_s=0.0)
        sim.run_until(1500.0)
        table = by_id(sim)
        assert (table["status"] == "arrived").all()
        return table.loc[0], table.loc[1]

    (out_free, back_free), (out_jam, back_jam) = run(False), run(True)
    assert out_jam["arrive_s"] > out_free["arrive_s"] + 60.0
    assert out_jam["duration_s"] > out_free["duration_s"] + 30.0  # slow on the way, too
    for out, back in ((out_free, back_free), (out_jam, back_jam)):
        assert back["depart_s"] == out["arrive_s"] + 20.0
    assert back_jam["depart_delay_s"] > back_free["depart_delay_s"] + 60.0


def tours(net, seed: int, n: int = 400) -> Trips:
    """Random outbound trips and, for each, a chained return planned 0-120 s after its
    planned departure (mostly before it can arrive), with a random dwell."""
    out = random_trips(
        net, rng=stream(seed, "demand"), start_s=0.0, end_s=600.0, n_trips=n, min_trip_m=300.0
    )
    rng = stream(seed, "tours")
    return Trips(
        trip_id=np.r_[out.trip_id, out.trip_id + n],
        origin_node=np.r_[out.origin_node, out.dest_node],
        dest_node=np.r_[out.dest_node, out.origin_node],
        depart_s=np.r_[out.depart_s, out.depart_s + rng.uniform(0.0, 120.0, n)],
        after_trip_id=np.r_[np.full(n, -1), out.trip_id],
        min_dwell_s=np.r_[np.zeros(n), rng.uniform(0.0, 60.0, n)],
    )


def test_chained_tours_on_a_grid_hold_and_are_deterministic():
    net = grid_roadnet(6, 6, spacing_m=150.0)

    def run(seed: int):
        sim = TrafficSim(net, tours(net, seed), seed=seed, start_s=0.0)
        rng = stream(seed, "reroute")
        held = 0
        for _ in range(15):
            sim.advance(100)
            c = sim.counts()
            assert c.held <= c.waiting
            held = max(held, c.held)
            check_invariants(sim)
            sim.reroute(0.3, rng)
        return sim, held

    (a, held), (b, _), (c, _) = run(8), run(8), run(9)
    ta = a.trip_table()
    assert ta.equals(b.trip_table())
    assert not ta.equals(c.trip_table())
    assert held > 0 and a.rerouted > 0
    t = ta.set_index("trip_id")
    back = t[t["after_trip_id"] >= 0]
    out = t.loc[back["after_trip_id"]]
    started = back["depart_s"].notna().to_numpy()
    assert started.sum() > 300 and (t["status"] == "arrived").mean() > 0.9
    assert (out["status"].to_numpy()[started] == "arrived").all()
    dwell = a.trips.min_dwell_s[a.trips.after_trip_id >= 0]
    ready = np.maximum(back["depart_plan_s"], out["arrive_s"].to_numpy() + dwell)
    assert (back["depart_s"][started] >= ready[started]).all()
    binding = out["arrive_s"].to_numpy() + dwell > back["depart_plan_s"].to_numpy()
    assert (back["depart_delay_s"][started & binding] > 0).all() and binding.sum() > 100


def test_unchained_trips_run_exactly_as_without_the_arrays():
    net = grid_roadnet(6, 6, spacing_m=150.0)
    plain = random_trips(
        net, rng=stream(5, "demand"), start_s=0.0, end_s=900.0, trips_per_hour=6000.0,
        min_trip_m=200.0,
    )  # fmt: skip
    explicit = Trips(
        plain.trip_id, plain.origin_node, plain.dest_node, plain.depart_s,
        after_trip_id=np.full(len(plain), -1), min_dwell_s=np.zeros(len(plain)),
    )  # fmt: skip

    def run(demand: Trips):
        sim = TrafficSim(net, demand, seed=5, start_s=0.0)
        rng = stream(5, "reroute")
        for _ in range(12):
            sim.advance(100)
            sim.reroute(0.2, rng)
        return sim

    a, b = run(plain), run(explicit)
    assert a.trip_table().equals(b.trip_table())
    assert a.network_kpis() == b.network_kpis() and a.updates == b.updates
    assert a.counts().held == 0 and (a.trip_table()["after_trip_id"] == -1).all()


def test_vehicles_change_lanes_for_their_next_turn_and_never_turn_from_a_wrong_lane():
    """On a two-lane grid (left turns from the left lane, right turns from the kerb lane),
    departures take the lane with most room and change lanes for their first turn. Every
    crossing is from a lane that serves its movement; no overlap, none lost."""
    net = grid_roadnet(4, 4, spacing_m=200.0, lanes=2)
    demand = random_trips(
        net, rng=stream(11, "demand"), start_s=0.0, end_s=600.0, trips_per_hour=3000.0
    )
    sim = TrafficSim(net, demand, seed=11, start_s=0.0)
    fl, arrays = sim.fleet, sim.arrays
    changes = 0
    prev_link, prev_lane = fl.link.copy(), fl.lane.copy()
    while sim.t_s < 1500.0:
        sim.step()
        moved = (fl.link != prev_link) & (prev_link >= 0) & (fl.link >= 0)
        for v in np.flatnonzero(moved):
            a, b = int(prev_link[v]), int(fl.link[v])
            m = [k for k in net.movements_from(a) if net.mov_to_link[k] == b]
            k = prev_lane[v] - arrays.link_lane_offset[a]
            assert m and net.mov_lane_first[m[0]] <= k <= net.mov_lane_last[m[0]], (v, a, b, k)
        same = (fl.link == prev_link) & (fl.link >= 0)
        changes += int((same & (fl.lane != prev_lane)).sum())
        prev_link, prev_lane = fl.link.copy(), fl.lane.copy()
        if int(sim.t_s) % 100 == 0:
            check_invariants(sim)
    c = sim.counts()
    assert c.arrived == len(demand) - c.unroutable
    assert changes >= 10  # 13 with this seed


def test_conflicting_approaches_never_cross_an_unsignalised_junction_together():
    """Equal-class approaches are first come, first served: after a crossing, the junction is
    held for junction_clear_s against every approach but the opposite one, including a
    vehicle that planned to cross in the same step."""
    net = grid_roadnet(4, 4, spacing_m=150.0, signals=False)
    demand = random_trips(
        net,
        rng=stream(5, "demand"),
        start_s=0.0,
        end_s=900.0,
        trips_per_hour=2000.0,
        min_trip_m=200.0,
    )
    sim = TrafficSim(net, demand, seed=5, start_s=0.0)
    fl, arrays, p = sim.fleet, sim.arrays, sim.params
    last: dict[int, tuple[float, int]] = {}  # node -> (time, in-link) of its last crossing
    prev_link = fl.link.copy()
    pairs = 0
    while sim.t_s < 1200.0:
        sim.step()
        moved = (fl.link != prev_link) & (prev_link >= 0) & (fl.link >= 0)
        for v in np.flatnonzero(moved):
            a = int(prev_link[v])
            node = int(net.link_to[a])
            if node in last and last[node][1] != a:
                t0, b = last[node]
                turn = abs(
                    (arrays.link_end_bearing_deg[a] - arrays.link_end_bearing_deg[b] + 540.0)
                    % 360.0
                    - 180.0
                )
                if turn < 135.0:  # crossing paths
                    pairs += 1
                    assert sim.t_s - t0 >= p.junction_clear_s, (node, a, b, t0, sim.t_s)
            last[node] = (sim.t_s, a)
        prev_link = fl.link.copy()
    assert pairs > 100


def test_a_vehicle_crosses_only_into_room_for_its_whole_length():
    """A lane head that reaches its stop line while the next link's last vehicle is only a few
    metres in stays at the line (it used to cross and sit with its rear in the junction)."""
    net = corridor_roadnet([200.0, 200.0, 200.0])
    sim = TrafficSim(
        net, trips([0, 0], [3, 3], [0.0, 20.0]), seed=1, start_s=0.0, params=Params(sigma=0.0)
    )
    sim.run_until(21.0)
    fl = sim.fleet
    assert (fl.state == RUNNING).all()
    b, a = 0, 1  # put b (ahead) on link 1, 8 m in and stopped; a 1 m before the line at 10 m/s

    for v, link, pos, speed in ((b, 1, 8.0, 0.0), (a, 0, 199.0, 10.0)):
        lane_remove(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v)
        lane_append(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v, link)
        fl.link[v], fl.pos_m[v], fl.speed_mps[v] = link, pos, speed
        fl.route_idx[v] = link
    fl.v_next_mps[:] = 0.0
    sim.step()
    assert fl.link[a] == 0 and fl.pos_m[a] <= 200.0  # waits at the line: 3 m is too little
    sim.run_until(200.0)
    assert (fl.state == ARRIVED).all()


def test_speed_factors_spread_free_flow_speeds_like_sumo():
    """Each driver's desired speed is the limit times a factor ~ N(1, 0.1) (SUMO's default
    vType): lone vehicles' free-flow speeds spread by about that much around the limit."""
    net = corridor_roadnet([3000.0], speed_mps=SPEED_MPS)
    n = 200
    sim = TrafficSim(
        net,
        trips([0] * n, [1] * n, np.arange(n) * 400.0),
        seed=4,
        start_s=0.0,
        params=Params(sigma=0.0),
    )
    sim.run_until(n * 400.0 + 600.0)
    table = sim.trip_table()
    factor = sim.fleet.speed_factor
    assert 0.08 < factor.std() < 0.12 and abs(factor.mean() - 1.0) < 0.02
    # a lone vehicle (400 s apart: no interaction) cruises at its own desired speed
    cruise = 2995.0 / table["duration_s"].to_numpy()
    assert np.corrcoef(cruise, factor)[0, 1] > 0.99


def test_peak_hour_flows_count_each_links_busiest_hour():
    from twin.traffic.sim import peak_hour_flows_vph

    net = corridor_roadnet([200.0, 200.0, 200.0])
    # 5 trips over the whole corridor in hour 0, 3 over its first link only in hour 1
    t = trips([0] * 5 + [0] * 3, [3] * 5 + [1] * 3, [10.0 * i for i in range(5)] + [3700.0] * 3)
    routes = TrafficSim(net, t, seed=0, start_s=0.0).routes
    flows = peak_hour_flows_vph(routes, t.depart_s, net.n_links)
    first = routes.route(0)
    assert flows[first[0]] == 5.0  # hour 0: 5, hour 1: 3
    assert flows[first[-1]] == 5.0
    assert flows.sum() == 5.0 * len(first)


def test_demand_timed_webster_splits_green_by_flow_ratio():
    """Webster (1958): effective green in proportion to the phases' flow ratios y = q / s."""
    from twin.network.synthetic import crossroads_roadnet

    net = crossroads_roadnet(lanes=1, signal=True, protected_left=False)
    ns = [(1, 3, 6.0 * i) for i in range(600)]  # 600 veh/h north -> south
    ew = [(2, 4, 18.0 * i) for i in range(200)]  # 200 veh/h east -> west
    o, d, dep = zip(*(ns + ew), strict=True)
    t = trips(list(o), list(d), list(dep))
    demand = TrafficSim(net, t, seed=0, start_s=0.0, signal_timing="demand").plans
    capacity = TrafficSim(net, t, seed=0, start_s=0.0, signal_timing="capacity").plans
    assert demand.n_signals == 1 and len(demand.green_s) == 2
    y_ns, y_ew = 600 / 1900, 200 / 1900
    lost_s = 2 * (3.0 + 2.0)
    cycle_s = max((1.5 * lost_s + 5.0) / (1.0 - y_ns - y_ew), 40.0)  # Webster, 40 s floor
    assert demand.cycle_s[0] == pytest.approx(cycle_s, abs=1.0)
    # which phase serves north-south: the one holding the movement out of the north arm
    north_in = int(np.flatnonzero((net.link_from == 1) & (net.link_to == 0))[0])

    def phase_links(ph: int) -> np.ndarray:
        movs = net.phase_movs[net.phase_mov_offsets[ph] : net.phase_mov_offsets[ph + 1]]
        return net.mov_from_link[movs]

    ph_ns = next(ph for ph in range(2) if north_in in phase_links(ph))
    g_ns, g_ew = demand.green_s[ph_ns], demand.green_s[1 - ph_ns]
    expected_ns = (cycle_s - lost_s) * y_ns / (y_ns + y_ew)
    assert g_ns == pytest.approx(expected_ns, abs=1.0)
    assert g_ew == pytest.approx(cycle_s - lost_s - expected_ns, abs=1.0)
    assert capacity.green_s[0] == capacity.green_s[1]  # equal approaches, no demand known
