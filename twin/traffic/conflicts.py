"""Conflicts at junctions: may the head of a lane cross its stop line now?

Numba helpers inlined into the plan and move passes of :mod:`twin.traffic.kernel`:

- **gap acceptance**: a movement that gives way (``mov_tc_s > 0``) enters when no conflicting
  vehicle reaches the junction within its critical gap, and at least its follow-up headway
  after the previous vehicle of its lane. Conflicting vehicles are the heads of the
  conflicting approach's lanes (and, when that approach is shorter than a critical gap at its
  speed limit and empty, the heads of the links feeding it). Lags are judged at the start of
  each step, on average half a step after the gap opened, so the check uses ``tc - dt/2``.
  A driver who has waited at the line grows impatient (SUMO's ``--time-to-impatience``,
  ``Params.impatience_s``) and takes, in the end, any gap the other vehicle can brake for.
  Where the major road's traffic is slower than ``Params.zipper_mps`` (a crawling queue),
  the minor road and each major lane take turns: a crawling major head bound for the same
  lanes holds back at its line while it is the waiting minor vehicle's turn (:func:`let_in`),
  else it takes every metre of room that opens and the minor road never gets in;
- **permissive left turns** at a signal yield to the opposing approach's through and right
  traffic while that approach has green; a protected left (opposing on red) does not;
- **two-way stop / give way**: a minor approach yields to every major approach (a roundabout
  entry only to circulating traffic that does not leave there); with a stop sign it must
  first halt at the line. A right turn from the minor road yields only to traffic bound for
  the same road (it crosses no stream); a left turn from the major road yields to the
  opposing major road.
  Where nothing is mapped, a lower road class gives way to higher ones (``class_gap_s``);
- **merges** (an on-ramp joining, see :func:`twin.traffic.junctions.merges`): the merging
  approach yields only to the major road's vehicles in the lanes it merges into, with a lag
  of ``merge_gap_s``, and holds no reservation; in slow, dense traffic the two take turns;
- **all-way stop**: every vehicle halts at the line; approaches go in the order they arrived
  there, one at a time (the opposite approach may go together);
- **first come, first served** among approaches of equal standing (a reservation held for
  ``junction_clear_s`` after each crossing, except for the opposite approach); approaches
  take turns when both have a vehicle waiting at the line.
"""

from __future__ import annotations

import math

from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.network.road import (
    CTRL_ALL_WAY_STOP,
    CTRL_ROUNDABOUT,
    OPPOSING_MIN_DEG,
    TURN_RIGHT,
    TURN_THROUGH,
)
from twin.traffic.junctions import YIELD_NONE, YIELD_STOP
from twin.traffic.kernel_math import NO_REFCOUNT
from twin.traffic.lanes import find_movement
from twin.traffic.state import RED, Fleet, NetArrays, Params

# which vehicles of a conflicting approach count: all, those going through or right (against a
# left turn from the major road), those staying on a roundabout, those bound for the same road
# (against a minor right turn, which crosses no stream: the HCM's conflicting flow of a minor
# right turn is the near-side major traffic only, v_c,9 = v_2 / N + 0.5 v_3, 6th ed. ch. 20)
ANY, OPPOSING, CIRCULATING, SAME_OUT = 0, 1, 2, 3


@njit(cache=True, inline="always")
def _counts(net: NetArrays, fl: Fleet, h: int, link: int, mode: int, onto: int) -> bool:
    """Whether vehicle ``h``, about to leave ``link``, conflicts in ``mode`` (``onto``: the
    yielding vehicle's next link)."""
    i = fl.route_start[h] + fl.route_idx[h]
    while i < fl.route_end[h] and fl.route_links[i] != link:  # h may still be upstream
        i += 1
    if i + 1 >= fl.route_end[h]:
        return False  # arrives on that link: never crosses
    nxt = fl.route_links[i + 1]
    if mode == OPPOSING:
        m = find_movement(net.link_mov_offsets, net.mov_to_link, link, nxt)
        return m >= 0 and (net.mov_turn[m] == TURN_THROUGH or net.mov_turn[m] == TURN_RIGHT)
    if mode == CIRCULATING:
        return net.link_roundabout[nxt]
    if mode == SAME_OUT:
        return nxt == onto
    return True


