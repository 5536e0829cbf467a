"""``twin run`` and ``twin compare``: scenario arguments with ``--set`` / ``--seed``, the run
directory checked and reserved before anything is built, the summary and its gridlock
warning, and the report and GeoPackage written after the results."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin import progress
from twin.errors import ScenarioError, TwinError

if TYPE_CHECKING:
    from twin.results import Results
    from twin.scenario import Scenario


def parse_sets(texts: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as a dict of dotted keys; values are read as TOML (``0.5``,
    ``true``, ``[0.3, 0.9]``, ``"x"``), as :mod:`twin.sweep` reads ``--param`` values, and
    anything else (``1h``, ``07:00``, a policy name) as a string."""
    from twin.sweep import SweepError, _value

    out: dict[str, Any] = {}
    for text in texts or []:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise TwinError(
                f"--set {text!r}: expected KEY=VALUE, e.g. --set demand.demand_scale=0.5"
            )
        try:
            out[key] = _value(value, text)
        except SweepError:
            out[key] = value.strip()  # validated as the key's type by the scenario schema
    return out


def apply_overrides(scenario: Scenario, sets: dict[str, Any], seed: int | None = None) -> Scenario:
    """``scenario`` with the ``--set`` values and ``--seed``, validated as a scenario file is;
    ScenarioError naming the option, the key and what was expected."""
    overrides = dict(sets)
    if seed is not None:
        overrides["seed"] = seed
    if not overrides:
        return scenario
    try:
        return scenario.with_overrides(overrides)
    except ScenarioError as exc:
        lines = [_override_error(line, sets, seed) for line in str(exc).splitlines()]
        raise ScenarioError("\n".join(lines)) from None


def _override_error(line: str, sets: dict[str, Any], seed: int | None) -> str:
    """One line of a with_overrides error in terms of the option that caused it."""
    text = line.removeprefix("overrides: ")
    key, _, message = text.partition(": ")
    if key == "seed" and seed is not None and "seed" not in sets:
        return f"--seed {seed}: {message}"
    for given in sorted(sets, key=len, reverse=True):
        if key == given or key.startswith(given + ".") or given.startswith(key + "."):
            return f"--set {given}={_toml_text(sets[given])}: {text}"
    return f"--set: {text}"


def _toml_text(value: Any) -> str:
    from twin.timefmt import show_value

    if isinstance(value, list):
        return "[" + ", ".join(_toml_text(v) for v in value) + "]"
    return show_value(value)


def load_scenario_arg(name_or_path: str | Path, sets: dict[str, Any] | None = None,
                      seed: int | None = None) -> Scenario:  # fmt: skip
    """A scenario by file or shipped name (:func:`twin.catalog.find_scenario`), overridden."""
    from twin.catalog import find_scenario
    from twin.scenario import load_scenario

    return apply_overrides(load_scenario(find_scenario(name_or_path)), sets or {}, seed)


