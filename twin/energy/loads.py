"""Household base electricity load: a stochastic one-day profile per household, vectorised.

Base load is everything but space heating/cooling (:mod:`twin.energy.thermal`) and EV charging
(:mod:`twin.energy.ev`); electric water heating is left out as well. Each household's power is

    p_h(t) = c_h * r(t) + events_h(t)      [kW],   c_h = e_h / REFERENCE_DAY_KWH

- **mean shape** ``s(t)`` (mean 1 over the day): the BDEW standard household profile H25
  (2025 revision of H0, from 2018/19 German household meter data), read at 15-minute
  resolution for the requested month and day type through ``demandlib`` (offline, MIT). Only
  its shape is used; the daily energy is ours (below).
- **daily energy** ``e_h = (day_kwh_per_home + day_kwh_per_person * persons) * u_h`` with
  ``u_h`` lognormal of mean 1: a fixed part for what every home runs (refrigerator, standby,
  shared appliances) and a part per person, so energy grows less than in proportion to the
  household size.
- **appliance events** ``events_h(t)``: switch-ons of the appliances in :data:`APPLIANCES`,
  Poisson counts (``uses_per_day * c_h``), start times drawn from ``s(t)``, power and duration
  uniform in their ranges: the short spikes of several kW that make a single home's peak.
- **smooth rest** ``c_h * r(t)``: lighting, electronics, cold appliances and everything else,
  ``r(t) = REFERENCE_DAY_KWH / 24 * s(t) - E[events](t)`` for the reference home, so that
  ``E[p_h(t)] = e_h / 24 * s(t)`` exactly: the mean over many households converges to the mean
  shape, scaled by the mean daily energy.

The day is periodic: an event running past midnight wraps to the start of the same day, which
keeps the expectation exact at every minute.

Memory (issue 14): a run never holds a day of minutes. :func:`draw_base_load` keeps each
household's ``c_h`` and its appliance events (:class:`BaseLoadDay`, 8 + 16 bytes per event:
~130 bytes per household, 7.5 events a day on average), and :class:`BaseLoadBlocks` turns them
into kW one block of steps (an hour by default) at a time as the run reaches it, with the same
float32 numbers as :func:`base_load_kw`'s whole window. Base-load state per household at
one-minute steps and one-hour blocks: **~375 bytes** = 8 + 16 x events + 4 x 60 + 8, whatever
the run's length and the city's size (5,760 for a materialised day: 1.3 GB for Columbus's
227,000 households, 85 MB now); the temporaries of a block are bounded by its ``chunk`` of
households (~12 MB), those of the draw by ~450 bytes per household, once.

Calibration (default US-like household mix, US CPS 2020 sizes, 2.43 persons on average): about
11 kWh/day per household. EIA RECS 2020 puts the average US home at about 10.5 MWh/yr
(29 kWh/day), but that includes space heating, air conditioning and water heating; the
non-HVAC, non-water-heating part left here is our calibration choice within 8-12 kWh/day.
A single home peaks at 2-6 kW (a dryer, an oven, a hob together); the after-diversity maximum
demand (ADMD) of 100 homes on one ordinary day is about twice their mean power (see the tests).
Design ADMD figures are maxima over a whole year, including the worst winter evening, and sit
above one ordinary day: the UK CLNR trial (report CLNR-L217, 2015) finds about 1.5 kW per home
at 100 homes over a year, and 2 kW is the usual design figure without electric heating.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

MINUTES_PER_DAY = 1440
DayType = Literal["workday", "saturday", "sunday"]

#: kWh/day of the household that ``Appliance.uses_per_day`` refers to
REFERENCE_DAY_KWH = 10.0
#: kWh/day every household uses regardless of size (see the module docstring)
DAY_KWH_PER_HOME = 4.0
#: kWh/day added per person; with DAY_KWH_PER_HOME: 7 / 10 / 13 / 16 kWh for 1-4 persons
DAY_KWH_PER_PERSON = 3.0
#: log-standard deviation of a household's daily energy around its size's mean (our choice:
#: homes of one size differ by a factor of ~1.5 either way)
SIGMA_LN = 0.4


@dataclass(frozen=True)
class Appliance:
    """A switched appliance: power and duration ranges (uniform), uses of the reference home."""

    name: str
    p_kw_min: float
    p_kw_max: float
    minutes_min: int
    minutes_max: int
    uses_per_day: float


# Power ranges: US DOE EERE, "Estimating Appliance and Home Electronic Energy Use" (nameplate
# wattages; e.g. clothes dryer 1.8-5 kW, dishwasher 1.2-2.4 kW, microwave 0.75-1.1 kW, coffee
# maker 0.9-1.2 kW, toaster 0.8-1.4 kW, hair dryer 1.2-1.875 kW, vacuum 1.0-1.44 kW, iron
# 1.0-1.8 kW, clothes washer 0.35-0.5 kW); a 240 V range's oven 2-3.5 kW and hob element 1.2-2.5
# kW. Durations and uses per day are our calibration: about 4.4 of the reference home's
# 10 kWh/day come as events (the dryer about 1.5 kWh/day).
APPLIANCES: tuple[Appliance, ...] = (
    Appliance("microwave", 0.75, 1.1, 2, 8, 1.5),
    Appliance("coffee_maker", 0.9, 1.2, 3, 6, 0.8),
    Appliance("toaster", 0.8, 1.4, 2, 4, 0.4),
    Appliance("hob", 1.2, 2.5, 10, 30, 0.9),
    Appliance("oven", 2.0, 3.5, 30, 60, 0.35),
    Appliance("dishwasher", 1.2, 2.4, 30, 60, 0.6),
    Appliance("clothes_washer", 0.35, 0.5, 30, 60, 0.7),
    Appliance("clothes_dryer", 2.5, 5.0, 45, 75, 0.45),
    Appliance("hair_dryer", 1.2, 1.875, 4, 10, 0.5),
    Appliance("vacuum", 1.0, 1.44, 10, 20, 0.2),
    Appliance("iron", 1.0, 1.8, 10, 25, 0.15),
)

_DAY_TYPES = {"workday": (0, 1, 2, 3, 4), "saturday": (5,), "sunday": (6,)}


@lru_cache(maxsize=64)
def _h25_shape(month: int, day_type: str) -> np.ndarray:
    try:
        import pandas as pd
        from demandlib.bdew import H25
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "twin.energy.loads needs the 'demandlib' package for the BDEW H25 profile "
            "(pip install demandlib==0.2.2)"
        ) from exc
    day = _dt.date(2025, month, 8)  # any non-holiday date of the month and day type will do
    while day.weekday() not in _DAY_TYPES[day_type]:
        day += _dt.timedelta(days=1)
    index = pd.date_range(str(day), periods=MINUTES_PER_DAY, freq="1min")
    with warnings.catch_warnings():  # demandlib 0.2.2 uses pandas' deprecated inplace=True
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        values = H25(index).to_numpy(dtype=np.float64)
    shape = values / values.mean()
    shape.flags.writeable = False
    return shape


def mean_shape(*, month: int = 7, day_type: DayType = "workday") -> np.ndarray:
    """The mean daily shape ``s(t)`` at 1-minute resolution (1440 values, mean 1), BDEW H25."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    if day_type not in _DAY_TYPES:
        raise ValueError(f"day_type must be one of {sorted(_DAY_TYPES)}, got {day_type!r}")
    return _h25_shape(month, day_type)


