"""The vehicle step kernel: Krauss car-following on lanes, junctions, insertion, teleports.

One call advances every vehicle by ``dt_s`` in three passes over struct-of-arrays state
(see :mod:`twin.traffic.state`):

1. **insert** waiting vehicles whose first link has room at its entrance (front at one vehicle
   length, speed 0: SUMO's ``departPos="base"``, ``departSpeed=0``), in departure order;
2. **plan** (per vehicle, from the state at the start of the step, so it could run in
   parallel): the Krauss (1998) speed ``min(v + a dt, v_max, v_safe)`` minus SUMO's dawdling,
   where ``v_safe`` keeps the vehicle able to stop behind its leader, or behind the stop line
   when its next movement may not go (red, yellow it can stop for, a gap it must give to a
   higher-class road, a junction held by another approach), or behind the last vehicle of the
   lane it will enter on its next link (so a full link blocks its upstream junction);
3. **move** (per lane from the stop line back): Euler position update as SUMO's default, a
   vehicle never overlapping the one ahead; the head of a lane crosses to its next link when
   it reaches the line with leave to go and room behind the target lane's tail; vehicles at the
   end of their route arrive. A vehicle halted for ``teleport_s`` is moved on along its route
   to the first link with room (SUMO's ``--time-to-teleport``), and counted.

Randomness (dawdling) is a counter-based hash of (seed, vehicle, step): the same run gives
the same numbers whatever the order of evaluation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from twin.traffic.state import (
    ARRIVED,
    GREEN,
    RUNNING,
    YELLOW,
    Fleet,
    LinkStats,
    NetArrays,
    Params,
)

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_M4 = np.uint64(0xD1B54A32D192ED03)


@njit(cache=True, inline="always")
def uniform01(seed: int, veh: int, step: int) -> float:
    """A uniform [0, 1) number from (seed, vehicle, step) by SplitMix64 finalising."""
    z = np.uint64(seed) * _M1 + np.uint64(veh) * _M4 + np.uint64(step) * _M3
    z = (z ^ (z >> np.uint64(30))) * _M2
    z = (z ^ (z >> np.uint64(27))) * _M3
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def safe_speed(gap_m: float, v_leader_mps: float, decel_mps2: float, tau_s: float) -> float:
    """Krauss' safe speed: the fastest speed that can still stop behind a braking leader."""
    if gap_m <= 0.0:
        return 0.0
    bt = decel_mps2 * tau_s
    return -bt + math.sqrt(bt * bt + v_leader_mps * v_leader_mps + 2.0 * decel_mps2 * gap_m)


@njit(cache=True)
def find_movement(net: NetArrays, link: int, to_link: int) -> int:
    for m in range(net.link_mov_offsets[link], net.link_mov_offsets[link + 1]):
        if net.mov_to_link[m] == to_link:
            return m
    return -1


@njit(cache=True)
def choose_lane(net: NetArrays, fl: Fleet, p: Params, link: int, next_link: int) -> int:
    """The lane slot of ``link`` with most room at its entrance among the lanes allowed for
    the movement onto ``next_link`` (all lanes when ``next_link`` is -1)."""
    first, last = 0, net.link_lanes[link] - 1
    if next_link >= 0:
        m = find_movement(net, link, next_link)
        if m >= 0:
            first, last = net.mov_lane_first[m], net.mov_lane_last[m]
    best, best_room = -1, -np.inf
    for k in range(first, last + 1):
        slot = net.link_lane_offset[link] + k
        tail = fl.lane_tail[slot]
        room = net.link_length_m[link] if tail < 0 else fl.pos_m[tail] - p.length_m
        if room > best_room:
            best, best_room = slot, room
    return best


@njit(cache=True)
def _append(fl: Fleet, v: int, slot: int) -> None:
    tail = fl.lane_tail[slot]
    fl.ahead[v] = tail
    fl.behind[v] = -1
    if tail >= 0:
        fl.behind[tail] = v
    else:
        fl.lane_head[slot] = v
    fl.lane_tail[slot] = v
    fl.lane[v] = slot


@njit(cache=True)
def _remove(fl: Fleet, v: int) -> None:
    slot = fl.lane[v]
    a, b = fl.ahead[v], fl.behind[v]
    if a >= 0:
        fl.behind[a] = b
    else:
        fl.lane_head[slot] = b
    if b >= 0:
        fl.ahead[b] = a
    else:
        fl.lane_tail[slot] = a
    fl.ahead[v] = -1
    fl.behind[v] = -1
    fl.lane[v] = -1


@njit(cache=True)
def _next_link(fl: Fleet, v: int) -> int:
    i = fl.route_start[v] + fl.route_idx[v] + 1
    return fl.route_links[i] if i < fl.route_end[v] else -1


