"""Where a synthesised grid's cables run: polylines along the road links they follow.

Kept apart from :mod:`twin.energy.plot` so a run writing its grid table does not import
matplotlib (~1 s of a run's start-up)."""

from __future__ import annotations

import numpy as np

from twin.energy.synthesis import CityGrid
from twin.network.road import RoadNet


def _piece(xy: np.ndarray, f0: float, f1: float) -> np.ndarray:
    """The part of the polyline ``xy`` between the fractions ``f0`` and ``f1`` of its length."""
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if cum[-1] <= 0:
        return xy[[0, -1]]
    lo, hi = sorted((f0 * cum[-1], f1 * cum[-1]))
    inner = (cum > lo) & (cum < hi)
    at = np.concatenate([[lo], cum[inner], [hi]])
    return np.column_stack([np.interp(at, cum, xy[:, 0]), np.interp(at, cum, xy[:, 1])])


def cable_polylines(city: CityGrid, net: RoadNet, branches: np.ndarray) -> list[np.ndarray]:
    """Polylines of cables: the stretch of their road link's geometry they follow, or a
    straight line between the buses."""
    g = city.grid
    out = []
    for k in branches.tolist():
        link = city.branch_link[k]
        if link >= 0:
            f0, f1 = city.branch_link_frac_from[k], city.branch_link_frac_to[k]
            out.append(_piece(net.link_geometry(int(link)), f0, f1))
        else:
            a, b = g.branch_from[k], g.branch_to[k]
            out.append(np.array([[g.bus_x_m[a], g.bus_y_m[a]], [g.bus_x_m[b], g.bus_y_m[b]]]))
    return out
