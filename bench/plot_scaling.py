"""How a whole weekday's cost grows with the city: a log-log plot from bench_anycity's runs.

Reads ``bench/results/anycity.json`` (``python bench/bench_anycity.py``) and plots, per map,
the process wall time and peak memory against households and against trips, with the
least-squares slope of log(cost) on log(size) (1 = linear growth). Writes
``bench/results/scaling.png`` and prints the slopes.

    python bench/plot_scaling.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log(y) on log(x)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> None:
    runs = json.loads((ROOT / "bench" / "results" / "anycity.json").read_text())["runs"]
    names = [r["map"] for r in runs]
    size = {
        "households": np.array([r["households"] for r in runs]),
        "trips due": np.array([r["trips_due"] for r in runs]),
    }
    cost = {
        "process wall, s": np.array([r["process_wall_s"] for r in runs]),
        "peak memory, MiB": np.array([r["peak_rss_mib"] for r in runs]),
    }
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for i, (cname, c) in enumerate(cost.items()):
        for j, (sname, x) in enumerate(size.items()):
            ax = axes[i, j]
            ax.loglog(x, c, "o")
            for xi, ci, n in zip(x, c, names, strict=True):
                ax.annotate(n, (xi, ci), fontsize=7, xytext=(3, 3), textcoords="offset points")
            k = slope(x, c)
            ax.set_title(f"{cname} vs {sname}: slope {k:.2f}", fontsize=9)
            ax.set_xlabel(sname)
            ax.set_ylabel(cname)
            ax.grid(True, which="both", alpha=0.3)
            print(f"{cname} against {sname}: log-log slope {k:.2f}")
    fig.suptitle("A full weekday per map (bench/bench_anycity.py)")
    fig.tight_layout()
    out = ROOT / "bench" / "results" / "scaling.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
