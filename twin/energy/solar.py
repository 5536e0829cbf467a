"""Rooftop PV under a clear sky: sun position, clear-sky irradiance, plane of array, output.

- sun position: Spencer (1971) declination, equation of time and orbit eccentricity (as given
  in Iqbal, *An Introduction to Solar Radiation*, 1983, ch. 1); the day of year is held for the
  whole day; times are clock seconds after local midnight at UTC offset ``utc_offset_h``;
- global horizontal irradiance (GHI): Haurwitz (1945), ``1098 cos(z) exp(-0.059 / cos(z))``
  W/m2, the clear-sky model of pvlib's ``clearsky.haurwitz``;
- direct and diffuse parts: the Erbs et al. (1982) diffuse-fraction correlation, with pvlib's
  guards (``irradiance.erbs``: cos(z) floored at 0.065 in the clearness index, no beam beyond
  87 deg zenith, the diffuse part closing the balance);
- plane of array: isotropic sky (Liu & Jordan 1963) plus ground reflection, albedo 0.2;
- PV: ``p_kw = kwp * poa / 1000 * performance_ratio``; 0.8 covers inverter, wiring, soiling,
  mismatch and temperature losses (NREL PVWatts' default 14 % system losses and 96 % inverter
  efficiency give 0.83 before temperature losses).
"""

from __future__ import annotations

import numpy as np

#: W/m2, solar constant (pvlib's default, 1366.1)
SOLAR_CONSTANT_W_M2 = 1366.1
#: rooftop PV defaults: tilt (a 4/12-5/12 roof pitch), facing south, ground albedo
TILT_DEG = 20.0
AZIMUTH_DEG = 180.0
ALBEDO = 0.2
PERFORMANCE_RATIO = 0.8
# pvlib irradiance.erbs / clearness_index guards
_MIN_COS_ZENITH = 0.065
_MAX_ZENITH_DEG = 87.0


def _day_angle(day_of_year: int) -> float:
    if not 1 <= day_of_year <= 366:
        raise ValueError(f"day_of_year must be 1..366, got {day_of_year}")
    return 2.0 * np.pi * (day_of_year - 1) / 365.0


def declination_rad(day_of_year: int) -> float:
    """Solar declination, Spencer (1971)."""
    g = _day_angle(day_of_year)
    return (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )


def equation_of_time_min(day_of_year: int) -> float:
    """Apparent minus mean solar time, minutes, Spencer (1971)."""
    g = _day_angle(day_of_year)
    return 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )


def extraterrestrial_w_m2(day_of_year: int) -> float:
    """Normal irradiance above the atmosphere, W/m2 (Spencer's eccentricity factor)."""
    g = _day_angle(day_of_year)
    e0 = (
        1.000110
        + 0.034221 * np.cos(g)
        + 0.001280 * np.sin(g)
        + 0.000719 * np.cos(2 * g)
        + 0.000077 * np.sin(2 * g)
    )
    return SOLAR_CONSTANT_W_M2 * e0


def solar_noon_s(*, day_of_year: int, lon_deg: float, utc_offset_h: float) -> float:
    """Clock time of solar noon, seconds after local midnight."""
    shift_min = 4.0 * (lon_deg - 15.0 * utc_offset_h) + equation_of_time_min(day_of_year)
    return 43200.0 - 60.0 * shift_min