@njit(cache=True, inline="always")
def impatience(fl: Fleet, p: Params, v: int, t_s: float) -> float:
    """How impatient ``v`` has grown waiting at its line, 0 to 1 over ``impatience_s`` (SUMO's
    ``--time-to-impatience``)."""
    waited = t_s - fl.at_line_s[v]
    return min(1.0, waited / p.impatience_s) if waited > 0.0 else 0.0


@njit(cache=True, inline="always")
def _reaches(p: Params, dist_m: float, speed_mps: float, window_s: float, imp: float) -> bool:
    """Whether a vehicle ``dist_m`` before the junction at ``speed_mps`` comes too close: within
    ``window_s``, or, as impatience ``imp`` grows, only within its braking distance and a
    vehicle's room (an impatient driver goes where the other can still brake: SUMO)."""
    far = speed_mps * window_s
    brake = min(far, speed_mps * speed_mps / (2.0 * p.decel_mps2) + p.length_m + p.min_gap_m)
    return dist_m < (1.0 - imp) * far + imp * brake


@njit(cache=True, inline="always")
def stream_clear(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    link: int,
    window_s: float,
    mode: int,
    imp: float,
    turn_s: float,
    onto: int,
) -> bool:
    """No moving vehicle conflicting in ``mode`` reaches the end of ``link`` within
    ``window_s`` seconds (looking one link upstream when ``link`` is short and empty), as
    judged by a driver of impatience ``imp`` (:func:`_reaches`). In slow traffic the two take
    turns (``turn_s``: the waiting lane's last crossing; ``inf``: never): a first vehicle
    slower than ``zipper_mps`` near the line does not count if a vehicle of its lane crossed
    after ``turn_s``, and counts if none did, even halted while it waits for room on
    ``onto`` (the waiting vehicle's next link)."""
    seen = False
    for slot in range(net.link_lane_offset[link], net.link_lane_offset[link + 1]):
        h = fl.lane_head[slot]
        if h < 0:
            continue
        seen = True
        v = fl.speed_mps[h]
        remaining = net.link_length_m[link] - fl.pos_m[h]
        zipper = v < p.zipper_mps and turn_s < math.inf and remaining < p.at_line_m
        if (v < p.halt_mps and not zipper) or not _counts(net, fl, h, link, mode, onto):
            continue  # a halted vehicle counts only for turn-taking (cheap test first)
        if zipper:
            if net.lane_enter_s[slot] > turn_s:
                continue  # slow traffic, its lane went last: the waiting one's turn
            target = fl.target_lane[h]
            if v >= p.halt_mps or (
                target >= 0
                and net.link_lane_offset[onto] <= target < net.link_lane_offset[onto + 1]
            ):
                return False  # its turn, and it goes (or waits for room where we would)
            continue  # halted, and not for the same room
        if _reaches(p, remaining, v, window_s, imp):
            return False
    if seen or net.link_length_m[link] >= net.link_speed_mps[link] * window_s:
        return True
    return upstream_clear(net, fl, p, link, window_s, mode, onto if mode == SAME_OUT else -1, imp)


@njit(cache=True, inline="always")
def upstream_clear(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    link: int,
    window_s: float,
    mode: int,
    onto: int,
    imp: float,
) -> bool:
    """No moving first vehicle of a link feeding ``link``, about to enter it, reaches the end
    of ``link`` within ``window_s``: of those that then conflict in ``mode`` or, when ``onto``
    is a link (>= 0), of those that then drive onto it."""
    node = net.link_from[link]
    for i in range(net.node_in_offsets[node], net.node_in_offsets[node + 1]):
        up = net.node_in_links[i]
        for slot in range(net.link_lane_offset[up], net.link_lane_offset[up + 1]):
            h = fl.lane_head[slot]
            if h < 0 or fl.speed_mps[h] < p.halt_mps:
                continue
            j = fl.route_start[h] + fl.route_idx[h] + 1
            if j >= fl.route_end[h] or fl.route_links[j] != link:
                continue
            if onto >= 0:
                if j + 1 >= fl.route_end[h] or fl.route_links[j + 1] != onto:
                    continue
            elif not _counts(net, fl, h, link, mode, onto):
                continue
            dist = net.link_length_m[up] - fl.pos_m[h] + net.link_length_m[link]
            if _reaches(p, dist, fl.speed_mps[h], window_s, imp):
                return False
    return True