@njit(cache=True)
def _may_go(net: NetArrays, fl: Fleet, p: Params, v: int, link: int, m: int, t_s: float) -> bool:
    """Whether the head vehicle ``v`` of a lane of ``link`` may take movement ``m`` now."""
    node = net.link_to[link]
    if net.node_signal[node] >= 0:
        state = net.mov_state[m]
        if state == GREEN:
            return True
        if state == YELLOW:  # go only if it cannot stop comfortably before the line
            remaining = net.link_length_m[link] - fl.pos_m[v]
            speed = fl.speed_mps[v]
            return speed * speed / (2.0 * p.decel_mps2) > remaining
        return False
    rank = net.link_rank[link]
    for i in range(net.node_in_offsets[node], net.node_in_offsets[node + 1]):
        k = net.node_in_links[i]
        if k == link or net.link_rank[k] <= rank:
            continue
        for slot in range(net.link_lane_offset[k], net.link_lane_offset[k + 1]):
            h = fl.lane_head[slot]
            if h < 0 or _next_link(fl, h) < 0 or fl.speed_mps[h] < p.halt_mps:
                continue
            if net.link_length_m[k] - fl.pos_m[h] < fl.speed_mps[h] * p.critical_gap_s:
                return False
    held_by = net.node_busy_link[node]
    held = held_by >= 0 and held_by != link and net.node_busy_until_s[node] > t_s
    if held and net.link_rank[held_by] >= rank:
        b = net.link_end_bearing_deg
        diff = abs((b[held_by] - b[link] + 540.0) % 360.0 - 180.0)
        if diff < 135.0:  # not the opposite approach: crossing paths
            return False
    return True


@njit(cache=True)
def insert_waiting(
    net: NetArrays, fl: Fleet, p: Params, waiting: np.ndarray, n_waiting: int, t_s: float
) -> int:
    """Put waiting vehicles on their first link where there is room; returns how many still
    wait (compacted at the front of ``waiting``, in departure order)."""
    keep = 0
    for i in range(n_waiting):
        v = waiting[i]
        link = fl.route_links[fl.route_start[v]]
        placed = False
        if not net.link_closed[link]:
            slot = choose_lane(net, fl, p, link, _next_link(fl, v))
            tail = fl.lane_tail[slot]
            pos = min(p.length_m, net.link_length_m[link])
            if tail < 0 or fl.pos_m[tail] - p.length_m - p.min_gap_m >= pos:
                _append(fl, v, slot)
                fl.state[v] = RUNNING
                fl.link[v] = link
                fl.pos_m[v] = pos
                fl.speed_mps[v] = 0.0
                fl.depart_s[v] = t_s
                placed = True
        if not placed:
            waiting[keep] = v
            keep += 1
    return keep


@njit(cache=True)
def plan_speeds(
    net: NetArrays, fl: Fleet, p: Params, t_s: float, dt_s: float, step: int, seed: int
) -> None:
    """Pass 2: each running vehicle's speed for this step, from the start-of-step state."""
    for slot in range(fl.lane_head.shape[0]):
        v = fl.lane_head[slot]
        while v >= 0:
            link = fl.link[v]
            speed = fl.speed_mps[v]
            v_safe = np.inf
            fl.target_lane[v] = -1
            lead = fl.ahead[v]
            if lead >= 0:
                gap = fl.pos_m[lead] - p.length_m - p.min_gap_m - fl.pos_m[v]
                v_safe = safe_speed(gap, fl.speed_mps[lead], p.decel_mps2, p.tau_s)
            else:
                nxt = _next_link(fl, v)
                if nxt >= 0:
                    remaining = net.link_length_m[link] - fl.pos_m[v]
                    m = find_movement(net, link, nxt)
                    go = m >= 0 and not net.link_closed[nxt]
                    go = go and _may_go(net, fl, p, v, link, m, t_s)
                    if go:
                        after = -1
                        j = fl.route_start[v] + fl.route_idx[v] + 2
                        if j < fl.route_end[v]:
                            after = fl.route_links[j]
                        target = choose_lane(net, fl, p, nxt, after)
                        fl.target_lane[v] = target
                        tail = fl.lane_tail[target]
                        if tail >= 0:
                            gap = remaining + fl.pos_m[tail] - p.length_m - p.min_gap_m
                            v_safe = safe_speed(gap, fl.speed_mps[tail], p.decel_mps2, p.tau_s)
                    else:
                        v_safe = safe_speed(remaining, 0.0, p.decel_mps2, p.tau_s)
            v_des = min(speed + p.accel_mps2 * dt_s, net.link_speed_mps[link], v_safe)
            r = uniform01(seed, v, step)
            if v_des < p.accel_mps2 * dt_s:  # SUMO: less dawdling when starting from rest
                v_des -= p.sigma * v_des * r
            else:
                v_des -= p.sigma * p.accel_mps2 * dt_s * r
            fl.v_next_mps[v] = max(0.0, v_des)
            v = fl.behind[v]


