"""The ``twin`` command line: ``twin run``, ``twin map info``, ``twin map plot``.

User mistakes (a missing or malformed file, a bad key) print one line on stderr and exit
with status 2; no traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path

from twin.errors import TwinError

EXIT_USER_ERROR = 2


def _map_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="OSM file: .osm, .osm.bz2, .osm.gz or .osm.pbf")
    parser.add_argument(
        "--consolidate-m",
        type=float,
        default=10.0,
        help="merge junction nodes closer than 2x this (m; default 10, 0 = off)",
    )
    parser.add_argument(
        "--signal-snap-m",
        type=float,
        default=30.0,
        help="farthest a signal node may sit from its junction (m; default 30)",
    )
    parser.add_argument(
        "--signal-join-m",
        type=float,
        default=15.0,
        help="merge radius of signalised junctions (m; default 15)",
    )
    parser.add_argument(
        "--keep-all",
        action="store_true",
        help="keep every component, not just the largest strongly connected one",
    )
    parser.add_argument("--no-cache", action="store_true", help="rebuild, ignoring the cache")


def _load_map(args: argparse.Namespace):
    from twin.network.cache import load_roadnet
    from twin.network.road import BuildOptions

    if min(args.consolidate_m, args.signal_snap_m, args.signal_join_m) < 0:
        raise TwinError("--consolidate-m, --signal-snap-m and --signal-join-m must be >= 0")
    options = BuildOptions(
        consolidate_m=args.consolidate_m,
        signal_snap_m=args.signal_snap_m,
        signal_join_m=args.signal_join_m,
        keep_largest_scc=not args.keep_all,
    )
    return load_roadnet(args.file, options, use_cache=not args.no_cache, progress=True)


def cmd_map_info(args: argparse.Namespace) -> int:
    net = _load_map(args)
    summary = net.summary()
    report = net.meta["report"]
    if args.json:
        print(json.dumps({"summary": summary, "report": report}, indent=2))
        return 0
    w, s, e, n = summary["bbox_lonlat"]
    print(f"{summary['file']}")
    print(
        f"  nodes {summary['nodes']:,}   links {summary['links']:,}   "
        f"movements {summary['movements']:,}"
    )
    print(f"  road {summary['road_km']:,.1f} km   lanes {summary['lane_km']:,.1f} lane-km")
    print(
        f"  signalised intersections {summary['signalised_intersections']:,} "
        f"({summary['signal_phases']} phases); signal nodes in file "
        f"{summary['signal_nodes_in_file']}: {summary['signal_nodes_attached']} attached, "
        f"{summary['signal_nodes_dropped']} dropped"
    )
    for reason, count in sorted(report["signals_dropped"].items()):
        print(f"    dropped: {count} {reason}")
    print(
        f"  ways: {report['highway_ways']:,} highway, {report['drivable_ways']:,} drivable, "
        f"{report['ways_repaired']} repaired (clipped), {report['ways_dropped_missing_nodes']} "
        f"dropped (no nodes in file)"
    )
    excluded = sorted(report["excluded_ways"].items(), key=lambda kv: -kv[1])
    if excluded:
        print("    not drivable: " + ", ".join(f"{k} {v}" for k, v in excluded))
    print(
        f"  graph: {report['raw_nodes']:,} raw nodes -> {report['simplified_nodes']:,} "
        f"simplified -> {report['consolidated_nodes']:,} consolidated; routing component "
        f"dropped {report['scc_nodes_dropped']} nodes, {report['scc_edges_dropped']} links"
    )
    print(f"  bbox (lon/lat) W {w:.5f} S {s:.5f} E {e:.5f} N {n:.5f}")
    return 0


def cmd_map_plot(args: argparse.Namespace) -> int:
    from twin.network.plot import plot_roadnet

    net = _load_map(args)
    out = plot_roadnet(net, args.output)
    print(f"wrote {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from twin.model import CityModel
    from twin.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    out = args.out or Path("runs") / f"{scenario.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if out.exists() and any(out.iterdir()):
        raise TwinError(f"{out}: output directory already exists and is not empty")
    model = CityModel(scenario, progress=not args.no_progress)
    if args.plan:
        print(model.plan())
    results = model.run(progress=not args.no_progress)
    run_dir = results.save(out)
    print(f"scenario {scenario.name} ({scenario.source})")
    print(results.summary())
    print(f"results in {run_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="A city digital twin.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario file and save its results")
    run.add_argument("scenario", type=Path, help="scenario TOML file")
    run.add_argument("-o", "--out", type=Path, help="run directory (default runs/NAME-TIME)")
    run.add_argument("--plan", action="store_true", help="print the process plan first")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    map_ = sub.add_parser("map", help="inspect an OpenStreetMap file")
    map_sub = map_.add_subparsers(dest="map_command", required=True)
    info = map_sub.add_parser("info", help="summarise the road network of a map file")
    _map_options(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_map_info)
    plot = map_sub.add_parser("plot", help="draw the road network with signals marked")
    _map_options(plot)
    plot.add_argument("-o", "--output", type=Path, default=Path("map.png"), help="image file")
    plot.set_defaults(func=cmd_map_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except TwinError as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `twin map info ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
