"""Synthetic road networks (grids, straight corridors) for tests and benchmarks.

Each builder makes a small osmnx-style projected MultiDiGraph, as
:func:`twin.network.graph.build_graph` would, and compiles it with
:func:`twin.network.compile.compile_roadnet`, so movements, lanes, signal phases and CSR arrays
come from the same code as real maps. The graph is not simplified, consolidated or cut to its
largest strongly connected component: what is built is what is compiled.

Conventions: coordinates are metres in UTM zone 18N (``EPSG:32618``), with node 0 at
(``ORIGIN_X_M``, ``ORIGIN_Y_M``), near Baltimore; lon/lat are computed from them. Every road
is :data:`SYNTHETIC_HIGHWAY` with its per-lane capacity from :data:`twin.network.tags.DEFAULTS`.
Node OSM ids are ``node index + 1``, so node indices are predictable (see each builder).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from networkx import MultiDiGraph
from pyproj import Transformer

from twin.network.road import BuildOptions, RoadNet
from twin.network.tags import DEFAULTS

CRS = "EPSG:32618"  # UTM zone 18N
ORIGIN_X_M = 360_000.0  # m, UTM easting of node 0
ORIGIN_Y_M = 4_350_000.0  # m, UTM northing of node 0
SYNTHETIC_HIGHWAY = "secondary"  # 1,900 pcu/h/lane: the HCM 2010 base saturation flow
DEFAULT_SPEED_MPS = 13.89  # m/s, 50 km/h: the usual urban limit

# what was (not) applied to a synthetic graph, recorded in the RoadNet's meta
_OPTIONS = BuildOptions(consolidate_m=0.0, keep_largest_scc=False)


def _check(lanes: int, speed_mps: float) -> None:
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    if not speed_mps > 0:
        raise ValueError(f"speed_mps must be > 0, got {speed_mps}")


def _graph(xy_m: np.ndarray, signal_nodes: Iterable[int]) -> MultiDiGraph:
    """A projected graph with one node per row of ``xy_m`` (OSM id = row + 1)."""
    G = MultiDiGraph(crs=CRS)
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(
        xy_m[:, 0], xy_m[:, 1]
    )
    signals = set(signal_nodes)
    for i, (x, y) in enumerate(xy_m):
        G.add_node(
            i + 1,
            x=float(x),
            y=float(y),
            lon=float(lon[i]),
            lat=float(lat[i]),
            osmid_original=i + 1,
            signal=int(i in signals),
            street_count=0,
        )
    return G


def _add_link(
    G: MultiDiGraph,
    a: int,
    b: int,
    way_id: int,
    length_m: float,
    *,
    lanes: int,
    speed_mps: float,
    highway: str = SYNTHETIC_HIGHWAY,
) -> None:
    """A directed straight link from node index ``a`` to ``b``, as build_graph's edges look."""
    G.add_edge(
        a + 1,
        b + 1,
        osmid=way_id,
        highway=highway,
        lanes=lanes,
        speed_mps=speed_mps,
        capacity_vph_per_lane=DEFAULTS[highway].capacity_vph_per_lane,
        speed_default=False,
        lanes_default=False,
        oneway=False,
        reversed=False,
        name=f"way {way_id}",
        length=float(length_m),
    )


def _compile(G: MultiDiGraph, source: str) -> RoadNet:
    from twin.network.compile import compile_roadnet  # osmnx: imported on need
    from twin.network.graph import BuildReport

    for n in G.nodes:
        G.nodes[n]["street_count"] = len(set(G.predecessors(n)) | set(G.successors(n)))
    attached = {n: n for n, s in G.nodes(data="signal") if s}
    report = BuildReport(
        raw_nodes=len(G),
        raw_edges=G.number_of_edges(),
        simplified_nodes=len(G),
        simplified_edges=G.number_of_edges(),
        consolidated_nodes=len(G),
        consolidated_edges=G.number_of_edges(),
        signal_nodes=len(attached),
        signals_on_junction=len(attached),
    )
    return compile_roadnet(G, report, attached, _OPTIONS, source=source)


