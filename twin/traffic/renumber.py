"""Renumber the running fleet in lane order, so the kernel's lane-by-lane passes read vehicle
state from memory in order instead of at random.

Vehicles are numbered by trip when the fleet is built; the kernel visits them lane by lane,
so at a large fleet nearly every read of vehicle state misses the cache. :func:`renumber`
gives the running vehicles the ids they already hold, sorted, in the order the passes visit
them (lane slots ascending, each lane from its head back). Only running vehicles move: a
scheduled or waiting vehicle keeps its id, so the release order and the waiting queue stay
valid (the queue's copies of the leaders' ids are remapped with ``Fleet.after``). Results
do not change: the passes visit lanes, not ids; dawdling draws on the trip (``Fleet.trip``),
not on the id; the lane-change pass keeps ``run_list``'s order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.traffic.kernel_math import NO_REFCOUNT
from twin.traffic.state import Fleet

# per-vehicle Fleet arrays whose rows move with the vehicle
_ROWS = tuple(
    f
    for f in Fleet._fields
    if f not in ("route_links", "run_list", "run_count", "lane_head", "lane_tail", "lane_link")
)
# arrays whose values are vehicle ids (-1: none)
_IDS_PER_VEHICLE = ("ahead", "behind", "after", "yield_to")
_IDS_PER_LANE = ("lane_head", "lane_tail")


@njit(**NO_REFCOUNT)
def lane_order(lane_head: np.ndarray, behind: np.ndarray, out: np.ndarray) -> int:
    """The vehicles on the lanes, lane slots ascending, each lane from its head back, into
    ``out``; returns how many."""
    n = 0
    for s in range(lane_head.shape[0]):
        v = lane_head[s]
        while v >= 0:
            out[n] = v
            n += 1
            v = behind[v]
    return n


def renumber(
    fl: Fleet, per_vehicle: list[np.ndarray], vehicle_ids: Sequence[np.ndarray] = ()
) -> np.ndarray | None:
    """Renumber the running vehicles of ``fl`` in place (and the rows of the other
    ``per_vehicle`` arrays with them, and the values of the ``vehicle_ids`` arrays, ids or
    -1); returns the ids they now hold (sorted), or None if nothing moved."""
    n_run = int(fl.run_count[0])
    if n_run < 2:
        return None
    visit = np.empty(n_run, dtype=np.int32)
    if lane_order(fl.lane_head, fl.behind, visit) != n_run:
        raise AssertionError("running vehicles and lane lists disagree")
    ids = np.sort(visit)
    if np.array_equal(ids, visit):
        return None
    new_of = np.arange(len(fl.state), dtype=np.int32)
    new_of[visit] = ids
    for arr in [getattr(fl, f) for f in _ROWS] + per_vehicle:
        arr[ids] = arr[visit]
    for arr in [getattr(fl, f) for f in _IDS_PER_VEHICLE + _IDS_PER_LANE] + list(vehicle_ids):
        has = arr >= 0
        arr[has] = new_of[arr[has]]
    run = fl.run_list[:n_run]
    run[:] = new_of[run]
    return ids
