"""``twin map info|plot`` and ``twin grid info|plot``: what a map file holds and the grid
synthesised for it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from twin.errors import TwinError


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
    from twin.region import map_centre, resolve

    net = _load_map(args)
    summary = net.summary()
    report = net.meta["report"]
    junctions = junction_summary(net)
    region = resolve("auto", *map_centre(net))  # the regional defaults a scenario would get
    if args.json:
        data = {"summary": summary, "report": report, "junctions": junctions}
        data["region"] = region.as_dict()
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
        + (
            f" ({report['scc_cut_ends']} where a carriageway cut by the extract left: gateways)"
            if report.get("scc_cut_ends")
            else ""
        )
    )
    _print_junctions(junctions)
    print(f"  bbox (lon/lat) W {w:.5f} S {s:.5f} E {e:.5f} N {n:.5f}")
    print(f"  region {region.describe()}")
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
    """(city grid, road network, power features, region) for a map file or a scenario file,
    with the regional defaults of the map's country applied as a run applies them (the
    household sizes and cars shape the population the grid is sized for)."""
    from twin.network.cache import load_roadnet
    from twin.region import apply_region
    from twin.scenario import Scenario, load_scenario
    from twin.synth_cache import cached_grid, cached_population, cached_power_features

    if not args.file.exists() and args.file.suffix in ("", ".toml"):  # a scenario's name
        from twin.catalog import find_scenario

        args.file = find_scenario(args.file)
    if args.file.suffix == ".toml":
        sc = load_scenario(args.file)
        net = load_roadnet(sc.map.file, sc.map.build_options())
        if args.households is not None:
            sc = sc.with_overrides({"population.households": args.households})
    else:
        net = _load_map(args)
        population = {"households": args.households or "auto"}
        sc = Scenario.from_dict(
            {"seed": args.seed, "map": {"file": str(args.file)}, "population": population}
        )
    sc, region = apply_region(sc, net)
    map_file, seed, pop_cfg, grid_cfg = sc.map.file, sc.seed, sc.population, sc.energy.grid
    use_cache = False if args.no_cache else None  # else unless TWIN_NO_CACHE=1
    data = cached_population(net, map_file, pop_cfg, seed, use_cache=use_cache)
    city = cached_grid(net, data.households, map_file, grid_cfg, seed, use_cache=use_cache)
    power = cached_power_features(map_file, net.meta["crs"], use_cache=use_cache)
    return city, net, power, region


def _grid_options(parser: argparse.ArgumentParser) -> None:
    _map_options(parser)
    parser.add_argument(
        "--households", type=int, default=None, help='households to connect (default "auto")'
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (map files; default 0)")


def cmd_grid_info(args: argparse.Namespace) -> int:
    from twin.energy.summary import grid_summary

    if args.households is not None and args.households < 1:
        raise TwinError("--households must be >= 1")
    city, _, _, region = _build_grid(args)
    summary = grid_summary(city)
    if args.json:
        print(json.dumps({**summary, "region": region.as_dict()}, indent=2, default=float))
        return 0
    s = summary
    print(f"{args.file}")
    print(
        f"  buses {s['buses']:,}   branches {s['branches']:,} ({s['lines']:,} lines)   "
        f"voltage levels {', '.join(f'{v:g}' for v in s['voltage_levels_kv'])} kV"
    )
    idle = s.get("substations_idle", 0)
    idle_text = f", {idle} idle: no transformer in their area" if idle else ""
    print(
        f"  substations {s['substations']} ({s['substations_mapped']} from mapped "
        f"features{idle_text}), HV/MV transformers {s['hv_mv_transformers_by_mva']} (MVA: units)"
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
    print(f"  region {region.summary()}")
    return 0


def cmd_grid_plot(args: argparse.Namespace) -> int:
    from twin.energy.plot import plot_grid

    city, net, power, _ = _build_grid(args)
    out = plot_grid(city, net, args.output, power=power)
    print(f"wrote {out}")
    return 0


# -- scenarios, overrides and run directories ----------------------------------------------------
