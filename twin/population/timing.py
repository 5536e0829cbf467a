"""When tours leave home: commutes from the census, the other tours filling the day's profile.

- **Commutes** leave home at times drawn from the US Census 2000 distribution of the time
  workers leave home to go to work (SF3 table P34, United States; the 16:00-23:59 bin, whose
  workers come home after midnight, is left out of a one-day plan), uniform within each bin
  and shifted by ``am_peak - 07:30``.
- **The other tours** (shopping, errands, leisure) leave at the hours that make all the
  households' driven legs together follow the NHTS weekday trip-start profile
  (twin/traffic/profiles.py): each hour gets what the commutes and school runs leave of it
  (none where they alone exceed the profile, as at 07:00-07:59 with the default plans), so
  these times depend on the whole population's commutes. The fit is on the tours as planned,
  before stops beyond the map's edge lengthen them and tours sharing a car are moved apart.
  Drawing them from that profile directly, as before, counted the commute peaks twice: the
  busiest morning hour carried 10.5 % of Baltimore's trips against NHTS's 7.7 %, and the
  midday hours 3 % against 5-6.5 %.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin.traffic.profiles import hourly_shares

H = 3600.0

# US Census 2000, SF3 table P34 "Time leaving home to go to work", United States, % of
# workers 16 years and over (bins from 00:00; 16:00-23:59, 6.6 %, and work at home left out)
COMMUTE_BIN_EDGES_H = (0.0, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 10.0, 11.0, 12.0, 16.0)
COMMUTE_BIN_PCT = (3.3, 2.9, 4.4, 8.4, 10.4, 14.5, 15.3, 10.5, 5.1, 5.3, 2.2, 1.1, 6.6)
CENSUS_PEAK_S = 7.5 * H  # the distribution's busiest half hours meet at 07:30
FIT_ROUNDS = 8


def commute_departures_s(
    u_bin: np.ndarray, u_in: np.ndarray, am_peak_s: float, latest_s: float = 16 * H
) -> np.ndarray:
    """Times leaving home for work from two uniform draws each (bin, place in the bin).

    The bins move by ``am_peak_s - 07:30``; a bin moved past 00:00 or ``latest_s`` is cut
    there (its share stays, spread over what is left of it)."""
    edges = np.clip(np.asarray(COMMUTE_BIN_EDGES_H) * H + (am_peak_s - CENSUS_PEAK_S), 0, latest_s)
    k = _pick(np.asarray(COMMUTE_BIN_PCT), u_bin)
    return edges[k] + u_in * (edges[k + 1] - edges[k])


def fill_profile_times(
    fixed_s: np.ndarray,
    legs_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    u_hour: np.ndarray,
    u_in: np.ndarray,
    window_s: tuple[float, float],
) -> np.ndarray:
    """Departure times of tours that fill the NHTS weekday profile around fixed legs.

    ``fixed_s``: departure times of the driven legs already planned (commutes, school runs).
    ``legs_of(t)`` gives the tours' legs for wanted departures ``t`` (their times and their
    chance of being driven; a tour may move when its car is out). The hours of ``window_s``
    get weights such that the fixed legs plus these legs follow the profile as closely as the
    window allows (iterative proportional fitting, ``FIT_ROUNDS`` rounds on the same draws).
    """
    shares = hourly_shares("weekday")
    lo_h, hi_h = int(window_s[0] // H), int(np.ceil(window_s[1] / H))
    hours = np.arange(lo_h, hi_h)
    fixed = np.bincount((fixed_s // H).astype(np.int64) % 24, minlength=24).astype(np.float64)
    w = np.ones(len(hours))
    for _ in range(FIT_ROUNDS):
        leg_s, leg_w = legs_of(_draw(w, hours, u_hour, u_in, window_s))
        got = np.bincount((leg_s // H).astype(np.int64) % 24, weights=leg_w, minlength=24)
        # what the fixed legs leave of each hour of the profile
        target = np.maximum(shares * (fixed.sum() + leg_w.sum()) - fixed, 0.0)[hours % 24]
        have = got[hours % 24]
        w = w * np.where(have > 0, target / np.maximum(have, 1e-9), 1.0)
        w = np.maximum(w / w.sum(), 1e-6)  # an hour the fixed legs overfill keeps a trace
    return _draw(w, hours, u_hour, u_in, window_s)


def _pick(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn by inverse CDF: weight ``weights[k]`` for each uniform draw ``u``."""
    cdf = np.cumsum(weights) / np.sum(weights)
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1)


def _draw(w, hours, u_hour, u_in, window_s) -> np.ndarray:
    k = _pick(w, u_hour)
    return np.clip((hours[k] + u_in) * H, window_s[0], np.nextafter(window_s[1], 0))
