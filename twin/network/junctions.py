"""How the junctions of a compiled RoadNet are controlled: read-only views for reports.

Everything here is derived from the RoadNet's arrays (``node_control``, ``link_sign``,
``link_opposing``, the signal phases), so it applies to real maps and synthetic networks
alike.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from twin.network.road import (
    CONTROL_NAMES,
    CTRL_ALL_WAY_STOP,
    CTRL_PRIORITY,
    CTRL_ROUNDABOUT,
    CTRL_SIGNAL,
    SIGN_GIVE_WAY,
    SIGN_NAMES,
    SIGN_NONE,
    SIGN_STOP,
    TURN_LEFT,
    TURN_RIGHT,
    TURN_THROUGH,
    RoadNet,
)

# left-turn control of an approach (left_turn_control)
LEFT_NOT_SIGNALISED, LEFT_ABSENT, LEFT_PERMISSIVE, LEFT_PROTECTED = -1, 0, 1, 2
LEFT_NAMES = {-1: "not signalised", 0: "no left", 1: "permissive", 2: "protected"}


def movement_phase(net: RoadNet) -> np.ndarray:
    """Per movement, the (global) phase index serving it, or -1 (not signalised)."""
    phase = np.full(net.n_movements, -1, dtype=np.int64)
    for p in range(net.n_phases):
        phase[net.phase_movs[net.phase_mov_offsets[p] : net.phase_mov_offsets[p + 1]]] = p
    return phase


def left_turn_control(net: RoadNet) -> np.ndarray:
    """Per link (approach), how its left turns run at a signal: LEFT_* (int8).

    A left movement is *permissive* when its phase also serves a through or right movement
    of the approach's opposing link (``link_opposing``): it must give way to that stream.
    Otherwise it is *protected* (its own phase, or nothing opposes it). An approach is
    permissive if any of its lefts is; ``LEFT_ABSENT`` when it has no left movement,
    ``LEFT_NOT_SIGNALISED`` when its end node has no signal.
    """
    phase = movement_phase(net)
    out = np.full(net.n_links, LEFT_NOT_SIGNALISED, dtype=np.int8)
    signalised = net.node_signal[net.link_to] >= 0
    for li in np.flatnonzero(signalised):
        movs = net.movements_from(int(li))
        lefts = [m for m in movs if net.mov_turn[m] == TURN_LEFT]
        if not lefts:
            out[li] = LEFT_ABSENT
            continue
        opp = int(net.link_opposing[li])
        conflicting: set[int] = set()
        if opp >= 0:
            conflicting = {
                int(phase[m])
                for m in net.movements_from(opp)
                if net.mov_turn[m] in (TURN_THROUGH, TURN_RIGHT)
            }
        permissive = any(int(phase[m]) in conflicting for m in lefts)
        out[li] = LEFT_PERMISSIVE if permissive else LEFT_PROTECTED
    return out


def signal_left_control(net: RoadNet) -> np.ndarray:
    """Per signal, the weakest left-turn control of its approaches: LEFT_PERMISSIVE if any
    left is permissive, else LEFT_PROTECTED if any left exists, else LEFT_ABSENT."""
    per_link = left_turn_control(net)
    out = np.full(net.n_signals, LEFT_ABSENT, dtype=np.int8)
    for s, node in enumerate(net.signal_node.tolist()):
        values = set(per_link[net.in_links(node)].tolist())
        if LEFT_PERMISSIVE in values:
            out[s] = LEFT_PERMISSIVE
        elif LEFT_PROTECTED in values:
            out[s] = LEFT_PROTECTED
    return out


def junction_summary(net: RoadNet) -> dict[str, Any]:
    """Counts of junctions by control, signed approaches, left-turn control and turn lanes.

    A junction is a node with >= 3 neighbours, or any controlled node; "priority by class"
    counts the unsigned priority junctions by the highest road class arriving there.
    """
    report = net.meta.get("report", {})
    control = net.node_control
    signed = np.zeros(net.n_nodes, dtype=bool)
    np.logical_or.at(signed, net.link_to, net.link_sign != SIGN_NONE)
    neighbours = np.array(
        [
            len(
                set(net.link_from[net.in_links(n)].tolist())
                | set(net.link_to[net.out_links(n)].tolist())
            )
            for n in range(net.n_nodes)
        ],
        dtype=np.int64,
    )
    junction = (neighbours >= 3) | (control != CTRL_PRIORITY)
    priority = junction & (control == CTRL_PRIORITY)
    by_class: Counter = Counter()
    names = net.highway_names
    for node in np.flatnonzero(priority & ~signed):
        top = int(net.link_highway[net.in_links(int(node))].min())  # lower code = higher class
        by_class[names[top]] += 1
    left = signal_left_control(net)
    entries = (net.link_sign == SIGN_GIVE_WAY) & (control[net.link_to] == CTRL_ROUNDABOUT)
    entries &= ~net.link_roundabout
    return {
        "signal": int((control == CTRL_SIGNAL).sum()),
        "all_way_stop": int((control == CTRL_ALL_WAY_STOP).sum()),
        "two_way_stop_or_give_way": int((priority & signed).sum()),
        "roundabout": int((control == CTRL_ROUNDABOUT).sum()),
        "priority_unsigned": int((priority & ~signed).sum()),
        "priority_by_class": dict(sorted(by_class.items(), key=lambda kv: -kv[1])),
        "approaches_stop": int((net.link_sign == SIGN_STOP).sum()),
        "approaches_give_way": int((net.link_sign == SIGN_GIVE_WAY).sum()),
        "roundabout_entries_give_way": int(entries.sum()),
        "roundabout_links": int(net.link_roundabout.sum()),
        "roundabouts_merged": report.get("roundabouts_merged", 0),
        "signals_protected_left": int((left == LEFT_PROTECTED).sum()),
        "signals_permissive_left": int((left == LEFT_PERMISSIVE).sum()),
        "signals_no_left": int((left == LEFT_ABSENT).sum()),
        "links_with_osm_turn_lanes": int(net.link_turn_lanes.sum()),
        "turn_lanes_fallback": report.get("turn_lanes_fallback", {}),
        "sign_nodes_in_file": report.get("sign_nodes", {}),
        "sign_nodes_attached": report.get("signs_attached", 0),
        "sign_nodes_at_signals": report.get("signs_at_signals", 0),
        "sign_nodes_unattributed": report.get("signs_unattributed", 0),
        "sign_nodes_dropped": report.get("signs_dropped", {}),
    }


def junction_table(net: RoadNet) -> list[dict[str, Any]]:
    """One row per controlled junction (signal, all-way stop, roundabout, or a priority
    junction with a sign): OSM id, control, and per approach its way, sign and left-turn
    control."""
    left = left_turn_control(net)
    rows = []
    for node in range(net.n_nodes):
        ins = net.in_links(node)
        ctrl = int(net.node_control[node])
        if ctrl == CTRL_PRIORITY and not (net.link_sign[ins] != SIGN_NONE).any():
            continue
        rows.append(
            {
                "osmid": int(net.node_osmid[node]),
                "lon": round(float(net.node_lon[node]), 6),
                "lat": round(float(net.node_lat[node]), 6),
                "control": CONTROL_NAMES[ctrl],
                "approaches": [
                    {
                        "link": int(li),
                        "way": int(net.link_way_id[li]),
                        "highway": net.highway_names[int(net.link_highway[li])],
                        "sign": SIGN_NAMES[int(net.link_sign[li])],
                        "roundabout": bool(net.link_roundabout[li]),
                        "left": LEFT_NAMES[int(left[li])],
                        "osm_turn_lanes": bool(net.link_turn_lanes[li]),
                    }
                    for li in ins.tolist()
                ],
            }
        )
    return rows
