"""The ``twin`` command line: ``twin run``, ``twin map info|plot``, ``twin grid info|plot``,
``twin policies``.

User mistakes (a missing or malformed file, a bad key, an invalid policy action) print one
line on stderr and exit with status 2; no traceback. Anything else is a fault inside twin:
its traceback, then a line saying so with a hint to report it, exit status 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from datetime import datetime
from pathlib import Path

from twin.cli_research import cmd_evaluate, cmd_policies, cmd_sweep
from twin.errors import TwinError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


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
    from twin.network.junctions import junction_summary, junction_table

    net = _load_map(args)
    summary = net.summary()
    report = net.meta["report"]
    junctions = junction_summary(net)
    if args.json:
        data = {"summary": summary, "report": report, "junctions": junctions}
        if args.junctions:
            data["junction_list"] = junction_table(net)
        print(json.dumps(data, indent=2))
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
    _print_junctions(junctions)
    print(f"  bbox (lon/lat) W {w:.5f} S {s:.5f} E {e:.5f} N {n:.5f}")
    if args.junctions:
        _print_junction_list(junction_table(net))
    return 0


def _print_junctions(j: dict) -> None:
    """The junction-control lines of ``twin map info``."""
    by_class = ", ".join(f"{k} {v}" for k, v in j["priority_by_class"].items())
    print(
        f"  junctions: signal {j['signal']:,}, all-way stop {j['all_way_stop']}, "
        f"two-way stop/give way {j['two_way_stop_or_give_way']}, roundabout "
        f"{j['roundabout']}, priority {j['priority_unsigned']:,}"
        + (f" (by top road: {by_class})" if by_class else "")
    )
    print(
        f"    approaches with stop {j['approaches_stop']}, give way "
        f"{j['approaches_give_way']} ({j['roundabout_entries_give_way']} roundabout entries); "
        f"roundabout links {j['roundabout_links']}, roundabouts merged into one node "
        f"{j['roundabouts_merged']}"
    )
    print(
        f"    signals with protected lefts {j['signals_protected_left']}, permissive "
        f"{j['signals_permissive_left']}, no left {j['signals_no_left']}; links with OSM "
        f"turn lanes {j['links_with_osm_turn_lanes']}"
        + (
            " (not used: "
            + ", ".join(f"{v} {k}" for k, v in sorted(j["turn_lanes_fallback"].items()))
            + ")"
            if j["turn_lanes_fallback"]
            else ""
        )
    )
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(j["sign_nodes_in_file"].items())) or "none"
    print(
        f"    sign nodes in file: {kinds}; {j['sign_nodes_attached']} attached, "
        f"{j['sign_nodes_at_signals']} at signals (ignored), {j['sign_nodes_unattributed']} "
        f"on a junction with no attributable approach"
    )
    for reason, count in sorted(j["sign_nodes_dropped"].items()):
        print(f"    sign dropped: {count} {reason}")


def _print_junction_list(rows: list[dict]) -> None:
    """One line per controlled junction, then one per approach."""
    print(f"controlled junctions ({len(rows)}):")
    for row in rows:
        print(f"  node {row['osmid']} ({row['lat']:.6f}, {row['lon']:.6f}) {row['control']}")
        for a in row["approaches"]:
            extra = [a["highway"]]
            if a["sign"] != "none":
                extra.append(a["sign"])
            if a["roundabout"]:
                extra.append("circulating")
            if a["left"] not in ("not signalised", "no left"):
                extra.append(f"left {a['left']}")
            if a["osm_turn_lanes"]:
                extra.append("OSM turn lanes")
            print(f"    from way {a['way']}: " + ", ".join(extra))


def cmd_map_plot(args: argparse.Namespace) -> int:
    from twin.network.plot import plot_roadnet

    net = _load_map(args)
    out = plot_roadnet(net, args.output)
    print(f"wrote {out}")
    return 0


def _build_grid(args: argparse.Namespace):
    """(city grid, road network, power features) for a map file or a scenario file."""
    from twin.energy.osm_power import read_power_features
    from twin.energy.synthesis import GridConfig, synthesize_grid
    from twin.network.cache import load_roadnet
    from twin.population.config import PopulationConfig
    from twin.population.synthesis import synthesize

    if args.file.suffix == ".toml":
        from twin.scenario import load_scenario

        sc = load_scenario(args.file)
        map_file, seed = sc.map.file, sc.seed
        net = load_roadnet(map_file, sc.map.build_options())
        pop_cfg, grid_cfg = sc.population, sc.energy.grid
        if args.households is not None:
            pop_cfg = pop_cfg.model_copy(update={"households": args.households})
    else:
        map_file, seed = args.file, args.seed
        net = _load_map(args)
        pop_cfg = PopulationConfig(households=args.households or "auto")
        grid_cfg = GridConfig()
    data = synthesize(net, map_file, pop_cfg, seed)
    power = read_power_features(map_file, net.meta["crs"])
    return synthesize_grid(net, data.households, power, grid_cfg, seed=seed), net, power


def _grid_options(parser: argparse.ArgumentParser) -> None:
    _map_options(parser)
    parser.add_argument(
        "--households", type=int, default=None, help='households to connect (default "auto")'
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (map files; default 0)")


def cmd_grid_info(args: argparse.Namespace) -> int:
    from twin.energy.plot import grid_summary

    if args.households is not None and args.households < 1:
        raise TwinError("--households must be >= 1")
    city, _, _ = _build_grid(args)
    summary = grid_summary(city)
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
        return 0
    s = summary
    print(f"{args.file}")
    print(
        f"  buses {s['buses']:,}   branches {s['branches']:,} ({s['lines']:,} lines)   "
        f"voltage levels {', '.join(f'{v:g}' for v in s['voltage_levels_kv'])} kV"
    )
    print(
        f"  substations {s['substations']} ({s['substations_mapped']} from mapped features), "
        f"HV/MV transformers {s['hv_mv_transformers_by_mva']} (MVA: units)"
    )
    print(
        f"  MV/LV transformers {s['mv_lv_transformers']:,} (kVA: units "
        f"{s['mv_lv_transformers_by_kva']}), {s['installed_mv_lv_mva']:.1f} MVA installed, "
        f"{s['mv_lv_transformers_anchored']} at mapped transformers/kiosks"
    )
    print(
        f"  cables: MV {s['mv_km']:.1f} km, LV {s['lv_km']:.1f} km (of which spurs "
        f"{s.get('lv_spur_km', 0.0):.1f} km), house connections "
        f"{s['service_km']:.1f} km; feeders MV {s['mv_feeders']} (longest "
        f"{s['max_mv_feeder_m']:,.0f} m), LV {s['lv_feeders']} (longest "
        f"{s['max_lv_feeder_m']:,.0f} m)"
    )
    print(
        f"  households {s['households_connected']:,} connected, "
        f"{s['households_per_transformer_mean']:.0f} per transformer on average "
        f"(max {s['households_per_transformer_max']}); design load {s['design_load_mw']:.1f} MW"
    )
    return 0


def cmd_grid_plot(args: argparse.Namespace) -> int:
    from twin.energy.plot import plot_grid

    city, net, power = _build_grid(args)
    out = plot_grid(city, net, args.output, power=power)
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
    if args.all_kpis:
        print(results.summary())
    else:
        print(results.headline())
        print(f"  ({len(results.kpis)} KPIs in kpis.csv; --all-kpis prints them)")
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
    run.add_argument("--all-kpis", action="store_true", help="print every KPI, not the headline")
    run.set_defaults(func=cmd_run)

    map_ = sub.add_parser("map", help="inspect an OpenStreetMap file")
    map_sub = map_.add_subparsers(dest="map_command", required=True)
    info = map_sub.add_parser("info", help="summarise the road network of a map file")
    _map_options(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument(
        "--junctions",
        action="store_true",
        help="list every controlled junction: control, sign per approach, left-turn control",
    )
    info.set_defaults(func=cmd_map_info)
    plot = map_sub.add_parser("plot", help="draw the road network with signals marked")
    _map_options(plot)
    plot.add_argument("-o", "--output", type=Path, default=Path("map.png"), help="image file")
    plot.set_defaults(func=cmd_map_plot)

    grid = sub.add_parser("grid", help="the distribution grid synthesised for a map")
    grid_sub = grid.add_subparsers(dest="grid_command", required=True)
    ginfo = grid_sub.add_parser(
        "info", help="summarise the grid of a map file (or of a scenario file's map)"
    )
    _grid_options(ginfo)
    ginfo.add_argument("--json", action="store_true", help="print JSON")
    ginfo.set_defaults(func=cmd_grid_info)
    gplot = grid_sub.add_parser("plot", help="draw the grid over the roads")
    _grid_options(gplot)
    gplot.add_argument("-o", "--output", type=Path, default=Path("grid.png"), help="image file")
    gplot.set_defaults(func=cmd_grid_plot)

    ev = sub.add_parser(
        "evaluate",
        help="run policies and baselines on the same scenarios and seeds; compare; gate",
        description="Exit 0 when every --require holds, 1 when one fails, 2 for bad input.",
    )
    ev.add_argument("--policy", action="append", help="policy under test (repeatable)")
    ev.add_argument("--baseline", action="append", help="baseline to compare with (repeatable)")
    ev.add_argument("--scenario", action="append", type=Path, help="scenario file (repeatable)")
    ev.add_argument("--seeds", type=int, help="seeds per scenario (default 5)")
    ev.add_argument("--first-seed", type=int, help="first seed (default: the scenario's)")
    ev.add_argument(
        "--require",
        action="append",
        help='threshold, e.g. "mean_delay_s <= 0.9 * fixed_time" (repeatable)',
    )
    ev.add_argument("--config", type=Path, help="TOML file with an [evaluate] table")
    ev.add_argument("-o", "--out", type=Path, help="report directory")
    ev.add_argument("--jobs", type=int, help="parallel runs (default: the machine's cores)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)

    sw = sub.add_parser(
        "sweep", help="run a scenario over parameters and seeds; one Parquet row per run"
    )
    sw.add_argument("scenario", type=Path, nargs="?", help="scenario TOML file")
    sw.add_argument(
        "--param",
        action="append",
        help="KEY=LOW:HIGH:N, KEY=V1,V2,... or KEY=V, any scenario key (repeatable)",
    )
    sw.add_argument("--seeds", type=int, help="seeds per parameter set (default 1)")
    sw.add_argument("--design", choices=["grid", "lhs"], help="default grid")
    sw.add_argument("--samples", type=int, help="points of an lhs design")
    sw.add_argument("--config", type=Path, help="TOML file with a [sweep] table")
    sw.add_argument("-o", "--out", type=Path, help="sweep directory (default runs/sweep-TIME)")
    sw.add_argument("--resume", action="store_true", help="skip the runs already done")
    sw.add_argument("--jobs", type=int, help="parallel runs (default: the machine's cores)")
    sw.add_argument("--dask", help="a Dask scheduler address or scheduler file")
    sw.add_argument("--keep-runs", action="store_true", help="also save each run's directory")
    sw.add_argument(
        "--plot", action="store_true", help="plot each KPI against each parameter (PNG, HTML)"
    )
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)

    pol = sub.add_parser("policies", help="list the signal and charging policies, or their spec")
    pol.add_argument("--kind", choices=["signals", "charging"], help="only this kind")
    pol.add_argument(
        "--spec", action="store_true", help="print the observation spec (Markdown) instead"
    )
    pol.set_defaults(func=cmd_policies)
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
    except Exception:  # a fault inside twin, not in the user's input
        traceback.print_exc()
        print(
            "twin: internal error: this is a bug in twin, not in your input; please report it "
            "with the traceback above and the command you ran",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
