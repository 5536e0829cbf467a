"""Detector readings for signal control: per link and per movement, from the running fleet.

One pass over the running vehicles counts, per link, the halted vehicles (below the halting
speed, as SUMO's queue detectors), the vehicles within the detector range of the stop line and
their speeds; and per movement, the halted vehicles whose next link is that movement's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.traffic.state import Fleet, NetArrays


class Readings(NamedTuple):
    link_halted: np.ndarray  # float64 per link, halted vehicles
    link_near: np.ndarray  # float64 per link, vehicles within the detector range of the line
    link_near_speed: np.ndarray  # float64 per link, sum of those vehicles' speeds, m/s
    mov_queue: np.ndarray  # float64 per movement, halted vehicles about to take it


def new_readings(n_links: int, n_movs: int) -> Readings:
    return Readings(np.zeros(n_links), np.zeros(n_links), np.zeros(n_links), np.zeros(n_movs))


@njit(cache=True)
def read_detectors(
    net: NetArrays, fl: Fleet, detector_m: float, halt_mps: float, out: Readings
) -> None:
    """Fill ``out`` from the vehicles running now."""
    out.link_halted[:] = 0.0
    out.link_near[:] = 0.0
    out.link_near_speed[:] = 0.0
    out.mov_queue[:] = 0.0
    for i in range(fl.run_count[0]):
        v = fl.run_list[i]
        link = fl.link[v]
        speed = fl.speed_mps[v]
        if net.link_length_m[link] - fl.pos_m[v] <= detector_m:
            out.link_near[link] += 1.0
            out.link_near_speed[link] += speed
        if speed >= halt_mps:
            continue
        out.link_halted[link] += 1.0
        k = fl.route_start[v] + fl.route_idx[v] + 1
        if k < fl.route_end[v]:
            nxt = fl.route_links[k]
            for m in range(net.link_mov_offsets[link], net.link_mov_offsets[link + 1]):
                if net.mov_to_link[m] == nxt:
                    out.mov_queue[m] += 1.0
                    break
