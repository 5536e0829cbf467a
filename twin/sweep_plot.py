"""Plots of a sweep: each KPI against each parameter, mean and 95 % band over seeds.

One PNG per KPI (a panel per swept parameter; a line per combination of the other parameters,
up to MAX_LINES, else pooled), and ``sweep.html``: one page with every figure inline and the
table of means, for a report or a browser.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_KPIS = (
    "traffic.mean_time_loss_s",
    "traffic.mean_duration_s",
    "traffic.trips_completed",
    "energy.peak_kw",
    "energy.trafo_loading_max_percent",
    "energy.ev_unmet_departure_kwh",
)
MAX_LINES = 6
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def _band(values: pd.Series) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t interval over seeds."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) < 2:
        return (float(v.mean()) if len(v) else np.nan), 0.0
    t = T95.get(len(v) - 1, 1.96)
    return float(v.mean()), float(t * v.std(ddof=1) / np.sqrt(len(v)))


def plot_sweep(table: pd.DataFrame, out: Path, kpis: list[str] | None = None) -> list[Path]:
    """Write ``plot-<kpi>.png`` files and ``sweep.html`` into ``out``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    params = [c for c in table.columns if c.startswith("param.")]
    kpis = [k for k in (kpis or DEFAULT_KPIS) if k in ok.columns]
    written, figures = [], []
    for kpi in kpis:
        fig, axes = plt.subplots(1, max(len(params), 1), figsize=(4.5 * max(len(params), 1), 3.6),
                                 squeeze=False)  # fmt: skip
        for ax, param in zip(axes[0], params, strict=False):
            others = [p for p in params if p != param]
            groups = ok.groupby(others, dropna=False) if others else [((), ok)]
            groups = list(groups)
            if len(groups) > MAX_LINES:
                groups = [(("all",), ok)]
            for key, g in groups:
                stats = [(x, *_band(gg[kpi])) for x, gg in g.groupby(param)]
                xs = [s[0] for s in stats]
                mean = np.array([s[1] for s in stats])
                half = np.array([s[2] for s in stats])
                label = ", ".join(f"{o[6:]}={k}" for o, k in zip(others, np.atleast_1d(key),
                                                                   strict=False))  # fmt: skip
                numeric = all(isinstance(x, int | float) for x in xs)
                pos = xs if numeric else np.arange(len(xs))
                ax.plot(pos, mean, marker="o", label=label or None)
                ax.fill_between(pos, mean - half, mean + half, alpha=0.2)
                if not numeric:
                    ax.set_xticks(pos, [str(x) for x in xs])
            ax.set_xlabel(param[6:])
            ax.set_ylabel(kpi)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[1]:
                ax.legend(fontsize=7)
        fig.suptitle(f"{kpi}: mean over seeds, 95 % band")
        fig.tight_layout()
        path = out / f"plot-{kpi.replace('.', '_')}.png"
        fig.savefig(path, dpi=110)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        figures.append((kpi, base64.b64encode(buf.getvalue()).decode()))
        plt.close(fig)
        written.append(path)
    means = ok.groupby(params)[kpis].mean().reset_index() if params else ok[kpis].mean()
    failed = len(table) - len(ok)
    page = [
        "<!doctype html><meta charset='utf-8'><title>twin sweep</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>",
        f"<h1>twin sweep</h1><p>{len(table)} runs, {failed} failed.</p>",
    ]
    page += [f"<h2>{html.escape(k)}</h2><img alt='{html.escape(k)}' "
             f"src='data:image/png;base64,{b64}'>" for k, b64 in figures]  # fmt: skip
    page.append("<h2>Means over seeds</h2>")
    page.append(pd.DataFrame(means).to_html(index=False, float_format=lambda v: f"{v:,.4g}"))
    (out / "sweep.html").write_text("\n".join(page), encoding="utf-8")
    written.append(out / "sweep.html")
    return written
