"""Time-of-day profiles of trip departures: 24 hourly weights, and sampling from them.

A profile gives the relative number of trips that *start* in each clock hour
(index 0 = 00:00-00:59, ..., 23 = 23:00-23:59); within an hour departures are uniform.
Only the shape matters: weights are normalised to shares before use.

Shipped profiles:

- ``"weekday"``: vehicle trips by start hour on a Wednesday, 2001 US National Household
  Travel Survey, as tabulated by FHWA, *Highway Statistics 2006*, Table NT-3 "Number of
  Vehicle Trips by Time of Day" (https://www.fhwa.dot.gov/policy/ohim/hs06/htm/nt3.cfm).
  The table's counts are stored as published; as shares (percent, rounded) they are::

      00  0.29   01  0.16   02  0.16   03  0.07   04  0.49   05  1.26
      06  3.17   07  7.68   08  5.91   09  4.53   10  5.13   11  5.85
      12  6.25   13  5.98   14  6.55   15  7.67   16  7.81   17  8.64
      18  7.39   19  5.56   20  4.07   21  3.08   22  1.54   23  0.75

  A morning peak at 07-08 and the day's peak at 17-18. It is a national US average from a
  single weekday of one survey, so treat it as approximate; pass your own 24 weights for a
  local count.
- ``"saturday"``: the Saturday column of the same table (flat midday plateau, no AM peak).
- ``"flat"``: every hour the same.
"""

from __future__ import annotations

import numpy as np

from twin.errors import TwinError

HOURS_PER_DAY = 24
S_PER_HOUR = 3600.0
S_PER_DAY = HOURS_PER_DAY * S_PER_HOUR

# FHWA Highway Statistics 2006, Table NT-3 (base: 2001 NHTS), vehicle trips by start hour.
NHTS2001_WEDNESDAY = (
    147, 82, 83, 36, 249, 639, 1607, 3893, 2994, 2294, 2600, 2967,
    3166, 3032, 3321, 3888, 3959, 4377, 3746, 2819, 2061, 1559, 783, 381,
)  # fmt: skip
NHTS2001_SATURDAY = (
    432, 185, 117, 62, 185, 270, 558, 1147, 2088, 2951, 4096, 4420,
    4561, 4088, 4256, 4037, 3823, 3536, 3626, 2665, 2206, 1925, 1069, 772,
)  # fmt: skip

PROFILES: dict[str, tuple[float, ...]] = {
    "weekday": tuple(float(v) for v in NHTS2001_WEDNESDAY),
    "saturday": tuple(float(v) for v in NHTS2001_SATURDAY),
    "flat": (1.0,) * HOURS_PER_DAY,
}


def hourly_shares(profile: str | np.ndarray) -> np.ndarray:
    """A profile (a name in PROFILES, or 24 non-negative weights) as 24 shares summing to 1."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            known = ", ".join(sorted(PROFILES))
            raise TwinError(f"unknown demand profile {profile!r}; expected one of: {known}")
        weights = np.asarray(PROFILES[profile], dtype=np.float64)
    else:
        weights = np.asarray(profile, dtype=np.float64)
        if weights.shape != (HOURS_PER_DAY,):
            raise TwinError(
                f"a demand profile needs {HOURS_PER_DAY} hourly weights, got shape {weights.shape}"
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise TwinError("demand profile weights must be finite, >= 0, and not all zero")
    return weights / weights.sum()


def window_segments(
    shares: np.ndarray, start_s: float, end_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut [start_s, end_s) at clock hours: (segment start s, length s, expected share).

    The profile repeats every day, so a window may run past midnight (e.g. 22:00-30:00).
    """
    first_h = int(np.floor(start_s / S_PER_HOUR))
    last_h = int(np.ceil(end_s / S_PER_HOUR))
    edges = np.arange(first_h, last_h + 1, dtype=np.float64) * S_PER_HOUR
    lo = np.maximum(edges[:-1], start_s)
    hi = np.minimum(edges[1:], end_s)
    hours = np.arange(first_h, last_h) % HOURS_PER_DAY
    length_s = hi - lo
    mass = shares[hours] * length_s / S_PER_HOUR
    return lo, length_s, mass


def sample_departures_s(
    rng: np.random.Generator, n: int, profile: str | np.ndarray, start_s: float, end_s: float
) -> np.ndarray:
    """``n`` departure times in [start_s, end_s), drawn from the profile, sorted ascending."""
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or start_s < 0 or end_s <= start_s:
        window = f"start_s={start_s}, end_s={end_s}"
        raise TwinError(f"demand window must satisfy 0 <= start_s < end_s, got {window}")
    lo, length_s, mass = window_segments(hourly_shares(profile), start_s, end_s)
    if mass.sum() <= 0:
        raise TwinError(
            f"the demand profile has no trips between {start_s} s and {end_s} s; "
            "widen the window or change the profile"
        )
    cdf = np.cumsum(mass)
    cdf /= cdf[-1]
    seg = np.searchsorted(cdf, rng.random(n), side="right")
    seg = np.minimum(seg, len(cdf) - 1)
    depart_s = lo[seg] + rng.random(n) * length_s[seg]
    # guard the half-open window against rounding at its end
    depart_s = np.minimum(depart_s, np.nextafter(end_s, -np.inf))
    depart_s.sort()
    return depart_s
