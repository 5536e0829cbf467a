"""Lane bookkeeping for the traffic kernels: per-lane vehicle lists, the running list, lane
choice and route lookups. Numba functions over arrays, called from :mod:`twin.traffic.kernel`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.traffic.kernel_math import NO_REFCOUNT
from twin.traffic.state import Fleet, NetArrays, Params


@njit(**NO_REFCOUNT)
def find_movement(link_mov_offsets, mov_to_link, link: int, to_link: int) -> int:
    """The movement from ``link`` onto ``to_link``, or -1."""
    for m in range(link_mov_offsets[link], link_mov_offsets[link + 1]):
        if mov_to_link[m] == to_link:
            return m
    return -1


@njit(**NO_REFCOUNT)
def choose_lane(net: NetArrays, fl: Fleet, p: Params, link: int, next_link: int) -> int:
    """The lane slot of ``link`` with most room at its entrance among the lanes allowed for
    the movement onto ``next_link`` (all lanes when ``next_link`` is -1)."""
    return lane_with_most_room(
        net.link_lanes,
        net.link_lane_offset,
        net.link_length_m,
        net.link_mov_offsets,
        net.mov_to_link,
        net.mov_lane_first,
        net.mov_lane_last,
        fl.lane_tail,
        fl.pos_m,
        p.length_m,
        link,
        next_link,
    )


@njit(cache=True, inline="always")
def lane_with_most_room(
    link_lanes,
    link_lane_offset,
    link_length_m,
    link_mov_offsets,
    mov_to_link,
    mov_lane_first,
    mov_lane_last,
    lane_tail,
    pos_m,
    length_m: float,
    link: int,
    next_link: int,
) -> int:
    first, last = 0, link_lanes[link] - 1
    if next_link >= 0:
        m = find_movement(link_mov_offsets, mov_to_link, link, next_link)
        if m >= 0:
            first, last = mov_lane_first[m], mov_lane_last[m]
    best, best_room = -1, -np.inf
    offset = link_lane_offset[link]
    for k in range(first, last + 1):
        tail = lane_tail[offset + k]
        room = link_length_m[link] if tail < 0 else pos_m[tail] - length_m
        if room > best_room:
            best, best_room = offset + k, room
    return best


@njit(cache=True, inline="always")
def lookahead_m(net: NetArrays, p: Params, link: int) -> float:
    """How far ahead a vehicle on ``link`` prepares its lane for the turns to come:
    ``lane_change_lookahead_m``, or ``lane_change_lookahead_s`` of driving at the speed limit
    where that is farther (motorways)."""
    return max(p.lane_change_lookahead_m, p.lane_change_lookahead_s * net.link_speed_mps[link])


@njit(cache=True, inline="always")
def _preimage(first: int, last: int, out_f: int, out_l: int, lo: int, hi: int) -> tuple[int, int]:
    """The lanes ``first..last`` of a movement that lead into to-link lanes ``lo..hi`` (lane
    k enters ``out_f + k - first``, clipped to ``out_f..out_l``), or the one nearest them if
    none does."""
    a, b = -1, -1
    for k in range(first, last + 1):
        o = min(max(out_f + k - first, out_f), out_l)
        if lo <= o <= hi:
            if a < 0:
                a = k
            b = k
    if a >= 0:
        return a, b
    # the lanes enter a contiguous run of to-link lanes, all beside lo..hi
    return (first, first) if hi < out_f else (last, last)


@njit(cache=True, inline="always")
def lanes_wanted(net: NetArrays, fl: Fleet, p: Params, v: int, i: int) -> tuple[int, int, int, int]:
    """The lanes (first, last) of route link ``i`` of vehicle ``v`` that serve its movement at
    the link's end and lead, as far as the lanes allow, into the lanes its later movements
    need: those whose stop line is within :func:`lookahead_m` of the link's entrance (as SUMO's
    strategic lane choice looks ahead along the route); then the lanes (first, last) that
    serve that movement at all. All lanes at the route's end."""
    links, end = fl.route_links, fl.route_end[v]
    link = links[i]
    if i + 1 >= end:
        return 0, net.link_lanes[link] - 1, 0, net.link_lanes[link] - 1
    reach = lookahead_m(net, p, link) - net.link_length_m[link]
    last = i
    while last + 2 < end and reach >= net.link_length_m[links[last + 1]]:
        last += 1
        reach -= net.link_length_m[links[last]]
    lo, hi = -1, -1
    own_lo, own_hi = 0, net.link_lanes[link] - 1
    for j in range(last, i - 1, -1):
        a = links[j]
        m = find_movement(net.link_mov_offsets, net.mov_to_link, a, links[j + 1])
        if m < 0:  # a closed or changed route: nothing to aim for here
            lo, hi = 0, net.link_lanes[a] - 1
            own_lo, own_hi = lo, hi
            continue
        own_lo, own_hi = net.mov_lane_first[m], net.mov_lane_last[m]
        if lo < 0:
            lo, hi = own_lo, own_hi
        else:
            lo, hi = _preimage(own_lo, own_hi, net.mov_out_first[m], net.mov_out_last[m], lo, hi)
    return lo, hi, own_lo, own_hi


