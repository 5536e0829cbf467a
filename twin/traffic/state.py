"""Struct-of-arrays state of the traffic engine, as the Numba kernels read it.

Three bundles, each a NamedTuple of numpy arrays (Numba compiles NamedTuples of arrays into
plain structs, and caches the kernels that take them):

- :class:`NetArrays`: the RoadNet arrays the kernels need, plus lanes as slots
  (lane slot ``link_lane_offset[l] + k`` is lane ``k`` of link ``l``; ``k = 0`` is the kerb lane);
- :class:`Fleet`: one entry per vehicle (one vehicle per trip; ``trip`` names it, since the
  running vehicles are renumbered in lane order, :mod:`twin.traffic.renumber`) and the
  per-lane doubly linked lists that order vehicles along each lane (``lane_head`` is the
  vehicle nearest the stop line);
- :class:`LinkStats`: per-link accumulators, emptied by the engine at every reporting bin.

Positions are of a vehicle's front, in metres from the start of its link.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from twin.network.road import TURN_LEFT, TURN_RIGHT, TURN_U, RoadNet
from twin.network.tags import DRIVABLE_HIGHWAYS, HIGHWAY_CLASSES
from twin.traffic.junctions import (
    GapParams,
    link_yield,
    merges,
    movement_gaps,
    movement_out_lanes,
)

# vehicle states (Fleet.state)
SCHEDULED, WAITING, RUNNING, ARRIVED, UNROUTABLE = 0, 1, 2, 3, 4
# movement signal states (NetArrays.mov_state)
RED, YELLOW, GREEN = 0, 1, 2


class NetArrays(NamedTuple):
    link_from: np.ndarray  # int32
    link_to: np.ndarray  # int32
    link_length_m: np.ndarray  # float64
    link_speed_mps: np.ndarray  # float64
    link_lanes: np.ndarray  # int32
    link_rank: np.ndarray  # int32, road-class priority (higher = major road)
    link_end_bearing_deg: np.ndarray  # float64, heading of the link where it meets its node
    link_closed: np.ndarray  # bool, closed links admit no vehicle from an open link
    link_lane_offset: np.ndarray  # int64 (n_links + 1)
    link_mov_offsets: np.ndarray  # int64 (n_links + 1)
    mov_to_link: np.ndarray  # int32
    mov_lane_first: np.ndarray  # int32
    mov_lane_last: np.ndarray  # int32
    mov_speed_mps: np.ndarray  # float64, speed at which the movement can be driven (turns)
    mov_state: np.ndarray  # int8, RED / YELLOW / GREEN, written by the signal kernel
    node_signal: np.ndarray  # int32, -1 if unsignalised
    node_in_offsets: np.ndarray  # int64
    node_in_links: np.ndarray  # int32
    node_top_rank: np.ndarray  # int32, highest rank among the node's in-links
    node_busy_until_s: np.ndarray  # float64, unsignalised junction reserved until
    node_busy_link: np.ndarray  # int32, the in-link holding the reservation
    node_control: np.ndarray  # int8, CTRL_* (twin.network.road)
    link_yield: np.ndarray  # int8, YIELD_* (twin.traffic.junctions): give way / stop at the end
    link_opposing: np.ndarray  # int32, the opposing approach at link_to (-1 none)
    link_roundabout: np.ndarray  # bool, circulating carriageway of a roundabout
    mov_turn: np.ndarray  # int8, TURN_*
    mov_tc_s: np.ndarray  # float64, critical gap when the movement must accept a gap (0 never)
    mov_tf_s: np.ndarray  # float64, follow-up headway of such a movement (0 none)
    mov_out_first: np.ndarray  # int32, lowest to-link lane the movement enters
    mov_out_last: np.ndarray  # int32, highest to-link lane the movement enters
    mov_merge_major: np.ndarray  # int32, the approach a merging movement joins (-1: none)
    mov_merge_first: np.ndarray  # int32, first lane of that approach it yields to
    mov_merge_last: np.ndarray  # int32, last such lane (< first: yields to none)
    mov_keep_lane: np.ndarray  # bool, a vehicle keeps its lane across (a join, see merges)
    lane_enter_s: np.ndarray  # float64 per lane slot, when a vehicle last crossed its stop line
    link_full_s: np.ndarray  # float64 per link, when an insertion onto it last failed


class Fleet(NamedTuple):
    state: np.ndarray  # int8
    link: np.ndarray  # int32, current link (-1 off network)
    lane: np.ndarray  # int32, current lane slot
    pos_m: np.ndarray  # float64, front position on the link
    speed_mps: np.ndarray  # float64
    v_next_mps: np.ndarray  # float64, speed planned for this step
    target_lane: np.ndarray  # int32, lane slot chosen on the next link (-1 none)
    ahead: np.ndarray  # int32, vehicle in front on the same lane (-1 none)
    behind: np.ndarray  # int32, vehicle behind on the same lane (-1 none)
    route_start: np.ndarray  # int64, the vehicle's route is route_links[start:end]
    route_end: np.ndarray  # int64 (a new route is appended to route_links on re-routing)
    route_links: np.ndarray  # int32
    route_idx: np.ndarray  # int32, position of `link` in the vehicle's route
    depart_plan_s: np.ndarray  # float64
    speed_factor: np.ndarray  # float64, the vehicle's desired speed / the speed limit
    after: np.ndarray  # int32, the vehicle whose arrival this trip waits for (-1 none)
    min_dwell_s: np.ndarray  # float64, least time from that arrival to this departure
    depart_s: np.ndarray  # float64, actual insertion time (nan before)
    arrive_s: np.ndarray  # float64 (nan before)
    dist_m: np.ndarray  # float64, distance driven
    time_loss_s: np.ndarray  # float64, as SUMO: sum of (1 - v / v_max) * dt
    wait_s: np.ndarray  # float64, time at speed < HALT_MPS
    stops: np.ndarray  # int32, number of times it came to a halt
    halted: np.ndarray  # bool, halted in the last step
    stuck_s: np.ndarray  # float64, continuous time halted (for gridlock detection)
    teleports: np.ndarray  # int32
    gridlocked: np.ndarray  # bool, was halted for stuck_limit_s at some point
    run_list: np.ndarray  # int32, the running vehicles, unordered (first run_count[0])
    run_pos: np.ndarray  # int32, position of each vehicle in run_list (-1 if not running)
    run_count: np.ndarray  # int64 (1,), number of running vehicles
    lane_head: np.ndarray  # int32 per lane slot
    lane_tail: np.ndarray  # int32 per lane slot
    lane_link: np.ndarray  # int32 per lane slot
    at_line_s: np.ndarray  # float64, since when it has made its stop at the line (inf: not yet)
    lane_ok: np.ndarray  # bool, its lane serves its next movement (else it changes lanes)
    yield_to: np.ndarray  # int32, a vehicle waiting to change into this one's lane ahead (-1)
    trip: np.ndarray  # int32, the trip the vehicle drives (row of the trip table)


class WaitQueue(NamedTuple):
    """The vehicles waiting to enter, in the order they were released (the first
    ``n_waiting`` rows), with copies of what the insert pass reads of each every step, so
    that it reads them in order instead of at random in the fleet's arrays."""

    vehicle: np.ndarray  # int32
    first_link: np.ndarray  # int32, the first link of the vehicle's route
    after: np.ndarray  # int32, the vehicle's ``Fleet.after`` (a vehicle id, -1 none)


