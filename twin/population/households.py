"""Household attributes as struct-of-arrays: persons, adults, workers, cars, EV ownership.

Distributions (each drawn from its own named stream):

- persons: ``persons_shares`` (default US CPS ASEC 2020, table HH-4);
- adults: 1 in a one-person household; in larger ones 2, except that 15 % of households of
  two or more have one adult (single parents; CPS 2020: about 9 % of households are
  single-parent families and 6 % other one-adult households with others) and 15 % of
  households of three or more have three adults (adult children, roommates); judgement
  calibrated to those CPS shares;
- workers: each adult works with probability ``employment_rate`` (BLS 2019: 60.8 %);
- cars: ``car_shares`` (default US ACS 2019, table B08201); the last share means "that many
  or more", drawn as exactly that many;
- EV: a car-owning household's first car is an EV with probability ``ev_share``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.population.config import PopulationConfig
from twin.population.homes import Homes
from twin.rng import stream

ONE_ADULT_SHARE = 0.15  # households of >= 2 persons with a single adult (see above)
THREE_ADULT_SHARE = 0.15  # households of >= 3 persons with three adults (see above)


@dataclass(eq=False)
class HouseholdArrays:
    """One row per household; the Household agents are views onto these arrays."""

    home_x_m: np.ndarray  # float64, UTM
    home_y_m: np.ndarray
    home_lon: np.ndarray  # float64, degrees (for the grid and exports)
    home_lat: np.ndarray
    home_link: np.ndarray  # int32
    home_node: np.ndarray  # int32
    home_source: np.ndarray  # int8, HOME_FROM_BUILDING / HOME_FROM_STREET
    home_building: np.ndarray  # int32, -1 when placed along a street
    persons: np.ndarray  # int8
    adults: np.ndarray  # int8
    workers: np.ndarray  # int8
    cars: np.ndarray  # int8
    has_ev: np.ndarray  # bool, the first car is an EV

    def __len__(self) -> int:
        return len(self.persons)

    @property
    def children(self) -> np.ndarray:
        return self.persons - self.adults


def _shares(values: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(values, dtype=np.float64)
    return p / p.sum()


def synthesize(
    homes: Homes, cfg: PopulationConfig, seed: int, lonlat: tuple[np.ndarray, np.ndarray]
) -> HouseholdArrays:
    """Draw each household's members, workers, cars and EV for the given homes."""
    n = len(homes)
    rng = stream(seed, "population.persons")
    persons = rng.choice(len(cfg.persons_shares), size=n, p=_shares(cfg.persons_shares)) + 1
    u_one, u_three = rng.random(n), rng.random(n)
    adults = np.where(persons == 1, 1, 2)
    adults = np.where((persons >= 2) & (u_one < ONE_ADULT_SHARE), 1, adults)
    three = (persons >= 3) & (u_one >= ONE_ADULT_SHARE) & (u_three < THREE_ADULT_SHARE)
    adults = np.where(three, 3, adults)
    workers = stream(seed, "population.workers").binomial(adults, cfg.employment_rate)
    rng = stream(seed, "population.cars")
    cars = rng.choice(len(cfg.car_shares), size=n, p=_shares(cfg.car_shares))
    has_ev = (cars > 0) & (stream(seed, "population.ev").random(n) < cfg.ev_share)
    return HouseholdArrays(
        home_x_m=homes.x_m,
        home_y_m=homes.y_m,
        home_lon=lonlat[0],
        home_lat=lonlat[1],
        home_link=homes.link,
        home_node=homes.node,
        home_source=homes.source,
        home_building=homes.building,
        persons=persons.astype(np.int8),
        adults=adults.astype(np.int8),
        workers=workers.astype(np.int8),
        cars=cars.astype(np.int8),
        has_ev=has_ev,
    )