@njit(**NO_REFCOUNT)
def lane_append(lane_head, lane_tail, ahead, behind, lane, v: int, slot: int) -> None:
    """Put vehicle ``v`` at the back of lane ``slot``."""
    tail = lane_tail[slot]
    ahead[v] = tail
    behind[v] = -1
    if tail >= 0:
        behind[tail] = v
    else:
        lane_head[slot] = v
    lane_tail[slot] = v
    lane[v] = slot


@njit(**NO_REFCOUNT)
def lane_remove(lane_head, lane_tail, ahead, behind, lane, v: int) -> None:
    """Take vehicle ``v`` out of its lane."""
    slot = lane[v]
    a, b = ahead[v], behind[v]
    if a >= 0:
        behind[a] = b
    else:
        lane_head[slot] = b
    if b >= 0:
        ahead[b] = a
    else:
        lane_tail[slot] = a
    ahead[v] = -1
    behind[v] = -1
    lane[v] = -1


@njit(**NO_REFCOUNT)
def running_add(run_list, run_pos, run_count, v: int) -> None:
    """Add ``v`` to the unordered list of running vehicles."""
    run_pos[v] = run_count[0]
    run_list[run_count[0]] = v
    run_count[0] += 1


@njit(**NO_REFCOUNT)
def running_remove(run_list, run_pos, run_count, v: int) -> None:
    """Remove ``v`` from the list of running vehicles (the last one takes its place)."""
    i = run_pos[v]
    last = run_list[run_count[0] - 1]
    run_list[i] = last
    run_pos[last] = i
    run_pos[v] = -1
    run_count[0] -= 1


@njit(cache=True)  # sorts in place, which needs Numba's runtime
def occupied_lanes(fl: Fleet, slots: np.ndarray) -> int:
    """Write the slots of the lanes holding running vehicles, sorted, to ``slots[:n]`` (one
    entry per lane fits); returns ``n``. A walk over every lane would visit them in this
    order, and most lanes of a city are empty at any moment."""
    n_run = fl.run_count[0]
    n_all = fl.lane_head.shape[0]
    n = 0
    if n_run * 16 > n_all:  # busy network: a scan is cheaper than a sort
        for s in range(n_all):
            if fl.lane_head[s] >= 0:
                slots[n] = s
                n += 1
        return n
    for i in range(n_run):
        v = fl.run_list[i]
        if fl.ahead[v] < 0:
            slots[n] = fl.lane[v]
            n += 1
    slots[:n].sort()
    return n


@njit(**NO_REFCOUNT)
def next_link(route_start, route_end, route_links, route_idx, v: int) -> int:
    """The link after the vehicle's current one, or -1 at the end of its route."""
    i = route_start[v] + route_idx[v] + 1
    return route_links[i] if i < route_end[v] else -1


