"""Who gives way to whom at each junction, and the gap-acceptance parameters of each movement.

Computed once per network from the RoadNet's junction control, approach signs, road classes
and turn types, for the kernels (:mod:`twin.traffic.conflicts`):

- ``link_yield``: how traffic arriving on a link yields at its end node: not at all (a major
  approach), give way, or stop first. Mapped signs (``highway=stop|give_way``, roundabout
  entries) decide where a node has them; elsewhere the road class does (a lower class than the
  node's highest gives way, with ``class_gap_s``; equal classes are first come, first served).
- ``mov_tc_s`` / ``mov_tf_s``: critical gap and follow-up headway of a movement when it must
  accept a gap: a permissive left at a signal, a minor-street movement at a two-way stop or
  give-way, a roundabout entry, a left turn from the major road.
- ``mov_out_first`` / ``mov_out_last``: the lanes of the to-link a movement enters: a right
  turn the rightmost lanes, a left or U-turn the leftmost, through traffic any lane.
- merges (:func:`merges`): where two roads join into one at an unmapped priority node (an
  on-ramp), the minor one yields only to the major road's lanes it merges into, with
  ``merge_gap_s``, and not at all where the joined road has a lane for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from twin.network.road import (
    CTRL_ALL_WAY_STOP,
    CTRL_PRIORITY,
    CTRL_ROUNDABOUT,
    CTRL_SIGNAL,
    SIGN_GIVE_WAY,
    SIGN_NONE,
    SIGN_STOP,
    TURN_LEFT,
    TURN_RIGHT,
    TURN_THROUGH,
    TURN_U,
    RoadNet,
)

# how an approach yields at its end node (NetArrays.link_yield)
YIELD_NONE, YIELD_GIVE_WAY, YIELD_STOP = 0, 1, 2


@dataclass(frozen=True)
class GapParams:
    """Critical gaps ``tc`` and follow-up headways ``tf`` (s) of gap acceptance, by situation.

    A vehicle that must give way enters when the next conflicting vehicle is at least ``tc``
    away; queued vehicles follow each other at ``tf`` at the soonest. With random conflicting
    arrivals this gives Harders' capacity ``q e^(-q tc) / (1 - e^(-q tf))``, the model behind
    the HCM's gap-acceptance chapters.
    """

    # permitted left turn at a signal: HCM 6th ed., ch. 31 (permitted left-turn saturation
    # flow, critical headway 4.5 s, follow-up headway 2.5 s)
    permissive_left_tc_s: float = 4.5
    permissive_left_tf_s: float = 2.5
    # two-way stop, base values for a two-lane major road: HCM 6th ed., Exhibit 20-11 (tc) and
    # Exhibit 20-12 (tf). Movements: left from major (rank 2), right / through / left from minor
    major_left_tc_s: float = 4.1
    major_left_tf_s: float = 2.2
    minor_right_tc_s: float = 6.2
    minor_right_tf_s: float = 3.3
    minor_through_tc_s: float = 6.5
    minor_through_tf_s: float = 4.0
    minor_left_tc_s: float = 7.1
    minor_left_tf_s: float = 3.5
    # single-lane roundabout entry: HCM 6th ed., eq. 22-1, c = 1380 e^(-1.02e-3 v_c), which
    # is Siegloch's c = 3600/tf e^(-v_c (tc - tf/2) / 3600) with tf = 3600/1380 s and
    # tc = 3.672 s + tf/2
    roundabout_tf_s: float = 3600.0 / 1380.0
    roundabout_tc_s: float = 1.02e-3 * 3600.0 + 1800.0 / 1380.0
    # unmapped junction, lower road class giving way to a higher one (no sign): twin's
    # class-based priority, kept as before (HCM 2010 ch. 19 critical gaps 4-7 s: lower end)
    class_gap_s: float = 4.0
    # merging into the major road's nearest lane(s) at a join (an on-ramp): a lag in that
    # lane only, judged as the merging car reaches the line (engineering judgement, between
    # the 1-2 s time headways accepted when merging and the 4 s class gap; the HCM (6th ed.,
    # ch. 14) gives a ramp merge the capacity of the road downstream, not a gap model)
    merge_gap_s: float = 2.0


def link_yield(net: RoadNet, link_rank: np.ndarray, top_rank: np.ndarray) -> np.ndarray:
    """YIELD_* per link (see the module docstring), from the links' road-class ranks and each
    node's highest; signalised nodes yield only by signal."""
    node = net.link_to
    control = net.node_control[node]
    signs_at = np.zeros(net.n_nodes, dtype=bool)
    signs_at[node[net.link_sign != SIGN_NONE]] = True
    out = np.full(net.n_links, YIELD_NONE, dtype=np.int8)
    by_class = ~signs_at[node] & (link_rank < top_rank[node])
    out[by_class] = YIELD_GIVE_WAY
    out[net.link_sign == SIGN_GIVE_WAY] = YIELD_GIVE_WAY
    out[net.link_sign == SIGN_STOP] = YIELD_STOP
    out[control == CTRL_ALL_WAY_STOP] = YIELD_STOP
    out[control == CTRL_SIGNAL] = YIELD_NONE
    return out