def sun_vector(
    t_s: np.ndarray | float,
    *,
    day_of_year: int,
    lat_deg: float,
    lon_deg: float,
    utc_offset_h: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vector to the sun in local (east, north, up); ``up`` is cos(zenith)."""
    decl = declination_rad(day_of_year)
    noon_s = solar_noon_s(day_of_year=day_of_year, lon_deg=lon_deg, utc_offset_h=utc_offset_h)
    hour_angle = np.asarray(t_s, dtype=np.float64) - noon_s
    hour_angle = hour_angle * (2.0 * np.pi / 86400.0)  # 15 deg per hour
    lat = np.radians(lat_deg)
    east = -np.cos(decl) * np.sin(hour_angle)
    north = np.cos(lat) * np.sin(decl) - np.sin(lat) * np.cos(decl) * np.cos(hour_angle)
    up = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return east, north, up


def clear_sky_ghi_w_m2(cos_zenith: np.ndarray) -> np.ndarray:
    """Haurwitz (1945) clear-sky global horizontal irradiance, W/m2 (0 with the sun down)."""
    cz = np.asarray(cos_zenith, dtype=np.float64)
    safe = np.where(cz > 0.0, cz, 1.0)
    return np.where(cz > 0.0, 1098.0 * cz * np.exp(-0.059 / safe), 0.0)


def erbs_dni_dhi(
    ghi_w_m2: np.ndarray, cos_zenith: np.ndarray, day_of_year: int
) -> tuple[np.ndarray, np.ndarray]:
    """Direct normal and diffuse horizontal irradiance from GHI, Erbs et al. (1982), W/m2."""
    ghi = np.asarray(ghi_w_m2, dtype=np.float64)
    cz = np.asarray(cos_zenith, dtype=np.float64)
    kt = ghi / (extraterrestrial_w_m2(day_of_year) * np.maximum(cz, _MIN_COS_ZENITH))
    kt = np.clip(kt, 0.0, 1.0)
    diffuse_fraction = np.where(
        kt <= 0.22,
        1.0 - 0.09 * kt,
        np.where(
            kt <= 0.8,
            0.9511 - 0.1604 * kt + 4.388 * kt**2 - 16.638 * kt**3 + 12.336 * kt**4,
            0.165,
        ),
    )
    dhi = diffuse_fraction * ghi
    beam_ok = cz > np.cos(np.radians(_MAX_ZENITH_DEG))
    dni = np.where(beam_ok, (ghi - dhi) / np.where(beam_ok, cz, 1.0), 0.0)
    dni = np.maximum(dni, 0.0)
    return dni, ghi - dni * cz


def poa_w_m2(
    t_s: np.ndarray | float,
    *,
    day_of_year: int,
    lat_deg: float,
    lon_deg: float,
    utc_offset_h: float,
    tilt_deg: float = TILT_DEG,
    azimuth_deg: float = AZIMUTH_DEG,
    albedo: float = ALBEDO,
) -> np.ndarray:
    """Clear-sky irradiance on a plane (tilt from horizontal, azimuth clockwise from north)."""
    east, north, up = sun_vector(
        t_s, day_of_year=day_of_year, lat_deg=lat_deg, lon_deg=lon_deg, utc_offset_h=utc_offset_h
    )
    ghi = clear_sky_ghi_w_m2(up)
    dni, dhi = erbs_dni_dhi(ghi, up, day_of_year)
    tilt, az = np.radians(tilt_deg), np.radians(azimuth_deg)
    cos_aoi = np.sin(tilt) * (np.sin(az) * east + np.cos(az) * north) + np.cos(tilt) * up
    beam = dni * np.maximum(cos_aoi, 0.0)
    sky = dhi * 0.5 * (1.0 + np.cos(tilt))
    ground = ghi * albedo * 0.5 * (1.0 - np.cos(tilt))
    return beam + sky + ground


def pv_p_kw(
    t_s: np.ndarray | float,
    kwp: np.ndarray | float,
    *,
    day_of_year: int,
    lat_deg: float,
    lon_deg: float,
    utc_offset_h: float,
    tilt_deg: float = TILT_DEG,
    azimuth_deg: float = AZIMUTH_DEG,
    albedo: float = ALBEDO,
    performance_ratio: float = PERFORMANCE_RATIO,
) -> np.ndarray:
    """Clear-sky PV output, kW, shaped ``kwp.shape + t_s.shape`` (all systems one orientation)."""
    poa = poa_w_m2(
        t_s,
        day_of_year=day_of_year,
        lat_deg=lat_deg,
        lon_deg=lon_deg,
        utc_offset_h=utc_offset_h,
        tilt_deg=tilt_deg,
        azimuth_deg=azimuth_deg,
        albedo=albedo,
    )
    return np.multiply.outer(np.asarray(kwp, dtype=np.float64), poa * (performance_ratio / 1e3))
