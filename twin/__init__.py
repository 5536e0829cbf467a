"""twin: a city digital twin on real OpenStreetMap data.

Common tasks are one call::

    import twin
    results = twin.run("scenarios/baltimore.toml")
    net = twin.load_roadnet("maps/baltimore.osm.bz2")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.errors import MapError, ScenarioError, TwinError

if TYPE_CHECKING:
    from twin.results import Results
    from twin.scenario import Scenario

#: the public names, imported when first used (``twin --help`` need not load Mesa or pandas)
_LAZY = {
    "BuildOptions": "twin.network.road",
    "CityModel": "twin.model",
    "Household": "twin.population.agent",
    "PlugIn": "twin.population.agent",
    "Results": "twin.results",
    "RoadNet": "twin.network.road",
    "Scenario": "twin.scenario",
    "Stop": "twin.population.plans",
    "Tour": "twin.population.plans",
    "load_roadnet": "twin.network.cache",
    "load_scenario": "twin.scenario",
    "stream": "twin.rng",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read when asked: importlib.metadata takes ~0.1 s to load
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("twin")
        except PackageNotFoundError:  # pragma: no cover - a source tree never installed
            value = "0.0.0"
        globals()[name] = value
        return value
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'twin' has no attribute {name!r}")


__all__ = [
    "BuildOptions",
    "CityModel",
    "Household",
    "MapError",
    "PlugIn",
    "Results",
    "RoadNet",
    "Scenario",
    "ScenarioError",
    "Stop",
    "Tour",
    "TwinError",
    "evaluate",
    "load_roadnet",
    "load_scenario",
    "run",
    "stream",
    "sweep",
]


def evaluate(*args, **kwargs):
    """Policies against baselines on the same scenarios and seeds (see
    :func:`twin.evaluation.evaluate`); an Evaluation to compare and check them."""
    from twin.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def sweep(*args, **kwargs):
    """A scenario over parameters and seeds (see :func:`twin.sweep.sweep`); a DataFrame with
    one row per run."""
    from twin.sweep import sweep as _sweep

    return _sweep(*args, **kwargs)


def run(scenario: str | Path | Scenario, *, progress: bool = False) -> Results:
    """Load (if needed) and run a scenario; return its Results."""
    from twin.model import CityModel
    from twin.scenario import Scenario, load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return CityModel(scenario).run(progress=progress)