def new_wait_queue(n: int) -> WaitQueue:
    """An empty queue with room for ``n`` vehicles."""
    return WaitQueue(*(np.empty(n, dtype=np.int32) for _ in WaitQueue._fields))


class LinkStats(NamedTuple):
    entries: np.ndarray  # int64, vehicles that entered the link (inserted, crossed, teleported)
    exits: np.ndarray  # int64, vehicles that left the link (flow)
    removed: np.ndarray  # int64, vehicles teleported away from the link
    veh_steps: np.ndarray  # float64, vehicle-seconds on the link (density x length x time)
    speed_sum: np.ndarray  # float64, sum of speed x dt (for the time-mean speed)
    halt_steps: np.ndarray  # float64, halted vehicle-seconds (queue)
    queue_max: np.ndarray  # int64, most halted vehicles seen at once on the link (all lanes)


class Params(NamedTuple):
    """Krauss car-following and junction parameters (SUMO's passenger-car defaults)."""

    length_m: float = 5.0  # SUMO vType default length
    min_gap_m: float = 2.5  # SUMO vType default minGap
    accel_mps2: float = 2.6  # SUMO passenger accel
    decel_mps2: float = 4.5  # SUMO passenger decel
    sigma: float = 0.5  # SUMO Krauss driver imperfection (dawdling)
    speed_dev: float = 0.1  # spread of the speed factor (SUMO's default vType: normc(1, 0.1))
    tau_s: float = 1.0  # SUMO Krauss reaction time / desired headway
    halt_mps: float = 0.1  # SUMO's halting threshold (waiting time, stops)
    junction_clear_s: float = 2.0  # equal-rank junction reservation (first come, first served)
    # m/s, a merge's major-road traffic slower than this takes turns with the merging road (a
    # zipper, as StVO section 7(4) asks and SUMO's zipper junctions model; 30 km/h: judgement),
    # and so does a minor road at a junction without signals
    zipper_mps: float = 8.33
    all_way_clear_s: float = 2.0  # all-way stop: junction held after each crossing (judgement)
    at_line_m: float = 15.0  # m, a stop made this close to the line counts (first two in line)
    stop_mps: float = 1.5  # m/s, slower than this counts as a stop (rolling stop, judgement)
    # a vehicle gets into a lane for its next turns from this far before the stop line (m),
    # or this many seconds of driving at the speed limit where that is farther (judgement)
    lane_change_lookahead_m: float = 200.0
    lane_change_lookahead_s: float = 15.0
    # a vehicle waiting at its line to give way grows impatient over this many seconds and
    # then takes gaps the other can brake for (SUMO's --time-to-impatience default)
    impatience_s: float = 180.0
    # entering a link, a lane it wants for the turns after its next counts as this much more
    # room per lane of difference (m) at lane_prefer_speed_mps, scaled by the square of the
    # link's speed limit over it: changing lanes later is harder at speed, where the gaps a
    # change needs grow with speed (judgement; 50 m at 100 km/h gets motorway exit traffic
    # into the ramp lane, 12.5 m at 50 km/h keeps urban lanes evenly used)
    lane_prefer_m: float = 50.0
    lane_prefer_speed_mps: float = 27.78
    # entering a link this long per lane it must cross for its next turn (m), a vehicle may
    # take a lane with that much more room and change on the way (judgement)
    lane_change_room_m: float = 200.0
    # a slow vehicle in a lane it wants moves to a neighbouring one it also wants where it has
    # this much more room ahead than behind its own leader (m): it joins the shorter queue,
    # as drivers fill a lane that opens beside them (judgement)
    shorter_queue_m: float = 20.0
    # ... on roads with a speed limit of at least this (m/s; 60 km/h: motorways, their ramps
    # and fast arterials, where vehicles keep their lanes early; judgement)
    shorter_queue_min_mps: float = 16.6
    # where a movement narrows (more lanes in than out), a lane head standing at its line
    # this long goes before lanes served since (s; judgement: a turn for every head that
    # stops cost a 4-into-2 fork a fifth of its flow)
    narrow_turn_s: float = 20.0
    stuck_limit_s: float = 300.0  # halted this long = gridlocked (SUMO --time-to-teleport)
    teleport: bool = True  # move gridlocked vehicles on along their route (as SUMO does)


