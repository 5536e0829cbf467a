"""Scenario section ``[population]``: households, their cars and EVs, and their day.

Every default is a US figure with its source beside it. The scenario's ``region`` (default
"auto": the map's country) replaces the regional ones it has figures for (``persons_shares``,
``car_shares``, ``car_mode_share``) where the scenario does not set them: twin/region.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from twin.timefmt import ClockS, PositiveDurationS, Section

# Household size shares, 1..6+ persons: US Census Bureau, CPS ASEC 2020, table HH-4
# (1: 28.2 %, 2: 34.9 %, 3: 15.1 %, 4: 12.6 %, 5: 5.8 %, 6 and more: 3.4 %).
US_PERSONS_SHARES = (0.282, 0.349, 0.151, 0.126, 0.058, 0.034)
# Vehicles available per household, 0..3+: ACS 2019 1-year, table B08201 (US):
# none 8.6 %, one 32.5 %, two 37.1 %, three or more 21.8 %.
US_CAR_SHARES = (0.086, 0.325, 0.371, 0.218)
# Share of commute trips by private vehicle: NHTS 2017, 87 %.
US_CAR_MODE_SHARE = 0.87
# Share of each purpose's destinations that serve the people living nearby, placed where
# people live (twin/population/destinations.py). Work 0.41: BLS Current Employment
# Statistics, 2019 annual averages, retail trade 15.6 M + education and health services
# 24.2 M + leisure and hospitality 16.6 M + other services 5.9 M of 150.9 M nonfarm jobs.
# Shop 0.5 and school 0.5: judgement (groceries, pharmacies, restaurants and schools are in
# most neighbourhoods, and many extracts map few of them).
LOCAL_SHARES = (0.41, 0.5, 0.5)


def _shares(values: tuple[float, ...], what: str) -> tuple[float, ...]:
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"{what} must be >= 0 and not all zero, got {list(values)}")
    return values


class PopulationConfig(Section):
    """``[population]``: who lives in the city and how much they drive."""

    #: synthesise households (needed by ``[demand] kind = "population"``); default true
    enabled: bool = True
    #: number of households, or "auto": one per dwelling in the mapped residential buildings,
    #: topped up along residential streets at `households_per_street_km`; default "auto"
    households: int | Literal["auto"] = "auto"
    #: "auto" top-up density: households per km of residential street (centreline, both
    #: sides together; 100/km = lots with ~20 m frontage on both sides); default 100
    households_per_street_km: float = Field(100.0, ge=0)
    #: m2 of gross floor area per dwelling when building:flats is not mapped; default 100
    floor_m2_per_dwelling: float = Field(100.0, gt=0)
    #: share of households of 1, 2, ... 6+ persons (normalised); default US CPS 2020 HH-4
    persons_shares: tuple[float, ...] = Field(US_PERSONS_SHARES, min_length=1, max_length=8)
    #: share of households with 0, 1, 2, 3+ cars (normalised); default US ACS 2019 B08201
    car_shares: tuple[float, ...] = Field(US_CAR_SHARES, min_length=1, max_length=6)
    #: share of car-owning households whose first car is an EV, in [0, 1]; default 0
    ev_share: float = Field(0.0, ge=0, le=1)
    #: share of adults in work, in [0, 1]; default 0.61 (BLS employment-population ratio,
    #: annual average 2019: 60.8 %)
    employment_rate: float = Field(0.61, ge=0, le=1)
    #: share of workers who travel to their workplace on the simulated weekday (the rest
    #: telework, are off or on leave), in [0, 1]; default 0.85
    work_day_share: float = Field(0.85, ge=0, le=1)
    #: share of a car-owning household's tours made by car (the rest walk, cycle or take
    #: transit: counted, not driven), in [0, 1]; default 0.87 (NHTS 2017: 87 % of commute
    #: trips by private vehicle)
    car_mode_share: float = Field(US_CAR_MODE_SHARE, ge=0, le=1)
    #: mean shopping/errand/leisure tours per adult per weekday; default 1.2 (calibrated so
    #: that vehicle trips per household-day are near NHTS 2017's 5.1: 4.8 on baltimore)
    other_tours_per_adult: float = Field(1.2, ge=0)
    #: share of all vehicle trips that cross the map from boundary to boundary, in [0, 0.9];
    #: default 0.1
    through_share: float = Field(0.1, ge=0, le=0.9)
    #: place residents' work, shop and school stops beyond the map's edge where the survey
    #: trip lengths reach past it: the car leaves through a boundary gateway and comes back
    #: later (twin/population/external.py: NHTS 2017 trip lengths); default true
    external_trips: bool = True
    #: share of work, shop and school destinations that serve the neighbourhood, placed at
    #: the homes (the rest at the mapped buildings, points and land use), each in [0, 1];
    #: default [0.41, 0.5, 0.5] (sources in this module)
    local_shares: tuple[float, float, float] = LOCAL_SHARES
    #: multiplies those trip lengths, in (0, 10] (e.g. < 1 for a region whose trips are
    #: shorter than the US's); default 1
    trip_length_scale: float = Field(1.0, gt=0, le=10)
    #: centre of the morning peak: the US Census 2000 times of leaving home for work
    #: (twin/population/timing.py), whose busiest half hours meet at 07:30, are shifted to
    #: centre here; default "07:30"
    am_peak: ClockS = Field(7.5 * 3600.0)
    #: a commuter leaving home at ``am_peak`` leaves work at this time on average (the
    #: working day is ``pm_peak - am_peak``; the census times average 07:50, so the
    #: commuters leave work at ~17:15 on average); default "17:00"
    pm_peak: ClockS = Field(17.0 * 3600.0)
    #: spread (standard deviation) of the working day's length, hence of the time leaving
    #: work; default "75min" (judgement)
    peak_spread: PositiveDurationS = 4500.0

    @field_validator("persons_shares", "car_shares", "local_shares", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("persons_shares", "car_shares")
    @classmethod
    def _valid_shares(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _shares(value, "shares")

    @field_validator("local_shares")
    @classmethod
    def _unit_shares(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= v <= 1 for v in value):
            raise ValueError(f"expected three shares in [0, 1], got {list(value)}")
        return value

    @field_validator("households")
    @classmethod
    def _positive_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f'expected a count >= 1 or "auto", got {value}')
        return value
