"""CityModel: the mesa.Model that wires a scenario's network, clock, components and recorders.

``model.step()`` advances the twin by one reporting interval; ``model.run()`` runs the whole
scenario; ``print(model.plan())`` shows what runs, how often and in which order.

Components follow one protocol (:class:`Component`) and are listed once, in build order, in
:data:`COMPONENTS`. For each entry enabled by the scenario the model builds the component with
``factory(model)`` and sets it as ``model.<name>`` (``None`` when disabled, so
``model.traffic`` is always defined). A component:

- in its constructor, registers its recurring work on ``model.clock`` (``Process``) and its
  reporters with ``model.add_reporter``; it may read components built before it;
- in ``connect()``, called once every component is built, reads the components built after it
  (e.g. the population watches the traffic engine for cars arriving home);
- in ``sync(t_s)``, brings its state up to ``t_s`` before a recording;
- in ``add_results(results)``, adds its KPIs and tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import mesa
import numpy as np

from twin import _mesa_ids, precompile
from twin.clock import Clock, Process
from twin.network.cache import load_roadnet
from twin.network.road import RoadNet
from twin.population.agent import Household
from twin.population.component import PopulationComponent
from twin.progress import RunProgress, building, compiling, loading_network
from twin.region import Region, apply_region
from twin.results import Results
from twin.rng import stream
from twin.scenario import Scenario, format_clock

if TYPE_CHECKING:
    from twin.control.component import ControlComponent
    from twin.energy.component import EnergyComponent
    from twin.interventions.component import InterventionsComponent
    from twin.traffic.component import TrafficComponent

RECORDER_ORDER = 1000  # the recorder runs after every component at a reporting instant

_mesa_ids.install()  # Mesa 3.3 would keep every model alive (see twin/_mesa_ids.py)


class Component(Protocol):
    """What the model asks of a component (see the module docstring)."""

    def connect(self) -> None:
        """Read the components built after this one (called once all are built)."""

    def sync(self, t_s: float) -> None:
        """Bring the state up to ``t_s`` (called before every recording)."""

    def add_results(self, results: Results) -> None:
        """Add KPIs and tables to ``results``."""


@dataclass(frozen=True)
class ComponentSpec:
    """One entry of the registry: ``model.<name> = factory(model)`` when ``enabled``."""

    name: str
    enabled: Callable[[Scenario], bool]
    factory: Callable[[CityModel], Component]


def _population(model: CityModel) -> Component:
    return PopulationComponent(model, model.household_class)


def _traffic(model: CityModel) -> Component:
    from twin.traffic.component import TrafficComponent

    return TrafficComponent(model)


def _control(model: CityModel) -> Component:
    from twin.control.component import ControlComponent

    return ControlComponent(model)


def _energy(model: CityModel) -> Component:
    from twin.energy.component import EnergyComponent

    return EnergyComponent(model)


def _interventions(model: CityModel) -> Component:
    from twin.interventions.component import InterventionsComponent

    return InterventionsComponent(model)


#: the components, in build order (a component may read those before it in its constructor)
COMPONENTS: list[ComponentSpec] = [
    ComponentSpec("population", lambda sc: sc.population.enabled, _population),
    ComponentSpec("traffic", lambda sc: sc.traffic.enabled, _traffic),
    ComponentSpec("energy", lambda sc: sc.energy.enabled, _energy),
    ComponentSpec("control", lambda sc: sc.control.active, _control),
    ComponentSpec("interventions", lambda sc: bool(sc.intervention), _interventions),
]


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
        if progress:  # a cold first run: a second process compiles while this one builds
            precompile.start([c.name for c in COMPONENTS if c.enabled(scenario)])
        if progress and network is None:
            loading_network(scenario.map.file, scenario.map.build_options())
        self.network = network or load_roadnet(
            scenario.map.file,
            scenario.map.build_options(),
            progress=progress,
        )
        if scenario.intervention:  # what-ifs on the network itself (signals removed)
            from twin.interventions.apply import network as intervened

            self.network = intervened(scenario, self.network)
        self.network_load_s = time.perf_counter() - wall0
        # the regional defaults of the map's country, in the keys the scenario leaves unset
        self.region: Region
        self.scenario, self.region = apply_region(scenario, self.network)
        scenario = self.scenario
        self._reporters: dict[str, Callable[[CityModel], float]] = {
            "time_s": lambda m: m.now_s,
            "clock": lambda m: format_clock(m.now_s),
        }
        self.datacollector: mesa.DataCollector | None = None
        self.clock.register(
            Process("recorder", self.report_interval_s, self._record, order=RECORDER_ORDER)
        )
        self.household_class = household_class
        self.population: PopulationComponent | None = None
        self.traffic: TrafficComponent | None = None
        self.energy: EnergyComponent | None = None
        self.control: ControlComponent | None = None
        self.interventions: InterventionsComponent | None = None
        self.components: list[Component] = []
        self.build_wall_s: dict[str, float] = {}
        for spec in COMPONENTS:
            if not spec.enabled(scenario):
                continue
            wall0 = time.perf_counter()
            if progress:
                building(spec.name)
                if spec.name == "traffic":  # a cold cache: the helper compiles the router
                    precompile.before_routing()
            component = spec.factory(self)
            self.build_wall_s[spec.name] = time.perf_counter() - wall0
            setattr(self, spec.name, component)
            self.components.append(component)
        for component in self.components:
            component.connect()
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
        """Run to the end of the scenario; return its Results. ``progress``: a bar on a
        terminal, else lines on the ``twin.progress`` logger (:mod:`twin.progress`)."""
        if progress and not self.finished:
            compiling(self.build_wall_s)  # says so when the first step compiles the kernels
            precompile.finish()
        with RunProgress(self.scenario.name, self.now_s, self.end_s, enabled=progress) as bar:
            while not self.finished:
                self.step()
                bar.update(self.now_s)
        if self.energy is not None:  # the last power-flow batch, inside the run's wall time
            t0 = time.perf_counter()
            self.energy.finish()
            self._run_wall_s += time.perf_counter() - t0
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
        if "population" in self.build_wall_s:
            res.add_kpi("run.population_build_wall_s", self.build_wall_s["population"], "s")
        res.add_kpi("run.wall_s", self._run_wall_s, "s")
        for component in self.components:
            component.add_results(res)
        from twin.geometry import network_table

        res.tables["network"] = network_table(self.network)
        if self.datacollector is not None:
            res.timeseries = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        res.info = {
            "scenario": self.scenario.name,
            "region": self.region.as_dict(),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "network": {k: v for k, v in summary.items() if not isinstance(v, int | float)},
            "plan": self.plan(),
        }
        return res