def net_arrays(net: RoadNet, gaps: GapParams | None = None) -> NetArrays:
    """Kernel view of a RoadNet (lanes laid out as slots; all links open; all green), with
    who yields to whom and the gap-acceptance parameters (``gaps``, defaults sourced in
    :class:`twin.traffic.junctions.GapParams`)."""
    lanes = net.link_lanes.astype(np.int32)
    lane_offset = np.zeros(net.n_links + 1, dtype=np.int64)
    lane_offset[1:] = np.cumsum(lanes)
    rank_of = np.array([DRIVABLE_HIGHWAYS.get(c, 0) for c in HIGHWAY_CLASSES], dtype=np.int32)
    names = net.highway_names
    code_rank = np.array(
        [rank_of[HIGHWAY_CLASSES.index(n)] if n in HIGHWAY_CLASSES else 0 for n in names],
        dtype=np.int32,
    )
    link_rank = code_rank[net.link_highway]
    top = np.zeros(net.n_nodes, dtype=np.int32)
    np.maximum.at(top, net.link_to, link_rank)
    yields = link_yield(net, link_rank, top)
    gaps = gaps or GapParams()
    tc_s, tf_s = movement_gaps(net, yields, gaps)
    merge = merges(net, link_rank)
    tc_s[merge.major >= 0] = gaps.merge_gap_s
    tf_s[merge.major >= 0] = 0.0
    out_first, out_last = movement_out_lanes(net)
    out_first = np.where(merge.keep, merge.out_first, out_first).astype(np.int32)
    out_last = np.where(merge.keep, merge.out_last, out_last).astype(np.int32)
    return NetArrays(
        link_from=net.link_from.astype(np.int32),
        link_to=net.link_to.astype(np.int32),
        link_length_m=net.link_length_m.astype(np.float64),
        link_speed_mps=net.link_speed_mps.astype(np.float64),
        link_lanes=lanes,
        link_rank=link_rank,
        link_end_bearing_deg=end_bearings_deg(net),
        link_closed=np.zeros(net.n_links, dtype=np.bool_),
        link_lane_offset=lane_offset,
        link_mov_offsets=net.link_mov_offsets.astype(np.int64),
        mov_to_link=net.mov_to_link.astype(np.int32),
        mov_lane_first=net.mov_lane_first.astype(np.int32),
        mov_lane_last=net.mov_lane_last.astype(np.int32),
        mov_speed_mps=turn_speeds_mps(net.mov_turn),
        mov_state=np.full(net.n_movements, GREEN, dtype=np.int8),
        node_signal=net.node_signal.astype(np.int32),
        node_in_offsets=net.node_in_offsets.astype(np.int64),
        node_in_links=net.node_in_links.astype(np.int32),
        node_top_rank=top,
        node_busy_until_s=np.full(net.n_nodes, -np.inf),
        node_busy_link=np.full(net.n_nodes, -1, dtype=np.int32),
        node_control=net.node_control.astype(np.int8),
        link_yield=yields,
        link_opposing=net.link_opposing.astype(np.int32),
        link_roundabout=net.link_roundabout.astype(np.bool_),
        mov_turn=net.mov_turn.astype(np.int8),
        mov_tc_s=tc_s,
        mov_tf_s=tf_s,
        mov_out_first=out_first,
        mov_out_last=out_last,
        mov_merge_major=merge.major,
        mov_merge_first=merge.first,
        mov_merge_last=merge.last,
        mov_keep_lane=merge.keep,
        lane_enter_s=np.full(int(lane_offset[-1]), -np.inf),
        link_full_s=np.full(net.n_links, -np.inf),
    )


