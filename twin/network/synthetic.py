"""Synthetic road networks (grids, corridors, T junctions, crossroads, roundabouts, on-ramp
merges, off-ramp forks, a weaving section) for tests.

Each builder makes a small osmnx-style projected MultiDiGraph, as
:func:`twin.network.graph.build_graph` would, and compiles it with
:func:`twin.network.compile.compile_roadnet`, so movements, lanes, signal phases and CSR arrays
come from the same code as real maps. The graph is not simplified, consolidated or cut to its
largest strongly connected component: what is built is what is compiled.

Conventions: coordinates are metres in UTM zone 18N (``EPSG:32618``), with node 0 at
(``ORIGIN_X_M``, ``ORIGIN_Y_M``), near Baltimore; lon/lat are computed from them. Every road
is :data:`SYNTHETIC_HIGHWAY` with its per-lane capacity from :data:`twin.network.tags.DEFAULTS`.
Node OSM ids are ``node index + 1``, so node indices are predictable (see each builder).
Stop / give-way signs are placed as OSM maps them, a few metres before the junction on the
approach they face (:data:`SIGN_SETBACK_M`), and go through the compiler's attribution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from networkx import MultiDiGraph
from pyproj import Transformer
from shapely.geometry import LineString

from twin.network.road import BuildOptions, RoadNet
from twin.network.tags import DEFAULTS

CRS = "EPSG:32618"  # UTM zone 18N
ORIGIN_X_M = 360_000.0  # m, UTM easting of node 0
ORIGIN_Y_M = 4_350_000.0  # m, UTM northing of node 0
SYNTHETIC_HIGHWAY = "secondary"  # 1,900 pcu/h/lane: the HCM 2010 base saturation flow
DEFAULT_SPEED_MPS = 13.89  # m/s, 50 km/h: the usual urban limit

SIGN_SETBACK_M = 5.0  # m, a sign node before its junction (a stop line: OSM "highway=stop")
SIGN_OSMID_BASE = 1_000_000  # OSM ids of synthetic sign nodes start here
ARMS = ("north", "east", "south", "west")  # crossroads arms, clockwise from north

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
    roundabout: bool = False,
    turn_lanes: str = "",
    geometry: LineString | None = None,
) -> None:
    """A directed link from node index ``a`` to ``b``, as build_graph's edges look (straight
    unless ``geometry`` is given)."""
    extra = {} if geometry is None else {"geometry": geometry}
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
        roundabout=roundabout,
        turn_lanes=turn_lanes,
        **extra,
    )


def _sign_before(G: MultiDiGraph, a: int, b: int, kind: str, *, all_way: bool = False) -> None:
    """A sign record (as build_graph writes them) SIGN_SETBACK_M before node ``b`` on the
    straight link ``a`` -> ``b``, facing the traffic on it."""
    na, nb = G.nodes[a + 1], G.nodes[b + 1]
    dx, dy = na["x"] - nb["x"], na["y"] - nb["y"]
    norm = math.hypot(dx, dy)
    signs = G.graph.setdefault("signs", [])
    signs.append(
        dict(
            osmid=SIGN_OSMID_BASE + len(signs),
            kind=kind,
            all_way=all_way,
            junction=b + 1,
            on_junction=False,
            x=nb["x"] + SIGN_SETBACK_M * dx / norm,
            y=nb["y"] + SIGN_SETBACK_M * dy / norm,
        )
    )


def _check_sign(kind: str | None) -> None:
    if kind not in (None, "stop", "give_way"):
        raise ValueError(f'a sign is "stop", "give_way" or None, got {kind!r}')


def _compile(G: MultiDiGraph, source: str) -> RoadNet:
    from twin.network.compile import compile_roadnet  # osmnx: imported on need
    from twin.network.graph import BuildReport

    for n in G.nodes:
        G.nodes[n]["street_count"] = len(set(G.predecessors(n)) | set(G.successors(n)))
    attached = {n: n for n, s in G.nodes(data="signal") if s}
    signs = G.graph.get("signs", [])
    report = BuildReport(
        sign_nodes={k: sum(s["kind"] == k for s in signs) for k in {s["kind"] for s in signs}},
        signs_snapped=len(signs),
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
    minor_sign: str | None = None,
) -> RoadNet:
    """An unsignalised T junction: a two-way ``major`` road west (node 0) - junction (1) -
    east (2), and a two-way ``minor`` road from the south (node 3) ending at the junction.
    Every arm is ``arm_m`` long with one lane each way; for priority (give-way) checks.
    ``minor_sign`` ("stop", "give_way" or None) puts that sign on the minor approach."""
    _check_sign(minor_sign)
    xy = np.array([[-arm_m, 0.0], [0.0, 0.0], [arm_m, 0.0], [0.0, -arm_m]])
    G = _graph(xy + np.array([ORIGIN_X_M, ORIGIN_Y_M]), ())
    for a, b, way, highway in ((0, 1, 1, major), (1, 2, 1, major), (3, 1, 2, minor)):
        for u, v in ((a, b), (b, a)):
            _add_link(G, u, v, way, arm_m, lanes=1, speed_mps=speed_mps, highway=highway)
    if minor_sign:
        _sign_before(G, 3, 1, minor_sign)
    return _compile(G, f"synthetic:T junction {major}/{minor}")


def merge_roadnet(
    *,
    main_lanes: int = 3,
    ramp_lanes: int = 1,
    out_lanes: int = 3,
    arm_m: float = 600.0,
    speed_mps: float = 27.78,
    ramp_speed_mps: float = 20.0,
) -> RoadNet:
    """A one-way motorway with an on-ramp joining from the right: motorway west (node 0) ->
    join (1) -> east (2), ``main_lanes`` lanes before the join and ``out_lanes`` after it, and
    a ``ramp_lanes`` motorway_link of ``arm_m`` from the south-west (node 3) meeting the
    motorway at 20 degrees. No signs: the road classes decide who gives way."""
    for lanes in (main_lanes, ramp_lanes, out_lanes):
        _check(lanes, speed_mps)
    _check(ramp_lanes, ramp_speed_mps)
    ramp = math.radians(20.0)
    xy = np.array(
        [
            [-arm_m, 0.0],
            [0.0, 0.0],
            [arm_m, 0.0],
            [-arm_m * math.cos(ramp), -arm_m * math.sin(ramp)],
        ]
    )
    G = _graph(xy + np.array([ORIGIN_X_M, ORIGIN_Y_M]), ())
    main = {"speed_mps": float(speed_mps), "highway": "motorway"}
    _add_link(G, 0, 1, 1, arm_m, lanes=main_lanes, **main)
    _add_link(G, 1, 2, 2, arm_m, lanes=out_lanes, **main)
    _add_link(G, 3, 1, 3, arm_m, lanes=ramp_lanes, speed_mps=ramp_speed_mps,
              highway="motorway_link")  # fmt: skip
    return _compile(G, f"synthetic:merge {main_lanes}+{ramp_lanes}->{out_lanes}")


def diverge_roadnet(
    *,
    main_lanes: int = 3,
    ramp_lanes: int = 1,
    approach_m: tuple[float, ...] = (200.0, 200.0, 200.0),
    arm_m: float = 400.0,
    speed_mps: float = 27.78,
    ramp_speed_mps: float = 20.0,
) -> RoadNet:
    """A one-way motorway with an off-ramp on the right, as OSM cuts one into short ways:
    approach links of ``approach_m`` (node 0 -> 1 -> ... -> k, the fork), then the motorway on
    east (k -> k + 1, ``arm_m``, ``main_lanes`` lanes) and a ``ramp_lanes`` motorway_link
    leaving at 20 degrees (k -> k + 2, ``arm_m``), which goes on (k + 2 -> k + 3, ``arm_m``).
    No turn:lanes: the fork rule gives the ramp the kerb lanes."""
    _check(main_lanes, speed_mps)
    _check(ramp_lanes, ramp_speed_mps)
    k = len(approach_m)
    x = np.concatenate([[0.0], np.cumsum(approach_m)])
    ramp = math.radians(20.0)
    exit_xy = [
        [x[-1] + arm_m, 0.0],
        [x[-1] + arm_m * math.cos(ramp), -arm_m * math.sin(ramp)],
        [x[-1] + 2 * arm_m * math.cos(ramp), -2 * arm_m * math.sin(ramp)],
    ]
    xy = np.vstack([np.column_stack([x, np.zeros_like(x)]), exit_xy])
    G = _graph(xy + np.array([ORIGIN_X_M, ORIGIN_Y_M]), ())
    main = {"speed_mps": float(speed_mps), "highway": "motorway"}
    for i, length in enumerate(approach_m):
        _add_link(G, i, i + 1, 1, float(length), lanes=main_lanes, **main)
    _add_link(G, k, k + 1, 1, arm_m, lanes=main_lanes, **main)
    link = {"speed_mps": float(ramp_speed_mps), "highway": "motorway_link"}
    _add_link(G, k, k + 2, 2, arm_m, lanes=ramp_lanes, **link)
    _add_link(G, k + 2, k + 3, 2, arm_m, lanes=ramp_lanes, **link)
    return _compile(G, f"synthetic:diverge {main_lanes} -> {main_lanes} + {ramp_lanes}")


def weave_roadnet(
    *,
    main_lanes: int = 3,
    fork_lanes: int = 2,
    section_m: float = 877.0,
    speed_mps: float = 27.78,
    ramp_speed_mps: float = 16.7,
) -> RoadNet:
    """A motorway where an on-ramp adds a lane and an off-ramp leaves soon after, as on
    Columbus's I-70 (``main_lanes`` + 1 lanes for ``section_m``, then ``fork_lanes`` lanes
    on and ``fork_lanes`` lanes off; a weaving section): motorway 0 -> 1 (1,000 m) -> 2
    (1,373 m), ``main_lanes`` lanes; a 1-lane on-ramp 5 -> 2 (482 m) joining from the right;
    the section 2 -> 3; then the motorway 3 -> 4 (956 m) and the off-ramp 3 -> 6 -> 7 (387 m
    and 600 m), leaving at 20 degrees to the right."""
    for lanes in (main_lanes, main_lanes + 1, fork_lanes):
        _check(lanes, speed_mps)
    _check(fork_lanes, ramp_speed_mps)
    r = math.radians(20.0)
    end = 2_373.0 + section_m
    xy = np.array(
        [
            [0.0, 0.0],
            [1_000.0, 0.0],
            [2_373.0, 0.0],
            [end, 0.0],
            [end + 956.0, 0.0],
            [2_373.0 - 482.0 * math.cos(r), -482.0 * math.sin(r)],
            [end + 387.0 * math.cos(r), -387.0 * math.sin(r)],
            [end + 987.0 * math.cos(r), -987.0 * math.sin(r)],
        ]
    )
    G = _graph(xy + np.array([ORIGIN_X_M, ORIGIN_Y_M]), ())
    main = {"speed_mps": float(speed_mps), "highway": "motorway"}
    _add_link(G, 0, 1, 1, 1_000.0, lanes=main_lanes, **main)
    _add_link(G, 1, 2, 1, 1_373.0, lanes=main_lanes, **main)
    _add_link(G, 2, 3, 1, section_m, lanes=main_lanes + 1, **main)
    _add_link(G, 3, 4, 1, 956.0, lanes=fork_lanes, **main)
    ramp = {"speed_mps": float(ramp_speed_mps), "highway": "motorway_link"}
    _add_link(G, 5, 2, 2, 482.0, lanes=1, **ramp)
    _add_link(G, 3, 6, 3, 387.0, lanes=fork_lanes, **ramp)
    _add_link(G, 6, 7, 3, 600.0, lanes=fork_lanes, **ramp)
    return _compile(G, f"synthetic:weave {main_lanes}+1 -> {fork_lanes}+{fork_lanes}")


def crossroads_roadnet(
    *,
    arm_m: float = 300.0,
    lanes: int = 1,
    major: str = SYNTHETIC_HIGHWAY,
    minor: str | None = None,
    speed_mps: float = DEFAULT_SPEED_MPS,
    signal: bool = False,
    all_way_stop: bool = False,
    minor_sign: str | None = None,
    turn_lanes: Mapping[str, str] | None = None,
    protected_left: bool | None = None,
) -> RoadNet:
    """A four-arm crossroads: node 0 is the junction, nodes 1-4 the ends of the north, east,
    south and west arms (``arm_m`` m each, two-way, ``lanes`` lanes each way). The N-S road
    (way 1) is ``major``, the E-W road (way 2) ``minor`` (default: also ``major``).

    ``signal``: signalised (phases by axis). ``all_way_stop``: a ``stop=all`` sign on the
    junction node. ``minor_sign`` ("stop" / "give_way"): that sign on the east and west
    approaches. ``turn_lanes``: OSM ``turn:lanes`` values of approaches by the arm they come
    from, e.g. ``{"north": "left|through;right"}`` (leftmost lane first). ``protected_left``:
    None lets the compiler decide (mapped left-turn lanes, wide approaches); True / False
    gives every signal axis with an opposed left a protected left phase / none.
    """
    _check(lanes, speed_mps)
    _check_sign(minor_sign)
    if signal and (all_way_stop or minor_sign):
        raise ValueError("a signalised crossroads takes no signs")
    turn_lanes = dict(turn_lanes or {})
    if bad := set(turn_lanes) - set(ARMS):
        raise ValueError(f"turn_lanes arms must be among {ARMS}, got {sorted(bad)}")
    minor = minor or major
    unit = {"north": (0.0, 1.0), "east": (1.0, 0.0), "south": (0.0, -1.0), "west": (-1.0, 0.0)}
    xy = np.array([[0.0, 0.0], *[np.multiply(unit[a], arm_m) for a in ARMS]])
    G = _graph(xy + np.array([ORIGIN_X_M, ORIGIN_Y_M]), [0] if signal else ())
    for k, arm in enumerate(ARMS, start=1):
        way, highway = (1, major) if arm in ("north", "south") else (2, minor)
        opts = {"lanes": lanes, "speed_mps": float(speed_mps), "highway": highway}
        _add_link(G, k, 0, way, arm_m, turn_lanes=turn_lanes.get(arm, ""), **opts)
        _add_link(G, 0, k, way, arm_m, **opts)
    if all_way_stop:
        G.graph["signs"] = [
            dict(osmid=SIGN_OSMID_BASE, kind="stop", all_way=True, junction=1,
                 on_junction=True, x=float(xy[0, 0] + ORIGIN_X_M), y=float(xy[0, 1] + ORIGIN_Y_M))
        ]  # fmt: skip
    if minor_sign:
        for k in (2, 4):
            _sign_before(G, k, 0, minor_sign)
    G.graph["protected_left"] = protected_left
    kind = "signal" if signal else "all-way stop" if all_way_stop else minor_sign or "priority"
    return _compile(G, f"synthetic:crossroads {major}/{minor} {kind}")


def roundabout_roadnet(
    *,
    radius_m: float = 20.0,
    arm_m: float = 200.0,
    n_arms: int = 4,
    speed_mps: float = DEFAULT_SPEED_MPS,
    circulating_speed_mps: float = 8.33,  # m/s, 30 km/h: a single-lane urban roundabout
) -> RoadNet:
    """A single-lane roundabout: ring nodes ``0..n_arms-1`` at angles ``360 * k / n_arms``
    degrees anticlockwise from east on a circle of ``radius_m``, arm ends ``n_arms + k``
    ``arm_m`` further out. The ring (way 1, ``junction=roundabout``) is one-way from ring node
    ``k`` to ``k + 1``: anticlockwise on the map, as in right-hand traffic. Each arm (way
    ``2 + k``) is two-way with one lane; its entry gives way to circulating traffic."""
    if n_arms < 3:
        raise ValueError(f"a roundabout needs at least 3 arms, got {n_arms}")
    if not (radius_m > 0 and arm_m > 0):
        raise ValueError("radius_m and arm_m must be > 0")
    _check(1, speed_mps)
    _check(1, circulating_speed_mps)
    angles = 2.0 * np.pi * np.arange(n_arms) / n_arms
    ring = np.column_stack([np.cos(angles), np.sin(angles)]) * radius_m
    ends = np.column_stack([np.cos(angles), np.sin(angles)]) * (radius_m + arm_m)
    G = _graph(np.vstack([ring, ends]) + np.array([ORIGIN_X_M, ORIGIN_Y_M]), ())
    step = 2.0 * np.pi / n_arms
    for k in range(n_arms):
        t = angles[k] + np.linspace(0.0, step, 9)
        arc = np.column_stack([np.cos(t), np.sin(t)]) * radius_m + [ORIGIN_X_M, ORIGIN_Y_M]
        _add_link(G, k, (k + 1) % n_arms, 1, radius_m * step, lanes=1,
                  speed_mps=float(circulating_speed_mps), roundabout=True,
                  geometry=LineString(arc))  # fmt: skip
        for u, v in ((n_arms + k, k), (k, n_arms + k)):
            _add_link(G, u, v, 2 + k, arm_m, lanes=1, speed_mps=float(speed_mps))
    return _compile(G, f"synthetic:roundabout {n_arms} arms r={radius_m:g} m")
