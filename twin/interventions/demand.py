"""Demand what-ifs: scale the trips of a time window; add an event's visitors.

With the households' demand, ``demand`` scales whole tours by the time they leave home
(a tour is kept, dropped or replicated, as ``[demand] demand_scale`` does for the day);
with random or CSV trips it scales single trips by departure time. An ``event`` adds
``trips`` visitors (no household: like through traffic) from homes across the map (random
road nodes without a population) to the road node nearest ``place``: they leave over the
``spread_min`` minutes before ``at`` and, if ``until`` is given, drive back over the
``spread_min`` minutes from ``until``.
"""

from __future__ import annotations

import numpy as np

from twin.errors import ScenarioError
from twin.interventions.config import Demand, Event, Intervention
from twin.population.plans import Legs, Tours, with_extra_legs
from twin.population.synthesis import REPLICA_CAR_STRIDE
from twin.traffic.demand import Trips


def _factor(depart_s: np.ndarray, items: list[Demand], start_s: float, end_s: float) -> np.ndarray:
    f = np.ones(len(depart_s))
    for item in items:
        t0 = start_s if item.at is None else item.at
        t1 = end_s if item.until is None else item.until
        f[(depart_s >= t0) & (depart_s < t1)] *= item.scale
    return f


def _copies(f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole copies of each row for factors ``f``: floor(f), plus one with the remainder."""
    return (np.floor(f) + (rng.random(len(f)) < f - np.floor(f))).astype(np.int64)


def scale_count(
    depart_s: np.ndarray,
    items: list[Demand],
    start_s: float,
    end_s: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Copies of each row (0, 1, 2, ...) for the windows' factors at ``depart_s``."""
    return _copies(_factor(depart_s, items, start_s, end_s), rng)


def demand_items(items: tuple[Intervention, ...]) -> list[Demand]:
    return [i for i in items if isinstance(i, Demand)]


def event_items(items: tuple[Intervention, ...]) -> list[Event]:
    return [i for i in items if isinstance(i, Event)]


def scale_tours_window(
    tours: Tours, items: list[Demand], start_s: float, end_s: float, rng: np.random.Generator
) -> Tours:
    """The tours with those leaving home in each window scaled by its factor."""
    if not items:
        return tours
    copies = _copies(_factor(tours.depart_s, items, start_s, end_s), rng)
    # a copy drives a car of its own: past the ids demand_scale's replicas already use
    first = int(tours.car.max(initial=0)) // REPLICA_CAR_STRIDE + 1
    top = int(tours.car.max(initial=0)) + (first + int(copies.max(initial=1)) - 2) * (
        REPLICA_CAR_STRIDE
    )
    if top > np.iinfo(np.int16).max:
        raise ScenarioError(
            "demand: the window's scale times [demand] demand_scale replicates tours more "
            f"than the {np.iinfo(np.int16).max // REPLICA_CAR_STRIDE} times supported"
        )
    parts = []
    for r in range(int(copies.max(initial=0))):
        part = tours.select(copies > r)
        if r:
            car = part.car.astype(np.int64) + (first + r - 1) * REPLICA_CAR_STRIDE
            part.car = np.where(part.car >= 0, car, -1).astype(np.int16)
        parts.append(part)
    return Tours.concat(parts) if parts else tours.select(np.zeros(len(tours), dtype=bool))


def scale_trips_window(
    trips: Trips, items: list[Demand], start_s: float, end_s: float, rng: np.random.Generator
) -> Trips:
    """Random or CSV trips departing in each window scaled by its factor (copies get new ids;
    a dropped trip's follower starts free)."""
    if not items:
        return trips
    copies = _copies(_factor(trips.depart_s, items, start_s, end_s), rng)
    idx = np.repeat(np.arange(len(trips)), copies)
    rank = np.arange(len(idx)) - np.repeat(np.cumsum(copies) - copies, copies)
    next_id = int(trips.trip_id.max(initial=-1)) + 1
    trip_id = np.where(rank == 0, trips.trip_id[idx], next_id + np.arange(len(idx)))
    after = trips.after_trip_id[idx]
    after = np.where((rank == 0) & np.isin(after, trip_id), after, -1)
    return Trips(
        trip_id=trip_id,
        origin_node=trips.origin_node[idx],
        dest_node=trips.dest_node[idx],
        depart_s=trips.depart_s[idx],
        after_trip_id=after,
        min_dwell_s=np.where(after >= 0, trips.min_dwell_s[idx], 0.0),
    )


def _event_od(
    event: Event, venue: int, homes: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Origins, inbound departures, and (if it ends) return departures of one event."""
    n = event.trips
    origin = homes[rng.integers(0, len(homes), n)]
    origin = np.where(origin == venue, homes[0] if homes[0] != venue else homes[-1], origin)
    spread = event.spread_min * 60.0
    go = event.at - spread * rng.random(n)
    back = event.until + spread * rng.random(n) if event.until is not None else None
    return origin.astype(np.int32), go, back


def event_legs(
    legs: Legs, events: list[tuple[Event, int]], homes: np.ndarray, rng: np.random.Generator
) -> Legs:
    """``legs`` plus the visitors' legs of ``events`` ((event, venue node) pairs)."""
    parts = []
    n0 = len(legs)
    for event, venue in events:
        origin, go, back = _event_od(event, venue, homes, rng)
        n = len(origin)
        out_idx = n0 + sum(len(p[0]) for p in parts) + np.arange(n)
        o, d, dep, after = [origin], [np.full(n, venue, np.int32)], [go], [np.full(n, -1)]
        if back is not None:
            o.append(np.full(n, venue, np.int32))
            d.append(origin)
            dep.append(back)
            after.append(out_idx)
        parts.append(
            (np.concatenate(o), np.concatenate(d), np.concatenate(dep), np.concatenate(after))
        )
    if not parts:
        return legs
    o, d, dep, after = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return with_extra_legs(legs, o, d, dep, after)


def event_trips(
    trips: Trips, events: list[tuple[Event, int]], homes: np.ndarray, rng: np.random.Generator
) -> Trips:
    """``trips`` plus the visitors' trips of ``events`` (random or CSV demand)."""
    if not events:
        return trips
    ids, o, d, dep, after = [trips.trip_id], [trips.origin_node], [trips.dest_node], [
        trips.depart_s], [trips.after_trip_id]  # fmt: skip
    next_id = int(trips.trip_id.max(initial=-1)) + 1
    for event, venue in events:
        origin, go, back = _event_od(event, venue, homes, rng)
        n = len(origin)
        out_ids = next_id + np.arange(n)
        next_id += n
        ids.append(out_ids)
        o.append(origin)
        d.append(np.full(n, venue, np.int32))
        dep.append(go)
        after.append(np.full(n, -1))
        if back is not None:
            ids.append(next_id + np.arange(n))
            next_id += n
            o.append(np.full(n, venue, np.int32))
            d.append(origin)
            dep.append(back)
            after.append(out_ids)
    cat = np.concatenate
    aft = cat(after).astype(np.int64)
    return Trips(
        trip_id=cat(ids),
        origin_node=cat(o),
        dest_node=cat(d),
        depart_s=cat(dep),
        after_trip_id=aft,
        min_dwell_s=cat([trips.min_dwell_s, np.zeros(len(aft) - len(trips))]),
    )
