"""Benchmark: ``twin run`` of a whole Baltimore day and of a what-if, report included.

Each scenario runs 00:00-24:00 (households' trips, the grid every minute) as a user runs it:
``twin run`` in a fresh process, writing the run directory, ``report.html`` and
``results.gpkg``. Measured: the process's wall time and peak memory (max RSS of the child),
and, from its files, the simulation loop's wall time (``run.wall_s``) and the sizes. A
warm-up run of 15 minutes first compiles the kernels and caches the network (excluded).
Results go to bench/results/whatif.json.

    python bench/bench_whatif.py [--duration 24h] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
from _twin_process import twin_run

from twin.results import machine, software_versions

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("baltimore", "baltimore-closure")


def _day_file(tmp: Path, name: str, duration: str) -> Path:
    path = tmp / f"{name}-day.toml"
    base = (ROOT / "scenarios" / f"{name}.toml").as_posix()
    path.write_text(
        f'base = "{base}"\nname = "{name}-day"\n\n[time]\nstart = "00:00"\n'
        f'duration = "{duration}"\nreport_interval = "15min"\n'
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", default="24h")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "whatif.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warm = tmp / "warm.toml"
        warm.write_text(f'base = "{(ROOT / "scenarios" / "baltimore-short.toml").as_posix()}"\n')
        twin_run(warm, tmp / "warm-run")
        for name in SCENARIOS:
            run_dir = tmp / f"run-{name}"
            wall, peak_mib, _ = twin_run(_day_file(tmp, name, args.duration), run_dir)
            kpis = pd.read_parquet(run_dir / "kpis.parquet").set_index("kpi")["value"]
            sizes = {
                f: (run_dir / f).stat().st_size / 1e6
                for f in ("report.html", "results.gpkg")
                if (run_dir / f).exists()
            }
            rows.append(
                {
                    "scenario": name,
                    "duration": args.duration,
                    "process_wall_s": wall,
                    "peak_rss_mib": peak_mib,
                    "loop_wall_s": float(kpis.get("run.wall_s", float("nan"))),
                    "trips": float(kpis.get("traffic.trips", float("nan"))),
                    "trips_completed": float(kpis.get("traffic.trips_completed", float("nan"))),
                    "energy_ticks": float(kpis.get("energy.ticks", float("nan"))),
                    "file_mb": sizes,
                }
            )
            print(json.dumps(rows[-1]))
    report = {
        "benchmark": "twin run of a whole day, with report and GeoPackage",
        "command": f"python bench/bench_whatif.py --duration {args.duration}",
        "note": "process_wall_s includes start-up, network cache load, population and grid "
        "synthesis, the run, saving, report.html and results.gpkg",
        "runs": rows,
        "machine": machine(),
        "software": software_versions(),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
