"""When tours leave: the census commute times and the profile fill (twin/population/timing.py)."""

from __future__ import annotations

import numpy as np

from twin.population.timing import (
    COMMUTE_BIN_EDGES_H,
    COMMUTE_BIN_PCT,
    commute_departures_s,
    fill_profile_times,
)
from twin.traffic.profiles import hourly_shares

H = 3600.0


def test_commute_departures_follow_the_census_bins():
    rng = np.random.default_rng(0)
    t = commute_departures_s(rng.random(200_000), rng.random(200_000), 7.5 * H)
    got = np.histogram(t / H, bins=COMMUTE_BIN_EDGES_H)[0] / len(t)
    want = np.asarray(COMMUTE_BIN_PCT) / np.sum(COMMUTE_BIN_PCT)
    assert np.abs(got - want).max() < 0.005
    # Census 2000 ("Journey to Work: 2000"): the typical commuter leaves 06:30-08:29
    assert 0.5 < np.mean((t >= 6.5 * H) & (t < 8.5 * H)) < 0.6
    later = commute_departures_s(rng.random(1000), rng.random(1000), 8.5 * H)
    assert np.median(later) - np.median(t) > 0.9 * H  # am_peak shifts the whole distribution
    # a bin moved past midnight is cut there, its share spread over the rest: no pile at 00:00
    early = commute_departures_s(rng.random(100_000), rng.random(100_000), 6.5 * H)
    assert early.min() >= 0.0 and np.mean(early < 60.0) < 0.002


def test_other_tours_fill_what_fixed_legs_leave_of_the_profile():
    rng = np.random.default_rng(1)
    fixed = rng.uniform(7 * H, 8 * H, 3_000)  # a commute peak: 3,000 legs in one hour
    m = 20_000
    back = rng.uniform(0.5 * H, 1.5 * H, m)  # each tour's return leg, 30-90 min later

    def legs_of(t):
        return np.concatenate([t, t + back]), np.ones(2 * m)

    t = fill_profile_times(fixed, legs_of, rng.random(m), rng.random(m), (5 * H, 23 * H))
    assert (t >= 5 * H).all() and (t < 23 * H).all()
    legs = np.concatenate([fixed, t, t + back])
    shares = np.bincount((legs // H).astype(int) % 24, minlength=24) / len(legs)
    nhts = hourly_shares("weekday")
    # the hours the window reaches follow the profile; 07:00 holds the fixed peak (7.0 % of
    # the legs against the profile's 7.7 %) and the returns of tours that left at 06:00 (a fit
    # that did not count the fixed legs would put ~14 % there)
    inside = np.r_[5:7, 8:23]
    assert np.abs(shares[inside] - nhts[inside]).max() < 0.004
    assert abs(shares[7] - nhts[7]) < 0.015
    # drawing the tours from the profile itself (the old rule) counts the peak twice
    h = rng.choice(24, size=m, p=nhts)
    naive = np.concatenate([fixed, h * H, h * H + back])
    naive_shares = np.bincount((naive // H).astype(int) % 24, minlength=24) / len(naive)
    assert np.abs(naive_shares - nhts).sum() > 2 * np.abs(shares - nhts).sum()
