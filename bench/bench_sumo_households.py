"""Benchmark: the households' own trips of a map's morning, in twin and in SUMO side by side.

bench_sumo.py loads a map with random trips at set levels; this one runs the demand a user's
run has: the trips of the synthesised population (default settings, the map's regional
defaults: the households' driven legs and the through traffic) departing in ``--start`` +
``--window``, as independent trips (no chaining, no re-routing in either simulator), on the
same map. It tells the limits of twin's traffic
model from those of the network and the demand: if SUMO also jams on these trips, the map
cannot carry them. The SUMO side is bench_sumo.py's (netconvert with SUMO's recommended OSM
flags and twin's default speeds, static signals of twin's median Webster cycle, trip ends
matched to the same streets, default Krauss model, ``--time-to-teleport 300``); twin runs
:class:`twin.traffic.sim.TrafficSim` with its defaults (a vehicle halted 300 s is
teleported past, counted as gridlocked). Both stop at ``--cap`` after the start.

Recorded (bench/results/sumo-households-<map>.json): trips, completed, running and waiting at
the cap, teleports (SUMO) and gridlocked vehicles (twin), mean duration and time loss of the
trips both completed, and the wall time of each.

    NUMBA_NUM_THREADS=1 python bench/bench_sumo_households.py --map columbus \\
        [--start 06:00 --window 90min --cap 2h] [--sumo-routing duarouter]

On a big map give ``--sumo-routing duarouter``: SUMO then drives routes duarouter computed at
free flow before the run (twin's set-up routes at free flow too), where routing each trip as
it is inserted takes SUMO hours on Columbus.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_sumo import (
    convert,
    matched_trips,
    run_sumo,
    run_twin,
    sumo_cycle_s,
    sumo_home,
    sumo_version,
    warm_up,
    write_sumo_trips,
)

from twin.model import CityModel
from twin.results import machine, software_versions
from twin.scenario import load_scenario
from twin.timefmt import parse_clock_s, parse_duration_s
from twin.traffic.demand import Trips

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = {"baltimore": "baltimore.toml", "dortmund": "dortmund.toml"}  # else baltimore's


def household_trips(name: str, start: str, window: str, tmp: Path) -> tuple[CityModel, Trips]:
    """The trips of map ``name``'s population departing in the window, unchained."""
    base = ROOT / "scenarios" / SCENARIO.get(name, "baltimore.toml")
    offset = "" if name in SCENARIO else '\n[energy]\nenabled = false\nutc_offset_h = "auto"\n'
    path = tmp / f"{name}.toml"
    path.write_text(
        f'base = "{base.as_posix()}"\nname = "{name}-households"\n\n'
        f'[map]\nfile = "{(ROOT / "maps" / f"{name}.osm.bz2").as_posix()}"\n\n'
        f'[time]\nstart = "{start}"\nduration = "{window}"\n' + offset
    )
    model = CityModel(load_scenario(path), progress=False)
    t = model.population.trips
    return model, Trips(t.trip_id, t.origin_node, t.dest_node, t.depart_s)


