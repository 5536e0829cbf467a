"""Daily activity plans: tours from home and back, and the legs (trips) they make.

A *tour* leaves home at ``depart_s``, visits one or more *stops* (a purpose, a network node,
the time it leaves the stop) and returns home. Tours are a table (struct-of-arrays, stops in
CSR form), so the default plans of 100,000 households are drawn vectorised; a researcher's
``Household.plan_day`` returns :class:`Tour` objects that become the same table.

Default weekday plan of a household (all draws from named streams, see ``plan_tours``):

- work: each worker travels to work with probability ``work_day_share``; leaves home at a
  time from the US Census 2000 distribution (twin/population/timing.py, centred on
  ``am_peak``), leaves work a working day later (N(``pm_peak - am_peak``, ``peak_spread``),
  at least 4 h; a shift that would end after 23:30 ends in the hour before);
  ``WORK_STOP_SHARE`` of commutes stop at a shop on the way home (McGuckin & Murakami
  1999: about a third of commutes chain a stop, more on the way home);
- school: a household with children and a car free of commutes drives them to school with
  probability ``SCHOOL_ESCORT_SHARE`` (NHTS 2017: about half of school trips of children
  are made in a family vehicle), leaving at N(07:35, 15 min), back home after drop-off;
- other (shopping, errands, leisure): Poisson(``other_tours_per_adult``) tours per adult,
  leaving home within 05:00-23:00 at the hours that make all the households' driven legs
  follow the NHTS weekday trip-start profile (what the commutes and school runs leave of
  each hour, twin/population/timing.py), staying 10 min + Exp(35 min);
- mode: a tour is driven with probability ``car_mode_share`` if a car is free for it: commutes
  take the household's cars in order; a school run needs a car no commuter took; another tour
  takes a free car, or the first commuter's car outside the commute. Tours not driven are
  counted (``car = -1``) and never simulated.

Stops beyond the map's edge (``[population] external_trips``, :func:`place_outside`,
twin/population/external.py): the stop's node is the exit gateway and ``stop_outside_m`` the
distance driven beyond it; its legs record the distance driven outside the map
(``outside_pre_m`` before entering, ``outside_post_m`` after leaving), and the car comes back
through ``stop_entry_node``.

Legs of the same car are chained (``after``): a car leaves for its next leg only once it has
arrived from the previous one, and after at least ``min(planned stay, MIN_DWELL_CAP_S)`` at the
stop; tours that the plan lets overlap on one car are shifted later until they do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.population.config import PopulationConfig
from twin.population.destinations import HOME, PURPOSES, SCHOOL, SHOP, THROUGH, WORK, Gravity
from twin.population.external import ExternalModel, outside_time_s
from twin.population.households import HouseholdArrays
from twin.population.timing import commute_departures_s, fill_profile_times
from twin.rng import stream
from twin.traffic.profiles import hourly_shares

H = 3600.0
WORK_STOP_SHARE = 0.25
SCHOOL_ESCORT_SHARE = 0.5
SCHOOL_DEPART_S, SCHOOL_SPREAD_S, SCHOOL_DROP_S = 7 * H + 35 * 60, 15 * 60.0, 5 * 60.0
MIN_WORK_S = 4 * H
LATEST_S = 23.5 * H
OTHER_WINDOW_S = (5 * H, 23 * H)
OTHER_MIN_STAY_S, OTHER_MEAN_STAY_S = 10 * 60.0, 35 * 60.0
SHOP_STOP_STAY_S = (10 * 60.0, 30 * 60.0)  # uniform range of a stop on the way home
EVENING_DELAY_MEAN_S = 45 * 60.0  # an errand moved after the commute starts this long after
EVENING_LATEST_S = 21.5 * H  # ... if it can start before this; otherwise it is not driven
CAR_TOUR_GAP_S = 5 * 60.0  # a car rests at least this long at home between two tours
MIN_DWELL_CAP_S = 10 * 60.0


@dataclass
class Stop:
    """A stop of a tour: its purpose ("work", "shop", "school"), network node, leaving time."""

    purpose: str
    node: int
    depart_s: float
    outside_m: float = 0.0  # > 0: outside the map, this far beyond gateway ``node``
    entry_node: int = -1  # outside stop: the gateway the car comes back through


@dataclass
class Tour:
    """Home -> stops -> home. ``car`` is the household's car index, -1 if not driven."""

    person: int
    car: int
    depart_s: float
    stops: list[Stop] = field(default_factory=list)


