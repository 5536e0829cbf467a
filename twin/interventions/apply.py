"""Where demand what-ifs enter a model: the population's legs or the trip table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.interventions.config import RemoveSignal, TransformerRating
from twin.interventions.demand import (
    demand_items,
    event_items,
    event_legs,
    event_trips,
    scale_count,
    scale_tours_window,
    scale_trips_window,
)
from twin.interventions.targets import place_node, signal_node, transformers

if TYPE_CHECKING:
    from twin.energy.component import EnergyComponent
    from twin.model import CityModel
    from twin.network.road import RoadNet
    from twin.population.plans import Legs, Tours
    from twin.population.synthesis import PopulationData
    from twin.scenario import Scenario
    from twin.traffic.demand import Trips


def _where(model: CityModel, item) -> str:
    sc = model.scenario
    i = sc.intervention.index(item) + 1
    return f"{sc.source or sc.name}: intervention {i} ({item.kind})"


def _venues(model: CityModel) -> list:
    return [
        (e, place_node(model.network, *e.place, _where(model, e)))
        for e in event_items(model.scenario.intervention)
    ]


def network(scenario: Scenario, net: RoadNet) -> RoadNet:
    """``net`` with the signals the scenario removes taken out (a copy; ``net`` unchanged):
    the junction is no longer signalised, and runs as an all-way stop or by priority."""
    from dataclasses import replace

    from twin.network.road import CTRL_ALL_WAY_STOP, CTRL_PRIORITY

    removals = [i for i in scenario.intervention if isinstance(i, RemoveSignal)]
    if not removals:
        return net
    node_signal, node_control = net.node_signal.copy(), net.node_control.copy()
    for item in removals:
        i = scenario.intervention.index(item) + 1
        where = f"{scenario.source or scenario.name}: intervention {i} ({item.kind})"
        node = signal_node(net, item.junction, where)
        node_signal[node] = -1
        node_control[node] = CTRL_ALL_WAY_STOP if item.control == "all_way_stop" else CTRL_PRIORITY
    return replace(net, node_signal=node_signal, node_control=node_control)


def transformer_ratings(scenario: Scenario, energy: EnergyComponent) -> None:
    """Scale the ratings the scenario's ``transformer_rating`` interventions raise."""
    for i, item in enumerate(scenario.intervention, start=1):
        if isinstance(item, TransformerRating):
            where = f"{scenario.source or scenario.name}: intervention {i} ({item.kind})"
            energy.scale_rating(transformers(energy.city, item, where), item.factor)


def population_legs(model: CityModel, data: PopulationData, tours: Tours) -> Legs:
    """The day's legs with the demand windows scaled and the events' visitors added."""
    from twin.population.synthesis import day_legs

    items = model.scenario.intervention
    legs = day_legs(data, tours)
    windows = demand_items(items)
    if windows:  # household tours by when they leave home; through traffic by departure
        from dataclasses import fields

        from twin.population.plans import Legs, tours_to_legs

        rng = model.stream("interventions.demand")
        hh_legs = tours_to_legs(scale_tours_window(tours, windows, model.start_s, model.end_s,
                                                   rng), data.households, data.gravity)  # fmt: skip
        through = np.flatnonzero(legs.household < 0)
        copies = scale_count(legs.depart_s[through], windows, model.start_s, model.end_s, rng)
        through = np.repeat(through, copies)
        legs = Legs(
            **{
                f.name: np.concatenate([getattr(hh_legs, f.name), getattr(legs, f.name)[through]])
                for f in fields(Legs)
            }
        )
    homes = data.households.home_node
    return event_legs(legs, _venues(model), homes, model.stream("interventions.event"))


def trip_demand(model: CityModel, trips: Trips) -> Trips:
    """Random or CSV trips with the demand windows scaled and the events' trips added."""
    items = model.scenario.intervention
    trips = scale_trips_window(
        trips, demand_items(items), model.start_s, model.end_s,
        model.stream("interventions.demand"),
    )  # fmt: skip
    homes = np.arange(model.network.n_nodes, dtype=np.int32)
    trips = event_trips(trips, _venues(model), homes, model.stream("interventions.event"))
    from twin.traffic.component import in_window

    return in_window(trips, model.start_s, model.end_s, "event trips")
