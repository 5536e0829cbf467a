"""Traffic demand as a trip table: random trips, and trip tables read from / written to CSV.

Until households arrive, demand is a :class:`Trips` table: who leaves which network node for
which node, and when (seconds since midnight of the simulated day).

Trip CSV format (a header on line 1, one trip per line; extra columns are ignored):

- ``depart,origin_lon,origin_lat,dest_lon,dest_lat`` (WGS84 degrees): each point snaps to the
  nearest network node (straight line, in the map's UTM metres), inside the map's box or
  outside it alike; a trip with a point farther than ``snap_max_m`` is skipped and reported
  (count and examples in the import report), not an error; or
- ``depart,origin_osm_node,dest_osm_node``: OSM node ids of network nodes. A junction that
  osmnx consolidated from several OSM nodes is known by its smallest OSM id only
  (``RoadNet.node_osmid``); other members, and OSM nodes in the middle of a road, are not
  network nodes and are reported as unknown: use the lon/lat form for those.
- optional ``trip_id`` (integer, unique); without it trips are numbered by row from 0.
- ``depart`` is ``H:MM``, ``H:MM:SS`` or seconds since midnight, up to 48 h (the next day).
- optional ``after_trip_id`` (trip chaining): the ``trip_id`` of the trip this one follows
  (the same vehicle's previous leg), ``-1`` or empty for none; without a ``trip_id`` column it
  refers to the row numbers. Optional ``min_dwell_s``: seconds (>= 0, empty = 0) the vehicle
  stays at least between that arrival and this departure. A trip that follows a skipped row
  (same origin and destination node) follows that row's own predecessor instead, with the
  two dwell times added.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.network.road import RoadNet
from twin.timefmt import MAX_CLOCK_S, parse_clock_s
from twin.traffic.profiles import sample_departures_s

LONLAT_COLUMNS = ("depart", "origin_lon", "origin_lat", "dest_lon", "dest_lat")
OSM_COLUMNS = ("depart", "origin_osm_node", "dest_osm_node")
MAX_PROBLEMS = 10  # problems listed in one import error
MAX_REDRAW_ROUNDS = 200  # rounds of redrawing too-short random trips before giving up


@dataclass(eq=False)
class Trips:
    """A trip table as struct-of-arrays, sorted by (depart_s, trip_id).

    Trip chaining (tours: the same vehicle drives home -> work -> home): ``after_trip_id[i]``
    is the ``trip_id`` of the trip that trip ``i`` follows, -1 for none (the default for every
    trip). A chained trip enters the network only once its planned ``depart_s`` has come,
    the trip it follows has arrived (teleported arrivals count) and at least
    ``min_dwell_s[i]`` seconds (default 0) have passed since that arrival. A predecessor that
    never runs (no route) or ends without arriving does not hold it. Every ``after_trip_id``
    must name another trip of the table, without cycles (ValueError naming an example).
    """

    trip_id: np.ndarray  # int64, unique
    origin_node: np.ndarray  # int32 RoadNet node index
    dest_node: np.ndarray  # int32 RoadNet node index
    depart_s: np.ndarray  # float64, seconds since midnight (planned)
    after_trip_id: np.ndarray | None = None  # int64, trip_id of the previous leg, -1 none
    min_dwell_s: np.ndarray | None = None  # float64 >= 0, s between that arrival and departure

    def __post_init__(self) -> None:
        self.trip_id = np.asarray(self.trip_id, dtype=np.int64)
        self.origin_node = np.asarray(self.origin_node, dtype=np.int32)
        self.dest_node = np.asarray(self.dest_node, dtype=np.int32)
        self.depart_s = np.asarray(self.depart_s, dtype=np.float64)
        n = len(self.trip_id)
        if self.after_trip_id is None:
            self.after_trip_id = np.full(n, -1, dtype=np.int64)
        if self.min_dwell_s is None:
            self.min_dwell_s = np.zeros(n, dtype=np.float64)
        self.after_trip_id = _as_int64(self.after_trip_id, "after_trip_id")
        self.min_dwell_s = np.asarray(self.min_dwell_s, dtype=np.float64)
        arrays = (self.origin_node, self.dest_node, self.depart_s, self.after_trip_id)
        if any(a.shape != (n,) for a in (*arrays, self.min_dwell_s)):
            raise ValueError("Trips arrays must all have the same length")
        if len(np.unique(self.trip_id)) != n:
            raise ValueError("Trips.trip_id must be unique")
        bad = np.flatnonzero(~(self.min_dwell_s >= 0) | ~np.isfinite(self.min_dwell_s))
        if len(bad):
            i = bad[0]
            raise ValueError(
                f"Trips.min_dwell_s must be finite and >= 0: {len(bad)} are not, e.g. "
                f"trip {self.trip_id[i]} has {self.min_dwell_s[i]}"
            )
        chains = bool((self.after_trip_id != -1).any())
        problems = chain_problems(self.trip_id, self.after_trip_id) if chains else []
        if problems:
            raise ValueError(
                f"Trips.after_trip_id: {len(problems)} trip(s) with a bad predecessor, e.g. "
                f"{problems[0][1]}"
            )
        order = np.lexsort((self.trip_id, self.depart_s))
        if np.any(order != np.arange(n)):
            for name in _COLUMNS:
                setattr(self, name, getattr(self, name)[order])

    @property
    def chained(self) -> bool:
        """Whether any trip follows another or has a dwell time."""
        return bool((self.after_trip_id != -1).any() or (self.min_dwell_s > 0).any())

    def after_index(self) -> np.ndarray:
        """Position in this table of the trip each trip follows (int64, -1 for none)."""
        return _positions(self.trip_id, self.after_trip_id)

    def __len__(self) -> int:
        return len(self.trip_id)

    def to_frame(self, net: RoadNet | None = None) -> pd.DataFrame:
        """One row per trip (all the fields); with ``net`` also node_lon/node_lat and OSM ids
        of both ends."""
        cols: dict[str, np.ndarray] = {
            "trip_id": self.trip_id,
            "depart_s": self.depart_s,
            "origin_node": self.origin_node,
            "dest_node": self.dest_node,
            "after_trip_id": self.after_trip_id,
            "min_dwell_s": self.min_dwell_s,
        }
        if net is not None:
            for end, nodes in (("origin", self.origin_node), ("dest", self.dest_node)):
                cols[f"{end}_lon"] = net.node_lon[nodes]
                cols[f"{end}_lat"] = net.node_lat[nodes]
                cols[f"{end}_osm_node"] = net.node_osmid[nodes]
        return pd.DataFrame(cols)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Trips:
        """From columns origin_node, dest_node, depart_s and optional trip_id (else 0..n-1),
        after_trip_id and min_dwell_s."""
        trip_id = frame["trip_id"] if "trip_id" in frame else np.arange(len(frame))
        return cls(
            trip_id=np.asarray(trip_id),
            origin_node=frame["origin_node"].to_numpy(),
            dest_node=frame["dest_node"].to_numpy(),
            depart_s=frame["depart_s"].to_numpy(),
            after_trip_id=frame["after_trip_id"].to_numpy() if "after_trip_id" in frame else None,
            min_dwell_s=frame["min_dwell_s"].to_numpy() if "min_dwell_s" in frame else None,
        )


_COLUMNS = ("trip_id", "origin_node", "dest_node", "depart_s", "after_trip_id", "min_dwell_s")


def _as_int64(values, name: str) -> np.ndarray:
    """``values`` as int64; ValueError for non-integral numbers (e.g. nan from a frame)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise ValueError(f"Trips.{name} must be integers")
    return arr.astype(np.int64)