# Turn speeds: v = sqrt(a_lat * r), with SUMO's lateral-acceleration limit for turns
# (netconvert --junctions.limit-turn-speed, default 5.5 m/s^2) and typical urban corner radii
# (engineering judgement): U-turn 5 m, left 15 m, right 8 m; through movements are not limited.
LATERAL_ACCEL_MPS2 = 5.5
TURN_RADIUS_M = {TURN_U: 5.0, TURN_LEFT: 15.0, TURN_RIGHT: 8.0}


def turn_speeds_mps(mov_turn: np.ndarray) -> np.ndarray:
    """The speed limit of each movement from its turn type (inf for through movements)."""
    speed = np.full(len(mov_turn), np.inf)
    for turn, radius_m in TURN_RADIUS_M.items():
        speed[mov_turn == turn] = np.sqrt(LATERAL_ACCEL_MPS2 * radius_m)
    return speed


def end_bearings_deg(net: RoadNet) -> np.ndarray:
    """Compass heading of each link over its last segment, as it arrives at its node."""
    last = net.link_geom_offsets[1:] - 1
    dx = net.link_geom_xy_m[last, 0] - net.link_geom_xy_m[last - 1, 0]
    dy = net.link_geom_xy_m[last, 1] - net.link_geom_xy_m[last - 1, 1]
    return np.degrees(np.arctan2(dx, dy)) % 360.0