def grid_roadnet(
    nx: int,
    ny: int,
    *,
    spacing_m: float = 200.0,
    lanes: int = 1,
    speed_mps: float = DEFAULT_SPEED_MPS,
    signals: bool = True,
    two_way: bool = True,
) -> RoadNet:
    """A Manhattan grid of ``nx`` columns (west to east) by ``ny`` rows (south to north).

    Node ``j * nx + i`` is column ``i``, row ``j``, at ``(i, j) * spacing_m`` from the origin.
    Every block is one link of ``spacing_m`` metres, ``lanes`` lanes per direction and free
    speed ``speed_mps`` (m/s); each row and column is one OSM way (way ids: rows ``1..ny``,
    columns ``ny + 1..ny + nx``). With ``signals``, every junction of 3 or more legs is
    signalised (two phases: the two axes). With ``two_way=False`` the streets are one-way:
    the outer ring runs anticlockwise (bottom row east, right column north, top row west,
    left column south) and inner rows/columns alternate (row ``j`` east when ``j`` is even,
    column ``i`` north when ``i`` is odd); every street ends on the ring, so the grid is
    strongly connected when ``nx, ny >= 2``.
    """
    if nx < 1 or ny < 1 or nx * ny < 2:
        raise ValueError(f"a grid needs at least 2 nodes, got nx={nx}, ny={ny}")
    if not spacing_m > 0:
        raise ValueError(f"spacing_m must be > 0, got {spacing_m}")
    _check(lanes, speed_mps)
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny))
    xy = np.column_stack([ORIGIN_X_M + ii.ravel() * spacing_m, ORIGIN_Y_M + jj.ravel() * spacing_m])

    def legs(i: int, j: int) -> int:
        return (i > 0) + (i < nx - 1) + (j > 0) + (j < ny - 1)

    sig = [j * nx + i for j in range(ny) for i in range(nx) if signals and legs(i, j) >= 3]
    G = _graph(xy, sig)
    opts = {"lanes": lanes, "speed_mps": float(speed_mps)}
    for j in range(ny):  # rows: +x is east
        east = j == 0 or (j != ny - 1 and j % 2 == 0)
        for i in range(nx - 1):
            a, b = j * nx + i, j * nx + i + 1
            if two_way or east:
                _add_link(G, a, b, 1 + j, spacing_m, **opts)
            if two_way or not east:
                _add_link(G, b, a, 1 + j, spacing_m, **opts)
    for i in range(nx):  # columns: +y is north
        north = i == nx - 1 or (i != 0 and i % 2 == 1)
        for j in range(ny - 1):
            a, b = j * nx + i, (j + 1) * nx + i
            if two_way or north:
                _add_link(G, a, b, 1 + ny + i, spacing_m, **opts)
            if two_way or not north:
                _add_link(G, b, a, 1 + ny + i, spacing_m, **opts)
    kind = "two-way" if two_way else "one-way"
    return _compile(G, f"synthetic:grid {nx}x{ny} {spacing_m:g} m {kind}")


def corridor_roadnet(
    link_lengths_m: list[float],
    *,
    lanes: int = 1,
    speed_mps: float = DEFAULT_SPEED_MPS,
    signal_nodes: tuple[int, ...] = (),
) -> RoadNet:
    """A one-way straight road due east: node ``k`` -> ``k + 1`` is link ``k``.

    ``link_lengths_m[k]`` is the length of link ``k`` (m); every link has ``lanes`` lanes, free
    speed ``speed_mps`` (m/s) and OSM way id 1. The only movements are the through movements
    from link ``k - 1`` to link ``k``. A node in ``signal_nodes`` (an index ``1..n_links-1``,
    i.e. one with a link in and a link out) gets a signal with one phase serving its through
    movement. The corridor is not strongly connected: it is for analytic checks (free-flow
    travel time, saturation flow at a signal, queue spill-back), not for routing between
    arbitrary nodes.
    """
    lengths = np.asarray(link_lengths_m, dtype=np.float64)
    if lengths.ndim != 1 or len(lengths) < 1 or not np.all(lengths > 0):
        raise ValueError("link_lengths_m must be a non-empty list of positive lengths")
    _check(lanes, speed_mps)
    bad = [s for s in signal_nodes if not 1 <= s <= len(lengths) - 1]
    if bad:
        raise ValueError(
            f"signal_nodes {bad}: a signal must sit on a node 1..{len(lengths) - 1} "
            "(one with a link in and a link out)"
        )
    x = ORIGIN_X_M + np.concatenate([[0.0], np.cumsum(lengths)])
    G = _graph(np.column_stack([x, np.full_like(x, ORIGIN_Y_M)]), signal_nodes)
    for k in range(len(lengths)):
        _add_link(G, k, k + 1, 1, float(lengths[k]), lanes=lanes, speed_mps=float(speed_mps))
    return _compile(G, f"synthetic:corridor {len(lengths)} links")


def t_junction_roadnet(
    *,
    arm_m: float = 500.0,
    major: str = "primary",
    minor: str = "residential",
    speed_mps: float = DEFAULT_SPEED_MPS,
) -> RoadNet:
    """An unsignalised T junction: a two-way ``major`` road west (node 0) - junction (1) -
    east (2), and a two-way ``minor`` road from the south (node 3) ending at the junction.
    Every arm is ``arm_m`` long with one lane each way; for priority (give-way) checks."""
    xy = np.array([[-arm_m, 0.0], [0.0, 0.0], [arm_m, 0.0], [0.0, -arm_m]])
    G = _graph(xy + np.array([ORIGIN_X_M, ORIGIN_Y_M]), ())
    for a, b, way, highway in ((0, 1, 1, major), (1, 2, 1, major), (3, 1, 2, minor)):
        for u, v in ((a, b), (b, a)):
            _add_link(G, u, v, way, arm_m, lanes=1, speed_mps=speed_mps, highway=highway)
    return _compile(G, f"synthetic:T junction {major}/{minor}")
