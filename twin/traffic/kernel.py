"""The vehicle step kernel: Krauss car-following on lanes, junctions, insertion, teleports.

One call advances every vehicle by ``dt_s`` in three passes over struct-of-arrays state
(see :mod:`twin.traffic.state`):

1. **insert** waiting vehicles whose first link has room at its entrance (front at one vehicle
   length, speed 0: SUMO's ``departPos="base"``, ``departSpeed=0``), in the lane with most
   room (they change lanes for their first turn), in departure order; a
   chained trip (``Fleet.after``) waits, held, until its previous leg has arrived and its
   dwell time has passed;
2. **plan** (per vehicle, from the state at the start of the step, so it could run in
   parallel): the Krauss (1998) speed ``min(v + a dt, v_max, v_safe)`` minus SUMO's dawdling,
   with ``v_max`` the link's speed limit times the vehicle's speed factor (as SUMO's),
   where ``v_safe`` keeps the vehicle able to stop behind its leader, or behind the stop line
   when its next movement may not go (red, yellow it can stop for, a gap it must give to a
   higher-class road, a junction held by another approach), or behind the last vehicle of the
   lane it will enter on its next link (so a full link blocks its upstream junction);
3. **move** (per lane from the stop line back): Euler position update as SUMO's default, a
   vehicle never overlapping the one ahead; the head of a lane crosses to its next link when
   it reaches the line with leave to go and room behind the target lane's tail; vehicles at the
   end of their route arrive. A vehicle halted for ``stuck_limit_s`` is counted as gridlocked
   and, with ``teleport``, moved on along its route to the first link with room (SUMO's
   ``--time-to-teleport``), and counted again.

Randomness (dawdling) is a counter-based hash of (seed, trip, step): the same run gives
the same numbers whatever the order of evaluation or the numbering of the vehicles.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.network.road import CTRL_ALL_WAY_STOP, CTRL_PRIORITY
from twin.traffic.conflicts import (
    follow_up_ok,
    lanes_take_turns,
    let_in,
    may_go,
    reservation_blocks,
)
from twin.traffic.junctions import YIELD_NONE
from twin.traffic.kernel_math import NO_REFCOUNT, safe_speed, uniform01
from twin.traffic.lanechange import change_lanes
from twin.traffic.lanes import (
    choose_lane,
    entry_lane,
    find_movement,
    lane_append,
    lane_ok_at,
    lane_remove,
    next_link,
    occupied_lanes,
    running_add,
    running_remove,
)
from twin.traffic.signals import SignalArrays, update_signals
from twin.traffic.state import (
    ARRIVED,
    GREEN,
    RUNNING,
    SCHEDULED,
    WAITING,
    YELLOW,
    Fleet,
    LinkStats,
    NetArrays,
    Params,
    WaitQueue,
)

__all__ = ["run_steps", "safe_speed", "uniform01"]


@njit(cache=True, inline="always")
def _place(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    stats: LinkStats,
    v: int,
    i: int,
    any_lane: bool,
) -> bool:
    """Insert ``v`` at the entrance of its route link ``i`` (front one vehicle length in) if
    there is room on the lane with most room, among all lanes (``any_lane``: a departure,
    which then changes lanes for its turn) or those that serve its movement after; True when
    placed (``route_idx`` still to be set by the caller)."""
    link = fl.route_links[i]
    if net.link_closed[link]:
        return False
    after = fl.route_links[i + 1] if i + 1 < fl.route_end[v] else -1
    slot = choose_lane(net, fl, p, link, -1 if any_lane else after)
    tail = fl.lane_tail[slot]
    pos = min(p.length_m, net.link_length_m[link])
    if tail >= 0 and fl.pos_m[tail] - p.length_m - p.min_gap_m < pos:
        return False
    lane_append(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v, slot)
    fl.link[v] = link
    fl.pos_m[v] = pos
    fl.speed_mps[v] = 0.0
    fl.at_line_s[v] = np.inf
    fl.route_idx[v] = i - fl.route_start[v]
    fl.lane_ok[v] = lane_ok_at(net, fl, p, v)
    fl.yield_to[v] = -1
    stats.entries[link] += 1
    return True


@njit(cache=True, inline="always")
def held(state, arrive_s, after: int, min_dwell_s: float, t_s: float) -> bool:
    """Whether a trip that follows vehicle ``after`` must still wait at ``t_s``: until that
    vehicle has arrived (teleported arrivals too) and ``min_dwell_s`` has passed. A vehicle
    that never runs (no route) or ends any other way than arriving holds nothing."""
    s = state[after]
    if s == ARRIVED:
        return t_s < arrive_s[after] + min_dwell_s
    return s in (SCHEDULED, WAITING, RUNNING)


@njit(**NO_REFCOUNT)
def insert_waiting(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    stats: LinkStats,
    wq: WaitQueue,
    n_waiting: int,
    t_s: float,
) -> int:
    """Put waiting vehicles on their first link where there is room; returns how many still
    wait (compacted at the front of ``wq``, in departure order). A vehicle held for the
    one it follows (``fl.after``) stays in the queue, in its place, and is skipped. Once a
    departure onto a link fails in a step, the others waiting for that link are not tried
    again in the step (the lane with most room had none; nothing else changes on the link)."""
    keep = 0
    state, arrive_s, min_dwell_s = fl.state, fl.arrive_s, fl.min_dwell_s
    vehicle, first_link, after = wq.vehicle, wq.first_link, wq.after
    for i in range(n_waiting):
        v = vehicle[i]
        prev = after[i]
        first = first_link[i]
        if (prev >= 0 and held(state, arrive_s, prev, min_dwell_s[v], t_s)) or (
            net.link_full_s[first] == t_s
        ):
            vehicle[keep], first_link[keep], after[keep] = v, first, prev
            keep += 1
            continue
        if _place(net, fl, p, stats, v, fl.route_start[v], True):
            fl.state[v] = RUNNING
            running_add(fl.run_list, fl.run_pos, fl.run_count, v)
            fl.depart_s[v] = t_s
        else:
            net.link_full_s[first] = t_s
            vehicle[keep], first_link[keep], after[keep] = v, first, prev
            keep += 1
    return keep


@njit(**NO_REFCOUNT)
def plan_speeds(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    slots: np.ndarray,
    t_s: float,
    dt_s: float,
    step: int,
    seed: int,
) -> None:
    """Pass 2: the speed of each vehicle on the lanes ``slots`` for this step, from the
    start-of-step state only (so the order does not matter)."""
    # local names for the arrays: a NamedTuple passed on to helpers is copied at each call
    lane_head, ahead, behind = fl.lane_head, fl.ahead, fl.behind
    veh_link, pos, speed_mps, v_next, target_lane = (
        fl.link,
        fl.pos_m,
        fl.speed_mps,
        fl.v_next_mps,
        fl.target_lane,
    )
    route_start, route_end, route_links, route_idx = (
        fl.route_start,
        fl.route_end,
        fl.route_links,
        fl.route_idx,
    )
    yield_to, speed_factor, trip = fl.yield_to, fl.speed_factor, fl.trip
    link_length, link_speed, link_to, link_closed = (
        net.link_length_m,
        net.link_speed_mps,
        net.link_to,
        net.link_closed,
    )
    link_mov_offsets, mov_to_link, mov_state, node_signal = (
        net.link_mov_offsets,
        net.mov_to_link,
        net.mov_state,
        net.node_signal,
    )
    lane_tail = fl.lane_tail
    link_lane_offset = net.link_lane_offset
    mov_lane_first, mov_lane_last, mov_tc_s = net.mov_lane_first, net.mov_lane_last, net.mov_tc_s
    gap0 = p.length_m + p.min_gap_m
    b, tau, a_dt = p.decel_mps2, p.tau_s, p.accel_mps2 * dt_s
    for slot in slots:
        v = lane_head[slot]
        while v >= 0:
            link = veh_link[v]
            speed = speed_mps[v]
            v_safe = np.inf
            target_lane[v] = -1
            lead = ahead[v]
            if lead >= 0:
                v_safe = safe_speed(pos[lead] - gap0 - pos[v], speed_mps[lead], b, tau)
            else:
                nxt = next_link(route_start, route_end, route_links, route_idx, v)
                if nxt >= 0:
                    remaining = link_length[link] - pos[v]
                    m = find_movement(link_mov_offsets, mov_to_link, link, nxt)
                    # a closed link admits no vehicle from outside it; one caught inside a
                    # closure when it began drives on out of it
                    go = m >= 0 and not (link_closed[nxt] and not link_closed[link])
                    # far from the line (cannot reach it this step, and could still stop
                    # behind it or a vehicle just past it): the junction cannot bind yet, so
                    # its rules are not evaluated (the same speeds, fewer checks)
                    v_cap = min(speed + a_dt, link_speed[link] * speed_factor[v])
                    if remaining > v_cap * dt_s and v_cap <= safe_speed(
                        remaining - gap0, 0.0, b, tau
                    ):
                        go = False
                    elif go:  # in a lane that does not serve the turn: wait at the line
                        k = slot - link_lane_offset[link]
                        go = mov_lane_first[m] <= k <= mov_lane_last[m]
                        go = go and lanes_take_turns(net, fl, p, v, link, m)
                    if go:
                        signalised = node_signal[link_to[link]] >= 0
                        rules = not signalised  # priority rules, or a permissive turn
                        if signalised:
                            state = mov_state[m]
                            if state == YELLOW and mov_tc_s[m] > 0.0 and fl.at_line_s[v] < t_s:
                                # a permissive left that waited at the line turns on the
                                # yellow, as the opposing traffic stops ("sneakers", HCM)
                                go = follow_up_ok(net, fl, v, m, t_s, dt_s)
                            else:
                                # yellow: go on only if it cannot stop comfortably in time
                                go = state == GREEN or (
                                    state == YELLOW and speed * speed / (2.0 * b) > remaining
                                )
                                rules = go and mov_tc_s[m] > 0.0
                        if rules:
                            go = may_go(net, fl, p, v, link, m, t_s, dt_s, signalised)
                        if (
                            go
                            and net.node_control[link_to[link]] == CTRL_PRIORITY
                            and net.link_yield[link] == YIELD_NONE
                            and fl.at_line_s[v] < t_s
                            and speed < p.zipper_mps
                        ):  # a queued major head: its turn, or a waiting minor vehicle's?
                            go = not let_in(net, fl, p, v, link, m, t_s)
                    if go:
                        # slow down for the turn: at most the movement's speed at the line
                        v_turn = net.mov_speed_mps[m]
                        if v_turn < np.inf:
                            v_safe = math.sqrt(v_turn * v_turn + 2.0 * b * remaining)
                        k_from = slot - link_lane_offset[link]
                        target = entry_lane(net, fl, p, v, m, k_from)
                        target_lane[v] = target
                        tail = lane_tail[target]
                        if tail >= 0:
                            gap = remaining + pos[tail] - gap0
                            v_safe = min(v_safe, safe_speed(gap, speed_mps[tail], b, tau))
                    else:
                        v_safe = safe_speed(remaining, 0.0, b, tau)
            w = yield_to[v]
            if w >= 0:  # hold back for a vehicle waiting to change into this lane ahead
                if fl.state[w] == RUNNING and veh_link[w] == link and not fl.lane_ok[w]:
                    v_safe = min(v_safe, safe_speed(pos[w] - gap0 - pos[v], 0.0, b, tau))
                else:
                    yield_to[v] = -1
            v_des = min(speed + a_dt, link_speed[link] * speed_factor[v], v_safe)
            r = uniform01(seed, trip[v], step)
            if v_des < a_dt:  # SUMO: less dawdling when starting from rest
                v_des -= p.sigma * v_des * r
            else:
                v_des -= p.sigma * a_dt * r
            v_next[v] = max(0.0, v_des)
            v = behind[v]


@njit(**NO_REFCOUNT)
def _teleport(net: NetArrays, fl: Fleet, p: Params, stats: LinkStats, v: int, t_s: float) -> None:
    """Move a gridlocked vehicle to the first later link of its route with room, or arrive."""
    stats.removed[fl.link[v]] += 1
    lane_remove(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v)
    fl.teleports[v] += 1
    fl.stuck_s[v] = 0.0
    end = fl.route_end[v]
    i = fl.route_start[v] + fl.route_idx[v] + 1
    while i < end:
        if _place(net, fl, p, stats, v, i, False):
            return
        i += 1
    fl.state[v] = ARRIVED
    fl.link[v] = -1
    fl.arrive_s[v] = t_s
    running_remove(fl.run_list, fl.run_pos, fl.run_count, v)


@njit(**NO_REFCOUNT)
def move(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    stats: LinkStats,
    slots: np.ndarray,
    t_s: float,
    dt_s: float,
    moved: np.ndarray,
    step: int,
) -> tuple[int, int]:
    """Pass 3 over the lanes ``slots`` (sorted): positions, junction crossings, arrivals,
    teleports; returns (arrivals, vehicle-updates)."""
    lane_head, lane_tail, ahead, behind, lane = (
        fl.lane_head,
        fl.lane_tail,
        fl.ahead,
        fl.behind,
        fl.lane,
    )
    veh_link, pos, speed_mps, v_next, target_lane, state = (
        fl.link,
        fl.pos_m,
        fl.speed_mps,
        fl.v_next_mps,
        fl.target_lane,
        fl.state,
    )
    route_start, route_end, route_links, route_idx = (
        fl.route_start,
        fl.route_end,
        fl.route_links,
        fl.route_idx,
    )
    dist, time_loss, wait, stops, halted, stuck = (
        fl.dist_m,
        fl.time_loss_s,
        fl.wait_s,
        fl.stops,
        fl.halted,
        fl.stuck_s,
    )
    at_line_s = fl.at_line_s
    link_length, link_speed, link_to = net.link_length_m, net.link_speed_mps, net.link_to
    entries, exits, veh_steps, speed_sum = (
        stats.entries,
        stats.exits,
        stats.veh_steps,
        stats.speed_sum,
    )
    halt_steps, queue_max = stats.halt_steps, stats.queue_max
    length_m, halt_mps, stuck_limit_s = p.length_m, p.halt_mps, p.stuck_limit_s
    arrivals = 0
    updates = 0
    end_s = t_s + dt_s
    queue_link, queue_now = -1, 0  # halted vehicles on the link whose lanes are being walked
    for slot in slots:
        this_link = fl.lane_link[slot]
        if this_link != queue_link:  # lanes of a link are consecutive slots
            if queue_link >= 0 and queue_now > queue_max[queue_link]:
                queue_max[queue_link] = queue_now
            queue_link, queue_now = this_link, 0
        v = lane_head[slot]
        while v >= 0:
            nxt_v = behind[v]
            if moved[v] == step:  # entered this lane during this pass: already moved
                v = nxt_v
                continue
            moved[v] = step
            updates += 1
            link = veh_link[v]
            x0 = pos[v]
            x = x0 + v_next[v] * dt_s
            lead = ahead[v]
            length = link_length[link]
            crossed = False
            travelled = 0.0  # on the links left behind this step
            if lead >= 0:
                x = min(x, pos[lead] - length_m)
            elif x >= length:
                nxt = next_link(route_start, route_end, route_links, route_idx, v)
                if nxt < 0:  # end of the route: arrive
                    dist[v] += length - x0
                    exits[link] += 1
                    lane_remove(lane_head, lane_tail, ahead, behind, lane, v)
                    state[v] = ARRIVED
                    running_remove(fl.run_list, fl.run_pos, fl.run_count, v)
                    veh_link[v] = -1
                    fl.arrive_s[v] = end_s
                    arrivals += 1
                    v = nxt_v
                    continue
                target = target_lane[v]
                room = -1.0
                if target >= 0:
                    tail = lane_tail[target]
                    if tail < 0:
                        room = link_length[nxt]
                    elif pos[tail] - length_m >= length_m:  # room for the whole vehicle
                        room = pos[tail] - length_m
                m = find_movement(net.link_mov_offsets, net.mov_to_link, link, nxt)
                node = link_to[link]
                # a crossing earlier in this pass may hold the junction
                unsignalised = net.node_signal[node] < 0
                if room >= 0.0 and unsignalised and reservation_blocks(net, fl, p, v, link, m, t_s):
                    room = -1.0
                if room >= 0.0:
                    travelled = length - x0
                    exits[link] += 1
                    entries[nxt] += 1
                    lane_remove(lane_head, lane_tail, ahead, behind, lane, v)
                    lane_append(lane_head, lane_tail, ahead, behind, lane, v, target)
                    if m < 0 or net.mov_merge_major[m] < 0:  # a merge holds no reservation
                        net.node_busy_until_s[node] = end_s + (
                            p.all_way_clear_s
                            if net.node_control[node] == CTRL_ALL_WAY_STOP
                            else p.junction_clear_s
                        )
                        net.node_busy_link[node] = link
                    # when it crossed the line, within the step (queued vehicles of a
                    # gap-accepting stream are counted at their follow-up headway)
                    enter = t_s + min(dt_s, travelled / max(v_next[v], 1e-9))
                    net.lane_enter_s[slot] = max(enter, net.lane_enter_s[slot] + net.mov_tf_s[m])
                    veh_link[v] = nxt
                    route_idx[v] += 1
                    at_line_s[v] = np.inf
                    fl.yield_to[v] = -1
                    fl.lane_ok[v] = lane_ok_at(net, fl, p, v)
                    x = min(x - length, room)
                    x0 = 0.0
                    link = nxt
                    crossed = True
                else:
                    x = length
            x = max(x, x0)
            speed = min(v_next[v], (travelled + x - x0) / dt_s)
            dist[v] += travelled + x - x0
            pos[v] = x
            speed_mps[v] = speed
            v_max = link_speed[link] * fl.speed_factor[v]
            time_loss[v] += dt_s * max(0.0, 1.0 - speed / v_max)
            veh_steps[link] += dt_s
            speed_sum[link] += speed * dt_s
            if (
                not crossed
                and speed < p.stop_mps
                and length - x <= p.at_line_m
                and math.isinf(at_line_s[v])
            ):
                at_line_s[v] = end_s  # has made its stop at (or queued just behind) the line
            if speed < halt_mps:
                wait[v] += dt_s
                stuck[v] += dt_s
                if not halted[v]:
                    stops[v] += 1
                halted[v] = True
                if not crossed:
                    halt_steps[link] += dt_s
                    queue_now += 1
                if stuck[v] >= stuck_limit_s:
                    fl.gridlocked[v] = True
                    if p.teleport:
                        _teleport(net, fl, p, stats, v, end_s)
                        if state[v] == ARRIVED:
                            arrivals += 1
            else:
                halted[v] = False
                stuck[v] = 0.0
            v = nxt_v
    if queue_link >= 0 and queue_now > queue_max[queue_link]:
        queue_max[queue_link] = queue_now
    return arrivals, updates


# nogil: the routes of later trips are computed beside it (twin.traffic.prefetch); reference
# counting on: the sort in occupied_lanes compiles only so here
@njit(cache=True, nogil=True)
def run_steps(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    stats: LinkStats,
    wq: WaitQueue,
    n_waiting: int,
    moved: np.ndarray,
    order: np.ndarray,
    next_due: int,
    t_s: float,
    dt_s: float,
    step_no: int,
    seed: int,
    n_steps: int,
    sig: SignalArrays,
    slots_buf: np.ndarray,
) -> tuple[int, int, int]:
    """``n_steps`` whole steps in one call: release the trips due (``order`` sorted by planned
    departure, ``next_due`` the first not yet released), insert the waiting vehicles, plan
    speeds, move, change lanes, advance the signals. ``sig`` is the signals' state
    (:class:`twin.traffic.signals.SignalArrays`), ``slots_buf`` scratch space of one int32
    per lane slot. Returns (vehicles waiting, next_due, vehicle-updates).

    The passes are called from here, not from a function per step: Numba links a callee's
    code into its caller and optimises it again at every level, which cost a first run
    several seconds of compile per level."""
    updates = 0
    depart = fl.depart_plan_s
    for k in range(n_steps):
        t = t_s + k * dt_s
        while next_due < order.shape[0] and depart[order[next_due]] <= t:
            v = order[next_due]
            fl.state[v] = WAITING
            wq.vehicle[n_waiting] = v
            wq.first_link[n_waiting] = fl.route_links[fl.route_start[v]]
            wq.after[n_waiting] = fl.after[v]
            n_waiting += 1
            next_due += 1
        n_waiting = insert_waiting(net, fl, p, stats, wq, n_waiting, t)
        # lanes empty now receive only vehicles that have already moved: skip them both passes
        slots = slots_buf[: occupied_lanes(fl, slots_buf)]
        plan_speeds(net, fl, p, slots, t, dt_s, step_no + k, seed)
        _, upd = move(net, fl, p, stats, slots, t, dt_s, moved, step_no + k)
        change_lanes(net, fl, p)
        updates += upd
        update_signals(sig, net.mov_state, dt_s)
    return n_waiting, next_due, updates
