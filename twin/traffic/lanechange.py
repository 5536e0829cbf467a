"""Strategic lane changes: a vehicle moves, one lane per step, towards a lane it wants
(:func:`twin.traffic.lanes.lanes_wanted`: one that serves its next turn and leads into the
lanes its turns after need) once it is within the look-ahead of the stop line
(:func:`twin.traffic.lanes.lookahead_m`).

A change needs room in the target lane: no overlap, and both the vehicle and its new follower
keep Krauss' safe speed (each could still stop behind the one ahead of it) or stand (slower
than ``Params.halt_mps``: Krauss creeps towards the point it must stop at, and a follower
creeping at 1e-4 m/s against a gap of 1e-4 m never let a waiting car in). A vehicle that
has come to a halt waiting for a gap asks the nearest vehicle behind it in the target lane to
hold back (``Fleet.yield_to``), so a stopped queue lets it in (zip merging); two halted
vehicles side by side that each need the other's lane swap places. On fast roads a slow
vehicle already in a lane it wants moves to a neighbouring one it also wants with
``Params.shorter_queue_m`` more room ahead (:func:`_join_shorter_queue`). Changes are
instantaneous (as SUMO's default model without sublanes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.traffic.kernel_math import NO_REFCOUNT, safe_speed
from twin.traffic.lanes import (
    lane_insert_behind,
    lane_ok_at,
    lane_remove,
    lane_swap,
    lanes_wanted,
    lookahead_m,
)
from twin.traffic.state import Fleet, NetArrays, Params


@njit(**NO_REFCOUNT)
def change_lanes(net: NetArrays, fl: Fleet, p: Params) -> int:
    """One pass over the running vehicles not yet in a lane they want; returns the number of
    lane changes made."""
    gap0 = p.length_m + p.min_gap_m
    pos, speed = fl.pos_m, fl.speed_mps
    changes = 0
    for i in range(fl.run_count[0]):
        v = fl.run_list[i]
        if fl.lane_ok[v]:
            link = fl.link[v]
            if (
                speed[v] < p.zipper_mps
                and net.link_speed_mps[link] >= p.shorter_queue_min_mps
                and net.link_lanes[link] > 1
            ):
                changes += _join_shorter_queue(net, fl, p, v, gap0)
            continue
        link = fl.link[v]
        if net.link_length_m[link] - pos[v] > lookahead_m(net, p, link):
            continue
        lo, hi, _, _ = lanes_wanted(net, fl, p, v, fl.route_start[v] + fl.route_idx[v])
        off = net.link_lane_offset[link]
        k = fl.lane[v] - off
        if lo <= k <= hi:
            fl.lane_ok[v] = True
            continue
        target = fl.lane[v] + (1 if k < lo else -1)
        lead, follow = _lead_follow(fl, target, pos[v])
        ok = True
        if lead >= 0:
            ok = _room(p, pos[lead] - gap0 - pos[v], speed[v], speed[lead])
        if ok and follow >= 0:
            ok = _room(p, pos[v] - gap0 - pos[follow], speed[follow], speed[v])
        if ok:
            lane_remove(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v)
            lane_insert_behind(
                fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v, target, lead
            )
            fl.at_line_s[v] = np.inf
            k = target - off
            fl.lane_ok[v] = lo <= k <= hi
            changes += 1
        elif speed[v] < p.halt_mps:
            other = _wants_my_lane(net, fl, p, v, lead, follow, gap0)
            if other >= 0:  # two halted vehicles side by side, each in the other's way: swap
                lane_swap(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v, other)
                pos[v], pos[other] = pos[other], pos[v]
                speed[v] = speed[other] = 0.0
                for j in range(2):  # one call site: each is a copy of the inlined helper
                    w = v if j == 0 else other
                    fl.lane_ok[w] = lane_ok_at(net, fl, p, w)
                changes += 2
                continue
            while follow >= 0 and pos[follow] > pos[v] - gap0:
                follow = fl.behind[follow]
            if follow >= 0:
                fl.yield_to[follow] = v
    return changes


@njit(cache=True, inline="always")
def _lead_follow(fl: Fleet, slot: int, x_m: float) -> tuple[int, int]:
    """The vehicles of lane ``slot`` just ahead of and at or behind position ``x_m`` (-1:
    none)."""
    lead = -1
    h = fl.lane_head[slot]
    while h >= 0 and fl.pos_m[h] > x_m:
        lead = h
        h = fl.behind[h]
    return lead, h


@njit(cache=True, inline="always")
def _room(p: Params, gap_m: float, follower_mps: float, leader_mps: float) -> bool:
    """Whether a follower at ``follower_mps`` may have a leader at ``leader_mps`` ``gap_m``
    ahead (beyond length and minimum gap): no overlap, and it keeps Krauss' safe speed or
    stands (slower than ``Params.halt_mps``)."""
    if gap_m < 0.0:
        return False
    return follower_mps < p.halt_mps or follower_mps <= safe_speed(
        gap_m, leader_mps, p.decel_mps2, p.tau_s
    )


@njit(cache=True, inline="always")
def _wants_my_lane(
    net: NetArrays, fl: Fleet, p: Params, v: int, lead: int, follow: int, gap0: float
) -> int:
    """A halted vehicle alongside ``v`` (less than a vehicle and gap apart) in the target
    lane that itself needs ``v``'s lane, or -1."""
    for i in range(2):
        w = lead if i == 0 else follow
        if w < 0 or fl.lane_ok[w] or fl.speed_mps[w] >= p.halt_mps:
            continue
        if abs(fl.pos_m[w] - fl.pos_m[v]) >= gap0:
            continue
        lo, hi, _, _ = lanes_wanted(net, fl, p, w, fl.route_start[w] + fl.route_idx[w])
        k = fl.lane[v] - net.link_lane_offset[fl.link[w]]
        if lo <= k <= hi:
            return w
    return -1


