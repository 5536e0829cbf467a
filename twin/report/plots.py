"""The report's figures: matplotlib (object API, no pyplot state) rendered to inline SVG with
text kept as text, ids made unique per figure, clock times on every time axis."""

from __future__ import annotations

import functools
import io
import itertools
import math
import re
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from twin.report.data import RunDir

_COUNTER = itertools.count()
P = ParamSpec("P")
R = TypeVar("R")
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "twin-report",
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "font.family": "sans-serif",
}
ANSI_BAND_PU = (0.95, 1.05)


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Draw (and render) the figure under the report's matplotlib style."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper


def figure(n_cols: int = 1, n_rows: int = 1, height_in: float = 3.3) -> tuple[Figure, list]:
    fig = Figure(figsize=(11.5, height_in * n_rows), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False).ravel().tolist()


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element for inline HTML: no XML prolog, DOCTYPE, metadata
    or namespace declarations; every id prefixed so that figures on one page never clash."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    prefix = f"f{next(_COUNTER)}-"
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if ids:
        pattern = re.compile(
            r'(\bid="|href="#|url\(#)(' + "|".join(map(re.escape, ids)) + r')(?=["\)])'
        )
        svg = pattern.sub(lambda m: m[1] + prefix + m[2], svg)
    return svg


def hhmm(seconds: float, _pos: int | None = None) -> str:
    s = round(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def clock_axis(ax: Axes, t0_s: float, t1_s: float) -> None:
    """Clock times (HH:MM) on the x axis between t0_s and t1_s, at a round step."""
    span = max(t1_s - t0_s, 60.0)
    steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600]
    step = next((s for s in steps if span / s <= 8), 21600)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(hhmm))
    ax.set_xlim(t0_s, t1_s)
    ax.set_xlabel("time of day")


def _period(run: RunDir, t: Sequence[float]) -> tuple[float, float]:
    if run.period_s is not None:
        return run.period_s
    t = np.asarray(t, float)
    return float(np.nanmin(t)), float(np.nanmax(t))


