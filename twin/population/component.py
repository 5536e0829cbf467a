"""The population as a CityModel component: households as agents, their trips as demand.

Built before the traffic engine: the driven legs of the day that depart within the scenario's
window become the traffic engine's trips (chained per car, so a car leaves for its next leg
only after it got back). Every minute of simulated time the component hands the cars that
arrived home to their household's :meth:`~twin.population.agent.Household.on_arrive_home`;
the energy model asks the household agents (:meth:`PopulationComponent.connect` hands them
over) whether their EVs plug in (:meth:`~twin.population.agent.Household.plug_in`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.clock import Process
from twin.population.agent import Household
from twin.population.destinations import HOME, PURPOSE_NAMES
from twin.population.plans import Legs, Tours
from twin.population.synthesis import PopulationData, day_legs, scale_tours
from twin.synth_cache import cached_population
from twin.traffic.demand import Trips
from twin.traffic.state import ARRIVED

if TYPE_CHECKING:
    from twin.model import CityModel
    from twin.results import Results

log = logging.getLogger(__name__)

ARRIVALS_ORDER = 150  # after the traffic process (100) at the same instant
ARRIVALS_PERIOD_S = 60.0
H = 3600.0


def overrides_plan_day(cls: type[Household]) -> bool:
    """Whether a Household subclass plans its own day."""
    return cls.plan_day is not Household.plan_day


class PopulationComponent:
    """Households of the scenario's map, their day plans and the trips they drive."""

    def __init__(self, model: CityModel, household_class: type[Household] = Household) -> None:
        if not (isinstance(household_class, type) and issubclass(household_class, Household)):
            raise TypeError(f"household_class must subclass Household, got {household_class!r}")
        self.model = model
        sc = model.scenario
        self.data: PopulationData = cached_population(
            model.network, sc.map.file, sc.population, sc.seed
        )
        self.household_class = household_class
        for i in range(len(self.data)):
            household_class(model, self.data, i)
        self.households = model.agents_by_type[household_class]
        if overrides_plan_day(household_class):
            self.tours = Tours.from_lists([(h.index, h.plan_day()) for h in self.households])
            self.tours.car[self.tours.car >= self.data.households.cars[self.tours.household]] = -1
        else:
            self.tours = self.data.default_tours
        tours = scale_tours(self.tours, sc.demand.demand_scale, sc.seed)
        if sc.intervention:  # what-ifs on demand: windows scaled, events' visitors added
            from twin.interventions.apply import population_legs

            self.legs: Legs = population_legs(model, self.data, tours)
        else:
            self.legs = day_legs(self.data, tours)
        self.trips, self.trip_leg, self.same_node = window_trips(
            self.legs, model.start_s, model.end_s
        )
        self._home_fleet = np.empty(0, dtype=np.int64)
        self._by_index = {h.index: h for h in self.households}
        self._arrivals: list[tuple[int, int, float, float]] = []

    # -- wiring --------------------------------------------------------------------------------

    def connect(self) -> None:
        """With population demand on the traffic engine, watch it for cars arriving home;
        with the energy model, make the household agents decide their EVs' plug-ins."""
        if self.model.traffic is not None and self.model.scenario.demand.kind == "population":
            self.attach_traffic()
        energy = getattr(self.model, "energy", None)
        if energy is not None:
            energy.consumers.attach_households(self._by_index)

    def attach_traffic(self) -> None:
        """Watch the traffic engine for cars arriving home (call once it exists)."""
        sim = self.model.traffic.sim
        trip_pos = {int(t): k for k, t in enumerate(sim.trips.trip_id)}
        legs = self.legs
        home_legs = np.flatnonzero(
            (legs.purpose[self.trip_leg] == HOME) & (legs.household[self.trip_leg] >= 0)
        )
        self._home_trip = home_legs
        self._home_fleet = np.array(
            [trip_pos[int(self.trips.trip_id[k])] for k in home_legs], dtype=np.int64
        )
        # a leg can arrive only once it is due: watch the due ones not yet notified
        plan_s = sim.by_trip.depart_plan_s[self._home_fleet]
        self._by_plan = np.argsort(plan_s, kind="stable")
        self._plan_sorted_s = plan_s[self._by_plan]
        self._n_due = 0
        self._open = np.zeros(0, dtype=np.int64)  # due, not notified (ascending)
        self.model.clock.register(
            Process("home-arrivals", ARRIVALS_PERIOD_S, self._arrivals_tick,
                    order=ARRIVALS_ORDER, offset_s=ARRIVALS_PERIOD_S)
        )  # fmt: skip

    def sync(self, t_s: float) -> None:
        """Nothing to catch up: arrivals are handed over by the clock process."""

    def _arrivals_tick(self, t_s: float) -> None:
        traffic = self.model.traffic
        traffic.sync(t_s)
        fleet = traffic.sim.by_trip  # by trip: running vehicles are renumbered
        n_due = int(np.searchsorted(self._plan_sorted_s, t_s, side="right"))
        if n_due > self._n_due:
            due = self._by_plan[self._n_due : n_due]
            self._open = np.sort(np.concatenate([self._open, due]))
            self._n_due = n_due
        arrived = fleet.state[self._home_fleet[self._open]] == ARRIVED
        if not arrived.any():
            return
        idx = self._open[arrived]  # ascending, as the home legs
        self._open = self._open[~arrived]
        v = self._home_fleet[idx]
        legs = self.trip_leg[self._home_trip[idx]]
        arrive_s, dist_m = fleet.arrive_s[v], fleet.dist_m[v]
        order = np.argsort(arrive_s, kind="stable")
        households = self.legs.household[legs[order]].tolist()
        cars = self.legs.car[legs[order]].tolist()
        for hh, car, arrive, dist in zip(
            households, cars, arrive_s[order].tolist(), dist_m[order].tolist(), strict=True
        ):
            self._arrivals.append((hh, car, arrive, dist))
            agent = self._by_index.get(hh)
            if agent is not None:
                agent.on_arrive_home(arrive, car, dist)

    # -- results -------------------------------------------------------------------------------

    def add_results(self, results: Results) -> None:
        """Population KPIs, the households table and the day's legs."""
        for key, value in self.data.summary().items():
            results.add_kpi(f"population.{key}", value, "count")
        legs, n = self.legs, len(self.data)
        in_hh = legs.household >= 0
        driven = legs.driven & in_hh
        results.add_kpi("population.tours", len(self.tours), "count")
        results.add_kpi("population.trips_per_household", in_hh.sum() / max(n, 1), "trips/day")
        results.add_kpi(
            "population.vehicle_trips_per_household", driven.sum() / max(n, 1), "trips/day"
        )
        results.add_kpi("population.through_trips", int((legs.household < 0).sum()), "count")
        crossing = driven & legs.crosses
        results.add_kpi("population.external_trips", int(crossing.sum()), "count")
        results.add_kpi(
            "population.external_trip_share", crossing.sum() / max(int(driven.sum()), 1), "share"
        )
        results.add_kpi(
            "population.outside_km",
            float((legs.outside_pre_m[driven] + legs.outside_post_m[driven]).sum()) / 1000.0,
            "km",
        )
        results.add_kpi("population.trips_in_window", len(self.trips), "count")
        results.add_kpi("population.same_node_trips_skipped", self.same_node, "count")
        results.add_kpi("population.home_arrivals", len(self._arrivals), "count")
        hh = self.data.households
        results.tables["households"] = pd.DataFrame(
            {
                "household": np.arange(n),
                "lon": hh.home_lon,
                "lat": hh.home_lat,
                "home_node": hh.home_node,
                "home_source": np.where(hh.home_source == 0, "building", "street"),
                "persons": hh.persons,
                "adults": hh.adults,
                "workers": hh.workers,
                "cars": hh.cars,
                "has_ev": hh.has_ev,
            }
        )
        results.tables["legs"] = legs_frame(legs)
        if self._arrivals:
            results.tables["home_arrivals"] = pd.DataFrame(
                self._arrivals, columns=["household", "car", "arrive_s", "distance_m"]
            )