@njit(cache=True, inline="always")
def merge_clear(net: NetArrays, fl: Fleet, p: Params, v: int, m: int, window_s: float) -> bool:
    """Whether vehicle ``v`` may merge (movement ``m``): no moving vehicle in the lanes it joins
    reaches the line within ``window_s`` on its way onto the same link, or, where one does at
    less than ``zipper_mps`` (slow, dense traffic), its lane's last vehicle crossed after this
    lane's last one (the two take turns: a zipper). Looks one link upstream when the major
    approach is shorter than the window at its speed limit and those lanes are empty."""
    major, out = net.mov_merge_major[m], net.mov_to_link[m]
    mine = net.lane_enter_s[fl.lane[v]]
    seen = False
    for k in range(net.mov_merge_first[m], net.mov_merge_last[m] + 1):
        slot = net.link_lane_offset[major] + k
        h = fl.lane_head[slot]
        if h < 0:
            continue
        seen = True
        j = fl.route_start[h] + fl.route_idx[h] + 1
        if fl.speed_mps[h] < p.halt_mps or j >= fl.route_end[h] or fl.route_links[j] != out:
            continue
        reaches = net.link_length_m[major] - fl.pos_m[h] < fl.speed_mps[h] * window_s
        if reaches and (fl.speed_mps[h] >= p.zipper_mps or net.lane_enter_s[slot] <= mine):
            return False
    if seen or net.mov_merge_last[m] < net.mov_merge_first[m]:
        return True
    if net.link_length_m[major] >= net.link_speed_mps[major] * window_s:
        return True
    return upstream_clear(net, fl, p, major, window_s, ANY, out, 0.0)


@njit(**NO_REFCOUNT)
def let_in(net: NetArrays, fl: Fleet, p: Params, v: int, link: int, m: int, t_s: float) -> bool:
    """Whether major-road head ``v``, queued at its line (it has come to a stop there, or
    crawls), about to take movement ``m`` at a junction without signals, holds back to let a
    waiting minor-road vehicle in: one has stopped at its line bound for the same road, its
    lane went before ``v``'s did, and the lanes both may enter have a crawling queue reaching
    back to the junction (so each metre of room that opens is raced for). The minor vehicle
    then goes at the next room (its stream test already lets a crawling major lane that went
    last pass; see :func:`stream_clear`), and the turn passes back. A major vehicle that only
    slows behind a minor one that has just turned in does not hold. Out of line: called only
    for heads queued on a major approach (``link_yield`` none) of a priority junction."""
    node = net.link_to[link]
    out = net.mov_to_link[m]
    off_out = net.link_lane_offset[out]
    mine = net.lane_enter_s[fl.lane[v]]
    k_mine = fl.lane[v] - net.link_lane_offset[link]
    gap0 = p.length_m + p.min_gap_m
    for i in range(net.node_in_offsets[node], net.node_in_offsets[node + 1]):
        k = net.node_in_links[i]
        if k == link or net.link_yield[k] == YIELD_NONE:
            continue
        mk = find_movement(net.link_mov_offsets, net.mov_to_link, k, out)
        if mk < 0:
            continue
        if net.mov_merge_major[mk] >= 0 and not (
            net.mov_merge_major[mk] == link
            and net.mov_merge_first[mk] <= k_mine <= net.mov_merge_last[mk]
        ):
            continue  # a merge that does not join this lane
        lo = max(net.mov_out_first[m], net.mov_out_first[mk])
        hi = min(net.mov_out_last[m], net.mov_out_last[mk])
        scarce = False
        for q in range(lo, hi + 1):
            tail = fl.lane_tail[off_out + q]
            if tail >= 0 and fl.pos_m[tail] < 2.0 * gap0 and fl.speed_mps[tail] < p.zipper_mps:
                scarce = True
                break
        if not scarce:
            continue
        off = net.link_lane_offset[k]
        for q in range(net.mov_lane_first[mk], net.mov_lane_last[mk] + 1):
            h = fl.lane_head[off + q]
            if h < 0 or fl.at_line_s[h] >= t_s or net.lane_enter_s[off + q] >= mine:
                continue
            j = fl.route_start[h] + fl.route_idx[h] + 1
            if j < fl.route_end[h] and fl.route_links[j] == out:
                return True
    return False


