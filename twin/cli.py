"""The ``twin`` command line: ``twin run``, ``twin compare``, ``twin map info|plot``,
``twin grid info|plot``, ``twin policies`` (and the research commands of :mod:`twin.cli_research`).

A scenario argument is a file or a shipped scenario's name (:mod:`twin.catalog`); ``--set
KEY=VALUE`` and ``--seed`` override its keys, validated as the file is. ``twin run`` checks and
creates the run directory before building anything, prints a one-screen summary (with a
warning when the network gridlocked) and writes the report and GeoPackage.

User mistakes (a missing or malformed file, a bad key, an invalid policy action) print one
line on stderr and exit with status 2; no traceback. Anything else is a fault inside twin:
its traceback, then a line saying so with a hint to report it, exit status 3.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from twin import progress
from twin.cli_inspect import (
    _grid_options,
    _map_options,
    cmd_grid_info,
    cmd_grid_plot,
    cmd_map_info,
    cmd_map_plot,
)
from twin.cli_research import cmd_evaluate, cmd_policies, cmd_sweep
from twin.cli_run import cmd_compare, cmd_run
from twin.errors import TwinError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


def _override_options(parser: argparse.ArgumentParser, what: str = "the scenario") -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help=f"override a key of {what}, e.g. population.ev_share=0.5 (repeatable)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: the scenario's)")


def _with_scenario_names(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """``command`` with its scenario arguments looked up by name (twin.catalog) first."""
    from twin.catalog import find_scenario

    def run(args: argparse.Namespace) -> int:
        if isinstance(args.scenario, list):
            args.scenario = [find_scenario(s) for s in args.scenario]
        elif args.scenario is not None:
            args.scenario = find_scenario(args.scenario)
        return command(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="A city digital twin.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and save its results")
    run.add_argument("scenario", help="scenario TOML file, or a shipped scenario's name")
    _override_options(run)
    run.add_argument("-o", "--out", type=Path, help="run directory (default runs/NAME-TIME)")
    run.add_argument("--plan", action="store_true", help="print the process plan first")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    run.add_argument("--all-kpis", action="store_true", help="print every KPI, not the headline")
    run.add_argument("--no-report", action="store_true", help="skip report.html and the GeoPackage")
    run.set_defaults(func=cmd_run)

    cmp = sub.add_parser(
        "compare",
        help="run scenarios with one seed (or read finished runs) and compare their KPIs",
    )
    cmp.add_argument(
        "inputs", nargs="+", help="scenario files or names, or finished run directories (2+)"
    )
    _override_options(cmp, what="every scenario input (not run directories)")
    cmp.add_argument(
        "-o", "--out", type=Path, help="comparison directory (default runs/compare-TIME)"
    )
    cmp.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    cmp.add_argument(
        "--no-report", action="store_true", help="no report.html or GeoPackage per run"
    )
    cmp.set_defaults(func=cmd_compare)

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
    ev.add_argument(
        "--scenario", action="append", help="scenario file or shipped name (repeatable)"
    )
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
    ev.set_defaults(func=_with_scenario_names(cmd_evaluate))

    sw = sub.add_parser(
        "sweep", help="run a scenario over parameters and seeds; one Parquet row per run"
    )
    sw.add_argument("scenario", nargs="?", help="scenario TOML file or shipped name")
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
    sw.set_defaults(func=_with_scenario_names(cmd_sweep))

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
    progress.show(not getattr(args, "no_progress", False))
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
    finally:
        progress.show(False)


if __name__ == "__main__":
    sys.exit(main())