def movement_gaps(
    net: RoadNet, yields: np.ndarray, gaps: GapParams
) -> tuple[np.ndarray, np.ndarray]:
    """(critical gap, follow-up headway) in s per movement; 0 where it never accepts gaps."""
    tc = np.zeros(net.n_movements)
    tf = np.zeros(net.n_movements)
    frm = net.mov_from_link
    turn = net.mov_turn
    control = net.node_control[net.link_to[frm]]
    left = (turn == TURN_LEFT) | (turn == TURN_U)
    signal = control == CTRL_SIGNAL
    y = yields[frm]
    mapped = (net.link_sign[frm] != SIGN_NONE) | (control == CTRL_ROUNDABOUT)

    def put(mask: np.ndarray, tc_s: float, tf_s: float) -> None:
        tc[mask] = tc_s
        tf[mask] = tf_s

    put(signal & left, gaps.permissive_left_tc_s, gaps.permissive_left_tf_s)
    major_left = (control == CTRL_PRIORITY) & (y == YIELD_NONE) & left
    put(major_left, gaps.major_left_tc_s, gaps.major_left_tf_s)
    minor = ~signal & (y != YIELD_NONE) & (control != CTRL_ALL_WAY_STOP)
    put(minor & ~mapped, gaps.class_gap_s, 0.0)
    put(minor & mapped & (turn == TURN_RIGHT), gaps.minor_right_tc_s, gaps.minor_right_tf_s)
    put(minor & mapped & (turn == TURN_THROUGH), gaps.minor_through_tc_s, gaps.minor_through_tf_s)
    put(minor & mapped & left, gaps.minor_left_tc_s, gaps.minor_left_tf_s)
    entry = minor & (control == CTRL_ROUNDABOUT)
    put(entry, gaps.roundabout_tc_s, gaps.roundabout_tf_s)
    return tc, tf


