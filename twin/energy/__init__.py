"""Energy: the distribution grid and its radial AC power flow.

pandapower interoperability (:func:`to_pandapower`, :func:`from_pandapower`) needs the optional
``pandapower`` package, imported only when those functions run.
"""

from twin.energy.grid import Grid, RadialOrder
from twin.energy.pandapower_io import from_pandapower, to_pandapower
from twin.energy.powerflow import PowerFlowResult, compile_grid, solve

__all__ = [
    "Grid",
    "PowerFlowResult",
    "RadialOrder",
    "compile_grid",
    "from_pandapower",
    "solve",
    "to_pandapower",
]