def new_fleet(
    route_offsets: np.ndarray,
    route_links: np.ndarray,
    depart_plan_s: np.ndarray,
    n_lane_slots: int,
    lane_link: np.ndarray,
    after: np.ndarray | None = None,
    min_dwell_s: np.ndarray | None = None,
    speed_factor: np.ndarray | None = None,
) -> Fleet:
    """A fleet of scheduled vehicles, one per route (an empty route makes it UNROUTABLE).

    ``after[v]`` is the vehicle (fleet index) whose arrival ``v`` waits for before it enters
    the network, at least ``min_dwell_s[v]`` seconds after it (trip chaining); -1 and 0, the
    defaults, for none. ``speed_factor[v]`` scales the speed limits for ``v`` (default 1).
    """
    n = len(depart_plan_s)
    state = np.where(np.diff(route_offsets) > 0, SCHEDULED, UNROUTABLE).astype(np.int8)
    nan = np.full(n, np.nan)
    return Fleet(
        state=state,
        link=np.full(n, -1, dtype=np.int32),
        lane=np.full(n, -1, dtype=np.int32),
        pos_m=np.zeros(n),
        speed_mps=np.zeros(n),
        v_next_mps=np.zeros(n),
        target_lane=np.full(n, -1, dtype=np.int32),
        ahead=np.full(n, -1, dtype=np.int32),
        behind=np.full(n, -1, dtype=np.int32),
        route_start=route_offsets[:-1].astype(np.int64),
        route_end=route_offsets[1:].astype(np.int64),
        route_links=route_links.astype(np.int32),
        route_idx=np.zeros(n, dtype=np.int32),
        depart_plan_s=depart_plan_s.astype(np.float64),
        speed_factor=np.ones(n) if speed_factor is None else speed_factor.astype(np.float64),
        after=np.full(n, -1, dtype=np.int32) if after is None else after.astype(np.int32),
        min_dwell_s=np.zeros(n) if min_dwell_s is None else min_dwell_s.astype(np.float64),
        depart_s=nan.copy(),
        arrive_s=nan.copy(),
        dist_m=np.zeros(n),
        time_loss_s=np.zeros(n),
        wait_s=np.zeros(n),
        stops=np.zeros(n, dtype=np.int32),
        halted=np.zeros(n, dtype=np.bool_),
        stuck_s=np.zeros(n),
        teleports=np.zeros(n, dtype=np.int32),
        gridlocked=np.zeros(n, dtype=np.bool_),
        run_list=np.zeros(n, dtype=np.int32),
        run_pos=np.full(n, -1, dtype=np.int32),
        run_count=np.zeros(1, dtype=np.int64),
        lane_head=np.full(n_lane_slots, -1, dtype=np.int32),
        lane_tail=np.full(n_lane_slots, -1, dtype=np.int32),
        lane_link=lane_link.astype(np.int32),
        at_line_s=np.full(n, np.inf),
        lane_ok=np.ones(n, dtype=np.bool_),
        yield_to=np.full(n, -1, dtype=np.int32),
        trip=np.arange(n, dtype=np.int32),
    )


def lane_links(net_a: NetArrays) -> np.ndarray:
    """The link of every lane slot."""
    return np.repeat(np.arange(len(net_a.link_lanes), dtype=np.int32), net_a.link_lanes)


def new_link_stats(n_links: int) -> LinkStats:
    return LinkStats(
        entries=np.zeros(n_links, dtype=np.int64),
        exits=np.zeros(n_links, dtype=np.int64),
        removed=np.zeros(n_links, dtype=np.int64),
        veh_steps=np.zeros(n_links),
        speed_sum=np.zeros(n_links),
        halt_steps=np.zeros(n_links),
        queue_max=np.zeros(n_links, dtype=np.int64),
    )