def movement_out_lanes(net: RoadNet) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) lane of the to-link each movement may enter (lane 0 is the kerb lane):
    as many lanes as the movement uses on its from-link, on the right for a right turn, on
    the left for a left or U-turn; through traffic may enter any lane."""
    n_out = net.link_lanes[net.mov_to_link].astype(np.int32)
    n_in = (net.mov_lane_last - net.mov_lane_first + 1).astype(np.int32)
    width = np.minimum(n_in, n_out)
    first = np.zeros(net.n_movements, dtype=np.int32)
    last = n_out - 1
    right = net.mov_turn == TURN_RIGHT
    left = (net.mov_turn == TURN_LEFT) | (net.mov_turn == TURN_U)
    last = np.where(right, width - 1, last).astype(np.int32)
    first = np.where(left, n_out - width, first).astype(np.int32)
    return first, last


class Merges(NamedTuple):
    """Per movement: the major approach a merging movement joins (-1: not a merge), the lanes
    of that approach whose traffic it yields to (``first > last``: none), and, for every
    movement of a join, the to-link lanes it keeps to (``keep``: a vehicle stays in its lane
    across the join, as on a motorway; elsewhere -1 and the usual rule)."""

    major: np.ndarray  # int32, link
    first: np.ndarray  # int32
    last: np.ndarray  # int32
    keep: np.ndarray  # bool
    out_first: np.ndarray  # int32
    out_last: np.ndarray  # int32


def merges(net: RoadNet, link_rank: np.ndarray) -> Merges:
    """Joins at unmapped priority nodes: every approach of the node drives straight on
    (``TURN_THROUGH``) into the same link (an on-ramp). The major one (higher class, then more
    lanes, then the lower link id) drives on in its lanes; the others take the joined road's
    lanes on their side (the kerb lanes when they join from the right). Where the joined road
    has a lane for each, nobody yields; else each other approach yields to the major's lanes
    on its side, as many as the joined road lacks (at most all the major's). Mapped signs
    decide where there are any."""
    n = net.n_movements
    major = np.full(n, -1, dtype=np.int32)
    first = np.zeros(n, dtype=np.int32)
    last = np.full(n, -1, dtype=np.int32)
    keep = np.zeros(n, dtype=np.bool_)
    out_first = np.full(n, -1, dtype=np.int32)
    out_last = np.full(n, -1, dtype=np.int32)
    frm, to, turn, angle = net.mov_from_link, net.mov_to_link, net.mov_turn, net.mov_angle_deg
    node_of = net.link_to[frm]
    lanes_of = (net.mov_lane_last - net.mov_lane_first + 1).astype(np.int64)
    ok = (net.node_control[node_of] == CTRL_PRIORITY) & (turn == TURN_THROUGH)
    ok &= net.link_sign[frm] == SIGN_NONE
    n_in = np.diff(net.node_in_offsets)
    by_to: dict[int, list[int]] = {}
    for m in np.nonzero(ok)[0]:
        by_to.setdefault(int(to[m]), []).append(int(m))
    for out_link, movs in by_to.items():
        if len(movs) < 2 or len(movs) != n_in[node_of[movs[0]]]:
            continue
        movs.sort(key=lambda m: (-link_rank[frm[m]], -lanes_of[m], frm[m]))
        a, others = movs[0], movs[1:]
        top = int(net.link_lanes[out_link]) - 1
        short = int(lanes_of[movs].sum()) - (top + 1)
        n_yield = min(max(short, 0), int(lanes_of[a]))
        right = sorted((b for b in others if angle[b] >= angle[a]), key=lambda b: -angle[b])
        left = sorted((b for b in others if angle[b] < angle[a]), key=lambda b: angle[b])
        keep[movs] = True
        at = 0
        for b in right:  # the rightmost first, on the kerb lanes
            out_first[b], out_last[b] = min(at, top), min(at + int(lanes_of[b]) - 1, top)
            at += int(lanes_of[b])
            major[b] = frm[a]
            first[b] = net.mov_lane_first[a]
            last[b] = first[b] + n_yield - 1
        r_lanes, at = at, top
        for b in left:
            out_first[b], out_last[b] = max(at - int(lanes_of[b]) + 1, 0), max(at, 0)
            at -= int(lanes_of[b])
            major[b] = frm[a]
            last[b] = net.mov_lane_last[a]
            first[b] = last[b] - n_yield + 1
        if short <= 0:  # a lane each: the major keeps to the lanes between the others'
            out_first[a], out_last[a] = r_lanes, r_lanes + int(lanes_of[a]) - 1
        else:  # the others squeeze in: the major keeps its lane numbers
            out_first[a], out_last[a] = 0, top
    return Merges(major, first, last, keep, out_first, out_last)
