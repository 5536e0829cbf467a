"""Small numeric helpers of the traffic kernels: the counter-based random number and Krauss'
safe speed."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)

#: Numba options of the kernels that allocate nothing: no reference counting (Numba's NRT
#: off). Each read of an array field of a NamedTuple bundle inside a branchy loop otherwise
#: costs an atomic incref/decref pair, which was ~40 % of the loop time at light demand
#: (perf on baltimore, issue 9). Such a kernel must not allocate or return an array.
NO_REFCOUNT = {"cache": True, "_nrt": False}

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
