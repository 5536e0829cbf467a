"""Energy: the distribution grid, household loads, EV charging and the radial power flow.

pandapower interoperability (:func:`to_pandapower`, :func:`from_pandapower`) needs the optional
``pandapower`` package, imported only when those functions run.
"""

from twin.energy.grid import Grid, RadialOrder
from twin.energy.osm_power import PowerFeatures, read_power_features
from twin.energy.pandapower_io import from_pandapower, to_pandapower
from twin.energy.powerflow import PowerFlowResult, compile_grid, solve
from twin.energy.synthesis import CityGrid, GridConfig, synthesize_grid

__all__ = [
    "CityGrid",
    "Grid",
    "GridConfig",
    "PowerFeatures",
    "PowerFlowResult",
    "RadialOrder",
    "compile_grid",
    "from_pandapower",
    "read_power_features",
    "solve",
    "synthesize_grid",
    "to_pandapower",
]
