"""Household-side energy models: base load, weather, 1R1C thermal, clear-sky PV, EV charging.

Analytic checks where the physics has a closed form (1R1C free-floating decay, extraterrestrial
daily irradiation, day length, charging arithmetic), conservation (EV grid energy x efficiency
= state of charge gained), kernels against plain references, determinism with named streams,
and plausibility ranges with their sources.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.energy import ev, solar, thermal, weather
from twin.population.config import US_PERSONS_SHARES
from twin.rng import stream

BALTIMORE = {"lat_deg": 39.29, "lon_deg": -76.61}
MINUTE_S = (np.arange(1440) + 0.5) * 60.0  # mid-points of a day's minutes


# --- base load -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loads():
    pytest.importorskip("demandlib")
    from twin.energy import loads

    return loads


@pytest.fixture(scope="module")
def us_day(loads):
    """2,000 US-like households (CPS 2020 sizes), one July workday at one minute."""
    rng = stream(1, "test.persons")
    shares = np.asarray(US_PERSONS_SHARES) / sum(US_PERSONS_SHARES)
    persons = rng.choice(len(shares), size=2000, p=shares) + 1
    return persons, loads.base_load_kw(len(persons), persons, stream(1, "test.loads"))


def test_base_load_is_deterministic_per_stream_and_chunk_free(loads):
    a = loads.base_load_kw(300, 2, stream(5, "loads"))
    assert a.shape == (300, 1440) and a.dtype == np.float32 and a.min() >= 0.0
    assert np.array_equal(a, loads.base_load_kw(300, 2, stream(5, "loads"), chunk=7))
    assert not np.array_equal(a, loads.base_load_kw(300, 2, stream(6, "loads")))
    quarter = loads.base_load_kw(300, 2, stream(5, "loads"), step_s=900)
    np.testing.assert_allclose(quarter, a.reshape(300, 96, 15).mean(axis=2), atol=1e-5)
    with pytest.raises(ValueError, match="step_s"):
        loads.base_load_kw(3, 2, stream(5, "loads"), step_s=90)


def test_mean_over_households_converges_to_the_mean_shape(loads):
    """E[p_h(t)] = e_h / 24 * s(t) by construction; 6,000 homes agree within sampling noise."""
    n = 6000
    p = loads.base_load_kw(n, 3, stream(2, "loads"), sigma_ln=0.0, month=1)
    day_kwh = loads.expected_day_kwh(3)
    expected = day_kwh / 24.0 * loads.mean_shape(month=1)
    hourly = p.mean(axis=0).reshape(24, 60).mean(axis=1)
    np.testing.assert_allclose(hourly, expected.reshape(24, 60).mean(axis=1), rtol=0.05)
    assert p.sum(axis=1).mean() / 60.0 == pytest.approx(day_kwh, rel=0.01)
    shape = loads.mean_shape(month=1)
    assert shape.mean() == pytest.approx(1.0) and 17 <= shape.argmax() // 60 <= 21  # evening


def test_energy_grows_with_household_size_less_than_proportionally(loads):
    p1 = loads.base_load_kw(2000, 1, stream(3, "loads")).sum(axis=1).mean() / 60.0
    p4 = loads.base_load_kw(2000, 4, stream(3, "loads")).sum(axis=1).mean() / 60.0
    assert p4 / p1 == pytest.approx(loads.expected_day_kwh(4) / loads.expected_day_kwh(1), rel=0.05)
    assert p4 / p1 < 4.0


def test_base_load_diversity_is_plausible(us_day):
    """Daily energy 8-12 kWh (the non-HVAC share of EIA RECS 2020's ~29 kWh/day); a single
    home peaks at several kW (DOE appliance wattages); the ADMD of 100 homes on one ordinary day
    is about twice their mean power, well below a single home's peak."""
    _, p = us_day
    day_kwh = p.sum(axis=1).mean() / 60.0
    assert 8.0 <= day_kwh <= 12.0
    single_peak = p.max(axis=1)
    assert np.median(single_peak) >= 2.0 and np.quantile(single_peak, 0.9) >= 4.0
    admd = np.array([p[i : i + 100].sum(axis=0).max() / 100 for i in range(0, len(p), 100)])
    assert 0.7 <= admd.mean() <= 1.5
    assert 1.5 <= admd.mean() / (day_kwh / 24.0) <= 3.0
    assert np.median(single_peak) / admd.mean() >= 2.5


# --- weather ---------------------------------------------------------------------------------


def test_outdoor_temperature_hits_min_and_max_and_is_periodic():
    w = weather.preset("heatwave")
    t = weather.outdoor_temp_c(np.array([5 * 3600.0, 15 * 3600.0, 0.0, 86400.0]), w.min_c, w.max_c)
    assert t[0] == pytest.approx(w.min_c, abs=1e-12) and t[1] == pytest.approx(w.max_c, abs=1e-12)
    assert t[2] == pytest.approx(t[3], abs=1e-12)
    day = weather.outdoor_temp_c(MINUTE_S, w.min_c, w.max_c)
    assert w.min_c <= day.min() and day.max() <= w.max_c
    rising = day[5 * 60 : 15 * 60]
    assert np.all(np.diff(rising) > 0) and np.all(np.diff(day[15 * 60 :]) < 0)
    assert weather.preset("heatwave").max_c > weather.preset("summer").max_c
    with pytest.raises(KeyError, match="known"):
        weather.preset("monsoon")


# --- thermal ---------------------------------------------------------------------------------


def _reference_step(d: thermal.Dwellings, t_out_c: float, q_gain_w: np.ndarray, dt_s: float):
    """Plain numpy reference of thermal.thermal_step (same rules, written independently)."""
    t = d.temp_c.copy()
    half = d.deadband_k / 2
    d.heat_on[:] = np.where(t < d.heat_set_c - half, True, d.heat_on)
    d.heat_on[:] = np.where(t > d.heat_set_c + half, False, d.heat_on)
    d.cool_on[:] = np.where(t > d.cool_set_c + half, True, d.cool_on)
    d.cool_on[:] = np.where(t < d.cool_set_c - half, False, d.cool_on)
    heat = d.heat_on & (d.heat_cap_w > 0)
    cool = ~heat & d.cool_on & (d.cool_cap_w > 0)
    q = q_gain_w + np.where(heat, d.heat_cap_w, 0.0) - np.where(cool, d.cool_cap_w, 0.0)
    p_kw = np.where(heat, d.heat_cap_w / d.cop_heat, 0.0) + np.where(
        cool, d.cool_cap_w / d.cop_cool, 0.0
    )
    t_eq = t_out_c + q / d.ua_w_per_k
    d.temp_c[:] = t_eq + (t - t_eq) * np.exp(-dt_s * d.ua_w_per_k / d.c_j_per_k)
    return p_kw / 1000.0


def test_free_floating_dwelling_follows_the_analytic_decay():
    """HVAC off, no gains, constant T_out: T(t) = T_out + (T0 - T_out) exp(-t / RC)."""
    d = thermal.draw_dwellings(50, stream(1, "thermal"))
    d.heat_cap_w[:] = 0.0
    d.cool_cap_w[:] = 0.0
    t0 = d.temp_c.copy()
    t_out, dt = -3.0, 60.0
    p = d.run(np.full(1440, t_out), 0.0, dt)
    rc_s = d.c_j_per_k / d.ua_w_per_k
    exact = t_out + (t0 - t_out) * np.exp(-1440 * dt / rc_s)
    np.testing.assert_allclose(d.temp_c, exact, rtol=0, atol=1e-9)
    assert not p.any()


def test_thermal_kernel_matches_the_plain_reference():
    a = thermal.draw_dwellings(200, stream(2, "thermal"))
    b = thermal.draw_dwellings(200, stream(2, "thermal"))
    w = weather.preset("summer")
    t_out = weather.outdoor_temp_c(MINUTE_S, w.min_c - 12.0, w.max_c)  # heats and cools
    gains = thermal.heat_gains_w_per_m2(400.0) * a.floor_area_m2
    for k in range(0, 1440, 3):
        dt = 180.0 if k % 2 == 0 else 60.0  # two step lengths: each its own decay factors
        p_kernel = a.step(t_out[k], gains, dt)
        p_ref = _reference_step(b, t_out[k], gains, dt)
        np.testing.assert_allclose(p_kernel, p_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.temp_c, b.temp_c, rtol=0, atol=1e-9)
    assert np.array_equal(a.heat_on, b.heat_on) and np.array_equal(a.cool_on, b.cool_on)


def _cooling_day(preset: str) -> tuple[np.ndarray, thermal.Dwellings]:
    w = weather.preset(preset)
    t_out = weather.outdoor_temp_c(MINUTE_S, w.min_c, w.max_c)
    _, _, up = solar.sun_vector(MINUTE_S, day_of_year=196, utc_offset_h=-4, **BALTIMORE)
    gains = thermal.heat_gains_w_per_m2(solar.clear_sky_ghi_w_m2(up))
    d = thermal.draw_dwellings(500, stream(3, "thermal"))
    d.run(t_out, gains, 60.0)  # one day to settle
    return d.run(t_out, gains, 60.0), d


def test_heat_wave_raises_cooling_load_and_thermostats_hold():
    p_summer, _ = _cooling_day("summer")
    p_heat, d = _cooling_day("heatwave")
    kwh_summer = p_summer.sum() / 60.0 / 500
    kwh_heat = p_heat.sum() / 60.0 / 500
    assert kwh_heat > 1.5 * kwh_summer > 0.0
    assert p_heat.sum(axis=0).max() > 1.2 * p_summer.sum(axis=0).max()
    cooled = d.cool_cap_w > 0
    band = d.cool_set_c + d.deadband_k / 2 + 0.05  # one step's overshoot at most
    assert np.all(d.temp_c[cooled] <= band[cooled])


# --- solar -----------------------------------------------------------------------------------


def test_extraterrestrial_daily_irradiation_matches_the_closed_form():
    """Duffie & Beckman eq. 1.10.3: H0 = 24*3600/pi * G_on (cos(phi) cos(d) sin(ws) +
    ws sin(phi) sin(d)); the numerical day integral of G_on * cos(zenith)+ agrees."""
    doy = 172
    t = (np.arange(86400) + 0.5).astype(np.float64)
    _, _, up = solar.sun_vector(t, day_of_year=doy, utc_offset_h=-4, **BALTIMORE)
    g_on = solar.extraterrestrial_w_m2(doy)
    numeric_j = (g_on * np.maximum(up, 0.0)).sum()
    phi, dec = math.radians(BALTIMORE["lat_deg"]), solar.declination_rad(doy)
    ws = math.acos(-math.tan(phi) * math.tan(dec))
    exact_j = 86400 / math.pi * g_on * (
        math.cos(phi) * math.cos(dec) * math.sin(ws) + ws * math.sin(phi) * math.sin(dec)
    )  # fmt: skip
    assert numeric_j == pytest.approx(exact_j, rel=1e-6)
    day_minutes = (up > 0).reshape(1440, 60).mean(axis=1).sum()
    assert day_minutes == pytest.approx(2 * math.degrees(ws) / 15 * 60, abs=0.1)


def test_pv_is_zero_at_night_peaks_at_solar_noon_and_is_symmetric():
    kw = {"day_of_year": 172, "utc_offset_h": -4, **BALTIMORE}
    p = solar.pv_p_kw(MINUTE_S, 1.0, **kw)
    _, _, up = solar.sun_vector(MINUTE_S, **kw)
    assert np.all(p[up <= 0] == 0.0) and np.all(p[up > 0.1] > 0.0)
    noon = solar.solar_noon_s(day_of_year=172, lon_deg=BALTIMORE["lon_deg"], utc_offset_h=-4)
    assert abs(MINUTE_S[p.argmax()] - noon) <= 60.0  # 13:08 EDT in Baltimore
    offsets = np.array([600.0, 3600.0, 4 * 3600.0])
    np.testing.assert_allclose(
        solar.pv_p_kw(noon - offsets, 1.0, **kw),
        solar.pv_p_kw(noon + offsets, 1.0, **kw),
        rtol=1e-9,
    )
    flat = solar.poa_w_m2(MINUTE_S, tilt_deg=0.0, **kw)
    np.testing.assert_allclose(flat, solar.clear_sky_ghi_w_m2(up), rtol=0, atol=1e-9)


def test_pv_daily_yield_is_plausible():
    """Clear-sky June day at 39 N, 20 deg south-facing: 5-7.5 kWh/kWp (clear-sky days run above
    PVWatts' June averages of about 5 kWh/kWp/day for the US Mid-Atlantic, which include clouds);
    December well below June."""
    kw = {"utc_offset_h": -4, **BALTIMORE}
    kwp = np.array([1.0, 4.0, 8.0])
    june = solar.pv_p_kw(MINUTE_S, kwp, day_of_year=172, **kw)
    assert june.shape == (3, 1440)
    yield_kwh_per_kwp = june.sum(axis=1) / 60.0 / kwp
    assert 5.0 <= yield_kwh_per_kwp[0] <= 7.5
    np.testing.assert_allclose(yield_kwh_per_kwp, yield_kwh_per_kwp[0], rtol=1e-12)
    december = solar.pv_p_kw(MINUTE_S, 1.0, day_of_year=355, **kw).sum() / 60.0
    assert december < 0.6 * yield_kwh_per_kwp[0]


# --- EV charging -----------------------------------------------------------------------------


def _run(fleet: ev.EVFleet, start_s: float, steps: int, dt_s: float = 60.0) -> np.ndarray:
    return np.stack([fleet.charge(start_s + k * dt_s, dt_s) for k in range(steps)], axis=1)


def test_charging_conserves_energy_exactly():
    rng = stream(4, "ev")
    n = 300
    fleet = ev.EVFleet.create(
        n, soc_kwh=rng.uniform(5, 50, n), efficiency=rng.uniform(0.85, 0.95, n)
    )
    soc0 = fleet.soc_kwh.copy()
    fleet.arrive(np.arange(n), rng.uniform(16, 20, n) * 3600, rng.uniform(0, 80e3, n))
    fleet.departure_s[:] = rng.uniform(20, 31, n) * 3600
    fleet.p_set_kw[: n // 2] = rng.uniform(0, 10, n // 2)  # half capped by a "policy"
    soc_arrived = fleet.soc_kwh.copy()
    p = _run(fleet, 16 * 3600.0, 15 * 60)
    grid_kwh = p.sum(axis=1) / 60.0
    np.testing.assert_allclose(fleet.energy_kwh, grid_kwh, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        fleet.soc_kwh - soc_arrived, fleet.energy_kwh * fleet.efficiency, rtol=1e-12, atol=1e-12
    )
    assert np.all(fleet.soc_kwh <= fleet.target_kwh + 1e-12) and np.all(p <= 7.2 + 1e-9)
    assert np.all(p[: n // 2] <= np.minimum(fleet.p_set_kw[: n // 2, None], 7.2) + 1e-9)
    assert np.any(fleet.soc_kwh > soc0)


def test_a_later_arrival_starts_charging_later():
    fleet = ev.EVFleet.create(2, soc_kwh=40.0)
    fleet.arrive(np.array([0]), 17 * 3600.0, 50e3)
    fleet.arrive(np.array([1]), 18.5 * 3600.0, 50e3)  # the same trip, 90 min of congestion
    p = _run(fleet, 16 * 3600.0, 8 * 60)
    first = [int(np.flatnonzero(row)[0]) for row in p]
    assert first == [60, 150]
    assert p[0, 60] == pytest.approx(7.2) and p[1, 150] == pytest.approx(7.2)
    np.testing.assert_allclose(fleet.soc_kwh, fleet.target_kwh)  # both full by midnight
    last = [int(np.flatnonzero(row)[-1]) for row in p]
    assert last[1] - last[0] == 90  # and finish 90 min apart


def test_unmet_energy_at_departure_and_after_a_long_drive():
    """60 kWh battery, target 54; arrives at 18:00 with 40 - 100 km x 0.18 = 22 kWh, leaves at
    21:00: 3 h x 7.2 kW x 0.9 = 19.44 kWh in, so 54 - 41.44 = 12.56 kWh unmet."""
    fleet = ev.EVFleet.create(3, soc_kwh=[40.0, 40.0, 5.0])
    fleet.arrive(np.arange(3), 18 * 3600.0, [100e3, 100e3, 100e3], next_departure_s=21 * 3600.0)
    fleet.p_set_kw[1] = 3.6  # a policy halves EV 1's power
    assert fleet.unmet_drive_kwh.tolist() == pytest.approx([0.0, 0.0, 13.0])
    assert fleet.soc_kwh.tolist() == pytest.approx([22.0, 22.0, 0.0])
    _run(fleet, 18 * 3600.0, 4 * 60)  # runs past the planned departure: charging stops there
    unmet = fleet.depart(np.arange(3))
    assert unmet.tolist() == pytest.approx([12.56, 54 - 22 - 9.72, 54 - 19.44])
    assert not fleet.plugged.any()
    np.testing.assert_allclose(fleet.unmet_departure_kwh, unmet)


def test_partial_intervals_count_from_the_plug_in_time():
    fleet = ev.EVFleet.create(1, soc_kwh=10.0)
    fleet.arrive(np.array([0]), 18 * 3600.0 + 30.0, 0.0)  # 30 s into the interval
    p = fleet.charge(18 * 3600.0, 60.0)
    assert p[0] == pytest.approx(3.6)  # 7.2 kW for half the minute
    assert fleet.energy_kwh[0] == pytest.approx(7.2 * 30 / 3600)


def test_base_load_of_a_window_is_the_day_s_columns():
    """A run's window costs memory for its own steps only, with the same numbers."""
    from twin.energy.loads import base_load_kw
    from twin.rng import stream

    persons = np.arange(300) % 5 + 1
    for step_s in (60, 900):
        day = base_load_kw(300, persons, stream(3, "base"), step_s=step_s)
        cols = np.array([day.shape[1] - 1, 0, 5, 5, 17])  # wraps past midnight, repeats
        part = base_load_kw(300, persons, stream(3, "base"), step_s=step_s, columns=cols)
        assert part.shape == (300, 5)
        assert np.array_equal(part, day[:, cols])


def _walk(blocks, cols) -> np.ndarray:
    return np.stack([blocks.column(int(j)).copy() for j in cols], axis=1)


@pytest.mark.parametrize(
    ("step_s", "block_min", "chunk"), [(60, 60, 4096), (60, 45, 7), (900, 60, 64), (60, 1, 100)]
)
def test_blockwise_base_load_is_bit_identical_to_the_whole_window(loads, step_s, block_min, chunk):
    """One block in memory at a time, the same float32 numbers as ``base_load_kw``: the same
    draws, the same per-minute sums of switch-ons and -offs in the same order, and the events'
    running sum carried across blocks (a cumsum continued from its last value adds the same
    numbers in the same order), so equality is exact, not approximate."""
    persons = np.arange(300) % 5 + 1
    steps = 86400 // step_s
    per_hour = 3600 // step_s

    def blocks():
        day = loads.draw_base_load(300, persons, stream(8, "base"), month=1)
        return loads.BaseLoadBlocks(day, step_s=step_s, block_min=block_min, chunk=chunk)

    whole = loads.base_load_kw(300, persons, stream(8, "base"), month=1, step_s=step_s)
    assert np.array_equal(_walk(blocks(), range(steps)), whole)  # a whole day
    # from mid-day (13:17) past midnight to 07:00: the day wraps as in the whole window
    window = np.arange(13 * per_hour + 17 * per_hour // 60, steps + 7 * per_hour) % steps
    assert np.array_equal(_walk(blocks(), window), whole[:, window])
    # a short window across a block edge (10:50-11:10 at one-minute steps)
    edge = np.arange(11 * per_hour - per_hour // 6, 11 * per_hour + per_hour // 6 + 1)
    assert np.array_equal(_walk(blocks(), edge), whole[:, edge])
    # repeats, a jump forward and a step back (which starts again from midnight)
    hops = np.array([5, 5, 3 * per_hour, 2, steps - 1, 0])
    assert np.array_equal(_walk(blocks(), hops), whole[:, hops])


def test_blockwise_base_load_memory_is_a_constant_per_household(loads):
    """Bytes held per household: 8 (c_h) + 16 per event (~7.5 a day for the US mix) + 4 per
    step of the block + 8 (running sum): ~375 at one-minute steps and one-hour blocks, against
    5,760 for a whole day materialised; the same per household for 200 or 4,000 homes."""
    rng = stream(1, "test.persons")
    shares = np.asarray(US_PERSONS_SHARES) / sum(US_PERSONS_SHARES)
    per_household = []
    for n in (200, 4000):
        persons = rng.choice(len(shares), size=n, p=shares) + 1
        day = loads.draw_base_load(n, persons, stream(2, "base"))
        events = len(day.p_kw) / n
        assert 6.5 < events < 8.0
        blocks = loads.BaseLoadBlocks(day)
        assert blocks.nbytes == n * (8 + 4 * 60 + 8) + 16 * len(day.p_kw)
        blocks.column(1439)  # walking through the day allocates nothing that stays
        assert blocks.nbytes == n * (8 + 4 * 60 + 8) + 16 * len(day.p_kw)
        per_household.append(blocks.nbytes / n)
    assert min(per_household) > 330 and max(per_household) < 420
    with pytest.raises(IndexError):
        blocks.column(1440)