@njit(cache=True, inline="always")
def entry_lane(net: NetArrays, fl: Fleet, p: Params, v: int, m: int, k_from: int) -> int:
    """The lane slot vehicle ``v``, taking movement ``m`` from lane ``k_from``, enters on its
    to-link: one that serves its next turn if any (else the nearest to them, to change lanes
    from); of those, the lane with most room (up to where its last vehicle would stop,
    braking now), a lane it wants for the turns after (:func:`lanes_wanted`) counting
    ``Params.lane_prefer_m`` more room per lane of difference (at
    ``Params.lane_prefer_speed_mps``, scaled by the square of the speed limit). On a to-link
    long enough to change lanes (``Params.lane_change_room_m`` per lane), a lane for the next
    turn only counts that much more room, so that a full turn lane does not hold up the others
    (the vehicle changes lanes on the way); on a tie, one the movement
    naturally feeds (``mov_out_first..mov_out_last``: the kerb lane for a right turn, the
    leftmost for a left). Confining turns to their natural lanes crowded those lanes into
    gridlock on Baltimore's morning peak (`twin run scenarios/baltimore.toml`: 422 vehicles
    halted 5 min instead of 75). Across a join (``mov_keep_lane``) the natural lane is the
    one matching lane ``k_from`` of the from-link, preferred to any with less than 1 km more
    room."""
    link = net.mov_to_link[m]
    first, last = net.mov_out_first[m], net.mov_out_last[m]
    penalty = 1e-3
    if net.mov_keep_lane[m]:
        first = min(max(first + k_from - net.mov_lane_first[m], first), last)
        last = first
        penalty = 1e3
    i = fl.route_start[v] + fl.route_idx[v] + 1
    want_first, want_last, own_first, own_last = lanes_wanted(net, fl, p, v, i)
    offset = net.link_lane_offset[link]
    prefer_m = p.lane_prefer_m * (net.link_speed_mps[link] / p.lane_prefer_speed_mps) ** 2
    best, best_key = -1, -np.inf
    for k in range(net.link_lanes[link]):
        miss = own_first - k if k < own_first else (k - own_last if k > own_last else 0)
        later = want_first - k if k < want_first else (k - want_last if k > want_last else 0)
        tail = fl.lane_tail[offset + k]
        room = net.link_length_m[link]
        if tail >= 0:  # where the last vehicle would come to a stop: a moving lane has more
            vt = fl.speed_mps[tail]
            room = fl.pos_m[tail] - p.length_m + vt * vt / (2.0 * p.decel_mps2)
        natural = 0.0 if first <= k <= last else penalty
        # first the lanes for the next turn, then most room, those for the turns after ahead
        if miss > 0:
            change_m = miss * p.lane_change_room_m
            miss_cost = 1e6 * miss if net.link_length_m[link] < change_m else change_m
        else:
            miss_cost = 0.0
        key = room - natural - miss_cost - prefer_m * later
        if key > best_key:
            best, best_key = offset + k, key
    return best


@njit(cache=True, inline="always")
def lane_ok_at(net: NetArrays, fl: Fleet, p: Params, v: int) -> bool:
    """Whether ``v``'s lane is one it wants on its current link (:func:`lanes_wanted`)."""
    lo, hi, _, _ = lanes_wanted(net, fl, p, v, fl.route_start[v] + fl.route_idx[v])
    k = fl.lane[v] - net.link_lane_offset[fl.link[v]]
    return lo <= k <= hi


@njit(**NO_REFCOUNT)
def lane_insert_behind(lane_head, lane_tail, ahead, behind, lane, v: int, slot: int, lead: int):
    """Put vehicle ``v`` into lane ``slot`` just behind ``lead`` (-1: at the head)."""
    follow = lane_head[slot] if lead < 0 else behind[lead]
    ahead[v] = lead
    behind[v] = follow
    if lead >= 0:
        behind[lead] = v
    else:
        lane_head[slot] = v
    if follow >= 0:
        ahead[follow] = v
    else:
        lane_tail[slot] = v
    lane[v] = slot


@njit(**NO_REFCOUNT)
def lane_swap(lane_head, lane_tail, ahead, behind, lane, a: int, b: int) -> None:
    """Vehicles ``a`` and ``b``, on different lanes, take each other's place in the lists."""
    sa, sb = lane[a], lane[b]
    aa, ba, ab, bb = ahead[a], behind[a], ahead[b], behind[b]
    ahead[a], behind[a], lane[a] = ab, bb, sb
    ahead[b], behind[b], lane[b] = aa, ba, sa
    if ab >= 0:
        behind[ab] = a
    else:
        lane_head[sb] = a
    if bb >= 0:
        ahead[bb] = a
    else:
        lane_tail[sb] = a
    if aa >= 0:
        behind[aa] = b
    else:
        lane_head[sa] = b
    if ba >= 0:
        ahead[ba] = b
    else:
        lane_tail[sa] = b