@njit(cache=True, inline="always")
def lanes_take_turns(net: NetArrays, fl: Fleet, p: Params, v: int, link: int, m: int) -> bool:
    """Whether lane head ``v`` may take movement ``m`` where it narrows (more lanes in than
    out, e.g. four lanes into a two-lane road): not while the head of another of its lanes
    has stood at its line ``Params.narrow_turn_s`` or more, bound for the same road, and its
    lane let its last vehicle through before ``v``'s did. Without this the lanes the move
    pass serves first could take all the room for good and starve the others; a turn for
    every head that stops (a strict zipper) cost a 4-into-2 fork a fifth of its flow."""
    if net.mov_lane_last[m] - net.mov_lane_first[m] <= net.mov_out_last[m] - net.mov_out_first[m]:
        return True
    mine = net.lane_enter_s[fl.lane[v]]
    out = net.mov_to_link[m]
    off = net.link_lane_offset[link]
    for k in range(net.mov_lane_first[m], net.mov_lane_last[m] + 1):
        h = fl.lane_head[off + k]
        if h < 0 or h == v or fl.speed_mps[h] >= p.halt_mps:
            continue
        if net.link_length_m[link] - fl.pos_m[h] > p.at_line_m:
            continue
        j = fl.route_start[h] + fl.route_idx[h] + 1
        if j >= fl.route_end[h] or fl.route_links[j] != out or fl.stuck_s[h] < p.narrow_turn_s:
            continue
        if net.lane_enter_s[off + k] < mine:
            return False
    return True


@njit(cache=True, inline="always")
def opposite(net: NetArrays, a: int, b: int) -> bool:
    """Whether approaches ``a`` and ``b`` of one node face each other (paths do not cross)."""
    bearing = net.link_end_bearing_deg
    return abs((bearing[a] - bearing[b] + 540.0) % 360.0 - 180.0) >= OPPOSING_MIN_DEG


@njit(cache=True, inline="always")
def _other_waits(net: NetArrays, fl: Fleet, link: int, t_s: float) -> bool:
    """Whether an approach of the same standing as ``link``, whose path crosses it, has a
    vehicle that has stopped at its line and waits there."""
    node = net.link_to[link]
    for i in range(net.node_in_offsets[node], net.node_in_offsets[node + 1]):
        k = net.node_in_links[i]
        if k == link or opposite(net, k, link):
            continue
        if net.link_rank[k] < net.link_rank[link] or net.link_yield[k] != net.link_yield[link]:
            continue
        for slot in range(net.link_lane_offset[k], net.link_lane_offset[k + 1]):
            h = fl.lane_head[slot]
            if h >= 0 and fl.at_line_s[h] < t_s:
                return True
    return False


@njit(cache=True, inline="always")
def reservation_blocks(
    net: NetArrays, fl: Fleet, p: Params, v: int, link: int, m: int, t_s: float
) -> bool:
    """Whether the junction is held by a crossing that vehicle ``v`` on ``link`` must let
    clear. Gap-accepting minor movements (follow-up headway set) judge the lag behind major
    traffic themselves and wait only for other minor crossings; everyone else waits for
    crossings from roads of the same or a higher class. A driver who gives way
    follows the last crossing up to half a ``junction_clear_s`` closer as it grows impatient.
    The approach holding the junction gives an equal one that waits at its line a window of
    ``junction_clear_s`` after the hold to go first (so approaches take turns and a platoon
    cannot starve a crossing road; one that cannot go loses its turn)."""
    if net.mov_merge_major[m] >= 0:
        return False  # a merge takes gaps in the lanes it joins (see merge_clear)
    node = net.link_to[link]
    held_by = net.node_busy_link[node]
    if held_by < 0:
        return False
    busy_until = net.node_busy_until_s[node]
    gap_accepting = net.link_yield[link] != YIELD_NONE and net.mov_tf_s[m] > 0.0
    if held_by == link:  # hand over: a waiting approach gets a window to go first
        if gap_accepting or t_s >= busy_until + p.junction_clear_s:
            return False
        return _other_waits(net, fl, link, t_s)
    if net.link_yield[link] != YIELD_NONE:  # impatient: follows the last crossing closer
        busy_until -= 0.5 * p.junction_clear_s * impatience(fl, p, v, t_s)
    if busy_until <= t_s or opposite(net, held_by, link):
        return False
    if gap_accepting:
        return net.link_yield[held_by] != YIELD_NONE
    return net.link_rank[held_by] >= net.link_rank[link]