def expected_day_kwh(
    persons: np.ndarray | int,
    *,
    day_kwh_per_home: float = DAY_KWH_PER_HOME,
    day_kwh_per_person: float = DAY_KWH_PER_PERSON,
) -> np.ndarray:
    """Mean daily base-load energy of households of ``persons`` persons, kWh."""
    return day_kwh_per_home + day_kwh_per_person * np.asarray(persons, dtype=np.float64)


def _wrapped_occupancy(density: np.ndarray, app: Appliance) -> np.ndarray:
    """Mean number of running uses per minute for one use per day started with ``density``."""
    durations = np.arange(app.minutes_min, app.minutes_max + 1)
    survival = (durations[None, :] > np.arange(app.minutes_max)[:, None]).mean(axis=1)
    return sum(s * np.roll(density, d) for d, s in enumerate(survival))


def _rest_kw(shape: np.ndarray) -> np.ndarray:
    """``r(t)``: the reference home's mean power less its mean appliance-event power, kW."""
    density = shape / shape.sum()
    events_kw = np.zeros(MINUTES_PER_DAY)
    for app in APPLIANCES:
        p_mean = 0.5 * (app.p_kw_min + app.p_kw_max)
        events_kw += app.uses_per_day * p_mean * _wrapped_occupancy(density, app)
    rest = REFERENCE_DAY_KWH / 24.0 * shape - events_kw
    if rest.min() < 0.0:
        raise ValueError("appliance events exceed the mean shape; lower APPLIANCES' uses")
    return rest