@njit(**NO_REFCOUNT)  # not inlined: rarely called, and inlined it slowed the whole pass
def _join_shorter_queue(net: NetArrays, fl: Fleet, p: Params, v: int, gap0: float) -> int:
    """Move vehicle ``v``, in a lane it wants, to a neighbouring lane it also wants where it
    has ``Params.shorter_queue_m`` more room ahead and the change is safe; returns 1 if it
    moved. Only on fast roads (``Params.shorter_queue_min_mps``): there vehicles keep to
    the lanes they will want from far ahead (:func:`twin.traffic.lanes.entry_lane`), so
    lanes fill unevenly; urban vehicles spread over the lanes as they enter. (Everywhere, the
    look along the next lane cost the 10,000-vehicle grid of bench_kernel.py half its
    throughput.)"""
    pos, speed = fl.pos_m, fl.speed_mps
    link = fl.link[v]
    length = net.link_length_m[link]
    if length - pos[v] > lookahead_m(net, p, link):
        return 0
    a = fl.ahead[v]
    own = pos[a] - gap0 - pos[v] if a >= 0 else length - pos[v]
    if own >= p.shorter_queue_m + speed[v] * p.tau_s:
        return 0
    off = net.link_lane_offset[link]
    k = fl.lane[v] - off
    lo, hi = -1, -2  # the lanes it wants, found only once a lane has the room
    best, best_room, best_lead = -1, own + p.shorter_queue_m, -1
    for d in range(-1, 2, 2):
        j = k + d
        if j < 0 or j >= net.link_lanes[link]:
            continue
        lead, h = _lead_follow(fl, off + j, pos[v])
        room = pos[lead] - gap0 - pos[v] if lead >= 0 else length - pos[v]
        if room <= best_room:
            continue
        if lead >= 0 and not _room(p, room, speed[v], speed[lead]):
            continue
        if h >= 0 and not _room(p, pos[v] - gap0 - pos[h], speed[h], speed[v]):
            continue
        if lo > hi:
            lo, hi, _, _ = lanes_wanted(net, fl, p, v, fl.route_start[v] + fl.route_idx[v])
        if lo <= j <= hi:
            best, best_room, best_lead = off + j, room, lead
    if best < 0:
        return 0
    lane_remove(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v)
    lane_insert_behind(fl.lane_head, fl.lane_tail, fl.ahead, fl.behind, fl.lane, v, best, best_lead)
    fl.at_line_s[v] = np.inf
    return 1
