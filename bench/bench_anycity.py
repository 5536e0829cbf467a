"""Benchmark: a full weekday (00:00-24:00) on every shipped map and two clipped extracts.

Each map runs as a user runs it: ``twin run`` in a fresh process, default settings (the
scenario of its city where one is shipped, else baltimore.toml with the map swapped and the
regional defaults of the map's place), households' trips, the grid every minute, results
written, report excluded (``--no-report``). The clipped extracts are cut here from shipped
maps (``twin.network.clip.clip_extract``, like ``osmium extract --strategy simple``): a dense
European centre (Dortmund, 40 % of its extent) and a US downtown (Baltimore, 35 %).

Recorded per map: households, trips due and completed (share), trips that should have
finished by 24:00 and did, mean speed, gridlocked vehicles (share of those that set out),
peak household load per household, lowest voltage, power-flow snapshots that did not
converge, idle substations, the region preset, wall time and peak memory. Targets (issue
15): every map completes >= 95 % of its due trips with < 1 % gridlocked; every grid
synthesises and solves.

    python bench/bench_anycity.py [--maps baltimore dortmund ...] [--duration 24h] [--keep DIR]

Rows of maps not named in ``--maps`` are kept from an existing output file, so the maps can
be run one at a time (columbus, the largest, takes longest).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import tomllib
from pathlib import Path

import pandas as pd
from _twin_process import twin_run

from twin.network.clip import clip_extract
from twin.results import derived_kpis, machine, run_end_s, software_versions

ROOT = Path(__file__).resolve().parents[1]
MAPS = ROOT / "maps"
# map name -> (source map, shipped scenario it runs with, clip fraction or None)
CITIES: dict[str, tuple[str, str, float | None]] = {
    "baltimore": ("baltimore.osm.bz2", "baltimore.toml", None),
    "dortmund": ("dortmund.osm.bz2", "dortmund.toml", None),
    "columbus": ("columbus.osm.bz2", "baltimore.toml", None),
    "west-oakland": ("west-oakland.osm.bz2", "baltimore.toml", None),
    "aguascalientes": ("aguascalientes.osm.bz2", "baltimore.toml", None),
    "dortmund-centre-clip": ("dortmund.osm.bz2", "dortmund.toml", 0.4),
    "baltimore-downtown-clip": ("baltimore.osm.bz2", "baltimore.toml", 0.35),
}


def _scenario(tmp: Path, name: str, duration: str) -> Path:
    """A day scenario for map ``name`` in ``tmp`` (its map cut first if it is a clip)."""
    source, base, fraction = CITIES[name]
    map_path = MAPS / source
    if fraction is not None:
        map_path = tmp / f"{name}.osm"
        clip_extract(MAPS / source, map_path, fraction)
    path = tmp / f"{name}.toml"
    # baltimore.toml's explicit UTC offset (EDT) is Baltimore's: other maps take their own
    offset = "" if source.startswith(base.split(".")[0]) else '\n[energy]\nutc_offset_h = "auto"\n'
    path.write_text(
        f'base = "{(ROOT / "scenarios" / base).as_posix()}"\nname = "{name}-day"\n\n'
        f'[map]\nfile = "{map_path.as_posix()}"\n\n'
        f'[time]\nstart = "00:00"\nduration = "{duration}"\nreport_interval = "15min"\n' + offset
    )
    return path


def _row(name: str, run_dir: Path, wall: float, peak_mib: float, text: str) -> dict:
    kpis = pd.read_parquet(run_dir / "kpis.parquet").set_index("kpi")["value"].to_dict()
    scenario = tomllib.loads((run_dir / "scenario.toml").read_text())
    trips = pd.read_parquet(run_dir / "trips.parquet")
    k = derived_kpis(kpis, trips, run_end_s(scenario, kpis))
    due = k.get("traffic.trips_due", float("nan"))
    done = k["traffic.trips_completed"]
    set_out = done + k["traffic.vehicles_running"]
    households = k["population.households"]
    region = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("region ")), "")
    return {
        "map": name,
        "region": region,
        "households": households,
        "trips_due": due,
        "trips_completed": done,
        "completed_share": done / due if due else float("nan"),
        "should_have_finished_share": (
            k.get("traffic.trips_should_have_finished_completed", float("nan"))
            / max(1.0, k.get("traffic.trips_should_have_finished", float("nan")))
        ),
        "mean_speed_kmh": k["traffic.mean_speed_kmh"],
        "mean_trip_min": k["traffic.mean_duration_s"] / 60.0,
        "gridlocked": k["traffic.vehicles_gridlocked"],
        "gridlocked_share": k["traffic.vehicles_gridlocked"] / set_out if set_out else 0.0,
        "peak_kw_per_household": k["energy.households_peak_kw"] / households,
        "v_min_pu": k["energy.v_min_pu"],
        "power_flow_not_converged": k.get("energy.power_flow_not_converged", float("nan")),
        "substations_idle": k.get("grid.substations_idle", float("nan")),
        "process_wall_s": wall,
        "loop_wall_s": k["run.wall_s"],
        "peak_rss_mib": peak_mib,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", nargs="+", default=list(CITIES), choices=list(CITIES))
    ap.add_argument("--duration", default="24h")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "anycity.json")
    ap.add_argument("--keep", type=Path, help="keep each map's run directory here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warm = tmp / "warm.toml"  # compiles the kernels (excluded)
        warm.write_text(f'base = "{(ROOT / "scenarios" / "baltimore-short.toml").as_posix()}"\n')
        twin_run(warm, tmp / "warm-run", "--no-report")
        for name in args.maps:
            scenario = _scenario(tmp, name, args.duration)
            run_dir = (args.keep or tmp) / f"run-{name}"
            rows.append(_row(name, run_dir, *twin_run(scenario, run_dir, "--no-report")))
            print(json.dumps(rows[-1], default=float), flush=True)
    if args.out.exists():  # keep the rows of maps not run this time (one map at a time works)
        kept = json.loads(args.out.read_text()).get("runs", [])
        rows += [r for r in kept if r["map"] not in args.maps and r["map"] in CITIES]
        rows.sort(key=lambda r: list(CITIES).index(r["map"]))
    report = {
        "benchmark": "a full weekday on every shipped map and two clipped extracts",
        "command": "python bench/bench_anycity.py [--maps ...]"
        + ("" if args.duration == "24h" else f" --duration {args.duration}"),
        "targets": "completed_share >= 0.95 and gridlocked_share < 0.01 on every map",
        "runs": rows,
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
