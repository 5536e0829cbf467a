"""Outdoor air temperature over a day from its minimum and maximum.

The diurnal cycle is two half-cosines: rising from the minimum at ``hour_min`` (about sunrise)
to the maximum at ``hour_max`` (mid-afternoon), then falling back over the remaining hours to
the next day's minimum. The day is periodic (the same minimum next morning), continuous and
smooth at both turning points. The timings follow the ASHRAE design-day temperature profile
(ASHRAE Handbook - Fundamentals 2009, ch. 14, "Generating Design-Day Data": the fraction of
the daily range is largest at 05:00 and zero at 14:00-15:00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: hour of the daily minimum (ASHRAE design day: 05:00)
HOUR_MIN = 5.0
#: hour of the daily maximum (ASHRAE design day: 14:00-15:00)
HOUR_MAX = 15.0


@dataclass(frozen=True)
class DayWeather:
    """A day's outdoor temperature range, deg C."""

    min_c: float
    max_c: float


#: named days (deg C). "mild": a spring or autumn day; "summer": about Baltimore's July normal
#: (NOAA 1991-2020 normals at BWI: highs near 31 C, lows near 21 C); "heatwave": a heat-wave
#: day about 7 K above that, with a warm night; "cold": about Baltimore's January normal
#: (highs near 6 C, lows near -3 C) less 6 K, a cold snap.
WEATHER_PRESETS: dict[str, DayWeather] = {
    "mild": DayWeather(10.0, 20.0),
    "summer": DayWeather(21.0, 31.0),
    "heatwave": DayWeather(27.0, 38.0),
    "cold": DayWeather(-9.0, 0.0),
}


def preset(name: str) -> DayWeather:
    """The named day from :data:`WEATHER_PRESETS`; an unknown name raises ``KeyError``."""
    try:
        return WEATHER_PRESETS[name]
    except KeyError:
        raise KeyError(
            f"unknown weather preset {name!r}; known: {sorted(WEATHER_PRESETS)}"
        ) from None


def outdoor_temp_c(
    t_s: np.ndarray | float,
    min_c: float,
    max_c: float,
    *,
    hour_min: float = HOUR_MIN,
    hour_max: float = HOUR_MAX,
) -> np.ndarray:
    """Outdoor temperature (deg C) at ``t_s`` seconds after midnight (taken modulo a day)."""
    if max_c < min_c:
        raise ValueError(f"max_c ({max_c}) must be >= min_c ({min_c})")
    if not 0.0 <= hour_min < hour_max < 24.0:
        raise ValueError("need 0 <= hour_min < hour_max < 24")
    hour = np.mod(np.asarray(t_s, dtype=np.float64) / 3600.0, 24.0)
    rise_h = hour_max - hour_min
    since_min = np.mod(hour - hour_min, 24.0)  # 0 at the minimum, rising for rise_h hours
    frac = np.where(
        since_min <= rise_h,
        0.5 - 0.5 * np.cos(np.pi * since_min / rise_h),
        0.5 + 0.5 * np.cos(np.pi * (since_min - rise_h) / (24.0 - rise_h)),
    )
    return min_c + (max_c - min_c) * frac
