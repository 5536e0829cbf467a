"""Benchmark: twin's traffic engine side by side with Eclipse SUMO, same maps, same trips.

For each map (``--maps``, default baltimore and dortmund) and demand level, one twin trip table
is drawn (:func:`twin.traffic.demand.random_trips`, flat profile, departures over
``--window-h`` hours from ``--start-h``) and fed to both simulators.

**Demand levels.** ``--levels light medium busy heavy`` (default) are loads in vehicle-km demanded
per lane-km per hour; a map gets ``trips/h = load x lane-km / mean route km``, the mean route
length of :data:`PILOT_TRIPS` trips drawn and routed by twin beforehand (so a level loads a map
of short trips and one of long trips alike), rounded to 10 trips/h. Light is 10 on every map;
medium, busy and heavy (:data:`LEVELS`, per map :data:`MAP_LEVELS`) were chosen from a scan so
that SUMO's mean time loss doubles between busy and heavy. ``--demand`` gives trips/h
explicitly instead (the same for every map). The lowest level is the reference ("light") of
the targets below.

- **SUMO** gets the map through ``netconvert`` with the flags SUMO recommends for OSM imports
  (:data:`NETCONVERT_FLAGS`), keeping only edges that allow passenger cars, with fixed-time
  signals (``--tls.default-type static``, SUMO's default, made explicit: twin runs its
  fixed-time Webster plans, so both use the same kind of control) whose cycle is twin's
  median Webster cycle on the map (``--sumo-cycle twin``, the default, so that the two
  programmes also share their cycle length; ``sumo`` keeps netconvert's 90 s), once per
  ``--speeds``:
  twin's default speeds for ways without ``maxspeed`` (``twin``, the default: like with
  like) and/or SUMO's own typemap (``sumo``). Each twin trip's first and last link are matched
  to the SUMO edge on the same street and in the same direction (by position and heading, via
  sumolib); the trips matched in every conversion are run by both simulators. They are
  written as ``<trip depart= from= to= departSpeed="0"/>`` (twin inserts at rest too);
  ``sumo`` routes them itself as they are loaded (its default router, free-flow times) and
  runs with its defaults otherwise (Krauss, 1 s step, ``--time-to-teleport 300``, default
  passenger vType with its speedFactor spread). The SUMO time is the wall time of the ``sumo``
  process (loading, routing, simulating, writing outputs; netconvert excluded), and SUMO's
  own ``<performance>`` figures; per-trip figures come from its tripinfo output.
- **twin** runs :class:`twin.traffic.sim.TrafficSim` (default fixed-time Webster signal
  plans) on the same trips, after a warm-up run that loads the compiled kernels. ``setup``
  (fleet, signal plans, the landmarks' tables; routing of the trips not known to be
  routable) and the simulation ``loop`` are timed apart; most trips are routed during the
  loop by a second thread (:mod:`twin.traffic.prefetch`; the loop waits for, or routes itself,
  a block not ready when its first trip is due), so twin's whole run uses two cores where
  SUMO uses one. Vehicle-updates come from ``sim.updates``, per-trip figures from
  ``sim.trip_table()``.

Both run until every trip has finished or ``--cap-h`` simulated hours after ``--start-h``.

**Per trip** (the trips that arrived in both): Pearson correlation of the durations, median
of the per-trip ratio twin/SUMO, mean duration and mean time loss of each and their
differences in % of SUMO's. **Doubling demand**: for each simulator, the demand at which the
mean time loss per trip (trips arrived in both) reaches twice its value at the lowest level,
linear in demand between the two levels that bracket it ("> max level" if none does).
Targets (issue 9): at the lowest level mean duration within 10 % and mean time loss within
20 % of SUMO's, per-trip duration correlation >= 0.9; doubling demand within 25 % of SUMO's.

The two simulators run alternately (twin, SUMO, twin, SUMO, ...: ``--repeat`` pairs), so
both see the machine's load of the moment; speed ratios are the median of the per-pair
ratios, with their range, and timings the medians of the runs (each run of a simulator gives
the same results: both are seeded). The per-trip halted time and halts of each are recorded
as diagnostics (``mean_wait_s_*``, ``mean_halts_*``: where the time loss is lost). Results go
to bench/results/sumo-<map>.json; bench/RESULTS.md quotes them.

    pip install -e ".[bench]"
    NUMBA_NUM_THREADS=1 python bench/bench_sumo.py [--maps baltimore dortmund] [--repeat 1]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr

from twin.network.road import RoadNet
from twin.results import machine, software_versions
from twin.traffic.demand import Trips, random_trips
from twin.traffic.routing import Router, RouteSet
from twin.traffic.signals import webster_plans
from twin.traffic.sim import TrafficSim

ROOT = Path(__file__).resolve().parents[1]

# SUMO's recommended OSM import (sumo.dlr.de/docs/Networks/Import/OpenStreetMap.html),
# restricted to edges a passenger car may use, as twin keeps only drivable roads.
NETCONVERT_FLAGS = (
    "--geometry.remove",
    "--ramps.guess",
    "--junctions.join",
    "--tls.guess-signals",
    "--tls.discard-simple",
    "--tls.join",
    "--keep-edges.by-vclass",
    "passenger",
    "--remove-edges.isolated",
    "--tls.default-type",
    "static",
)
# Demand levels: vehicle-km demanded per lane-km of the map per hour (see the module doc).
# Light is the same everywhere; the others are set per map from a scan so that SUMO's mean
# time loss doubles between busy and heavy (Baltimore: at ~66, Dortmund: at ~106; 1 h window).
LEVELS = {"light": 10.0, "medium": 50.0, "busy": 65.0, "heavy": 80.0}
MAP_LEVELS = {"dortmund": {"light": 10.0, "medium": 60.0, "busy": 100.0, "heavy": 120.0}}
PILOT_TRIPS = 2000  # trips drawn and routed to measure a map's mean route length
MATCH_RADIUS_M = 40.0  # m, search radius for a SUMO edge around a twin link's anchor point
MATCH_HEADING_DEG = 45.0  # largest heading difference between a twin link and its SUMO edge
ANCHOR_FRACTION = 1.0 / 3.0  # anchor: 1/3 along the first link, 1/3 before the end of the last
SEED = 42


# -- SUMO: tools, network, trips --------------------------------------------------------------


def sumo_home() -> Path:
    """SUMO_HOME of the eclipse-sumo wheel; its tools directory is put on sys.path."""
    try:
        import sumo
    except ImportError:
        sys.exit('bench_sumo: eclipse-sumo is not installed; pip install -e ".[bench]"')
    home = Path(sumo.SUMO_HOME)
    os.environ["SUMO_HOME"] = str(home)
    if str(home / "tools") not in sys.path:
        sys.path.append(str(home / "tools"))
    return home


def sumo_version(home: Path) -> str:
    out = subprocess.run(
        [str(home / "bin" / "sumo"), "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()[0].strip()


def plain_osm(path: Path, workdir: Path) -> Path:
    """netconvert does not read .bz2 (and .gz is decompressed too, to treat both alike):
    the map as a plain .osm file in ``workdir``."""
    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix)
    if opener is None:
        return path
    out = workdir / path.with_suffix("").name
    with opener(path, "rb") as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def twin_typemap(home: Path, workdir: Path) -> Path:
    """SUMO's OSM typemap with twin's per-class default speeds (twin.network.tags.DEFAULTS):
    where a way has no maxspeed, SUMO then assumes what twin assumes (e.g. 50 km/h on urban
    primary and secondary roads, where SUMO's own typemap says 100 km/h)."""
    from twin.network.tags import DEFAULTS

    tree = ET.parse(home / "data" / "typemap" / "osmNetconvert.typ.xml")
    for node in tree.getroot().iter("type"):
        cls = node.get("id", "").removeprefix("highway.")
        if cls in DEFAULTS and node.get("id", "").startswith("highway."):
            node.set("speed", f"{DEFAULTS[cls].speed_kph / 3.6:.2f}")
    out = workdir / "twin-speeds.typ.xml"
    tree.write(out)
    return out


def build_sumo_net(
    home: Path, osm_path: Path, workdir: Path, speeds: str, cycle_s: float | None = None
) -> tuple[Path, float]:
    """netconvert the map with SUMO's typemap (``speeds="sumo"``) or with twin's default
    speeds (``"twin"``), static signal programmes of ``cycle_s`` (None: netconvert's 90 s);
    returns (net.xml path, wall seconds of netconvert)."""
    net_xml = workdir / f"net-{speeds}.net.xml"
    osm = workdir / osm_path.with_suffix("").name
    if not osm.exists():
        osm = plain_osm(osm_path, workdir)
    cmd = [str(home / "bin" / "netconvert"), "--osm-files", str(osm), *NETCONVERT_FLAGS]
    if speeds == "twin":
        cmd += ["--type-files", str(twin_typemap(home, workdir))]
    if cycle_s is not None:
        cmd += ["--tls.cycle.time", f"{cycle_s:.0f}"]
    cmd += ["--output-file", str(net_xml), "--no-warnings"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return net_xml, time.perf_counter() - t0


def passenger_core(sumo_net: Any) -> set[str]:
    """IDs of the edges in the largest strongly connected part of the passenger-car network
    (trips from or to other edges may have no route; twin keeps the same part of its map)."""
    import networkx as nx

    G = nx.DiGraph()
    for edge in sumo_net.getEdges(withInternal=False):
        if not edge.allows("passenger"):
            continue
        G.add_node(edge.getID())
        for to in edge.getOutgoing():
            if to.allows("passenger"):
                G.add_edge(edge.getID(), to.getID())
    return max(nx.strongly_connected_components(G), key=len)


def _heading_deg(p: np.ndarray, q: np.ndarray) -> float:
    return math.degrees(math.atan2(q[0] - p[0], q[1] - p[1])) % 360.0


def _anchor(poly: np.ndarray, frac: float) -> tuple[np.ndarray, float]:
    """The point ``frac`` of the way along a polyline, and the heading of its segment."""
    seg = np.hypot(*np.diff(poly, axis=0).T)
    target = frac * seg.sum()
    k = int(np.searchsorted(np.cumsum(seg), target))
    k = min(k, len(seg) - 1)
    before = seg[:k].sum()
    t = 0.0 if seg[k] == 0 else (target - before) / seg[k]
    return poly[k] + t * (poly[k + 1] - poly[k]), _heading_deg(poly[k], poly[k + 1])


def _edge_heading_near(edge: Any, xy: tuple[float, float]) -> tuple[float, float]:
    """(distance, heading) of the segment of a SUMO edge's shape nearest to ``xy``."""
    shape = np.asarray(edge.getShape(), dtype=np.float64)
    best = (np.inf, 0.0)
    for a, b in itertools.pairwise(shape):
        ab = b - a
        t = 0.0 if not ab.any() else float(np.clip((np.asarray(xy) - a) @ ab / (ab @ ab), 0, 1))
        d = float(np.hypot(*(a + t * ab - xy)))
        if d < best[0]:
            best = (d, _heading_deg(a, b))
    return best


def match_edge(sumo_net: Any, core: set[str], xy: tuple[float, float], heading: float) -> str:
    """The SUMO edge of the core nearest to ``xy`` whose heading there is within
    MATCH_HEADING_DEG of ``heading``; else the nearest core edge within 5x the radius."""
    for radius, max_turn in ((MATCH_RADIUS_M, MATCH_HEADING_DEG), (5 * MATCH_RADIUS_M, 180.0)):
        best, best_d = "", np.inf
        for edge, _ in sumo_net.getNeighboringEdges(xy[0], xy[1], radius, False):
            if edge.getID() not in core:
                continue
            d, h = _edge_heading_near(edge, xy)
            if abs((h - heading + 180.0) % 360.0 - 180.0) <= max_turn and d < best_d:
                best, best_d = edge.getID(), d
        if best:
            return best
    return ""


def sumo_trip_ends(
    net: RoadNet, routes: RouteSet, sumo_net: Any, core: set[str]
) -> tuple[list[str], list[str]]:
    """SUMO from/to edges of each trip: the edges on the streets where twin's fastest route
    (``routes``) starts and ends ("" where no edge was found)."""
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(net.meta["crs"], "EPSG:4326", always_xy=True)
    proj = sumo_net.getGeoProj()
    x_off, y_off = sumo_net.getLocationOffset()

    def to_sumo(xy_m: np.ndarray) -> np.ndarray:
        lon, lat = to_lonlat.transform(xy_m[:, 0], xy_m[:, 1])
        x, y = proj(lon, lat)
        return np.column_stack([np.asarray(x) + x_off, np.asarray(y) + y_off])

    cache: dict[tuple[int, bool], str] = {}

    def edge_of(link: int, last: bool) -> str:
        if (link, last) not in cache:
            poly = to_sumo(net.link_geometry(link))
            xy, heading = _anchor(poly, 1.0 - ANCHOR_FRACTION if last else ANCHOR_FRACTION)
            cache[(link, last)] = match_edge(sumo_net, core, (xy[0], xy[1]), heading)
        return cache[(link, last)]

    froms, tos = [], []
    for i in range(len(routes)):
        links = routes.route(i)
        ok = len(links) > 0
        froms.append(edge_of(int(links[0]), False) if ok else "")
        tos.append(edge_of(int(links[-1]), True) if ok else "")
    return froms, tos


def write_sumo_trips(path: Path, trips: Trips, froms: list[str], tos: list[str]) -> int:
    """The trips both ends of which have a SUMO edge, as a SUMO trip file; returns how many."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write("<routes>\n")
        for tid, dep, a, b in zip(trips.trip_id, trips.depart_s, froms, tos, strict=True):
            if a and b and a != b:
                fh.write(
                    f'    <trip id="{tid}" depart="{dep:.2f}" from="{a}" to="{b}" '
                    'departSpeed="0"/>\n'
                )
                n += 1
        fh.write("</routes>\n")
    return n


def run_sumo(
    home: Path,
    net_xml: Path,
    trips_xml: Path,
    begin_s: float,
    cap_s: float,
    workdir: Path,
    *,
    capped_only: bool = False,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One sumo run until every vehicle has left (SUMO's default end) or, where that is later
    than ``cap_s``, again with ``--end cap_s`` (``capped_only``: that run alone); wall time,
    <performance>, trip figures. ``extra``: further sumo options."""
    if capped_only:
        return _sumo_once(home, net_xml, trips_xml, begin_s, cap_s, workdir, extra)
    out = _sumo_once(home, net_xml, trips_xml, begin_s, None, workdir, extra)
    if out["end_s"] > cap_s:
        out = _sumo_once(home, net_xml, trips_xml, begin_s, cap_s, workdir, extra)
    return out


def _sumo_once(
    home: Path,
    net_xml: Path,
    trips_xml: Path,
    begin_s: float,
    end_s: float | None,
    workdir: Path,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    stats_xml, tripinfo_xml = workdir / "stats.xml", workdir / "tripinfo.xml"
    cmd = [
        str(home / "bin" / "sumo"),
        "-n", str(net_xml),
        "-r", str(trips_xml),
        "--begin", f"{begin_s:g}",
        "--seed", str(SEED),
        "--ignore-route-errors",
        "--no-step-log",
        "--no-warnings",
        "--duration-log.statistics",
        "--tripinfo-output", str(tripinfo_xml),
        "--statistic-output", str(stats_xml),
    ]  # fmt: skip
    if end_s is not None:
        cmd += ["--end", f"{end_s:g}"]
    cmd += list(extra)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    stats = {child.tag: dict(child.attrib) for child in ET.parse(stats_xml).getroot()}
    perf, veh, tele = stats["performance"], stats["vehicles"], stats["teleports"]
    info = [t.attrib for t in ET.parse(tripinfo_xml).getroot().iter("tripinfo")]
    duration = np.array([float(t["duration"]) for t in info])
    time_loss = np.array([float(t["timeLoss"]) for t in info])
    sim_s = float(perf["end"]) - float(perf["begin"])
    loop_s = float(perf["clockDuration"])  # s: SUMO's simulation loop (routing included)
    return {
        "wall_s": wall_s,
        "loop_s": loop_s,
        "end_s": float(perf["end"]),
        "sim_s": sim_s,
        "capped": end_s is not None,
        "updates": round(float(perf["vehicleUpdatesPerSecond"]) * loop_s),
        "updates_per_s": float(perf["vehicleUpdatesPerSecond"]),
        "updates_per_s_whole": float(perf["vehicleUpdatesPerSecond"]) * loop_s / wall_s,
        "rtf": sim_s / wall_s,
        "rtf_loop": float(perf["realTimeFactor"]),
        "trips": int(veh["loaded"]),
        "inserted": int(veh["inserted"]),
        "completed": len(info),
        "running_at_end": int(veh["running"]),
        "waiting_at_end": int(veh["waiting"]),
        "mean_duration_s": float(duration.mean()) if len(info) else math.nan,
        "mean_time_loss_s": float(time_loss.mean()) if len(info) else math.nan,
        "mean_depart_delay_s": float(stats["vehicleTripStatistics"]["departDelay"]),
        "mean_route_km": float(stats["vehicleTripStatistics"]["routeLength"]) / 1000.0,
        "teleports": int(tele["total"]),
        "teleports_jam": int(tele.get("jam", 0)),
        "teleports_yield": int(tele.get("yield", 0)),
        "teleports_wrong_lane": int(tele.get("wrongLane", 0)),
        "per_trip": {
            t["id"]: (
                float(t["duration"]),
                float(t["timeLoss"]),
                float(t["waitingTime"]),
                float(t["waitingCount"]),
            )
            for t in info
        },
    }


# -- twin ----------------------------------------------------------------------------------


def run_twin(net: RoadNet, trips: Trips, start_s: float, end_s: float, block: int) -> dict:
    """One twin run: setup (routing, fleet, signals) and the loop timed apart."""
    t0 = time.perf_counter()
    sim = TrafficSim(net, trips, seed=SEED, start_s=start_s)
    t1 = time.perf_counter()
    while sim.t_s < end_s - 1e-9:
        sim.advance(min(block, round(end_s - sim.t_s)))
        if sim.active() == 0:
            break
    t2 = time.perf_counter()
    c = sim.counts()
    table = sim.trip_table()
    done = table[table["status"] == "arrived"]
    setup_s, loop_s, sim_s = t1 - t0, t2 - t1, sim.t_s - start_s
    return {
        "setup_s": setup_s,
        "loop_s": loop_s,
        "wall_s": setup_s + loop_s,
        "sim_s": sim_s,
        "updates": int(sim.updates),
        "updates_per_s": sim.updates / loop_s,
        "updates_per_s_whole": sim.updates / (setup_s + loop_s),
        "rtf": sim_s / (setup_s + loop_s),
        "rtf_loop": sim_s / loop_s,
        "trips": len(trips),
        "completed": c.arrived,
        "unroutable": c.unroutable,
        "running_at_end": c.running,
        "waiting_at_end": c.waiting + c.scheduled,
        "mean_duration_s": float(done["duration_s"].mean()),
        "mean_time_loss_s": float(done["time_loss_s"].mean()),
        "mean_depart_delay_s": float(done["depart_delay_s"].mean()),
        "mean_route_km": float(done["route_length_m"].mean() / 1000.0),
        "teleports": int(table["teleports"].sum()),
        "vehicles_teleported": c.teleported,
        "vehicles_gridlocked": c.gridlocked,
        "per_trip": {
            str(t): (float(d), float(tl), float(w), float(n))
            for t, d, tl, w, n in zip(
                done["trip_id"],
                done["duration_s"],
                done["time_loss_s"],
                done["wait_s"],
                done["stops"],
                strict=True,
            )
        },
    }


def warm_up(net: RoadNet, start_s: float) -> None:
    """Load (or compile) the kernels before anything is timed."""
    trips = random_trips(
        net,
        rng=np.random.default_rng(0),
        start_s=start_s,
        end_s=start_s + 60.0,
        n_trips=50,
        profile="flat",
    )
    TrafficSim(net, trips, seed=0, start_s=start_s).advance(120)


def empty_step_us(net: RoadNet, start_s: float, steps: int = 5000) -> float:
    """Fixed cost of one twin step with no vehicle on the map (signals, lane bookkeeping), us."""
    far = np.array([start_s + 1e7])
    trips = Trips(np.array([0]), net.link_from[:1], net.link_to[:1], far)
    sim = TrafficSim(net, trips, seed=0, start_s=start_s)
    sim.advance(10)
    t0 = time.perf_counter()
    sim.advance(steps)
    return (time.perf_counter() - t0) / steps * 1e6


# -- demand levels ---------------------------------------------------------------------------


@dataclass
class Level:
    """One demand level of one map."""

    name: str
    trips_per_hour: float
    load: float | None  # vehicle-km per lane-km per hour; None where trips/h were given


def mean_route_km(net: RoadNet, start_s: float, seed: int) -> float:
    """Mean length of twin's fastest routes for PILOT_TRIPS random trips, km."""
    trips = random_trips(
        net,
        rng=np.random.default_rng(seed),
        start_s=start_s,
        end_s=start_s + 3600.0,
        n_trips=PILOT_TRIPS,
        profile="flat",
    )
    routes = Router(net).routes(trips.origin_node, trips.dest_node)
    length_m = np.add.reduceat(np.append(net.link_length_m[routes.links], 0.0), routes.offsets[:-1])
    return float(length_m[routes.ok].mean() / 1000.0)


def demand_levels(net: RoadNet, name: str, args: argparse.Namespace) -> tuple[list[Level], dict]:
    """The map's demand levels, lowest first, and the rule that gave them."""
    if args.demand:
        levels = [Level(f"{t:g}/h", t, None) for t in sorted(args.demand)]
        return levels, {"rule": "explicit trips/h (--demand)"}
    loads = MAP_LEVELS.get(name, LEVELS)
    lane_km = float((net.link_length_m * net.link_lanes).sum() / 1000.0)
    route_km = mean_route_km(net, args.start_h * 3600.0, args.seed)
    levels = [Level(lv, round(loads[lv] * lane_km / route_km, -1), loads[lv]) for lv in args.levels]
    rule = {
        "rule": "trips/h = load x lane_km / mean_route_km, rounded to 10",
        "load_unit": "vehicle-km per lane-km per hour",
        "loads": {lv: loads[lv] for lv in args.levels},
        "lane_km": lane_km,
        "mean_route_km": route_km,
        "pilot_trips": PILOT_TRIPS,
    }
    return sorted(levels, key=lambda lv: lv.trips_per_hour), rule


# -- the comparison ------------------------------------------------------------------------


def median_run(runs: list[dict]) -> dict:
    """The first run's results with every timing replaced by the median over the runs."""
    out = {k: v for k, v in runs[0].items() if k != "per_trip"}
    for key in ("wall_s", "loop_s", "setup_s"):
        if key in out:
            out[key] = statistics.median(r[key] for r in runs)
    for key in ("updates_per_s", "updates_per_s_whole", "rtf", "rtf_loop"):
        out[key] = statistics.median(r[key] for r in runs)
    out["wall_s_all"] = [round(r["wall_s"], 3) for r in runs]
    return out


def pct(a: float, b: float) -> float:
    """a - b in % of b."""
    return 100.0 * (a - b) / b if b else math.nan


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(pearsonr(a, b).statistic)


def paired(twin_run: dict, sumo_run: dict) -> dict:
    """Trips that arrived in both: per-trip correlation and ratio, and the means of each."""
    common = sorted(twin_run["per_trip"].keys() & sumo_run["per_trip"].keys(), key=int)
    t = np.array([twin_run["per_trip"][k] for k in common]).reshape(-1, 4)
    s = np.array([sumo_run["per_trip"][k] for k in common]).reshape(-1, 4)
    nan = math.nan
    means = t.mean(axis=0) if len(common) else np.full(4, nan)
    means_s = s.mean(axis=0) if len(common) else np.full(4, nan)
    return {
        "trips_finished_in_both": len(common),
        "pearson_r_duration": _pearson(t[:, 0], s[:, 0]),
        "pearson_r_time_loss": _pearson(t[:, 1], s[:, 1]),
        "median_duration_ratio_twin_over_sumo": (
            float(np.median(t[:, 0] / s[:, 0])) if len(common) else nan
        ),
        "mean_duration_s_twin": float(means[0]),
        "mean_duration_s_sumo": float(means_s[0]),
        "mean_duration_diff_pct": pct(means[0], means_s[0]),
        "mean_time_loss_s_twin": float(means[1]),
        "mean_time_loss_s_sumo": float(means_s[1]),
        "mean_time_loss_diff_pct": pct(means[1], means_s[1]),
        # diagnostics: time halted (< 0.1 m/s) and the number of halts per trip; the rest of
        # the time loss is lost while moving (slowing, dawdling, following)
        "mean_wait_s_twin": float(means[2]),
        "mean_wait_s_sumo": float(means_s[2]),
        "mean_halts_twin": float(means[3]),
        "mean_halts_sumo": float(means_s[3]),
    }


def compare(twin_m: dict, sumo_m: dict) -> dict:
    """twin against SUMO: throughput ratios (> 1: twin faster; "loop" is the simulation loop
    only, "whole" includes twin's routing and set-up and SUMO's whole process), and the
    differences of the mean trip figures (each over its own arrived trips) in % of SUMO's."""
    return {
        "updates_per_s_loop": twin_m["updates_per_s"] / sumo_m["updates_per_s"],
        "updates_per_s_whole": twin_m["updates_per_s_whole"] / sumo_m["updates_per_s_whole"],
        "rtf_whole": twin_m["rtf"] / sumo_m["rtf"],
        "rtf_loop": twin_m["rtf_loop"] / sumo_m["rtf_loop"],
        "wall_whole": sumo_m["wall_s"] / twin_m["wall_s"],
        "mean_duration_diff_pct": pct(twin_m["mean_duration_s"], sumo_m["mean_duration_s"]),
        "mean_time_loss_diff_pct": pct(twin_m["mean_time_loss_s"], sumo_m["mean_time_loss_s"]),
    }


def doubling_demand(demand: list[float], time_loss: list[float]) -> float | None:
    """The demand at which ``time_loss`` first reaches twice its value at the first (lowest)
    demand, linear between the bracketing levels; None if it never does."""
    target = 2.0 * time_loss[0]
    for (d0, y0), (d1, y1) in itertools.pairwise(zip(demand, time_loss, strict=True)):
        if y1 >= target > y0:
            return d0 + (target - y0) / (y1 - y0) * (d1 - d0)
    return None


def doubling(rows: list[dict], speeds: str) -> dict:
    """Doubling demand (trips/h) of each simulator on one SUMO conversion, and their ratio."""
    demand = [r["trips_per_hour"] for r in rows]
    pairs = [r["sumo"][speeds]["paired"] for r in rows]
    out: dict[str, Any] = {"max_level_trips_per_hour": max(demand)}
    for sim in ("twin", "sumo"):
        out[f"time_loss_s_{sim}"] = [p[f"mean_time_loss_s_{sim}"] for p in pairs]
        out[f"trips_per_hour_{sim}"] = doubling_demand(demand, out[f"time_loss_s_{sim}"])
    tw, su = out["trips_per_hour_twin"], out["trips_per_hour_sumo"]
    out["ratio_twin_over_sumo"] = tw / su if tw is not None and su is not None else None
    return out


def targets(rows: list[dict], speeds: str, dbl: dict) -> dict:
    """Issue 9's targets on one SUMO conversion: value, limit and pass of each."""
    light = rows[0]["sumo"][speeds]["paired"]
    dur, loss = light["mean_duration_diff_pct"], light["mean_time_loss_diff_pct"]
    r, ratio = light["pearson_r_duration"], dbl["ratio_twin_over_sumo"]
    return {
        "light_mean_duration_within_10pct": {"value": dur, "pass": bool(abs(dur) <= 10.0)},
        "light_mean_time_loss_within_20pct": {"value": loss, "pass": bool(abs(loss) <= 20.0)},
        "light_duration_r_at_least_0.9": {"value": r, "pass": bool(r >= 0.9)},
        "doubling_demand_within_25pct": {
            "value": ratio,
            "pass": bool(ratio is not None and abs(ratio - 1.0) <= 0.25),
        },
    }


@dataclass
class SumoNet:
    """One SUMO conversion of the map."""

    speeds: str  # "sumo": SUMO's typemap; "twin": twin's default speeds
    net_xml: Path
    net: Any  # sumolib.net.Net
    core: set[str]  # edges in the largest strongly connected passenger part
    netconvert_s: float

    def info(self) -> dict:
        return {
            "speeds": self.speeds,
            "netconvert_s": self.netconvert_s,
            "edges": len(self.net.getEdges(withInternal=False)),
            "passenger_core_edges": len(self.core),
            "traffic_lights": len(self.net.getTrafficLights()),
        }


def sumo_cycle_s(net: RoadNet, how: str) -> float | None:
    """SUMO's static cycle: twin's median Webster cycle on this map ("twin", so that the two
    fixed-time programmes share their cycle length), netconvert's 90 s ("sumo": None), or a
    number of seconds."""
    if how == "sumo":
        return None
    if how == "twin":
        cycle = webster_plans(net, np.random.default_rng(0)).cycle_s
        return float(np.round(np.median(cycle[np.isfinite(cycle)])))
    return float(how)


def convert(
    home: Path, osm: Path, workdir: Path, speeds: str, cycle_s: float | None = None
) -> SumoNet:
    import sumolib

    net_xml, netconvert_s = build_sumo_net(home, osm, workdir, speeds, cycle_s)
    sumo_net = sumolib.net.readNet(str(net_xml))
    return SumoNet(speeds, net_xml, sumo_net, passenger_core(sumo_net), netconvert_s)


def matched_trips(
    net: RoadNet, sumo_nets: list[SumoNet], trips: Trips
) -> tuple[Trips, dict[str, tuple[list[str], list[str]]]]:
    """The trips with SUMO edges at both ends in every conversion, and those edges."""
    routes = Router(net).routes(trips.origin_node, trips.dest_node)
    ends = {sn.speeds: sumo_trip_ends(net, routes, sn.net, sn.core) for sn in sumo_nets}
    keep = np.ones(len(trips), dtype=bool)
    for froms, tos in ends.values():
        keep &= np.array([bool(a and b and a != b) for a, b in zip(froms, tos, strict=True)])
    same = Trips(
        trips.trip_id[keep], trips.origin_node[keep], trips.dest_node[keep], trips.depart_s[keep]
    )
    kept = {
        speeds: (
            [f for f, k in zip(froms, keep, strict=True) if k],
            [t for t, k in zip(tos, keep, strict=True) if k],
        )
        for speeds, (froms, tos) in ends.items()
    }
    return same, kept


def twin_figures(runs: list[dict], args: argparse.Namespace) -> dict:
    """twin's median over its runs, with the fixed-cost shares."""
    m = median_run(runs)
    m["steps"] = round(m["sim_s"])
    m["empty_step_us"] = args.empty_step_us
    m["fixed_step_cost_share_of_loop"] = args.empty_step_us * 1e-6 * m["steps"] / m["loop_s"]
    m["setup_share_of_wall"] = m["setup_s"] / m["wall_s"]
    return m


def pair_ratios(twin_runs: list[dict], sumo_runs: list[dict]) -> tuple[dict, dict]:
    """The median over the run pairs (twin run i against SUMO run i) of each ratio, and its
    (min, max)."""
    pairs = [compare(t, s) for t, s in zip(twin_runs, sumo_runs, strict=True)]
    keys = ("updates_per_s_loop", "updates_per_s_whole", "rtf_whole", "rtf_loop", "wall_whole")
    median = {k: statistics.median(p[k] for p in pairs) for k in keys}
    spread = {k: (min(p[k] for p in pairs), max(p[k] for p in pairs)) for k in keys}
    return median, spread


def bench_level(
    net: RoadNet,
    home: Path,
    sumo_nets: list[SumoNet],
    workdir: Path,
    level: Level,
    args: argparse.Namespace,
) -> dict:
    """twin and each SUMO conversion on one trip table of ``level``."""
    start_s = args.start_h * 3600.0
    cap_s = start_s + args.cap_h * 3600.0
    trips = random_trips(
        net,
        rng=np.random.default_rng(args.seed),
        start_s=start_s,
        end_s=start_s + args.window_h * 3600.0,
        trips_per_hour=level.trips_per_hour,
        profile="flat",
    )
    same, ends = matched_trips(net, sumo_nets, trips)
    print(
        f"{level.name} ({level.trips_per_hour:g} trips/h): {len(same)} of {len(trips)} trips "
        "matched to SUMO edges",
        flush=True,
    )
    trips_xml = {}
    for sn in sumo_nets:
        trips_xml[sn.speeds] = workdir / f"trips-{sn.speeds}-{int(level.trips_per_hour)}.xml"
        write_sumo_trips(trips_xml[sn.speeds], same, *ends[sn.speeds])
    # alternate the simulators (A B A B ...), so that both see the machine's load of the moment
    twin_runs: list[dict] = []
    sumo_runs: dict[str, list[dict]] = {sn.speeds: [] for sn in sumo_nets}
    for _ in range(args.repeat):
        twin_runs.append(run_twin(net, same, start_s, cap_s, args.block))
        for sn in sumo_nets:
            sumo_runs[sn.speeds].append(
                run_sumo(home, sn.net_xml, trips_xml[sn.speeds], start_s, cap_s, workdir)
            )
    twin_m = twin_figures(twin_runs, args)
    print(f"  twin: {_brief(twin_m)}", flush=True)
    row: dict[str, Any] = {
        "level": level.name,
        "load_vkm_per_lane_km_h": level.load,
        "trips_per_hour": level.trips_per_hour,
        "trips_drawn": len(trips),
        "trips_matched": len(same),
        "twin": twin_m,
        "sumo": {},
    }
    for sn in sumo_nets:
        runs = sumo_runs[sn.speeds]
        sumo_m = median_run(runs)
        print(f"  sumo ({sn.speeds} speeds): {_brief(sumo_m)}", flush=True)
        ratio, spread = pair_ratios(twin_runs, runs)
        row["sumo"][sn.speeds] = {
            **sumo_m,
            # speed ratios: the median of the per-pair ratios; trip figures: of the medians
            "ratio": {**compare(twin_m, sumo_m), **ratio},
            "ratio_range": spread,
            "paired": paired(twin_runs[0], runs[0]),
        }
    return row


def _brief(m: dict) -> str:
    keys = (
        "wall_s",
        "loop_s",
        "sim_s",
        "updates",
        "updates_per_s",
        "completed",
        "mean_duration_s",
        "mean_time_loss_s",
        "teleports",
    )
    return ", ".join(f"{k}={m[k]:.4g}" for k in keys)


# -- one map, the table ----------------------------------------------------------------------


def bench_map(name: str, home: Path, args: argparse.Namespace) -> dict:
    """Every level on one map; the report written to sumo-<map>.json."""
    import twin

    t0 = time.perf_counter()
    osm = ROOT / "maps" / f"{name}.osm.bz2"
    net = twin.load_roadnet(osm)
    levels, rule = demand_levels(net, name, args)
    print(f"== {name}: levels {[(lv.name, lv.trips_per_hour) for lv in levels]} ({rule['rule']})")
    workdir = Path(tempfile.mkdtemp(prefix="bench-sumo-")) if args.keep is None else args.keep
    workdir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        cycle_s = sumo_cycle_s(net, args.sumo_cycle)
        print(f"   SUMO signal cycle: {'90 (netconvert default)' if cycle_s is None else cycle_s}")
        sumo_nets = [convert(home, osm, workdir, speeds, cycle_s) for speeds in args.speeds]
        warm_up(net, args.start_h * 3600.0)
        args.empty_step_us = empty_step_us(net, args.start_h * 3600.0)
        rows = [bench_level(net, home, sumo_nets, workdir, lv, args) for lv in levels]
    finally:
        if args.keep is None:
            shutil.rmtree(workdir.parent, ignore_errors=True)
    dbl = {sn.speeds: doubling(rows, sn.speeds) for sn in sumo_nets}
    return {
        "machine": machine(),
        "versions": {**software_versions(), "sumo": sumo_version(home)},
        "map": name,
        "settings": {
            "netconvert_flags": list(NETCONVERT_FLAGS),
            "start_h": args.start_h,
            "window_h": args.window_h,
            "cap_h": args.cap_h,
            "repeat": args.repeat,
            "trip_seed": args.seed,
            "sim_seed": SEED,
            "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
            "signals": "fixed-time in both: twin Webster plans, SUMO static (netconvert)",
            "sumo_cycle": args.sumo_cycle,
            "sumo_cycle_s": sumo_cycle_s(net, args.sumo_cycle),
            "demand": rule,
        },
        "sumo_nets": [sn.info() for sn in sumo_nets],
        "twin_net": net.summary(),
        "results": rows,
        "doubling": dbl,
        "targets": {s: targets(rows, s, dbl[s]) for s in dbl},
        "bench_wall_s": time.perf_counter() - t0,
    }


def _pair(a: float, b: float, fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(a)}/{fmt.format(b)} ({pct(a, b):+.0f}%)"


def print_table(report: dict, header: bool = True) -> None:
    """The compact per-level table and the targets of one map."""
    head = (
        f"{'map':10} {'level':8} {'speeds':6} {'trips/h':>7} {'trips':>6} {'arrived tw/su':>13} "
        f"{'duration tw/su s':>18} {'time loss tw/su s':>18} {'r':>5} {'med':>5} "
        f"{'loop x (range)':>14} {'whole x':>7} {'tele tw(grid)/su':>16}"
    )
    if header:
        print(head)
    for row in report["results"]:
        tw = row["twin"]
        for speeds, su in row["sumo"].items():
            p, ra = su["paired"], su["ratio"]
            dur = _pair(p["mean_duration_s_twin"], p["mean_duration_s_sumo"])
            loss = _pair(p["mean_time_loss_s_twin"], p["mean_time_loss_s_sumo"])
            tele = f"{tw['teleports']}({tw['vehicles_gridlocked']})/{su['teleports']}"
            lo, hi = su["ratio_range"]["updates_per_s_loop"]
            loop = f"{ra['updates_per_s_loop']:.0f} ({lo:.0f}-{hi:.0f})"
            print(
                f"{report['map']:10} {row['level']:8} {speeds:6} {row['trips_per_hour']:7.0f} "
                f"{row['trips_matched']:6d} {tw['completed']:>6d}/{su['completed']:<6d} "
                f"{dur:>18} {loss:>18} {p['pearson_r_duration']:5.2f} "
                f"{p['median_duration_ratio_twin_over_sumo']:5.2f} "
                f"{loop:>14} {ra['updates_per_s_whole']:7.0f} {tele:>16}"
            )
    for speeds, d in report["doubling"].items():
        top = f"> {d['max_level_trips_per_hour']:g}"
        tw, su = d["trips_per_hour_twin"], d["trips_per_hour_sumo"]
        ratio = d["ratio_twin_over_sumo"]
        print(
            f"{report['map']} ({speeds} speeds): time loss doubles at "
            f"twin {top if tw is None else f'{tw:.0f}'} / SUMO {top if su is None else f'{su:.0f}'}"
            f" trips/h (ratio {'n/a' if ratio is None else f'{ratio:.2f}'})"
        )
        for key, t in report["targets"][speeds].items():
            value = "n/a" if t["value"] is None else f"{t['value']:.3g}"
            print(f"  {key}: {value} -> {'PASS' if t['pass'] else 'FAIL'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--maps", "--map", nargs="+", default=["baltimore", "dortmund"], help="maps/NAME.osm.bz2")
    add("--levels", nargs="+", choices=list(LEVELS), default=list(LEVELS), help="named levels")
    add("--demand", type=float, nargs="+", help="explicit trips/h instead of --levels")
    add(
        "--speeds",
        nargs="+",
        choices=["sumo", "twin"],
        default=["twin"],
        help="SUMO conversions: twin's default speeds (default) and/or SUMO's typemap",
    )
    add(
        "--sumo-cycle",
        default="twin",
        help='SUMO static cycle: "twin" (twin\'s median Webster cycle), "sumo" (90 s) or seconds',
    )
    add("--start-h", type=float, default=7.0, help="first departure, h")
    add("--window-h", type=float, default=1.0, help="departures over this many hours")
    add("--cap-h", type=float, default=3.0, help="stop this many hours after --start-h at most")
    add("--repeat", type=int, default=3)
    add("--block", type=int, default=10, help="twin steps per advance() between end checks")
    add("--seed", type=int, default=1, help="seed of the trip tables (and the pilot trips)")
    add("--keep", type=Path, help="keep SUMO's files in this directory")
    add("--out-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    home = sumo_home()
    t0 = time.perf_counter()
    reports = []
    for name in args.maps:
        report = bench_map(name, home, args)
        out = args.out_dir / f"sumo-{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {out} ({report['bench_wall_s']:.0f} s)", flush=True)
        reports.append(report)
    print()
    for i, report in enumerate(reports):
        print_table(report, header=i == 0)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
