"""CityModel: the mesa.Model that wires a scenario's network, clock, components and recorders.

``model.step()`` advances the twin by one reporting interval; ``model.run()`` runs the whole
scenario. Components (traffic, population, energy, policies; later issues) register recurring
processes on ``model.clock`` and reporters with ``model.add_reporter``; ``print(model.plan())``
shows what runs, how often and in which order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import mesa
import numpy as np
from tqdm.auto import tqdm

from twin.clock import Clock, Process
from twin.network.cache import load_roadnet
from twin.network.road import BuildOptions, RoadNet
from twin.population.agent import Household
from twin.population.component import PopulationComponent
from twin.results import Results
from twin.rng import stream
from twin.scenario import Scenario, format_clock

if TYPE_CHECKING:
    from twin.energy.component import EnergyComponent

RECORDER_ORDER = 1000  # the recorder runs after every component at a reporting instant


class CityModel(mesa.Model):
    """A city twin built from a :class:`~twin.scenario.Scenario`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        network: RoadNet | None = None,
        progress: bool = False,
        household_class: type[Household] = Household,
    ) -> None:
        super().__init__(rng=stream(scenario.seed, "mesa"))
        self.scenario = scenario
        t = scenario.time
        self.start_s = t.start_s
        self.end_s = t.start_s + t.duration_s
        self.report_interval_s = t.report_interval_s
        self.clock = Clock(start_s=t.start_s)
        wall0 = time.perf_counter()
        self.network = network or load_roadnet(
            scenario.map.file,
            BuildOptions(**scenario.map.model_dump(exclude={"file"})),
            progress=progress,
        )
        self.network_load_s = time.perf_counter() - wall0
        self._reporters: dict[str, Callable[[CityModel], float]] = {
            "time_s": lambda m: m.now_s,
            "clock": lambda m: format_clock(m.now_s),
        }
        self.datacollector: mesa.DataCollector | None = None
        self.clock.register(
            Process("recorder", self.report_interval_s, self._record, order=RECORDER_ORDER)
        )
        self.components: list = []
        self.population: PopulationComponent | None = None
        if scenario.population.enabled:
            wall0 = time.perf_counter()
            self.population = PopulationComponent(self, household_class)
            self.population_build_s = time.perf_counter() - wall0
            self.components.append(self.population)
        if scenario.traffic.enabled:
            from twin.traffic.component import TrafficComponent

            self.traffic = TrafficComponent(self)
            self.components.append(self.traffic)
            if self.population is not None and scenario.demand.kind == "population":
                self.population.attach_traffic()
        self.energy: EnergyComponent | None = None
        if scenario.energy.enabled:
            from twin.energy.component import EnergyComponent

            self.energy = EnergyComponent(self)
            self.components.append(self.energy)
            if scenario.traffic.enabled and scenario.demand.kind == "population":
                self.energy.attach_traffic(self.population.trip_leg)
        self._run_wall_s = 0.0

    # -- wiring for components ---------------------------------------------------------------

    @property
    def now_s(self) -> float:
        """Simulated time in seconds since midnight of the scenario's day."""
        return self.clock.now_s

    def stream(self, name: str) -> np.random.Generator:
        """The named random stream of this scenario (same seed and name, same numbers)."""
        return stream(self.scenario.seed, name)

    def add_reporter(self, name: str, fn: Callable[[CityModel], float]) -> None:
        """Record ``fn(model)`` at every reporting instant (a Mesa model reporter)."""
        if self.datacollector is not None:
            raise RuntimeError("reporters must be added before the first step")
        self._reporters[name] = fn

    def plan(self) -> str:
        """What runs on the clock, at what period and in which order."""
        return self.clock.plan()

    def _record(self, now_s: float) -> None:
        for component in self.components:  # state as of now, whatever the components' periods
            component.sync(now_s)
        if self.datacollector is None:
            self.datacollector = mesa.DataCollector(model_reporters=dict(self._reporters))
        self.datacollector.collect(self)

    # -- running -----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.now_s >= self.end_s

    def step(self) -> None:
        """Advance by one reporting interval (or to the end of the scenario)."""
        if self.finished:
            self.running = False
            return
        if self.steps == 1 and self.datacollector is None:
            self.clock.run_until(self.start_s)  # the reading at the start instant
        t0 = time.perf_counter()
        self.clock.run_until(min(self.now_s + self.report_interval_s, self.end_s))
        self._run_wall_s += time.perf_counter() - t0
        self.running = not self.finished

    def run(self, *, progress: bool = True) -> Results:
        """Run to the end of the scenario; return its Results."""
        n = int(np.ceil((self.end_s - self.now_s) / self.report_interval_s))
        with tqdm(
            total=n,
            desc=self.scenario.name,
            unit="interval",
            disable=None if progress else True,
            leave=False,
        ) as bar:
            while not self.finished:
                self.step()
                bar.update(1)
        return self.results()

    def results(self) -> Results:
        """KPIs and time series of the run so far."""
        res = Results(scenario=self.scenario.to_toml_dict())
        summary = self.network.summary()
        units = {"road_km": "km", "lane_km": "km"}
        for key, value in summary.items():
            if isinstance(value, int | float):
                res.add_kpi(f"network.{key}", value, units.get(key, "count"))
        res.add_kpi("run.simulated_s", self.now_s - self.start_s, "s")
        res.add_kpi("run.network_load_wall_s", self.network_load_s, "s")
        if self.population is not None:
            res.add_kpi("run.population_build_wall_s", self.population_build_s, "s")
        res.add_kpi("run.wall_s", self._run_wall_s, "s")
        for component in self.components:
            component.add_results(res)
        if self.datacollector is not None:
            res.timeseries = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        res.info = {
            "scenario": self.scenario.name,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "network": {k: v for k, v in summary.items() if not isinstance(v, int | float)},
            "plan": self.plan(),
        }
        return res