@dataclass(frozen=True, eq=False)
class BaseLoadDay:
    """The day's compact description of every household's base load, from which any minute's
    power follows: what :func:`draw_base_load` drew, in the order the profiles sum it.

    Events that run past midnight are already split into ``[start, 1440)`` and
    ``[0, stop - 1440)``; the events are sorted by household (stable), as the sums need.
    Memory: 8 bytes per household (``scale_h``) + 16 per event (``home_h`` 4, ``start_min`` 2,
    ``stop_min`` 2, ``p_kw`` 8); with the default appliances a household has
    ``6.55 * scale_h`` events a day (+ ~1.5 % split at midnight), about 7.5 for the US mix:
    ~130 bytes per household, against 4 per step for a materialised profile (5,760 for a day
    at one minute).
    """

    scale: np.ndarray  # (n,) float64, c_h = e_h / REFERENCE_DAY_KWH
    rest_kw: np.ndarray  # (1440,) float64, r(t) of the reference home
    home: np.ndarray  # (n_events,) int32, sorted
    start_min: np.ndarray  # (n_events,) int16, minute of the day the event switches on
    stop_min: np.ndarray  # (n_events,) int16, minute it switches off (<= 1440)
    p_kw: np.ndarray  # (n_events,) float64

    @property
    def n_households(self) -> int:
        return len(self.scale)

    @property
    def nbytes(self) -> int:
        """Bytes of the per-household arrays (``rest_kw`` is shared, 11.5 kB)."""
        arrays = (self.scale, self.home, self.start_min, self.stop_min, self.p_kw)
        return sum(a.nbytes for a in arrays)


def draw_base_load(
    n_households: int,
    persons: np.ndarray | int,
    rng: np.random.Generator,
    *,
    day_kwh_per_home: float = DAY_KWH_PER_HOME,
    day_kwh_per_person: float = DAY_KWH_PER_PERSON,
    sigma_ln: float = SIGMA_LN,
    month: int = 7,
    day_type: DayType = "workday",
) -> BaseLoadDay:
    """Draw one day's daily energies and appliance events per household (see the module
    docstring); :func:`base_load_kw` and :class:`BaseLoadBlocks` turn them into powers.
    ``persons`` is one value or one per household; ``rng`` is the caller's named stream (the
    same stream state gives the same day)."""
    persons_arr = np.broadcast_to(np.asarray(persons), (n_households,))
    if day_kwh_per_home < 0 or day_kwh_per_person < 0 or sigma_ln < 0 or np.any(persons_arr < 0):
        raise ValueError("daily energies, sigma_ln and persons must be >= 0")
    shape = mean_shape(month=month, day_type=day_type)
    rest = _rest_kw(shape)
    cdf = np.cumsum(shape / shape.sum())

    day_kwh = expected_day_kwh(
        persons_arr, day_kwh_per_home=day_kwh_per_home, day_kwh_per_person=day_kwh_per_person
    )
    day_kwh = day_kwh * rng.lognormal(-0.5 * sigma_ln**2, sigma_ln, n_households)
    scale = day_kwh / REFERENCE_DAY_KWH

    # All draws first, appliance by appliance, so the numbers do not depend on chunking.
    home, start, stop, p_kw = [], [], [], []
    for app in APPLIANCES:
        counts = rng.poisson(app.uses_per_day * scale)
        h = np.repeat(np.arange(n_households, dtype=np.int32), counts)
        t0 = np.minimum(np.searchsorted(cdf, rng.random(len(h)), side="right"), 1439)
        dur = rng.integers(app.minutes_min, app.minutes_max + 1, len(h))
        home.append(h)
        start.append(t0.astype(np.int16))
        stop.append((t0 + dur).astype(np.int16))
        p_kw.append(rng.uniform(app.p_kw_min, app.p_kw_max, len(h)))
    home_a, start_a, stop_a, p_a = (np.concatenate(x) for x in (home, start, stop, p_kw))
    # split events that run past midnight into [start, 1440) and [0, stop - 1440)
    wrap = stop_a > MINUTES_PER_DAY
    home_a = np.concatenate([home_a, home_a[wrap]])
    p_a = np.concatenate([p_a, p_a[wrap]])
    start_a = np.concatenate([start_a, np.zeros(wrap.sum(), dtype=start_a.dtype)])
    stop_a = np.concatenate([np.minimum(stop_a, MINUTES_PER_DAY), stop_a[wrap] - MINUTES_PER_DAY])
    order = np.argsort(home_a, kind="stable")
    return BaseLoadDay(
        scale=scale, rest_kw=rest, home=home_a[order], start_min=start_a[order],
        stop_min=stop_a[order], p_kw=p_a[order],
    )  # fmt: skip