def check_out_dir(path: Path) -> None:
    """TwinError unless a run can be saved at ``path``: not a file, not a non-empty
    directory, and its nearest existing parent a writable directory."""
    if path.is_file() or (path.exists() and not path.is_dir()):
        raise TwinError(f"{path}: output path is an existing file, not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise TwinError(f"{path}: output directory already exists and is not empty")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise TwinError(f"{path}: cannot create it, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TwinError(f"{path}: cannot create it, {parent} is not writable")


def reserve_out_dir(out: Path | None, name: str, parent: Path = Path("runs")) -> Path:
    """The run directory, checked and created (empty) before anything is built: ``out``, or
    ``parent/NAME-YYYYmmdd-HHMMSS`` with ``-2``, ``-3``... added when a parallel run took the
    name (``mkdir`` is atomic, so two runs never get the same one)."""
    if out is not None:
        check_out_dir(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TwinError(f"{out}: cannot create the output directory ({exc.strerror})") from None
        return out
    stem = f"{_safe_name(name)}-{datetime.now():%Y%m%d-%H%M%S}"
    check_out_dir(parent / stem)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TwinError(f"{parent}: cannot create the runs directory ({exc.strerror})") from None
    for k in range(1, 10_000):
        candidate = parent / (stem if k == 1 else f"{stem}-{k}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise TwinError(
                f"{candidate}: cannot create the run directory ({exc.strerror})"
            ) from None
    raise TwinError(f"{parent}: no free run directory name for {stem}")


def _safe_name(name: str) -> str:
    """A scenario name usable as one path component."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name).strip(".") or "run"


def _release(out: Path) -> None:
    """Remove a reserved run directory a failed run left empty."""
    with contextlib.suppress(OSError):  # not empty or already gone: keep what is there
        out.rmdir()


def write_extras(run_dir: Path) -> list[tuple[str, Path]]:
    """The run's HTML report and GeoPackage; a failure is a one-line warning on stderr (the
    run's results are saved already)."""
    from twin import gis, report

    written = []
    for label, module, attr in (
        ("report", report, "write_report"),
        ("GIS layers", gis, "write_geopackage"),
    ):
        progress.status(f"writing the {label}...")
        try:
            written.append((label, Path(getattr(module, attr)(run_dir))))
        except Exception as exc:  # the results are saved; never lose them to a report
            print(f"twin: warning: {label} not written ({type(exc).__name__}: {exc}); the "
                  f"results are saved in {run_dir}", file=sys.stderr)  # fmt: skip
    return written


def _simulate(
    scenario: Scenario, out: Path, args: argparse.Namespace, *, release: bool = True
) -> tuple[Results, Path]:
    """Build and run ``scenario`` and save it in the reserved, empty ``out`` (removed on
    failure when ``release``)."""
    from twin.model import CityModel

    show = not args.no_progress
    try:
        model = CityModel(scenario, progress=show)
        if getattr(args, "plan", False):
            print(model.plan())
        results = model.run(progress=show)
        results.info["seed"] = scenario.seed
        if args.set:
            results.info["overrides"] = parse_sets(args.set)
        return results, results.save(out)
    except BaseException:
        if release:
            _release(out)
        raise


def cmd_run(args: argparse.Namespace) -> int:
    from twin.catalog import find_scenario
    from twin.traffic.jams import gridlock_warning_with_streets

    path = find_scenario(args.scenario)
    scenario = load_scenario_arg(path, parse_sets(args.set), args.seed)
    existed = args.out is not None and args.out.is_dir()
    out = reserve_out_dir(args.out, scenario.name)  # before anything is built
    results, run_dir = _simulate(scenario, out, args, release=not existed)
    extras = [] if args.no_report else write_extras(run_dir)
    settings = "".join(f", --set {s}" for s in args.set or [])
    print(f"scenario {scenario.name} ({path}), seed {scenario.seed}{settings}")
    if args.all_kpis:
        print(results.summary())
    else:
        print(results.headline())
        print(f"  ({len(results.kpis)} KPIs in kpis.csv; --all-kpis prints them)")
    if "region" in results.info:  # which regional defaults the map's place gave
        print(f"region {results.info['region']['summary']}")
    warning = gridlock_warning_with_streets(
        results.kpi_dict(), results.tables.get("links"), results.tables.get("network")
    )
    if warning:
        print(warning)
    print(f"results in {run_dir}")
    report = run_dir / "report.html"
    if report.exists():
        print(f"report: {report}")
    for label, written in extras:
        if label != "report" and written.exists():
            print(f"{label}: {written}")
    return 0


# -- twin compare --------------------------------------------------------------------------------


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "run.json").is_file() and (path / "scenario.toml").is_file()


def _unique(labels: list[str]) -> list[str]:
    """``labels`` with repeats numbered: a, a-2, a-3."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    while len(set(out)) < len(out):  # "a-2" given as a label too: number again
        out = _unique(out)
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """Run what is missing with one seed, write the comparison report, print the KPIs."""
    from twin.results import HEADLINE_KPIS, gridlock_warning, load_kpis

    if len(args.inputs) < 2:
        raise TwinError("twin compare: give at least two scenarios or run directories")
    sets = parse_sets(args.set)
    inputs: list[tuple[str, Any]] = []  # ("run", run dir) or ("scenario", Scenario)
    for text in args.inputs:
        path = Path(text)
        if _is_run_dir(path):
            inputs.append(("run", path))
        elif path.is_dir():
            raise TwinError(f"{path}: not a run directory (no run.json and scenario.toml)")
        else:
            try:
                inputs.append(("scenario", load_scenario_arg(text, sets)))
            except ScenarioError as exc:
                raise ScenarioError(f"{text}: {exc}" if sets else str(exc)) from None
    seeds = [_seed_of(kind, item) for kind, item in inputs]
    seed = args.seed if args.seed is not None else seeds[0]
    if args.seed is None and len(set(seeds)) > 1:
        listed = ", ".join(map(str, seeds))
        print(f"twin: warning: the inputs have different seeds ({listed}); running them all "
              f"with the first's, {seed} (--seed sets another)", file=sys.stderr)  # fmt: skip
    for (kind, item), s in zip(inputs, seeds, strict=True):
        if kind == "run" and s != seed:
            print(f"twin: warning: {item} ran with seed {s}, not {seed}; its differences "
                  "include the randomness of another draw", file=sys.stderr)  # fmt: skip
    inputs = [(k, apply_overrides(i, {}, seed) if k == "scenario" else i) for k, i in inputs]
    labels = _unique([_label_of(kind, item) for kind, item in inputs])
    out = reserve_out_dir(args.out, "compare")
    run_dirs: list[Path] = []
    todo = sum(kind == "scenario" for kind, _ in inputs)
    done = 0
    for (kind, item), label in zip(inputs, labels, strict=True):
        if kind == "run":
            run_dirs.append(item)
            continue
        done += 1
        progress.status(f"running {label} ({done} of {todo}, seed {seed})...")
        run_out = out / _safe_name(label)
        run_out.mkdir()
        _, run_dir = _simulate(item, run_out, args)
        if not args.no_report:
            write_extras(run_dir)
        run_dirs.append(run_dir)
    kpis = [load_kpis(d) for d in run_dirs]
    spans = {round(k.get("run.simulated_s", float("nan"))) for k in kpis}
    if len(spans) > 1:
        print("twin: warning: the runs simulate periods of different length; counts and "
              "totals differ for that reason too", file=sys.stderr)  # fmt: skip
    print(f"compared with seed {seed}; differences against {labels[0]}")
    print(compare_table(kpis, labels, HEADLINE_KPIS))
    for label, k in zip(labels, kpis, strict=True):
        if gridlock_warning(k):
            print(f"WARNING: {label} gridlocked (twin run prints the details); compare with care")
    for label, run_dir in zip(labels, run_dirs, strict=True):
        print(f"{label}: {run_dir}")
    from twin import report as reports

    progress.status("writing the comparison report...")
    try:
        report = reports.write_comparison(run_dirs, out, labels)
    except Exception as exc:  # the runs are saved: say so, do not lose them
        print(f"twin: warning: comparison report not written ({type(exc).__name__}: {exc}); "
              f"the runs are saved in {out}", file=sys.stderr)  # fmt: skip
        return 0
    print(f"comparison report: {report}")
    return 0


def _seed_of(kind: str, item: Any) -> int:
    if kind == "scenario":
        return item.seed
    data = tomllib.loads((item / "scenario.toml").read_text())
    return int(data.get("seed", 0))


def _label_of(kind: str, item: Any) -> str:
    if kind == "scenario":
        return item.name
    data = tomllib.loads((item / "scenario.toml").read_text())
    return str(data.get("name") or item.name)


#: decimals shown per unit of the headline KPIs
_DECIMALS = {"": 0, "min": 1, "MW": 2, "%": 0, "pu": 3, "kWh": 0, "km": 0}


def compare_table(
    kpis: list[dict[str, float]], labels: list[str], rows: list[tuple[str, str, str, float]]
) -> str:
    """The headline KPIs of each run side by side; every column after the first also shows
    the absolute and relative difference against the first."""
    from twin.timefmt import MAX_CLOCK_S, format_clock

    def cell(value: float, unit: str) -> str:
        if value != value:  # NaN
            return "n/a"
        if unit == "clock":
            return format_clock(min(max(value, 0.0), MAX_CLOCK_S))
        return f"{value:,.{_DECIMALS.get(unit, 2)}f}"

    def diff(value: float, ref: float, unit: str) -> str:
        if value != value or ref != ref:
            return ""
        if unit == "clock":
            return f" ({(value - ref) / 60:+,.0f} min)"
        decimals = _DECIMALS.get(unit, 2)
        rel = f", {100 * (value - ref) / abs(ref):+.1f} %" if ref else ""
        return f" ({value - ref:+,.{decimals}f}{rel})"

    table = [["", *labels]]
    for key, label, unit, factor in rows:
        if not any(key in k for k in kpis):
            continue
        scale = 1.0 if unit == "clock" else factor
        values = [k.get(key, float("nan")) * scale for k in kpis]
        head = f"{label} ({unit})" if unit and unit != "clock" else label
        first = values[0]
        table.append([head, cell(first, unit), *(cell(v, unit) + diff(v, first, unit)
                                                 for v in values[1:])])  # fmt: skip
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    return "\n".join(
        "  ".join(text.ljust(w) if c == 0 else text.rjust(w) for c, (text, w) in
                  enumerate(zip(row, widths, strict=True))).rstrip()
        for row in table
    )  # fmt: skip
