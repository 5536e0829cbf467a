"""The Household agent: a mesa.Agent that is a view onto one row of the household arrays.

Subclass it to change behaviour; the model takes the class as ``CityModel(...,
household_class=MyHousehold)``. Override :meth:`Household.plan_day` to change the day's tours
(call ``super().plan_day()`` to start from the default plan), :meth:`Household.plug_in` to
decide whether, when and to what charge the household's EV plugs in when it gets home (the
energy model asks the agent at every EV arrival), and :meth:`on_arrive_home` to react when one
of the household's cars gets home in the traffic simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from twin.population.destinations import PURPOSES

if TYPE_CHECKING:
    from twin.population.plans import Tour
    from twin.population.synthesis import PopulationData


@dataclass(frozen=True)
class PlugIn:
    """A household's plug-in decision for its EV (see :meth:`Household.plug_in`)."""

    at_s: float  # when the EV is plugged in, s since midnight; not before it got home
    target_soc: float  # state of charge wanted by its next departure, share of the battery


class _Column:
    """A read/write view of one household's entry in a HouseholdArrays column."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Household | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(obj.data.households, self.name)[obj.index].item()

    def __set__(self, obj: Household, value: Any) -> None:
        getattr(obj.data.households, self.name)[obj.index] = value


class Household(mesa.Agent):
    """One household: its home, members, cars and day plan, and how it plugs in its EV.

    Hooks a subclass may override: :meth:`plan_day` (the day's tours), :meth:`plug_in` (the
    EV's plug-in decision: whether, when, to what target; e.g. plug in only below half charge)
    and :meth:`on_arrive_home` (a car got home in the traffic simulation).
    """

    persons = _Column()
    adults = _Column()
    workers = _Column()
    cars = _Column()
    has_ev = _Column()
    home_node = _Column()
    home_link = _Column()
    home_x_m = _Column()
    home_y_m = _Column()
    home_lon = _Column()
    home_lat = _Column()

    def __init__(self, model: mesa.Model, data: PopulationData, index: int) -> None:
        super().__init__(model)
        self.data = data
        self.index = index  # row in the household arrays
        self.last_home_arrival_s = float("nan")

    @property
    def children(self) -> int:
        return self.persons - self.adults

    # -- planning ------------------------------------------------------------------------------

    def plan_day(self) -> list[Tour]:
        """The tours of this household's weekday (default: the vectorised plan).

        Each tour leaves home at ``depart_s``, visits its stops and returns home; ``car`` is
        the household's car index (0 .. cars - 1) or -1 for a tour not made by car.
        """
        return self.data.default_tours_of(self.index).to_list()

    def destination(self, purpose: str, origin_node: int | None = None) -> int:
        """A destination node for ``purpose`` ("work", "shop", "school") from the gravity
        model, drawn from the model's "plans.custom" stream."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}; expected one of {PURPOSES}")
        origin = self.home_node if origin_node is None else origin_node
        return int(
            self.data.gravity.choose(
                PURPOSES.index(purpose), np.array([origin]), self.data.custom_rng
            )[0]
        )

    def travel_time_s(self, origin_node: int, dest_node: int) -> float:
        """Free-flow travel time between the zones of two network nodes."""
        minutes = self.data.gravity.time_min(np.array([origin_node]), np.array([dest_node]))
        return float(minutes[0] * 60.0)

    # -- events --------------------------------------------------------------------------------

    def on_arrive_home(self, t_s: float, car: int, distance_m: float) -> None:
        """Called when the household's car ``car`` arrives home at ``t_s`` after a trip of
        ``distance_m`` simulated by the traffic engine (a notification: nothing is returned).

        It comes first: when the car is the household's EV, the energy model then asks
        :meth:`plug_in` (at its next tick, for every arrival home, simulated or planned) whether
        it plugs in.
        """
        self.last_home_arrival_s = t_s

    def plug_in(
        self, t_s: float, car: int, soc_kwh: float, battery_kwh: float, target_soc: float
    ) -> PlugIn | None:
        """The EV plug-in decision, asked by the energy model when the household's EV (its car
        ``car``) gets home at ``t_s`` with ``soc_kwh`` of its ``battery_kwh`` left after the
        trip. ``target_soc`` is the scenario's ``[energy] ev_target_soc``.

        Return ``PlugIn(at_s, target_soc)`` to plug it in at ``at_s`` (``>= t_s``; a later
        time delays the session, e.g. to a cheap-tariff hour) wanting ``target_soc`` (a share of
        the battery in (0, 1]) by its next departure, or ``None`` to leave it unplugged until
        it next gets home. Default: plug in on arrival, wanting ``target_soc`` (every EV
        charges every time it gets home, the session model of the uncontrolled baseline, as
        in ACN-Sim). What a charging policy then does with the plugged EV is up to the policy.
        """
        return PlugIn(at_s=t_s, target_soc=target_soc)

    def __repr__(self) -> str:
        return (
            f"Household({self.index}: {self.persons} persons, {self.workers} workers, "
            f"{self.cars} cars{', EV' if self.has_ev else ''}, home node {self.home_node})"
        )