def _positions(trip_id: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Index in ``trip_id`` of each id in ``ref`` (int64); -1 where ``ref`` is -1 or unknown."""
    if len(trip_id) == 0 or (ref == -1).all():
        return np.full(len(ref), -1, dtype=np.int64)
    sorter = np.argsort(trip_id, kind="stable")
    at = sorter[np.minimum(np.searchsorted(trip_id, ref, sorter=sorter), len(trip_id) - 1)]
    return np.where((ref != -1) & (trip_id[at] == ref), at, -1).astype(np.int64)


def chain_problems(
    trip_id: np.ndarray, after_trip_id: np.ndarray, where: str = "the table"
) -> list[tuple[int, str]]:
    """(row, message) for each trip whose ``after_trip_id`` is not -1 and not another trip's
    id, or that is on a cycle of trips following each other (they could never depart)."""
    after = _positions(trip_id, after_trip_id)
    problems = []
    for i in np.flatnonzero((after_trip_id != -1) & (after < 0)):
        msg = f"trip {trip_id[i]} follows {after_trip_id[i]}, not a trip_id of {where}"
        problems.append((int(i), msg))
    for i in np.flatnonzero(after == np.arange(len(after))):
        problems.append((int(i), f"trip {trip_id[i]} follows itself"))
    # following the predecessors of a trip on or behind a cycle never ends: pointer doubling
    # (index n is the end that every other chain reaches) leaves such trips on the cycle
    n = len(after)
    succ = np.append(np.where(after < 0, n, after), n)
    for _ in range(max(n, 1).bit_length() + 1):
        succ = succ[succ]
    seen: set[int] = set()
    for start in np.unique(succ[:n][succ[:n] != n]).tolist():
        if start in seen:
            continue
        loop, j = [start], int(after[start])
        while j != start:
            loop.append(j)
            j = int(after[j])
        seen.update(loop)
        if len(loop) > 1:  # a trip following itself is reported above
            first = loop.index(min(loop))
            loop = loop[first:] + loop[:first]
            ids = " -> ".join(str(trip_id[k]) for k in (*loop, loop[0]))
            problems.extend((k, f"trips follow each other in a cycle ({ids})") for k in loop)
    return sorted(problems)


@dataclass(frozen=True)
class TripImportReport:
    """What read_trips_csv did with a file."""

    rows: int  # data rows read (blank lines not counted)
    trips: int  # trips kept
    same_node_skipped: int  # rows whose origin and destination are the same node
    max_snap_m: float  # farthest a lon/lat point was moved to its node (0 for OSM ids)
    ignored_columns: tuple[str, ...] = ()  # header columns that were not used
    too_far_skipped: int = 0  # rows with a point farther than snap_max_m from any node
    too_far_examples: tuple[str, ...] = ()  # the first few of them, with their distances


def random_trips(
    net: RoadNet,
    *,
    rng: np.random.Generator,
    start_s: float,
    end_s: float,
    n_trips: int | None = None,
    trips_per_hour: float | None = None,
    demand_scale: float = 1.0,
    profile: str | np.ndarray = "weekday",
    min_trip_m: float = 500.0,
) -> Trips:
    """Random trips departing in [start_s, end_s), like SUMO's randomTrips with length weights.

    The count is ``n_trips``, or ``trips_per_hour`` x window hours (the *mean* rate over the
    window, not the peak-hour rate), times ``demand_scale``, rounded; it is fixed, not drawn.
    Departures follow the time-of-day ``profile`` (see twin.traffic.profiles) restricted to
    the window. Origins are the from-node, destinations the to-node, of links drawn with
    probability proportional to length_m x lanes (randomTrips ``-L --lanes``); a pair closer
    than ``min_trip_m`` (straight line) or on the same node is redrawn. Trips are numbered
    0..n-1 in order of departure. The same rng state gives the same trips.
    """
    if (n_trips is None) == (trips_per_hour is None):
        raise TwinError("random trips: give exactly one of n_trips and trips_per_hour")
    base = n_trips if n_trips is not None else trips_per_hour * (end_s - start_s) / 3600.0
    if not np.isfinite(base) or base < 0 or not np.isfinite(demand_scale) or demand_scale < 0:
        raise TwinError(
            f"random trips: the trip count and demand_scale must be >= 0, got "
            f"n_trips={n_trips}, trips_per_hour={trips_per_hour}, demand_scale={demand_scale}"
        )
    n = int(np.floor(base * demand_scale + 0.5))
    depart_s = sample_departures_s(rng, n, profile, start_s, end_s)

    weight = net.link_length_m * net.link_lanes.astype(np.float64)
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]

    def draw(k: int) -> tuple[np.ndarray, np.ndarray]:
        o = np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), len(cdf) - 1)
        d = np.minimum(np.searchsorted(cdf, rng.random(k), side="right"), len(cdf) - 1)
        return net.link_from[o], net.link_to[d]

    origin, dest = draw(n)
    for _ in range(MAX_REDRAW_ROUNDS):
        dx = net.node_x_m[origin] - net.node_x_m[dest]
        dy = net.node_y_m[origin] - net.node_y_m[dest]
        bad = np.flatnonzero((np.hypot(dx, dy) < min_trip_m) | (origin == dest))
        if len(bad) == 0:
            break
        origin[bad], dest[bad] = draw(len(bad))
    else:
        raise TwinError(
            f"random trips: could not find {n} origin-destination pairs at least "
            f"min_trip_m={min_trip_m} m apart on this map; lower min_trip_m"
        )
    return Trips(np.arange(n, dtype=np.int64), origin, dest, depart_s)


# -- CSV ---------------------------------------------------------------------------------------


def parse_depart_s(text: str) -> float:
    """``H:MM``, ``H:MM:SS`` (as in scenario files) or seconds, at most 48 h; ValueError if not."""
    seconds = parse_clock_s(text) if ":" in text else float(text)
    if not 0 <= seconds <= MAX_CLOCK_S:  # also rejects nan
        raise ValueError(text)
    return seconds


def _float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def _after_trip_id(text: str) -> int:
    return -1 if text == "" else _int64(text)


def _dwell_s(text: str) -> float:
    value = 0.0 if text == "" else float(text)
    if not 0 <= value < np.inf:  # also rejects nan
        raise ValueError(text)
    return value


# column -> (parser raising ValueError, what was expected)
_PARSERS = {
    "depart": (parse_depart_s, "a time H:MM[:SS] or seconds, 0 to 48 h"),
    "origin_lon": (_float, "a number"),
    "origin_lat": (_float, "a number"),
    "dest_lon": (_float, "a number"),
    "dest_lat": (_float, "a number"),
    "origin_osm_node": (_int64, "an integer OSM node id"),
    "dest_osm_node": (_int64, "an integer OSM node id"),
    "trip_id": (_int64, "an integer"),
    "after_trip_id": (_after_trip_id, "a trip_id, or -1 or empty for none"),
    "min_dwell_s": (_dwell_s, "seconds >= 0, or empty for 0"),
}
CHAIN_COLUMNS = ("after_trip_id", "min_dwell_s")


def _fail(path: Path, problems: list[tuple[int, str]]) -> TwinError:
    problems = sorted(problems, key=lambda p: p[0])
    lines = [f"{path}, line {line}: {msg}" for line, msg in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
    head = f"{path}: {len(problems)} problem(s) in the trip table:"
    return TwinError("\n".join([head, *lines]))


def _expected_header() -> str:
    return (
        f"expected a header with the columns {','.join(LONLAT_COLUMNS)} or "
        f"{','.join(OSM_COLUMNS)} (optionally trip_id, after_trip_id, min_dwell_s)"
    )


def read_trips_csv(
    path: str | Path, net: RoadNet, *, snap_max_m: float = 500.0
) -> tuple[Trips, TripImportReport]:
    """Read a trip CSV (see the module docstring); every problem names the file and line.

    Up to MAX_PROBLEMS problems are collected and raised together as one TwinError.
    Rows whose origin and destination are the same node, or with a point farther than
    ``snap_max_m`` from the network, are skipped and counted (a trip that follows one follows
    the skipped row's predecessor, the dwell times added).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TwinError(f"{path}: cannot read the trip table ({exc})") from exc
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader]
    except csv.Error as exc:
        raise TwinError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from exc
    rows = [(line, row) for line, row in rows if any(row)]
    if not rows:
        raise TwinError(f"{path}: the trip table is empty; {_expected_header()}")
    header_line, header = rows[0]
    if header_line != 1:
        raise TwinError(f"{path}, line 1: blank; {_expected_header()}")
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise TwinError(f"{path}, line 1: duplicate columns {', '.join(dup)}")
    lonlat = all(c in header for c in LONLAT_COLUMNS)
    osm = all(c in header for c in OSM_COLUMNS)
    if lonlat == osm:
        what = "both lon/lat and OSM node columns" if lonlat else "missing columns"
        raise TwinError(f"{path}, line 1: {what}; {_expected_header()}, got {','.join(header)}")
    wanted = (LONLAT_COLUMNS if lonlat else OSM_COLUMNS) + ("trip_id", *CHAIN_COLUMNS)
    col = {c: header.index(c) for c in wanted if c in header}

    problems: list[tuple[int, str]] = []
    good: list[tuple[int, dict[str, float]]] = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            problems.append((line, f"expected {len(header)} fields, got {len(row)}"))
            continue
        values = {}
        for c, i in col.items():
            parse, what = _PARSERS[c]
            try:
                values[c] = parse(row[i])
            except ValueError:
                problems.append((line, f"column '{c}': expected {what}, got {row[i]!r}"))
        if len(values) == len(col):
            good.append((line, values))
    parsed_all = not problems
    if not good:
        if problems:
            raise _fail(path, problems)
        raise TwinError(f"{path}: the trip table has a header but no trips")

    lines = np.array([line for line, _ in good], dtype=np.int64)
    vals = {c: np.array([v[c] for _, v in good]) for c in col}
    snap_m = np.zeros(1)
    too_far = np.zeros(len(lines), dtype=bool)
    far_examples: list[str] = []
    if lonlat:
        ends, dists = _snap(net, vals)
        too_far = (dists["origin"] > snap_max_m) | (dists["dest"] > snap_max_m)
        near = np.concatenate([dists["origin"][~too_far], dists["dest"][~too_far]])
        snap_m = near if len(near) else np.zeros(1)
        for k in np.flatnonzero(too_far)[:3]:
            end = "origin" if dists["origin"][k] > snap_max_m else "dest"
            lon, lat = vals[f"{end}_lon"][k], vals[f"{end}_lat"][k]
            far_examples.append(
                f"line {lines[k]}: {end} ({lon}, {lat}) is {dists[end][k]:.0f} m from the "
                "nearest network node"
            )
        if too_far.all():
            raise TwinError(
                f"{path}: none of the {len(lines)} trips has both ends within "
                f"snap_max_m={snap_max_m:g} m of the network, e.g. {far_examples[0]}; is it "
                "a trip table of this map?"
            )
    else:
        ends = _osm_nodes(net, lines, vals, problems)
    unique_ids = True
    if "trip_id" in vals:
        trip_id = vals["trip_id"].astype(np.int64)
        first: dict[int, int] = {}
        for line, tid in zip(lines, trip_id, strict=True):
            if int(tid) in first:
                problems.append((int(line), f"trip_id {tid} repeats line {first[int(tid)]}"))
                unique_ids = False
            first.setdefault(int(tid), int(line))
    else:
        trip_id = np.searchsorted([line for line, _ in rows[1:]], lines).astype(np.int64)
    n = len(lines)
    after = vals["after_trip_id"].astype(np.int64) if "after_trip_id" in vals else None
    dwell = vals["min_dwell_s"].astype(np.float64) if "min_dwell_s" in vals else np.zeros(n)
    if after is not None and parsed_all and unique_ids:  # else references may be to bad rows
        for k, msg in chain_problems(trip_id, after, where="the file"):
            problems.append((int(lines[k]), f"column 'after_trip_id': {msg}"))
    if problems:
        raise _fail(path, problems)

    keep = (ends["origin"] != ends["dest"]) & ~too_far
    if after is not None:
        after, dwell = _skip_links(trip_id, after, dwell, keep)
    trips = Trips(
        trip_id[keep],
        ends["origin"][keep],
        ends["dest"][keep],
        vals["depart"][keep],
        after_trip_id=None if after is None else after[keep],
        min_dwell_s=dwell[keep],
    )
    report = TripImportReport(
        rows=len(rows) - 1,
        trips=len(trips),
        same_node_skipped=int(((ends["origin"] == ends["dest"]) & ~too_far).sum()),
        max_snap_m=float(snap_m.max()),
        too_far_skipped=int(too_far.sum()),
        too_far_examples=tuple(far_examples),
        ignored_columns=tuple(c for c in header if c not in col),
    )
    return trips, report


def _skip_links(
    trip_id: np.ndarray, after: np.ndarray, dwell: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Trips following a row that is not kept follow that row's predecessor instead (a trip
    from a node to itself takes no time), with the skipped row's dwell time added."""
    pos, dwell = _positions(trip_id, after), dwell.copy()
    while True:
        via = np.flatnonzero((pos >= 0) & ~keep[np.maximum(pos, 0)])
        if len(via) == 0:
            break
        dwell[via] += dwell[pos[via]]
        pos[via] = pos[pos[via]]
    return np.where(pos >= 0, trip_id[np.maximum(pos, 0)], -1), dwell


def _snap(
    net: RoadNet, vals: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Nearest network node of each origin and destination point, and its distance in metres
    (inf for a point that cannot be projected), inside the map's box or not."""
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    to_xy = Transformer.from_crs("EPSG:4326", net.meta["crs"], always_xy=True)
    tree = cKDTree(np.column_stack([net.node_x_m, net.node_y_m]))
    ends, dists = {}, {}
    for end in ("origin", "dest"):
        lon, lat = vals[f"{end}_lon"], vals[f"{end}_lat"]
        valid = (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)
        x, y = to_xy.transform(np.where(valid, lon, 0.0), np.where(valid, lat, 0.0))
        xy = np.column_stack([x, y])
        finite = valid & np.isfinite(xy).all(axis=1)
        dist_m, node = tree.query(np.where(finite[:, None], xy, 0.0))
        ends[end] = node.astype(np.int64)
        dists[end] = np.where(finite, dist_m, np.inf)
    return ends, dists


def _osm_nodes(
    net: RoadNet, lines: np.ndarray, vals: dict[str, np.ndarray], problems: list[tuple[int, str]]
) -> dict[str, np.ndarray]:
    """Node index of each origin and destination OSM id; unknown ids appended to problems."""
    index = {int(osmid): i for i, osmid in enumerate(net.node_osmid)}
    ends = {}
    for end in ("origin", "dest"):
        ids = vals[f"{end}_osm_node"].astype(np.int64)
        ends[end] = np.array([index.get(int(o), -1) for o in ids], dtype=np.int64)
        for k in np.flatnonzero(ends[end] < 0):
            problems.append((int(lines[k]), f"{end}_osm_node {ids[k]} is not a network node"))
    return ends


def write_trips_csv(trips: Trips, net: RoadNet, path: str | Path) -> None:
    """Write the lon/lat form; read_trips_csv gives back the same nodes, ids and departures,
    and chains.

    Points are the nodes' UTM positions converted back to lon/lat (7 decimals, ~1 cm), so
    they snap to their own node; depart is written in seconds, exactly. The columns
    after_trip_id and min_dwell_s (exact) are written when the table has chains
    (``trips.chained``), so files of unchained trips stay as they were.
    """
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(net.meta["crs"], "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(net.node_x_m, net.node_y_m)
    o, d = trips.origin_node, trips.dest_node
    columns = [[str(int(i)) for i in trips.trip_id], [repr(float(t)) for t in trips.depart_s]]
    columns += [[f"{v:.7f}" for v in a] for a in (lon[o], lat[o], lon[d], lat[d])]
    header = ("trip_id", *LONLAT_COLUMNS)
    if trips.chained:
        header += CHAIN_COLUMNS
        columns.append([str(int(i)) for i in trips.after_trip_id])
        columns.append([repr(float(t)) for t in trips.min_dwell_s])
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(zip(*columns, strict=True))