def duarouter(home: Path, net_xml: Path, trips_xml: Path, tmp: Path) -> Path:
    """The trips routed at free flow by duarouter (contraction hierarchies), as a route file."""
    out = tmp / "routes.rou.xml"
    cmd = [
        str(home / "bin" / "duarouter"), "-n", str(net_xml), "--route-files", str(trips_xml),
        "-o", str(out), "--routing-algorithm", "CH", "--ignore-errors", "--no-warnings",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", default="columbus")
    ap.add_argument("--start", default="06:00")
    ap.add_argument("--window", default="90min")
    ap.add_argument("--cap", default="2h", help="simulated time after --start to stop at")
    ap.add_argument(
        "--sumo-routing",
        default="dijkstra",
        choices=("dijkstra", "astar", "CH", "duarouter"),
        help="SUMO's router for the trips it loads (dijkstra: SUMO's default); duarouter: "
        "route every trip at free flow before the run (CH), as twin's TrafficSim does; for "
        "big maps, where routing each trip at insertion takes SUMO hours",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    home = sumo_home()
    t_bench = time.perf_counter()
    start_s = parse_clock_s(args.start)
    cap_s = start_s + parse_duration_s(args.cap)
    with tempfile.TemporaryDirectory(prefix="bench-sumo-hh-") as tmp_name:
        tmp = Path(tmp_name)
        model, trips = household_trips(args.map, args.start, args.window, tmp)
        net = model.network
        print(f"{args.map}: {len(trips):,} household trips from {args.start} over {args.window}")
        cycle_s = sumo_cycle_s(net, "twin")
        sumo_net = convert(home, ROOT / "maps" / f"{args.map}.osm.bz2", tmp, "twin", cycle_s)
        same, ends = matched_trips(net, [sumo_net], trips)
        trips_xml = tmp / "trips.xml"
        n = write_sumo_trips(trips_xml, same, *ends["twin"])
        print(f"  matched to SUMO edges at both ends: {n:,} ({n / max(1, len(trips)):.1%})")
        warm_up(net, start_s)
        tw = run_twin(net, same, start_s, cap_s, block=60)
        print(f"  twin: {tw['completed']:,} completed, {tw['vehicles_gridlocked']:,} gridlocked,"
              f" {tw['wall_s']:.0f} s")  # fmt: skip
        routing_s = 0.0
        extra: tuple[str, ...] = ("--routing-algorithm", args.sumo_routing)
        if args.sumo_routing == "duarouter":  # free-flow routes first, as twin's TrafficSim
            t0 = time.perf_counter()
            trips_xml = duarouter(home, sumo_net.net_xml, trips_xml, tmp)
            routing_s, extra = time.perf_counter() - t0, ()
            print(f"  duarouter: {routing_s:.0f} s")
        su = run_sumo(
            home, sumo_net.net_xml, trips_xml, start_s, cap_s, tmp, capped_only=True,
            extra=extra,
        )  # fmt: skip
        su["routing_s"] = routing_s
        print(f"  SUMO: {su['completed']:,} completed, {su['teleports']:,} teleports,"
              f" {su['wall_s']:.0f} s")  # fmt: skip
    both = sorted(set(tw["per_trip"]) & set(su["per_trip"]))
    d_tw = np.array([tw["per_trip"][k][0] for k in both])
    d_su = np.array([su["per_trip"][k][0] for k in both])
    keys = ("trips", "completed", "running_at_end", "waiting_at_end", "mean_duration_s",
            "mean_time_loss_s", "mean_route_km", "wall_s")  # fmt: skip
    report = {
        "machine": machine(),
        "versions": {**software_versions(), "sumo": sumo_version(home)},
        "map": args.map,
        "settings": {
            "start": args.start,
            "window": args.window,
            "cap": args.cap,
            "household_trips": len(trips),
            "sumo_cycle_s": cycle_s,
            "sumo_routing": args.sumo_routing,
            "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
        },
        "twin": {**{k: tw[k] for k in keys}, "gridlocked": tw["vehicles_gridlocked"]},
        "sumo": {
            **{k: su[k] for k in keys},
            "routing_s": su["routing_s"],
            "teleports": su["teleports"],
            "teleports_jam": su["teleports_jam"],
            "teleports_yield": su["teleports_yield"],
            "teleports_wrong_lane": su["teleports_wrong_lane"],
        },
        "completed_in_both": len(both),
        "mean_duration_in_both_s": {"twin": float(d_tw.mean()), "sumo": float(d_su.mean())},
        "bench_wall_s": time.perf_counter() - t_bench,
    }
    out = args.out or ROOT / "bench" / "results" / f"sumo-households-{args.map}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("twin", "sumo", "mean_duration_in_both_s")}, indent=1))


if __name__ == "__main__":
    main()