@njit(cache=True)
def _teleport(net: NetArrays, fl: Fleet, p: Params, v: int, t_s: float) -> None:
    """Move a gridlocked vehicle to the first later link of its route with room, or arrive."""
    _remove(fl, v)
    fl.teleports[v] += 1
    fl.stuck_s[v] = 0.0
    end = fl.route_end[v]
    i = fl.route_start[v] + fl.route_idx[v] + 1
    while i < end:
        link = fl.route_links[i]
        if not net.link_closed[link]:
            after = fl.route_links[i + 1] if i + 1 < end else -1
            slot = choose_lane(net, fl, p, link, after)
            tail = fl.lane_tail[slot]
            pos = min(p.length_m, net.link_length_m[link])
            if tail < 0 or fl.pos_m[tail] - p.length_m - p.min_gap_m >= pos:
                _append(fl, v, slot)
                fl.link[v] = link
                fl.route_idx[v] = i - fl.route_start[v]
                fl.pos_m[v] = pos
                fl.speed_mps[v] = 0.0
                return
        i += 1
    fl.state[v] = ARRIVED
    fl.link[v] = -1
    fl.arrive_s[v] = t_s


@njit(cache=True)
def move(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    stats: LinkStats,
    t_s: float,
    dt_s: float,
    moved: np.ndarray,
    step: int,
) -> int:
    """Pass 3: positions, junction crossings, arrivals, teleports; returns
    (arrivals, vehicle-updates)."""
    arrivals = 0
    updates = 0
    end_s = t_s + dt_s
    for slot in range(fl.lane_head.shape[0]):
        v = fl.lane_head[slot]
        halted_here = 0
        while v >= 0:
            nxt_v = fl.behind[v]
            if moved[v] == step:  # entered this lane during this pass: already moved
                v = nxt_v
                continue
            moved[v] = step
            updates += 1
            link = fl.link[v]
            x0 = fl.pos_m[v]
            x = x0 + fl.v_next_mps[v] * dt_s
            lead = fl.ahead[v]
            length = net.link_length_m[link]
            crossed = False
            if lead >= 0:
                x = min(x, fl.pos_m[lead] - p.length_m)
            elif x >= length:
                nxt = _next_link(fl, v)
                if nxt < 0:  # end of the route: arrive
                    fl.dist_m[v] += length - x0
                    stats.exits[link] += 1
                    _remove(fl, v)
                    fl.state[v] = ARRIVED
                    fl.link[v] = -1
                    fl.arrive_s[v] = end_s
                    arrivals += 1
                    v = nxt_v
                    continue
                target = fl.target_lane[v]
                room = -1.0
                if target >= 0:
                    tail = fl.lane_tail[target]
                    room = net.link_length_m[nxt] if tail < 0 else fl.pos_m[tail] - p.length_m
                if room >= 0.0:
                    fl.dist_m[v] += length - x0
                    stats.exits[link] += 1
                    _remove(fl, v)
                    _append(fl, v, target)
                    node = net.link_to[link]
                    net.node_busy_until_s[node] = end_s + p.junction_clear_s
                    net.node_busy_link[node] = link
                    fl.link[v] = nxt
                    fl.route_idx[v] += 1
                    x = min(x - length, room)
                    x0 = 0.0
                    link = nxt
                    crossed = True
                else:
                    x = length
            x = max(x, x0)
            speed = min(fl.v_next_mps[v], (x - x0) / dt_s) if not crossed else fl.v_next_mps[v]
            fl.dist_m[v] += x - x0
            fl.pos_m[v] = x
            fl.speed_mps[v] = speed
            v_max = net.link_speed_mps[link]
            fl.time_loss_s[v] += dt_s * max(0.0, 1.0 - speed / v_max)
            stats.veh_steps[link] += dt_s
            stats.speed_sum[link] += speed * dt_s
            if speed < p.halt_mps:
                fl.wait_s[v] += dt_s
                fl.stuck_s[v] += dt_s
                if not fl.halted[v]:
                    fl.stops[v] += 1
                fl.halted[v] = True
                stats.halt_steps[link] += dt_s
                if not crossed:
                    halted_here += 1
                if p.teleport_s > 0.0 and fl.stuck_s[v] >= p.teleport_s:
                    _teleport(net, fl, p, v, end_s)
                    if fl.state[v] == ARRIVED:
                        arrivals += 1
            else:
                fl.halted[v] = False
                fl.stuck_s[v] = 0.0
            v = nxt_v
        lane_link = fl.lane_link[slot]
        if halted_here > stats.queue_max[lane_link]:
            stats.queue_max[lane_link] = halted_here
    return arrivals, updates


@njit(cache=True)
def step(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    stats: LinkStats,
    waiting: np.ndarray,
    n_waiting: int,
    moved: np.ndarray,
    t_s: float,
    dt_s: float,
    step_no: int,
    seed: int,
) -> tuple[int, int, int]:
    """One traffic step; returns (vehicles still waiting to enter, arrivals, vehicle-updates)."""
    n_waiting = insert_waiting(net, fl, p, waiting, n_waiting, t_s)
    plan_speeds(net, fl, p, t_s, dt_s, step_no, seed)
    arrivals, updates = move(net, fl, p, stats, t_s, dt_s, moved, step_no)
    return n_waiting, arrivals, updates
