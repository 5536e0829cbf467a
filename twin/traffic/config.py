"""Scenario sections of the traffic engine: ``[traffic]`` and ``[demand]``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from twin.timefmt import DurationS, PositiveDurationS, Section


class TrafficConfig(Section):
    """``[traffic]``: the vehicle simulation. Car-following is Krauss with SUMO's defaults."""

    #: simulate vehicles at all; default true
    enabled: bool = True
    #: time step of the vehicle kernel, a duration; default "1s" (SUMO's default step)
    step: PositiveDurationS = 1.0
    #: simulated time the traffic process runs per wake-up of the clock when nothing else
    #: wakes it, in whole steps; a cost, not a result: every process that reads the traffic
    #: (recorders, energy, policies, interventions) first brings it up to its own time, so
    #: runs are the same for any block (a kernel call costs ~40 us of Python); default "60s"
    block: PositiveDurationS = 60.0
    #: a vehicle halted this long is counted as gridlocked (SUMO --time-to-teleport); > 0;
    #: default "300s"
    gridlock_after: PositiveDurationS = 300.0
    #: move gridlocked vehicles on along their route to the next link with room, as SUMO's
    #: teleports (false: they stay where they are); default true
    teleport: bool = True
    #: Krauss driver imperfection in [0, 1] (SUMO sigma); default 0.5
    sigma: float = Field(0.5, ge=0, le=1)
    #: spread of the drivers' speed factors (desired speed / limit, normal around 1; SUMO's
    #: default vType); 0 = everyone drives at the limit; default 0.1
    speed_dev: float = Field(0.1, ge=0, le=0.5)
    #: Krauss reaction time / desired time headway in s (SUMO tau); default 1.0
    tau_s: float = Field(1.0, gt=0)
    #: how often a share of the running vehicles is re-routed on recent travel times (as
    #: drivers with navigation do; SUMO's rerouting device); "0s" = never (every vehicle
    #: keeps its free-flow fastest route: on a whole Baltimore day 249 vehicles gridlock and
    #: the mean trip is 11.0 min, against 1 and 7.8 min with re-routing; README, "Routing");
    #: default "5min" (judgement, with reroute_share 0.1)
    reroute_interval: DurationS = 300.0
    #: share of the running vehicles re-routed each time, in [0, 1]; default 0.1
    reroute_share: float = Field(0.1, ge=0, le=1)
    #: every ``reroute_interval``, the trips due to set out before the next time whose route
    #: is now over 1.5 times slower than at free flow get the fastest route on the links'
    #: recent travel times (as drivers who check the traffic before they leave; SUMO's
    #: rerouting device routes at insertion too); false: every trip keeps the free-flow
    #: fastest route it was given at the start; default true
    route_at_departure: bool = True
    #: default fixed-time signal plans (Webster): "demand" splits green and sets the cycle by
    #: each approach's planned flow in its busiest hour, from the routed trips (as signals
    #: are timed from traffic counts); "capacity" by the approaches' capacities alone (no
    #: demand known; SUMO's static programmes are timed without demand too); default "capacity"
    signal_timing: Literal["demand", "capacity"] = "capacity"
    #: per-link statistics bin; default: the scenario's report interval
    link_bin: PositiveDurationS | None = None

    @model_validator(mode="after")
    def _block_is_whole_steps(self) -> TrafficConfig:
        ratio = self.block / self.step
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"block ({self.block:g} s) must be a whole number of steps ({self.step:g} s)"
            )
        return self


class DemandConfig(Section):
    """``[demand]``: where the trips come from."""

    #: "population" (the households' day plans, see ``[population]``), "random" (time-of-day
    #: profile over random origin/destination pairs) or "csv" (a trip file); default
    #: "population"
    kind: Literal["population", "random", "csv"] = "population"
    #: random: mean trips per hour over the run, before demand_scale; default 1800
    trips_per_hour: float = Field(1800.0, ge=0)
    #: multiplies the number of trips (population: whole tours are sampled or replicated,
    #: up to 30; random: trips); default 1.0
    demand_scale: float = Field(1.0, ge=0)
    #: random: time-of-day shape, "weekday", "saturday" or "flat"; default "weekday"
    profile: Literal["weekday", "saturday", "flat"] = "weekday"
    #: random: shortest straight-line trip in metres; default 500
    min_trip_m: float = Field(500.0, ge=0)
    #: csv: the trip file (relative to the scenario file setting it)
    file: Path | None = Field(None, strict=False)
    #: csv: farthest a lon/lat point may be from its network node, in metres (a trip with a
    #: point farther is skipped and reported); default 500
    snap_max_m: float = Field(500.0, gt=0)

    @model_validator(mode="after")
    def _csv_needs_file(self) -> DemandConfig:
        if self.kind == "csv" and self.file is None:
            raise ValueError('kind = "csv" needs file = "trips.csv"')
        return self