@njit(cache=True, inline="always")
def follow_up_ok(net: NetArrays, fl: Fleet, v: int, m: int, t_s: float, dt_s: float) -> bool:
    """At least the follow-up headway since the last vehicle left this lane (the crossing
    may fall anywhere in the coming step)."""
    return t_s + dt_s - net.lane_enter_s[fl.lane[v]] >= net.mov_tf_s[m]


@njit(cache=True, inline="always")
def may_go(
    net: NetArrays,
    fl: Fleet,
    p: Params,
    v: int,
    link: int,
    m: int,
    t_s: float,
    dt_s: float,
    signalised: bool,
) -> bool:
    """Whether lane head ``v`` may take movement ``m`` now by the junction's rules: at a
    signal (``signalised``; on green) a left or U-turn yields to the opposing approach while
    it has green too; without signals, priority (see the module docstring).

    One function for both, with one call site of each helper: every call site of an inlined
    helper is a copy of it that the compile pays for (two fewer copies of the stream test
    took the plan pass from ~42 to ~18 s of compile on a 2-core machine). Each rule is a pure
    test of the state, so their order changes no answer."""
    node = net.link_to[link]
    control = net.node_control[node]
    own = net.link_yield[link]
    tc = net.mov_tc_s[m]
    streams = False  # whether the conflicting streams are tested
    major_left = True  # only the opposing stream (a left turn from the major road)
    window = 0.0
    if signalised:
        opp = net.link_opposing[link]
        if opp < 0:
            return True
        green = False
        for k in range(net.link_mov_offsets[opp], net.link_mov_offsets[opp + 1]):
            if net.mov_state[k] != RED and (
                net.mov_turn[k] == TURN_THROUGH or net.mov_turn[k] == TURN_RIGHT
            ):
                green = True
        if not green:
            return True  # protected: the opposing traffic is held
        streams = True
        window = tc - 0.5 * dt_s
    elif own == YIELD_STOP and math.isinf(fl.at_line_s[v]):
        return False  # stop first
    elif control == CTRL_ALL_WAY_STOP:
        mine = fl.at_line_s[v]
        for i in range(net.node_in_offsets[node], net.node_in_offsets[node + 1]):
            k = net.node_in_links[i]
            if k == link or opposite(net, k, link):
                continue
            for slot in range(net.link_lane_offset[k], net.link_lane_offset[k + 1]):
                h = fl.lane_head[slot]
                if h >= 0 and (fl.at_line_s[h] < mine or (fl.at_line_s[h] == mine and k < link)):
                    return False
    elif net.mov_merge_major[m] >= 0:
        return merge_clear(net, fl, p, v, m, tc - 0.5 * dt_s)  # no reservation
    elif tc > 0.0:
        streams = True
        major_left = own == YIELD_NONE
        window = tc - 0.5 * dt_s if net.mov_tf_s[m] > 0.0 else tc  # unmapped: as before
    if streams:
        if not follow_up_ok(net, fl, v, m, t_s, dt_s):
            return False
        imp = impatience(fl, p, v, t_s)
        roundabout = control == CTRL_ROUNDABOUT
        if major_left:
            lo, hi, mode, turn_s, onto = 0, 1, OPPOSING, math.inf, 0
        else:
            lo, hi = net.node_in_offsets[node], net.node_in_offsets[node + 1]
            if roundabout:
                mode = CIRCULATING
            elif net.mov_turn[m] == TURN_RIGHT:
                mode = SAME_OUT  # a right turn only joins the stream from its left
            else:
                mode = ANY
            turn_s = math.inf if roundabout else net.lane_enter_s[fl.lane[v]]
            onto = net.mov_to_link[m]
        mapped = net.mov_tf_s[m] > 0.0
        for i in range(lo, hi):
            if major_left:
                k = net.link_opposing[link]
                if k < 0 or (not signalised and net.link_yield[k] != YIELD_NONE):
                    continue
            else:
                k = net.node_in_links[i]
                if k == link:
                    continue
                if mapped:  # signs: every unsigned approach is major
                    if net.link_yield[k] != YIELD_NONE:
                        continue
                    if roundabout and not net.link_roundabout[k]:
                        continue
                elif net.link_rank[k] <= net.link_rank[link]:  # by class: higher roads only
                    continue
            if not stream_clear(net, fl, p, k, window, mode, imp, turn_s, onto):
                return False
    return signalised or not reservation_blocks(net, fl, p, v, link, m, t_s)
