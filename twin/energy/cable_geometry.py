"""Where a synthesised grid's cables run: polylines along the road links they follow.

Kept apart from :mod:`twin.energy.plot` so a run writing its grid table does not import
matplotlib (~1 s of a run's start-up)."""

from __future__ import annotations

import numpy as np

from twin.energy.synthesis import CityGrid
from twin.network.road import RoadNet

#: padded points per block of cables worked on at once (bounds the memory on big maps)
PAD_POINTS = 1 << 18


def cable_xy(city: CityGrid, net: RoadNet, branches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polylines of cables ``branches`` as one (n, 2) array of points in metres and
    offsets (``len(branches) + 1``): the stretch of their road link's geometry they follow
    (``branch_link_frac_from`` to ``_to``), or a straight line between their buses. All
    cables at once; the same points as interpolating each link's polyline by its length."""
    branches = np.asarray(branches, dtype=np.int64)
    g = city.grid
    a, b = g.branch_from[branches], g.branch_to[branches]
    first = np.column_stack([g.bus_x_m[a], g.bus_y_m[a]])  # each polyline's end points
    last = np.column_stack([g.bus_x_m[b], g.bus_y_m[b]])
    counts = np.full(len(branches), 2, dtype=np.int64)
    link = city.branch_link[branches]
    along = np.flatnonzero(link >= 0)
    n_pts = np.diff(net.link_geom_offsets)[link[along]]
    along = along[np.argsort(n_pts, kind="stable")]  # blocks of similar links pad little
    n_pts = np.sort(n_pts, kind="stable")
    rows, cols, inner = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [first[:0]]
    i = 0
    while i < len(along):
        # no block is wider than the longest link among the next PAD_POINTS cables
        width = int(n_pts[min(i + PAD_POINTS, len(along)) - 1])
        j = min(i + max(1, PAD_POINTS // width), len(along))
        block = along[i:j]
        r, c, xy, ends = _along_links(city, net, branches[block], link[block])
        first[block], last[block] = ends
        counts[block] += np.bincount(r, minlength=len(block))
        rows.append(block[r])
        cols.append(c)
        inner.append(xy)
        i = j
    r, c, xy_in = np.concatenate(rows), np.concatenate(cols), np.concatenate(inner)
    order = np.lexsort((c, r))  # by cable, then along its link
    r, xy_in = r[order], xy_in[order]
    offsets = np.zeros(len(branches) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    xy = np.empty((int(offsets[-1]), 2))
    xy[offsets[:-1]] = first
    xy[offsets[1:] - 1] = last
    rank = np.arange(len(r)) - np.searchsorted(r, r)  # place along the cable
    xy[offsets[r] + 1 + rank] = xy_in
    return xy, offsets


def _along_links(
    city: CityGrid, net: RoadNet, branches: np.ndarray, link: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Cables along links: (row, column) and points of the link points strictly inside each
    cable's stretch, and the stretch's end points."""
    start = net.link_geom_offsets[link]
    n = net.link_geom_offsets[link + 1] - start  # points of each link's polyline (>= 2)
    col = np.arange(int(n.max()))
    # each link's points, padded by repeating its last point (zero-length steps)
    pts = net.link_geom_xy_m[start[:, None] + np.minimum(col, n[:, None] - 1)]
    step = np.hypot(pts[:, 1:, 0] - pts[:, :-1, 0], pts[:, 1:, 1] - pts[:, :-1, 1])
    cum = np.zeros(pts.shape[:2])
    np.cumsum(step, axis=1, out=cum[:, 1:])  # sequential sums, as each link's own cumsum
    total = cum[:, -1]
    f0 = city.branch_link_frac_from[branches] * total
    f1 = city.branch_link_frac_to[branches] * total
    lo, hi = np.minimum(f0, f1), np.maximum(f0, f1)
    flat = (total <= 0)[:, None]  # a link of no length: its end points
    rows = np.arange(len(n))
    first = np.where(flat, pts[:, 0], _interp(lo, cum, pts, n))
    last = np.where(flat, pts[rows, n - 1], _interp(hi, cum, pts, n))
    r, c = np.nonzero((cum > lo[:, None]) & (cum < hi[:, None]) & ~flat)
    return r, c, pts[r, c], (first, last)


def _interp(x: np.ndarray, cum: np.ndarray, pts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Row-wise ``np.interp(x, cum[:n], pts[:n])``: the point at length ``x`` along each row's
    polyline, by numpy's own formula (the last knot at or below ``x``, then its slope)."""
    rows = np.arange(len(x))
    j = np.minimum((cum <= x[:, None]).sum(axis=1), n) - 1
    j1 = np.minimum(j + 1, n - 1)
    dx = cum[rows, j1] - cum[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (pts[rows, j1] - pts[rows, j]) / dx[:, None]
        out = slope * (x - cum[rows, j])[:, None] + pts[rows, j]
    return np.where((j >= n - 1)[:, None], pts[rows, n - 1], out)


def cable_polylines(city: CityGrid, net: RoadNet, branches: np.ndarray) -> list[np.ndarray]:
    """Polylines of cables (:func:`cable_xy`), one (k, 2) array each."""
    xy, offsets = cable_xy(city, net, branches)
    return np.split(xy, offsets[1:-1])