def _steps(speed: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """x, y of a post-step line over the intervals of ``RunDir.speed_series``."""
    x = np.append(speed["t_start_s"].to_numpy(float), speed["time_s"].iloc[-1])
    y = speed["speed_kmh"].to_numpy(float)
    return x, np.append(y, y[-1])


@styled
def traffic_figure(run: RunDir) -> str | None:
    """Vehicles on the network, mean network speed and completed trips over time."""
    ts = run.table("timeseries")
    if ts is None or "time_s" not in ts.columns or not len(ts):
        return None
    ts = ts.sort_values("time_s")
    t = ts["time_s"].to_numpy(float)
    t0, t1 = _period(run, t)
    fig, (a, b, c) = figure(3)
    if "vehicles_running" in ts.columns:
        a.plot(t, ts["vehicles_running"], color="#1f77b4", lw=2, label="driving")
    if "vehicles_waiting" in ts.columns:
        a.plot(t, ts["vehicles_waiting"], color="#ff7f0e", lw=1.5, label="waiting to enter")
    a.set_title("Vehicles on the network")
    a.set_ylabel("vehicles")
    a.legend(loc="upper left")
    speed = run.speed_series
    if speed is not None and len(speed):
        b.step(*_steps(speed), where="post", color="#2ca02c", lw=2)
        b.set_ylim(bottom=0)
    b.set_title("Mean network speed (per interval)")
    b.set_ylabel("km/h")
    if "trips_completed" in ts.columns:
        done = ts["trips_completed"].to_numpy(float)
        c.plot(t, done, color="#9467bd", lw=2, label="cumulative")
        per = np.diff(done, prepend=done[0])
        if len(t) > 1:
            width = np.diff(t, prepend=t[0] - (t[1] - t[0]))
            c2 = c.twinx()
            c2.bar(
                t - width / 2,
                per,
                width=width * 0.9,
                color="#9467bd",
                alpha=0.25,
                label="per interval",
            )
            c2.set_ylabel("trips per interval")
            c2.grid(False)
            c2.spines["right"].set_visible(True)
            c.set_zorder(c2.get_zorder() + 1)
            c.patch.set_visible(False)
        c.legend(loc="upper left")
    c.set_title("Completed trips")
    c.set_ylabel("trips (cumulative)")
    for ax in (a, b, c):
        clock_axis(ax, t0, t1)
    return to_svg(fig)


@styled
def substation_figure(run: RunDir) -> str | None:
    """Load at the substations over time, split into base, heating/cooling, EVs and PV."""
    e = run.table("energy")
    if e is None or "t_s" not in e.columns or not len(e):
        return None
    e = e.sort_values("t_s")
    t = e["t_s"].to_numpy(float)
    fig, (ax,) = figure(1, height_in=3.6)
    parts = [
        ("base_kw", "household base load", "#8c9fb7"),
        ("hvac_kw", "heating / cooling", "#f28e2b"),
        ("ev_kw", "EV charging", "#59a14f"),
    ]
    have = [(e[c].to_numpy(float) / 1000, lab, col) for c, lab, col in parts if c in e.columns]
    if have:
        ax.stackplot(
            t,
            *[h[0] for h in have],
            labels=[h[1] for h in have],
            colors=[h[2] for h in have],
            alpha=0.85,
        )
    if "pv_kw" in e.columns and e["pv_kw"].abs().max() > 0:
        ax.fill_between(
            t,
            0,
            -e["pv_kw"].to_numpy(float) / 1000,
            color="#edc948",
            alpha=0.9,
            label="rooftop PV (negative)",
        )
    if "substation_p_kw" in e.columns:
        ax.plot(
            t,
            e["substation_p_kw"] / 1000,
            color="black",
            lw=1.6,
            label="substation import (incl. losses)",
        )
    peak = run.kpi("energy.peak_kw")
    peak_at = run.kpi("energy.peak_at_s")
    if math.isfinite(peak) and math.isfinite(peak_at):
        ax.plot(
            [peak_at],
            [peak / 1000],
            "v",
            color="#d62728",
            ms=8,
            clip_on=False,
            label=f"peak {peak / 1000:,.2f} MW at {hhmm(peak_at)}",
        )
    ax.set_title("Substation load over the day")
    ax.set_ylabel("MW")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    clock_axis(ax, *_period(run, t))
    return to_svg(fig)


@styled
def voltage_figure(run: RunDir) -> str | None:
    """Lowest and highest voltage anywhere on the grid each minute, with the ANSI band."""
    e = run.table("energy")
    if e is None or not {"t_s", "v_min_pu", "v_max_pu"} <= set(e.columns) or not len(e):
        return None
    e = e.sort_values("t_s")
    t = e["t_s"].to_numpy(float)
    lo, hi = e["v_min_pu"].to_numpy(float), e["v_max_pu"].to_numpy(float)
    fig, (ax,) = figure(1, height_in=3.2)
    ax.axhspan(
        *ANSI_BAND_PU, color="#2ca02c", alpha=0.08, label="ANSI C84.1 range A (0.95-1.05 pu)"
    )
    for v in ANSI_BAND_PU:
        ax.axhline(v, color="#2ca02c", lw=1, ls="--")
    ax.fill_between(t, lo, hi, color="#1f77b4", alpha=0.25, label="range of bus voltages")
    ax.plot(t, lo, color="#1f77b4", lw=1.6, label="lowest")
    ax.plot(t, hi, color="#17becf", lw=1.2, label="highest")
    ymin = min(np.nanmin(lo), ANSI_BAND_PU[0]) - 0.01
    ymax = max(np.nanmax(hi), ANSI_BAND_PU[1]) + 0.01
    ax.set_ylim(ymin, ymax)
    ax.set_title("Voltage range over the day")
    ax.set_ylabel("voltage (pu)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    clock_axis(ax, *_period(run, t))
    return to_svg(fig)


def busiest_transformers(run: RunDir, n: int = 5) -> pd.DataFrame | None:
    tr = run.table("transformers")
    if tr is None or "peak_loading_percent" not in tr.columns or not len(tr):
        return None
    return tr.sort_values("peak_loading_percent", ascending=False).head(n)


@styled
def transformer_figure(run: RunDir) -> str | None:
    """Loading of the five busiest transformers per reporting interval, against rating."""
    top = busiest_transformers(run)
    loading = run.table("transformer_loading")
    if top is None or loading is None or not len(loading):
        return None
    fig, (ax,) = figure(1, height_in=3.6)
    t_all = loading["t_start_s"].to_numpy(float)
    t0, t1 = _period(run, t_all)
    e = run.table("energy")
    if e is not None and {"t_s", "trafo_loading_max_percent"} <= set(e.columns):
        ax.plot(
            e["t_s"],
            e["trafo_loading_max_percent"],
            color="0.65",
            lw=0.9,
            label="highest of all transformers (each minute)",
        )
    palette = ["#d62728", "#ff7f0e", "#9467bd", "#1f77b4", "#8c564b"]
    for color, row in zip(palette, top.itertuples(index=False), strict=False):
        sel = loading[loading["transformer"] == row.transformer].sort_values("t_start_s")
        if not len(sel):
            continue
        ts = np.append(sel["t_start_s"].to_numpy(float), t1)
        vs = sel["peak_loading_percent"].to_numpy(float)
        vs = np.append(vs, vs[-1])
        label = f"transformer {row.transformer}: {getattr(row, 'kva', math.nan):,.0f} kVA"
        if hasattr(row, "households"):
            label += f", {row.households} households"
        ax.step(ts, vs, where="post", color=color, lw=1.8, label=label)
    ax.axhline(100, color="black", lw=1.2, ls="--", label="rating (100 %)")
    ax.set_ylim(0, max(110.0, float(np.nanmax(top["peak_loading_percent"])) * 1.08))
    ax.set_title("Busiest transformers: peak loading per reporting interval")
    ax.set_ylabel("loading (% of rating)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    clock_axis(ax, t0, t1)
    return to_svg(fig)


@styled
def ev_figure(run: RunDir) -> str | None:
    """EV charging power over time and the EVs' energy delivered and unmet."""
    e, evs = run.table("energy"), run.table("evs")
    if e is None or "ev_kw" not in e.columns or evs is None or not len(evs):
        return None
    e = e.sort_values("t_s")
    fig, (a, b) = figure(2, height_in=3.3)
    scale, unit = (1000.0, "MW") if e["ev_kw"].max() >= 1000 else (1.0, "kW")
    a.fill_between(e["t_s"], 0, e["ev_kw"] / scale, color="#59a14f", alpha=0.6)
    a.plot(e["t_s"], e["ev_kw"] / scale, color="#2f6b2a", lw=1.4)
    a.set_title("EV charging power (all EVs)")
    a.set_ylabel(unit)
    clock_axis(a, *_period(run, e["t_s"]))
    names = [
        ("energy_kwh", "charged", "#59a14f"),
        ("unmet_departure_kwh", "unmet at departure", "#d62728"),
        ("unmet_drive_kwh", "unmet while driving", "#8c564b"),
    ]
    names = [n for n in names if n[0] in evs.columns]
    totals = [float(evs[c].sum()) for c, _, _ in names]
    counts = [int((evs[c] > 1e-6).sum()) for c, _, _ in names]
    bars = b.barh([lab for _, lab, _ in names], totals, color=[c for _, _, c in names])
    for bar, total, count in zip(bars, totals, counts, strict=True):
        b.annotate(
            f" {total:,.0f} kWh ({count:,} EVs)",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            va="center",
            fontsize=8.5,
        )
    b.set_xlim(0, max([*totals, 1.0]) * 1.45)
    b.invert_yaxis()
    b.set_title(f"EV energy, {len(evs):,} EVs")
    b.set_xlabel("kWh")
    return to_svg(fig)


@styled
def overlay_figure(runs: Sequence[RunDir], labels: Sequence[str]) -> str:
    """The time series of several runs overlaid: vehicles running, mean speed, substation
    load, lowest voltage."""
    fig, axes = figure(2, 2, height_in=3.0)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    panels = [
        ("Vehicles on the network", "vehicles"),
        ("Mean network speed", "km/h"),
        ("Substation load", "MW"),
        ("Lowest voltage on the grid", "voltage (pu)"),
    ]
    drawn = [False] * 4
    t_lo, t_hi = math.inf, -math.inf
    for k, (run, label) in enumerate(zip(runs, labels, strict=True)):
        color, ls = palette[k % len(palette)], ["-", "--", ":", "-."][k % 4]
        if run.period_s is not None:
            t_lo, t_hi = min(t_lo, run.period_s[0]), max(t_hi, run.period_s[1])
        ts, sp, e = run.table("timeseries"), run.speed_series, run.table("energy")
        if ts is not None and {"time_s", "vehicles_running"} <= set(ts.columns):
            axes[0].plot(
                ts["time_s"], ts["vehicles_running"], color=color, ls=ls, lw=1.8, label=label
            )
            drawn[0] = True
        if sp is not None and len(sp):
            axes[1].step(*_steps(sp), where="post", color=color, ls=ls, lw=1.8, label=label)
            drawn[1] = True
        if e is not None and {"t_s", "substation_p_kw"} <= set(e.columns):
            axes[2].plot(
                e["t_s"], e["substation_p_kw"] / 1000, color=color, ls=ls, lw=1.5, label=label
            )
            drawn[2] = True
        if e is not None and {"t_s", "v_min_pu"} <= set(e.columns):
            axes[3].plot(e["t_s"], e["v_min_pu"], color=color, ls=ls, lw=1.5, label=label)
            drawn[3] = True
    if drawn[3]:
        axes[3].axhline(ANSI_BAND_PU[0], color="#2ca02c", lw=1, ls="--", label="ANSI 0.95 pu")
    for ax, (title, unit), ok in zip(axes, panels, drawn, strict=True):
        ax.set_title(title)
        ax.set_ylabel(unit)
        if ok:
            ax.legend(loc="best")
        else:
            ax.text(
                0.5,
                0.5,
                "not simulated in these runs",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.4",
            )
        if math.isfinite(t_lo):
            clock_axis(ax, t_lo, t_hi)
    return to_svg(fig)