def _check_step(step_s: int) -> int:
    if step_s % 60 or step_s <= 0 or MINUTES_PER_DAY % (step_s // 60):
        raise ValueError(f"step_s must be a multiple of 60 s dividing a day, got {step_s}")
    return step_s // 60


def base_load_kw(
    n_households: int,
    persons: np.ndarray | int,
    rng: np.random.Generator,
    *,
    day_kwh_per_home: float = DAY_KWH_PER_HOME,
    day_kwh_per_person: float = DAY_KWH_PER_PERSON,
    sigma_ln: float = SIGMA_LN,
    month: int = 7,
    day_type: DayType = "workday",
    step_s: int = 60,
    chunk: int = 4096,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """One day of base load per household: ``(n_households, 86400 // step_s)`` float32 kW.

    Column ``j`` is the mean power over ``[j * step_s, (j + 1) * step_s)`` seconds after
    midnight. ``persons`` is one value or one per household; ``rng`` is the caller's named
    stream (the same stream state gives the same profiles, whatever ``chunk``).
    ``step_s`` must be a multiple of 60 that divides a day. Memory: 4 bytes per household per
    step for the result (576 MB for 100,000 households at one minute). ``columns`` (step indices
    of the day, in any order, repeats allowed) returns only those columns, the same numbers as
    the whole day's. A simulation that walks through time uses :class:`BaseLoadBlocks`
    instead: the same numbers, one block of steps in memory at a time.
    """
    per = _check_step(step_s)
    day = draw_base_load(
        n_households, persons, rng, day_kwh_per_home=day_kwh_per_home,
        day_kwh_per_person=day_kwh_per_person, sigma_ln=sigma_ln, month=month,
        day_type=day_type,
    )  # fmt: skip
    home_a, start_a, stop_a, p_a = day.home, day.start_min, day.stop_min, day.p_kw
    scale, rest = day.scale, day.rest_kw
    cols = np.arange(MINUTES_PER_DAY // per) if columns is None else np.asarray(columns)
    minutes = (cols[:, None] * per + np.arange(per)[None, :]).ravel()
    out = np.empty((n_households, len(cols)), dtype=np.float32)
    width = MINUTES_PER_DAY + 1
    for lo in range(0, n_households, chunk):
        hi = min(lo + chunk, n_households)
        a, b = np.searchsorted(home_a, [lo, hi])
        row = (home_a[a:b].astype(np.int64) - lo) * width
        size = (hi - lo) * width
        diff = np.bincount(row + start_a[a:b], weights=p_a[a:b], minlength=size)
        diff -= np.bincount(row + stop_a[a:b], weights=p_a[a:b], minlength=size)
        events = np.cumsum(diff.reshape(hi - lo, width)[:, :MINUTES_PER_DAY], axis=1)
        p = scale[lo:hi, None] * rest[None, minutes] + events[:, minutes]
        np.maximum(p, 0.0, out=p)  # cumsum round-off only
        out[lo:hi] = p.reshape(hi - lo, -1, per).mean(axis=2)
    return out


class BaseLoadBlocks:
    """A day's base load per household, materialised one block of steps at a time.

    Holds the day's compact description (:class:`BaseLoadDay`) and the powers of one block of
    ``block_min`` minutes (``block_min // (step_s // 60)`` steps, float32), plus the running
    sum of the appliance events at the block's start (float64), carried from block to block so
    that every number is bit-identical to :func:`base_load_kw`'s for the same stream.
    :meth:`column` asks for one step of the day; moving forward past the block generates the
    next one, a step before it (the periodic day's wrap past midnight, or going back) starts
    again from midnight. Memory, bytes per household: ``BaseLoadDay`` (~130) +
    4 x ``block_min // (step_s // 60)`` (240 for an hour of minutes) + 8: about 375 for
    one-minute steps and one-hour blocks, against 5,760 for a whole day materialised; the
    temporaries of a block are bounded by ``chunk`` households, whatever the city's size.
    """

    def __init__(
        self, day: BaseLoadDay, *, step_s: int = 60, block_min: int = 60, chunk: int = 4096
    ) -> None:
        self.day = day
        self.per = _check_step(step_s)
        self.n_steps = MINUTES_PER_DAY // self.per
        self.block_steps = max(1, block_min // self.per)
        self.chunk = chunk
        self.blocks_made = 0
        n = day.n_households
        self._kw = np.empty((self.block_steps, n), dtype=np.float32)  # a step's row: contiguous
        self._acc = np.zeros(n)  # running sum of event switch-ons minus -offs before _lo
        self._lo = self._hi = 0  # steps of the day held in _kw: [_lo, _hi)

    @property
    def nbytes(self) -> int:
        """Bytes held for the base load: the day's description, the block and the running
        sum."""
        return self.day.nbytes + self._kw.nbytes + self._acc.nbytes

    def column(self, j: int) -> np.ndarray:
        """kW of every household over step ``j`` of the day (``0 <= j < 86400 / step_s``),
        float32, a view into the current block (valid until the next call)."""
        if not 0 <= j < self.n_steps:
            raise IndexError(f"step {j} outside the day's 0..{self.n_steps - 1}")
        if j < self._lo or self._hi == 0:  # a new start, or the day wrapped
            self._acc[:] = 0.0
            self._lo = self._hi = 0
        while j >= self._hi + self.block_steps:  # blocks skipped: the running sum only
            self._make_block(fill=False)
        if j >= self._hi:
            self._make_block()
        return self._kw[j - self._lo]

    def _make_block(self, *, fill: bool = True) -> None:
        """Generate the block that starts at ``_hi`` (only its running sum if not ``fill``)
        and advance the running sum past it."""
        day, per = self.day, self.per
        lo = self._hi
        hi = min(lo + self.block_steps, self.n_steps)
        m0, m1 = lo * per, hi * per
        width = m1 - m0 + 1  # column 0: the running sum before m0
        # the events switching on and off in the block, in household (and draw) order
        switches = []  # (household, column in the block, kW) of the switch-ons, -offs
        for minute in (day.start_min, day.stop_min):
            ev = np.flatnonzero((minute >= m0) & (minute < m1))
            switches.append((day.home[ev], minute[ev] - (m0 - 1), day.p_kw[ev]))
        rest = day.rest_kw[m0:m1]
        n = day.n_households
        for lo_h in range(0, n, self.chunk):
            hi_h = min(lo_h + self.chunk, n)
            size = (hi_h - lo_h) * width
            parts = []
            for home, col, p_kw in switches:
                a, b = np.searchsorted(home, [lo_h, hi_h])
                cell = (home[a:b].astype(np.int64) - lo_h) * width + col[a:b]
                parts.append(np.bincount(cell, weights=p_kw[a:b], minlength=size))
            # (bincount of no events gives int zeros)
            diff = np.subtract(*parts, dtype=np.float64).reshape(hi_h - lo_h, width)
            diff[:, 0] = self._acc[lo_h:hi_h]
            events = np.cumsum(diff, axis=1)
            self._acc[lo_h:hi_h] = events[:, -1]
            if not fill:
                continue
            p = day.scale[lo_h:hi_h, None] * rest[None, :] + events[:, 1:]
            np.maximum(p, 0.0, out=p)  # cumsum round-off only
            self._kw[: hi - lo, lo_h:hi_h] = p.reshape(hi_h - lo_h, -1, per).mean(axis=2).T
        self._lo, self._hi = (lo, hi) if fill else (hi, hi)
        self.blocks_made += 1