@dataclass(eq=False)
class Tours:
    """Tours of many households as arrays; tour ``i`` has stops ``stop_offsets[i:i+2]``."""

    household: np.ndarray  # int64
    person: np.ndarray  # int16
    car: np.ndarray  # int16, -1 = not driven
    depart_s: np.ndarray  # float64, leaves home
    stop_offsets: np.ndarray  # int64, len n + 1
    stop_purpose: np.ndarray  # int8, WORK / SHOP / SCHOOL
    stop_node: np.ndarray  # int32
    stop_depart_s: np.ndarray  # float64
    #: float64 m driven beyond the exit gateway ``stop_node`` to reach an outside stop (from
    #: the map, or from the previous outside stop), 0 for a stop inside the map
    stop_outside_m: np.ndarray | None = None
    #: int32 entry gateway an outside stop's car comes back through, -1 inside the map
    stop_entry_node: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.stop_node)
        if self.stop_outside_m is None:
            self.stop_outside_m = np.zeros(n)
        if self.stop_entry_node is None:
            self.stop_entry_node = np.full(n, -1, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.household)

    @property
    def stop_outside(self) -> np.ndarray:
        """Whether each stop lies outside the map (see twin.population.external)."""
        return self.stop_entry_node >= 0

    @property
    def n_stops(self) -> np.ndarray:
        return np.diff(self.stop_offsets)

    def of(self, households: np.ndarray) -> Tours:
        """The tours of the given households (mask by household index)."""
        keep = np.isin(self.household, households)
        return self.select(keep)

    def select(self, keep: np.ndarray) -> Tours:
        """The tours where the boolean mask ``keep`` is true."""
        return self.take(np.flatnonzero(keep))

    def take(self, idx: np.ndarray) -> Tours:
        """The tours at the indices ``idx``, in that order."""
        counts = self.n_stops[idx]
        starts = self.stop_offsets[idx]
        stop_idx = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        stop_idx = stop_idx + np.arange(counts.sum())
        return Tours(
            self.household[idx],
            self.person[idx],
            self.car[idx],
            self.depart_s[idx],
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            self.stop_purpose[stop_idx],
            self.stop_node[stop_idx],
            self.stop_depart_s[stop_idx],
            self.stop_outside_m[stop_idx],
            self.stop_entry_node[stop_idx],
        )

    def to_list(self) -> list[Tour]:
        """As :class:`Tour` objects (for one household's plan)."""
        out = []
        for i in range(len(self)):
            a, b = self.stop_offsets[i], self.stop_offsets[i + 1]
            stops = [
                Stop(PURPOSES[self.stop_purpose[k]], int(self.stop_node[k]),
                     float(self.stop_depart_s[k]), float(self.stop_outside_m[k]),
                     int(self.stop_entry_node[k]))
                for k in range(a, b)
            ]  # fmt: skip
            out.append(Tour(int(self.person[i]), int(self.car[i]), float(self.depart_s[i]), stops))
        return out

    @classmethod
    def from_lists(cls, plans: list[tuple[int, list[Tour]]]) -> Tours:
        """From (household index, its tours) pairs."""
        hh, person, car, dep, n_stops = [], [], [], [], []
        purpose, node, sdep, out_m, entry = [], [], [], [], []
        for h, tours in plans:
            for t in tours:
                if not t.stops:
                    raise ValueError(f"household {h}: a tour needs at least one stop")
                hh.append(h)
                person.append(t.person)
                car.append(t.car)
                dep.append(t.depart_s)
                n_stops.append(len(t.stops))
                for s in t.stops:
                    if s.purpose not in PURPOSES:
                        raise ValueError(
                            f"household {h}: unknown stop purpose {s.purpose!r}; expected one "
                            f"of {', '.join(PURPOSES)}"
                        )
                    purpose.append(PURPOSES.index(s.purpose))
                    node.append(s.node)
                    sdep.append(s.depart_s)
                    out_m.append(s.outside_m if s.entry_node >= 0 else 0.0)
                    entry.append(s.entry_node)
        return cls(
            np.asarray(hh, dtype=np.int64),
            np.asarray(person, dtype=np.int16),
            np.asarray(car, dtype=np.int16),
            np.asarray(dep, dtype=np.float64),
            np.concatenate([[0], np.cumsum(n_stops, dtype=np.int64)]).astype(np.int64),
            np.asarray(purpose, dtype=np.int8),
            np.asarray(node, dtype=np.int32),
            np.asarray(sdep, dtype=np.float64),
            np.asarray(out_m, dtype=np.float64),
            np.asarray(entry, dtype=np.int32),
        )

    @classmethod
    def concat(cls, parts: list[Tours]) -> Tours:
        offs, base = [np.zeros(1, dtype=np.int64)], 0
        for p in parts:
            offs.append(p.stop_offsets[1:] + base)
            base += int(p.stop_offsets[-1])
        cat = np.concatenate
        return cls(
            cat([p.household for p in parts]),
            cat([p.person for p in parts]),
            cat([p.car for p in parts]),
            cat([p.depart_s for p in parts]),
            cat(offs),
            cat([p.stop_purpose for p in parts]),
            cat([p.stop_node for p in parts]),
            cat([p.stop_depart_s for p in parts]),
            cat([p.stop_outside_m for p in parts]),
            cat([p.stop_entry_node for p in parts]),
        )


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted array."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(n, dtype=bool)
    start[1:] = groups[1:] != groups[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    return np.arange(n) - first


def _one_stop(household, person, car, depart_s, purpose, node, stop_depart_s) -> Tours:
    n = len(household)
    return Tours(
        np.asarray(household, dtype=np.int64),
        np.asarray(person, dtype=np.int16),
        np.asarray(car, dtype=np.int16),
        np.asarray(depart_s, dtype=np.float64),
        np.arange(n + 1, dtype=np.int64),
        np.full(n, purpose, dtype=np.int8),
        np.asarray(node, dtype=np.int32),
        np.asarray(stop_depart_s, dtype=np.float64),
    )


def plan_tours(
    hh: HouseholdArrays,
    cfg: PopulationConfig,
    gravity: Gravity,
    seed: int,
    *,
    external: ExternalModel | None = None,
) -> Tours:
    """The default weekday tours of every household (see the module docstring); with
    ``external``, stops beyond the map's edge go through its gateways
    (:func:`place_outside`)."""
    home = hh.home_node
    cars = hh.cars.astype(np.int64)

    # -- commutes ---------------------------------------------------------------------------
    rng = stream(seed, "plans.work")
    w_hh = np.repeat(np.arange(len(hh)), hh.workers)
    w_person = _rank_within(w_hh)
    going = rng.random(len(w_hh)) < cfg.work_day_share
    w_hh, w_person = w_hh[going], w_person[going]
    n = len(w_hh)
    wants_car = (cars[w_hh] > 0) & (rng.random(n) < cfg.car_mode_share)
    car_rank = np.full(n, -1)
    car_rank[wants_car] = _rank_within(w_hh[wants_car])
    w_car = np.where(wants_car & (car_rank < cars[w_hh]), car_rank, -1)
    leave = commute_departures_s(rng.random(n), rng.random(n), cfg.am_peak, LATEST_S - MIN_WORK_S)
    workday = rng.normal(cfg.pm_peak - cfg.am_peak, cfg.peak_spread, n)
    # a late shift that would end after LATEST_S ends in its last hour (not all at LATEST_S)
    last_hour = rng.uniform(np.maximum(leave + MIN_WORK_S, LATEST_S - H), LATEST_S)
    back = np.maximum(leave + workday, leave + MIN_WORK_S)
    back = np.where(back > LATEST_S, last_hour, back)
    work = gravity.choose(WORK, home[w_hh], rng)
    chain = rng.random(n) < WORK_STOP_SHARE
    shop = gravity.choose(SHOP, work, rng)
    stay = rng.uniform(*SHOP_STOP_STAY_S, n)
    shop_leave = back + gravity.time_min(work, shop) * 60.0 + stay
    n_stops = np.where(chain, 2, 1)
    offs = np.concatenate([[0], np.cumsum(n_stops)]).astype(np.int64)
    purpose = np.full(offs[-1], WORK, dtype=np.int8)
    node = np.empty(offs[-1], dtype=np.int32)
    s_dep = np.empty(offs[-1])
    node[offs[:-1]], s_dep[offs[:-1]] = work, back
    second = offs[:-1][chain] + 1
    purpose[second], node[second], s_dep[second] = SHOP, shop[chain], shop_leave[chain]
    commutes = Tours(
        w_hh.astype(np.int64), w_person.astype(np.int16), w_car.astype(np.int16), leave,
        offs, purpose, node, s_dep,
    )  # fmt: skip
    car_commuters = np.bincount(w_hh[w_car >= 0], minlength=len(hh))
    free_cars = cars - car_commuters

    # -- school runs ------------------------------------------------------------------------
    rng = stream(seed, "plans.school")
    u = rng.random(len(hh))
    s_hh = np.flatnonzero((hh.children > 0) & (free_cars > 0) & (u < SCHOOL_ESCORT_SHARE))
    s_leave = np.clip(rng.normal(SCHOOL_DEPART_S, SCHOOL_SPREAD_S, len(s_hh)), 6 * H, 9 * H)
    school = gravity.choose(SCHOOL, home[s_hh], rng)
    s_back = s_leave + gravity.time_min(home[s_hh], school) * 60.0 + SCHOOL_DROP_S
    runs = _one_stop(
        s_hh, hh.adults[s_hh] - 1, car_commuters[s_hh], s_leave, SCHOOL, school, s_back
    )

    # -- other tours ------------------------------------------------------------------------
    rng = stream(seed, "plans.other")
    per_hh = rng.poisson(cfg.other_tours_per_adult * hh.adults.astype(np.float64))
    o_hh = np.repeat(np.arange(len(hh)), per_hh)
    m = len(o_hh)
    o_person = rng.integers(0, np.maximum(hh.adults[o_hh], 1))
    u_hour, u_in = rng.random(m), rng.random(m)
    stay = OTHER_MIN_STAY_S + rng.exponential(OTHER_MEAN_STAY_S, m)
    dest = gravity.choose(SHOP, home[o_hh], rng)
    out_and_stay = gravity.time_min(home[o_hh], dest) * 60.0 + stay
    driven = (cars[o_hh] > 0) & (rng.random(m) < cfg.car_mode_share)
    evening_delay = rng.exponential(EVENING_DELAY_MEAN_S, m)
    rank = _rank_within(o_hh)
    free = free_cars[o_hh]
    o_car = np.where(free > 0, car_commuters[o_hh] + rank % np.maximum(free, 1), -1)
    # no free car: the first commuter's car, if the tour fits before or after the commute
    first_commute = np.full(len(hh), -1)
    with_car0 = np.flatnonzero(w_car == 0)
    first_commute[w_hh[with_car0]] = with_car0
    fc = first_commute[o_hh]
    has_fc = (free <= 0) & (fc >= 0)
    fc_safe = np.maximum(fc, 0)
    commute_leave = leave[fc_safe] if n else np.zeros(m)
    commute_home = (
        commutes.stop_depart_s[commutes.stop_offsets[1:] - 1][fc_safe] + 30 * 60.0
        if n else np.zeros(m)
    )  # fmt: skip

    def placed(o_leave: np.ndarray) -> np.ndarray:
        """Departures after the move to the evening of tours whose car is out commuting."""
        fits = (o_leave + out_and_stay + 30 * 60.0 < commute_leave) | (o_leave > commute_home)
        later = has_fc & ~fits
        return np.where(later, commute_home + evening_delay, o_leave)

    def legs_of(o_leave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = placed(o_leave)
        w = np.where(has_fc, t < EVENING_LATEST_S, free > 0) & driven
        return np.concatenate([t, t + out_and_stay]), np.tile(w.astype(np.float64), 2)

    # the driven legs planned so far: car commutes (out, and from each stop), school runs
    fixed = np.concatenate([leave[w_car >= 0], s_dep[np.repeat(w_car >= 0, n_stops)],
                            s_leave, s_back])  # fmt: skip
    o_leave = placed(fill_profile_times(fixed, legs_of, u_hour, u_in, OTHER_WINDOW_S))
    o_back = o_leave + out_and_stay
    o_car = np.where(has_fc & (o_leave < EVENING_LATEST_S), 0, o_car)
    o_car = np.where(driven, o_car, -1)
    others = _one_stop(o_hh, o_person, o_car, o_leave, SHOP, dest, o_back)

    tours = Tours.concat([commutes, runs, others])
    if external is not None:
        place_outside(tours, home, gravity, external, stream(seed, "plans.external"))
    return fix_car_overlaps(tours, hh, gravity)


def place_outside(
    tours: Tours,
    home: np.ndarray,
    gravity: Gravity,
    external: ExternalModel,
    rng: np.random.Generator,
) -> None:
    """Move the stops that lie beyond the map's edge to its gateways, in place.

    Stop by stop in tour order (twin.population.external decides which: the purpose's trip
    length against the distance to the boundary); a stop after an outside stop is outside
    too. The times follow: an outside stop is reached later (the inside drive to the gateway
    plus ``outside_m`` at the outside speed); a shop or school stop keeps its planned stay, a
    work stop its planned end (at least ``OTHER_MIN_STAY_S`` after the arrival); later stops
    of the tour move with it.
    """
    n_stops = tours.n_stops
    if len(n_stops) == 0:
        return
    t_of = np.repeat(np.arange(len(tours)), n_stops)
    pos = _rank_within(t_of)
    old_dep = tours.stop_depart_s.copy()
    new_dep = tours.stop_depart_s  # updated in place
    for k in range(int(n_stops.max())):
        s = np.flatnonzero(pos == k)
        if k == 0:
            origin = home[tours.household[t_of[s]]]
            old_prev = new_prev = tours.depart_s[t_of[s]]
            after_out = np.zeros(len(s), dtype=bool)
        else:
            origin = tours.stop_node[s - 1].copy()
            old_prev, new_prev = old_dep[s - 1], new_dep[s - 1]
            after_out = tours.stop_entry_node[s - 1] >= 0
        old_node = tours.stop_node[s].copy()
        purpose = tours.stop_purpose[s]
        # chained after an outside stop: outside too, near it
        a = s[after_out]
        tours.stop_node[a] = tours.stop_node[a - 1]
        tours.stop_entry_node[a] = tours.stop_entry_node[a - 1]
        for p in np.unique(purpose[after_out]):
            sel = a[tours.stop_purpose[a] == p]
            tours.stop_outside_m[sel] = external.hop_m(int(p), len(sel), rng)
        # from inside the map: by the trip length against the distance to the edge
        for p in np.unique(purpose[~after_out]):
            j = np.flatnonzero(~after_out & (purpose == p))
            out, exit_node, entry_node, out_m = external.place(int(p), origin[j], rng, gravity)
            sel = s[j[out]]
            tours.stop_node[sel] = exit_node[out]
            tours.stop_entry_node[sel] = entry_node[out]
            tours.stop_outside_m[sel] = out_m[out]
        # times: the stay (work: the end) as planned, from the new arrival
        t_old = 60.0 * gravity.time_min(origin, old_node)
        moved = tours.stop_entry_node[s] >= 0
        t_new = np.where(
            moved,
            np.where(after_out, 0.0, 60.0 * gravity.time_min(origin, tours.stop_node[s]))
            + outside_time_s(tours.stop_outside_m[s]),
            t_old,
        )
        stay = np.maximum(old_dep[s] - old_prev - t_old, 0.0)
        arrive = new_prev + t_new
        new_dep[s] = np.where(
            purpose == WORK, np.maximum(old_dep[s], arrive + OTHER_MIN_STAY_S), arrive + stay
        )


def return_outside_m(tours: Tours) -> np.ndarray:
    """Per stop: the distance (m) back to the map's edge from it, 0 inside the map. A run of
    outside stops comes back from the first one's distance (the later ones are near it)."""
    out = tours.stop_outside
    back = np.where(out, tours.stop_outside_m, 0.0)
    if len(out) == 0:
        return back
    pos = _rank_within(np.repeat(np.arange(len(tours)), tours.n_stops))
    for k in range(1, int(tours.n_stops.max())):
        s = np.flatnonzero((pos == k) & out)
        cont = s[out[s - 1]]
        back[cont] = back[cont - 1]
    return back


def _profile_times(rng: np.random.Generator, n: int, lo_s: float, hi_s: float) -> np.ndarray:
    """Times in [lo_s, hi_s) from the NHTS weekday trip-start profile (unsorted)."""
    shares = hourly_shares("weekday")
    hours = np.arange(int(lo_s // H), int(np.ceil(hi_s / H)))
    p = shares[hours % 24] / shares[hours % 24].sum()
    h = rng.choice(hours, size=n, p=p)
    return np.clip(h * H + rng.random(n) * H, lo_s, np.nextafter(hi_s, 0))


def tour_end_s(tours: Tours, home: np.ndarray, gravity: Gravity) -> np.ndarray:
    """Planned arrival home of each tour (free-flow time from the last stop)."""
    last = tours.stop_offsets[1:] - 1
    out = tours.stop_outside[last]
    start = np.where(out, tours.stop_entry_node[last], tours.stop_node[last])
    back = np.where(out, return_outside_m(tours)[last], 0.0) if out.any() else 0.0
    return (
        tours.stop_depart_s[last]
        + outside_time_s(back)
        + 60.0 * gravity.time_min(start, home[tours.household])
    )


def fix_car_overlaps(tours: Tours, hh: HouseholdArrays, gravity: Gravity) -> Tours:
    """Shift tours that start before their car is back home (later tours move)."""
    if len(tours) == 0:
        return tours
    end = tour_end_s(tours, hh.home_node, gravity)
    order = np.lexsort((tours.depart_s, tours.car, tours.household))
    _shift_overlaps(
        order, tours.household, tours.car, tours.depart_s, end, tours.stop_offsets,
        tours.stop_depart_s, CAR_TOUR_GAP_S,
    )  # fmt: skip
    return tours


@njit(cache=True)
def _shift_overlaps(order, household, car, depart_s, end_s, stop_offsets, stop_depart_s, gap_s):
    prev = -1
    for k in range(order.shape[0]):
        i = order[k]
        if car[i] < 0:
            prev = -1
            continue
        if prev >= 0 and household[prev] == household[i] and car[prev] == car[i]:
            shift = end_s[prev] + gap_s - depart_s[i]
            if shift > 0:
                depart_s[i] += shift
                end_s[i] += shift
                for s in range(stop_offsets[i], stop_offsets[i + 1]):
                    stop_depart_s[s] += shift
        prev = i


@dataclass(eq=False)
class Legs:
    """One row per trip of the day (all modes); ``after`` chains the legs of one car."""

    household: np.ndarray  # int64, -1 for through traffic
    person: np.ndarray  # int16
    car: np.ndarray  # int16, household car index; -1 = not driven
    tour: np.ndarray  # int64 tour index, -1 for through traffic
    purpose: np.ndarray  # int8 purpose at the destination (WORK/SHOP/SCHOOL/HOME/THROUGH)
    origin_node: np.ndarray  # int32
    dest_node: np.ndarray  # int32
    depart_s: np.ndarray  # float64, planned
    after: np.ndarray  # int64 leg index this leg follows (same car), -1 = none
    min_dwell_s: np.ndarray  # float64, least time at the origin after ``after`` arrives
    #: float64 m driven outside the map before entering it at ``origin_node`` (a gateway)
    outside_pre_m: np.ndarray | None = None
    #: float64 m driven outside the map after leaving it at ``dest_node`` (a gateway); a
    #: leg between two stops outside the map has ``origin_node == dest_node`` and its whole
    #: length here
    outside_post_m: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.outside_pre_m is None:
            self.outside_pre_m = np.zeros(len(self.household))
        if self.outside_post_m is None:
            self.outside_post_m = np.zeros(len(self.household))

    def __len__(self) -> int:
        return len(self.household)

    @property
    def crosses(self) -> np.ndarray:
        """Whether each leg leaves or enters the map (or runs wholly outside it)."""
        return (self.outside_pre_m > 0) | (self.outside_post_m > 0)

    @property
    def driven(self) -> np.ndarray:
        return self.car >= 0


def with_extra_legs(
    legs: Legs,
    origin: np.ndarray,
    dest: np.ndarray,
    depart_s: np.ndarray,
    after: np.ndarray | None = None,
) -> Legs:
    """``legs`` plus driven legs of no household (through traffic, visitors): car 0,
    ``purpose`` THROUGH; ``after`` (absolute leg indices, -1 none) chains them."""
    m, cat = len(origin), np.concatenate
    after = np.full(m, -1, dtype=np.int64) if after is None else after
    return Legs(
        household=cat([legs.household, np.full(m, -1, dtype=np.int64)]),
        person=cat([legs.person, np.full(m, -1, dtype=np.int16)]),
        car=cat([legs.car, np.zeros(m, dtype=np.int16)]),
        tour=cat([legs.tour, np.full(m, -1, dtype=np.int64)]),
        purpose=cat([legs.purpose, np.full(m, THROUGH, dtype=np.int8)]),
        origin_node=cat([legs.origin_node, np.asarray(origin).astype(np.int32)]),
        dest_node=cat([legs.dest_node, np.asarray(dest).astype(np.int32)]),
        depart_s=cat([legs.depart_s, np.asarray(depart_s, dtype=np.float64)]),
        after=cat([legs.after, np.asarray(after).astype(np.int64)]),
        min_dwell_s=cat([legs.min_dwell_s, np.zeros(m)]),
        outside_pre_m=cat([legs.outside_pre_m, np.zeros(m)]),
        outside_post_m=cat([legs.outside_post_m, np.zeros(m)]),
    )


def tours_to_legs(tours: Tours, hh: HouseholdArrays, gravity: Gravity) -> Legs:
    """Every leg of every tour, chained per car (see the module docstring)."""
    n_stops = tours.n_stops
    n_legs = n_stops + 1
    t = np.repeat(np.arange(len(tours)), n_legs)
    k = _rank_within(t)  # leg number within its tour
    first_stop = tours.stop_offsets[t]
    last = k == n_legs[t] - 1
    s_here = first_stop + k  # the stop this leg goes to (invalid for the last leg)
    s_prev = first_stop + k - 1  # the stop it leaves (invalid for the first leg)
    home = hh.home_node[tours.household[t]]
    sp, sh = np.maximum(s_prev, 0), np.minimum(s_here, len(tours.stop_node) - 1)
    prev_out = (k > 0) & tours.stop_outside[sp] if len(sp) else np.zeros(0, dtype=bool)
    here_out = ~last & tours.stop_outside[sh] if len(sh) else np.zeros(0, dtype=bool)
    back_m = return_outside_m(tours)
    pre_m = np.where(prev_out & ~here_out, back_m[sp], 0.0) if len(sp) else np.zeros(0)
    post_m = np.where(here_out, tours.stop_outside_m[sh], 0.0) if len(sh) else np.zeros(0)
    leaves_from = np.where(prev_out & ~here_out, tours.stop_entry_node[sp], tours.stop_node[sp])
    origin = np.where(k == 0, home, leaves_from)
    dest = np.where(last, home, tours.stop_node[sh])
    depart = np.where(k == 0, tours.depart_s[t], tours.stop_depart_s[sp] + outside_time_s(pre_m))
    purpose = np.where(
        last, HOME, tours.stop_purpose[np.minimum(s_here, len(tours.stop_purpose) - 1)]
    ).astype(np.int8)
    car = tours.car[t]
    legs = Legs(
        household=tours.household[t],
        person=tours.person[t],
        car=car,
        tour=t.astype(np.int64),
        purpose=purpose,
        origin_node=origin.astype(np.int32),
        dest_node=dest.astype(np.int32),
        depart_s=depart,
        after=np.full(len(t), -1, dtype=np.int64),
        min_dwell_s=np.zeros(len(t)),
        outside_pre_m=pre_m,
        outside_post_m=post_m,
    )
    chain_legs(legs, gravity)
    return legs


def chain_legs(legs: Legs, gravity: Gravity) -> None:
    """Set ``after`` and ``min_dwell_s``: each driven leg follows its car's previous leg.

    ``min_dwell_s`` is the time between the previous leg's arrival in the map and this leg's
    departure in it: the activity (planned, capped at ``MIN_DWELL_CAP_S``) plus, for a car
    that left the map, its driving outside there and back (not capped)."""
    driven = np.flatnonzero(legs.driven & (legs.household >= 0))
    order = driven[np.lexsort((legs.depart_s[driven], legs.car[driven],
                               legs.household[driven]))]  # fmt: skip
    same = (legs.household[order][1:] == legs.household[order][:-1]) & (
        legs.car[order][1:] == legs.car[order][:-1]
    )
    nxt, prv = order[1:][same], order[:-1][same]
    legs.after[nxt] = prv
    wholly_outside = (legs.origin_node[prv] == legs.dest_node[prv]) & (legs.outside_post_m[prv] > 0)
    inside_s = np.where(
        wholly_outside, 0.0, 60.0 * gravity.time_min(legs.origin_node[prv], legs.dest_node[prv])
    )
    post_s = outside_time_s(legs.outside_post_m[prv])
    pre_s = outside_time_s(legs.outside_pre_m[nxt])
    arrive_plan = legs.depart_s[prv] + inside_s + post_s
    activity = legs.depart_s[nxt] - pre_s - arrive_plan
    legs.min_dwell_s[nxt] = post_s + np.clip(activity, 0.0, MIN_DWELL_CAP_S) + pre_s


def through_legs(
    gateways_out: np.ndarray,
    gateways_in: np.ndarray,
    weight_out: np.ndarray,
    weight_in: np.ndarray,
    n: int,
    rng: np.random.Generator,
    min_separation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` through trips between boundary gateways: (origin node, dest node, depart_s).

    ``min_separation`` is a boolean (n_out, n_in) matrix of the pairs allowed (far apart).
    """
    p_out = weight_out / weight_out.sum()
    o = rng.choice(len(gateways_out), size=n, p=p_out)
    d = np.empty(n, dtype=np.int64)
    for i in np.unique(o):
        w = weight_in * min_separation[i]
        if w.sum() <= 0:
            w = weight_in.copy()
        idx = np.flatnonzero(o == i)
        d[idx] = rng.choice(len(gateways_in), size=len(idx), p=w / w.sum())
    depart = _profile_times(rng, n, 0.0, 24 * H)
    return gateways_out[o], gateways_in[d], depart


__all__ = ["HOME", "THROUGH", "Legs", "Stop", "Tour", "Tours", "plan_tours", "tours_to_legs"]