def legs_frame(legs: Legs) -> pd.DataFrame:
    """The legs of the day as a table (one row per trip, all modes)."""
    return pd.DataFrame(
        {
            "leg": np.arange(len(legs)),
            "household": legs.household,
            "person": legs.person,
            "car": legs.car,
            "purpose": np.asarray(PURPOSE_NAMES, dtype=object)[legs.purpose],
            "origin_node": legs.origin_node,
            "dest_node": legs.dest_node,
            "depart_s": legs.depart_s,
            "after_leg": legs.after,
            "driven": legs.driven,
            "outside_pre_m": legs.outside_pre_m,
            "outside_post_m": legs.outside_post_m,
        }
    )


def window_trips(legs: Legs, start_s: float, end_s: float) -> tuple[Trips, np.ndarray, int]:
    """The driven legs departing in [start_s, end_s) as Trips (trip_id = leg index).

    Returns (trips, leg index of each trip in Trips order, legs skipped for having the same
    origin and destination node: a leg wholly outside the map, between two stops beyond its
    edge, is one of them and is not counted). A leg following a skipped one follows that
    leg's own predecessor, the dwell times added (the car waits out the skipped leg there);
    a chain whose previous leg is not in the window starts free (its car is assumed where the
    plan puts it)."""
    in_window = legs.driven & (legs.depart_s >= start_s) & (legs.depart_s < end_s)
    same = in_window & (legs.origin_node == legs.dest_node)
    keep = np.flatnonzero(in_window & ~same)
    kept = np.zeros(len(legs), dtype=bool)
    kept[keep] = True
    after = legs.after[keep].copy()
    dwell = legs.min_dwell_s[keep].copy()
    while True:  # through skipped same-node legs of the window
        via = np.flatnonzero((after >= 0) & same[np.maximum(after, 0)])
        if len(via) == 0:
            break
        dwell[via] += legs.min_dwell_s[after[via]]
        after[via] = legs.after[after[via]]
    ok = after >= 0
    ok[ok] = kept[after[ok]]
    trips = Trips(
        trip_id=keep.astype(np.int64),
        origin_node=legs.origin_node[keep],
        dest_node=legs.dest_node[keep],
        depart_s=legs.depart_s[keep],
        after_trip_id=np.where(ok, after, -1),
        min_dwell_s=np.where(ok, dwell, 0.0),
    )
    outside = same & (legs.outside_post_m > 0)
    return trips, trips.trip_id.copy(), int((same & ~outside).sum())
