"""``write_comparison``: several finished runs side by side in one ``compare.html``: KPIs with
absolute and relative differences against the first run, difference maps (link speed and
flow at the first run's peak interval, transformer peak loading) and overlaid time series."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from twin.report import plots
from twin.report.build import _r, grid_layers, projection
from twin.report.data import RunDir, clock
from twin.report.html import esc, headline, note, number, page, plot, section, write_atomic
from twin.report.svgmap import (
    Projection,
    SvgMap,
    diverging_bins,
    intervention_layer,
    line_paths,
    road_layer,
)
from twin.timefmt import format_duration

SECTIONS = [
    ("header", "Runs compared"),
    ("kpis", "Key figures side by side"),
    ("difference-maps", "Difference maps"),
    ("timeseries", "Time series overlaid"),
    ("interventions", "Interventions"),
]
TITLES = dict(SECTIONS)
EXTRA_HEADLINE = ["energy.peak_at_s", "energy.v_max_pu", "energy.trafo_hours_above_rating"]


def write_comparison(run_dirs: list[Path], out_dir: Path, labels: list[str] | None = None) -> Path:
    """Write ``out_dir/compare.html`` comparing ``run_dirs`` (differences against the first);
    ``labels`` name the runs (default: scenario names, made unique). Returns its path."""
    runs = [RunDir(p) for p in run_dirs]
    if not runs:
        raise ValueError("write_comparison needs at least one run directory")
    labels = list(labels) if labels is not None else run_labels(runs)
    if len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [
        header_section(runs, labels),
        kpi_section(runs, labels),
        difference_maps_section(runs, labels),
        section("timeseries", TITLES["timeseries"], plot(plots.overlay_figure(runs, labels), "")),
        interventions_section(runs, labels),
    ]
    title = "twin comparison: " + " vs ".join(labels)
    return write_atomic(out_dir / "compare.html", page(title, sections, SECTIONS[1:]))


def run_labels(runs: list[RunDir]) -> list[str]:
    """Scenario names; a name used twice gets its run directory's name, then a number."""
    names = [r.name for r in runs]
    out = [
        n if names.count(n) == 1 else f"{n} ({r.path.resolve().name})"
        for n, r in zip(names, runs, strict=True)
    ]
    seen: dict[str, int] = {}
    for k, n in enumerate(out):
        seen[n] = seen.get(n, 0) + 1
        if out.count(n) > 1:
            out[k] = f"{n} #{seen[n]}"
    return out


def header_section(runs: list[RunDir], labels: list[str]) -> str:
    rows = []
    for label, run in zip(labels, runs, strict=True):
        period = ""
        if run.period_s is not None:
            a, b = run.period_s
            period = f"{clock(a)} - {clock(b)} ({format_duration(b - a)})"
        rows.append(
            f"<tr><td><b>{esc(label)}</b></td><td>{esc(run.name)}</td>"
            f"<td>{esc(run.description)}</td><td>{esc(run.seed)}</td>"
            f"<td>{esc(period)}</td><td>{esc(run.twin_version)}</td>"
            f"<td>{esc(run.path.resolve().name)}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ["Run", "Scenario", "Description", "Seed", "Simulated", "twin", "Directory"]
    )
    periods = {run.period_s for run in runs if run.period_s is not None}
    warn = ""
    if len(periods) > 1:
        warn = (
            '<p class="warn">The runs simulate different periods: counts and totals '
            "(trips, vehicle-km, energy) differ for that reason too.</p>"
        )
    return (
        f'<section id="header"><h1>Comparison: {esc(" vs ".join(labels))}</h1>'
        f'<p class="lead">Differences are against the first run, '
        f"<b>{esc(labels[0])}</b>.</p>{warn}<table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def kpi_names(runs: list[RunDir]) -> list[str]:
    """Every KPI of any run: the first run's order, then ones only later runs have."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.kpis))
    return list(names)


def differences(base: float, value: float) -> tuple[float, float]:
    """(value - base, relative difference in % of |base|; NaN where base is 0 or missing)."""
    if not (math.isfinite(base) and math.isfinite(value)):
        return math.nan, math.nan
    diff = value - base
    return diff, (100.0 * diff / abs(base) if base != 0 else math.nan)


def _value_text(name: str, value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return clock(value) if name.endswith("_at_s") else number(value)


def _diff_text(name: str, diff: float, rel: float) -> tuple[str, str]:
    if not math.isfinite(diff):
        return "–", "–"
    if diff == 0:
        return "0", "0 %" if math.isfinite(rel) else "–"
    d = (
        f"{'+' if diff > 0 else '-'}{format_duration(abs(diff))}"
        if name.endswith("_at_s")
        else f"{'+' if diff > 0 else ''}{number(diff)}"
    )
    r = f"{rel:+,.1f} %" if math.isfinite(rel) and not name.endswith("_at_s") else "–"
    return d, r


def kpi_table(runs: list[RunDir], labels: list[str], names: list[str]) -> str:
    """One row per KPI: each run's value, then per later run the absolute and relative
    difference against the first; raw numbers in data-v / data-d / data-r attributes."""
    head = ["KPI", "Unit", *labels]
    for label in labels[1:]:
        head += [f"Δ {label}", f"Δ % {label}"]
    rows = []
    for name in names:
        unit = next((r.kpis[name][1] for r in runs if name in r.kpis), "")
        values = [r.kpi(name) for r in runs]
        cells = [f"<td>{esc(name)}</td><td>{esc('clock' if name.endswith('_at_s') else unit)}</td>"]
        cells += [
            f'<td class="num" data-v="{v!r}">{esc(_value_text(name, v))}</td>' for v in values
        ]
        for v in values[1:]:
            diff, rel = differences(values[0], v)
            dt, rt = _diff_text(name, diff, rel)
            cells.append(
                f'<td class="num" data-d="{diff!r}">{esc(dt)}</td>'
                f'<td class="num" data-r="{rel!r}">{esc(rt)}</td>'
            )
        rows.append(f'<tr data-kpi="{esc(name)}">{"".join(cells)}</tr>')
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def kpi_section(runs: list[RunDir], labels: list[str]) -> str:
    names = kpi_names(runs)
    if not names:
        return section("kpis", TITLES["kpis"], note("None of the runs has a KPI table."))
    top: dict[str, None] = {}
    for run in runs:
        top.update(dict.fromkeys(key for _, _, key in headline(run.kpis)))
    top.update(dict.fromkeys(k for k in EXTRA_HEADLINE if k in names))
    if "traffic.trips" in names:
        top = {"traffic.trips": None, **top}
    heads = [k for k in names if k in top]
    head_tab = kpi_table(runs, labels, heads).replace("<table>", '<table class="headline">', 1)
    return section(
        "kpis",
        TITLES["kpis"],
        f"{head_tab}<details><summary>All {len(names)} KPIs</summary>"
        f'<div class="all-kpis">{kpi_table(runs, labels, names)}</div></details>',
    )


# ------------------------------------------------------------------------------ maps


def same_roads(a: RunDir, b: RunDir) -> bool:
    na, nb = a.table("network"), b.table("network")
    if na is None or nb is None or len(na) != len(nb):
        return False
    cols = [c for c in ("link", "from_node", "to_node", "geometry_wkt") if c in na.columns]
    if not cols or not all(c in nb.columns for c in cols):
        return False
    return bool((na[cols].reset_index(drop=True) == nb[cols].reset_index(drop=True)).all().all())


def same_grid(a: RunDir, b: RunDir) -> bool:
    ta, tb = a.table("transformers"), b.table("transformers")
    if ta is None or tb is None or len(ta) != len(tb):
        return False
    cols = [c for c in ("transformer", "node") if c in ta.columns and c in tb.columns]
    return bool(cols) and bool(
        (ta[cols].reset_index(drop=True) == tb[cols].reset_index(drop=True)).all().all()
    )


SPEED_BINS = dataclasses.replace(
    diverging_bins(
        "change in mean speed (km/h; red: slower)",
        [1, 3, 6, 10, 20],
        "RdBu",
        "no traffic in either",
    ),
    extra_color="#222222",
    extra_label="traffic in one run only",
)
FLOW_BINS = diverging_bins(
    "change in flow (veh/h; orange: less traffic, purple: more)",
    [10, 50, 100, 200, 400],
    "PuOr",
    "no traffic in either",
)
LOAD_BINS = diverging_bins(
    "change in peak loading (percentage points; red: more loaded)",
    [1, 5, 10, 20, 40],
    "RdBu_r",
    "no data",
)

DIFF_FIELDS = [
    ("street", "", None),
    ("road class", "", None),
    ("speed A", "km/h", 1),
    ("speed B", "km/h", 1),
    ("Δ speed", "km/h", 1),
    ("flow A", "veh/h", 0),
    ("flow B", "veh/h", 0),
    ("Δ flow", "veh/h", 0),
    ("mean queue A", "veh", 1),
    ("mean queue B", "veh", 1),
    ("link", "", None),
]
SUB_DIFF_FIELDS = [
    ("substation", "", None),
    ("peak loading A", "%", 1),
    ("peak loading B", "%", 1),
    ("Δ peak loading", "pp", 1),
]
TRAFO_DIFF_FIELDS = [
    ("transformer", "", None),
    ("rating A", "kVA", 0),
    ("rating B", "kVA", 0),
    ("households", "", 0),
    ("peak loading A", "%", 1),
    ("peak loading B", "%", 1),
    ("Δ peak loading", "pp", 1),
]


def difference_maps_section(runs: list[RunDir], labels: list[str]) -> str:
    sid, title = "difference-maps", TITLES["difference-maps"]
    if len(runs) < 2:
        return section(sid, title, note("Only one run: nothing to difference."))
    base = runs[0]
    proj = projection(base)
    parts = []
    for k, (run, label) in enumerate(zip(runs[1:], labels[1:], strict=True), start=1):
        parts.append(f"<h3>{esc(label)} minus {esc(labels[0])}</h3>")
        parts.append(road_difference(base, run, proj, k, labels[0], label))
        parts.append(grid_difference(base, run, proj, k, labels[0], label))
    return section(sid, title, "".join(parts))


def road_difference(
    base: RunDir, run: RunDir, proj: Projection, k: int, label_a: str, label_b: str
) -> str:
    net = base.table("network")
    if net is None or run.table("network") is None:
        return note("No road network in one of the runs: no road difference map.")
    if not same_roads(base, run):
        return note(
            f"{label_b} runs on a different road network than {label_a}: no road difference map."
        )
    peak = base.peak_interval
    if peak is None or not any(tuple(iv[:2]) == tuple(peak[:2]) for iv in run.intervals):
        return note(
            "No per-link results for the first run's peak interval (same start and end) in "
            "both runs (different reporting intervals?): no road difference map."
        )
    a, b = base.link_state(peak[0]), run.link_state(peak[0])
    d = line_paths(net["geometry_wkt"].tolist(), proj)
    speed_a, speed_b = a["mean_speed_mps"].to_numpy(float), b["mean_speed_mps"].to_numpy(float)
    flow_a, flow_b = a["flow_vph"].to_numpy(float), b["flow_vph"].to_numpy(float)
    d_speed = (speed_b - speed_a) * 3.6
    none = np.isnan(flow_a) & np.isnan(flow_b)
    d_flow = np.where(none, np.nan, np.nan_to_num(flow_b) - np.nan_to_num(flow_a))
    names = net["name"].to_numpy() if "name" in net.columns else np.full(len(net), "")
    hw = (
        net["highway"].astype(str).to_numpy() if "highway" in net.columns else np.full(len(net), "")
    )
    qa, qb = a["mean_queue_veh"].to_numpy(float), b["mean_queue_veh"].to_numpy(float)
    rows = [
        [
            n if isinstance(n, str) and n else f"unnamed {h}",
            h,
            _r(speed_a[i] * 3.6, 1),
            _r(speed_b[i] * 3.6, 1),
            _r(d_speed[i], 1),
            _r(flow_a[i], 0),
            _r(flow_b[i], 0),
            _r(d_flow[i], 0),
            _r(qa[i], 1),
            _r(qb[i], 1),
            _r(link, 0),
        ]
        for i, (n, h, link) in enumerate(zip(names, hw, net["link"], strict=True))
    ]
    ivs = base.interventions + run.interventions
    out = [
        f"<p>Peak interval of {esc(label_a)}: <b>{clock(peak[0])} - {clock(peak[1])}</b>. "
        "Hover a street for both runs' figures.</p>"
    ]
    for kind, bins, values in (("speed", SPEED_BINS, d_speed), ("flow", FLOW_BINS, d_flow)):
        m = SvgMap(f"diff-{kind}-{k}", proj, f"Change in {kind}")
        m.css.append(bins.css(f"#{m.id}"))
        mag = np.nan_to_num(np.abs(values), nan=-1.0)
        idx = bins.index(values)
        if kind == "speed":
            idx[np.isnan(flow_a) != np.isnan(flow_b)] = -2
            mag[idx == -2] = np.inf
        m.layers.append(road_layer(net, d, idx, np.argsort(mag, kind="stable")))
        m.add_set("link", DIFF_FIELDS, rows)
        legends = [bins.legend()]
        if ivs:
            link_d = {int(x): d[i] for i, x in enumerate(net["link"].to_numpy())}
            m.layers.append(intervention_layer(proj, ivs, link_d))
            m.add_set(
                "iv",
                [
                    ("intervention", "", None),
                    ("kind", "", None),
                    ("from", "", None),
                    ("to", "", None),
                ],
                _iv_rows(ivs),
            )
            legends.append('<span><span class="swatch"></span>interventions</span>')
        out.append(m.html(legends))
    return "".join(out)


def _iv_rows(ivs: list[dict]) -> list[list]:
    return [
        [
            iv["label"] or iv["kind"],
            iv["kind"],
            clock(iv["start_s"]),
            clock(iv["end_s"], "end of run"),
        ]
        for iv in ivs
    ]


def grid_difference(
    base: RunDir, run: RunDir, proj: Projection, k: int, label_a: str, label_b: str
) -> str:
    ta, tb = base.table("transformers"), run.table("transformers")
    if ta is None or tb is None:
        return note(
            "No transformers in one of the runs (energy not simulated): no grid difference map."
        )
    if not same_grid(base, run):
        return note(f"{label_b} has a different grid than {label_a}: no grid difference map.")
    pa = ta["peak_loading_percent"].to_numpy(float)
    pb = tb["peak_loading_percent"].to_numpy(float)
    values = {"transformers": pb - pa}
    la, lb = base.table("grid_lines"), run.table("grid_lines")
    lines = la
    if (
        la is not None
        and lb is not None
        and len(la) == len(lb)
        and "branch" in la.columns
        and (la["branch"].to_numpy() == lb["branch"].to_numpy()).all()
    ):
        values["grid_lines"] = lb["peak_loading_percent"].to_numpy(float) - la[
            "peak_loading_percent"
        ].to_numpy(float)
    elif la is not None:
        values["grid_lines"] = np.full(len(la), np.nan)
    sa, sb = base.table("substations"), run.table("substations")
    subs = None
    if sa is not None and sb is not None and len(sa) == len(sb):
        subs = sa
        values["substations"] = sb["peak_loading_percent"].to_numpy(float) - sa[
            "peak_loading_percent"
        ].to_numpy(float)
    m = SvgMap(f"diff-grid-{k}", proj, "Change in peak loading")
    m.css += [LOAD_BINS.css(f"#{m.id}", "stroke", "q"), LOAD_BINS.css(f"#{m.id}", "fill", "f")]
    kva_a = ta["kva"].to_numpy(float) if "kva" in ta.columns else np.full(len(ta), np.nan)
    kva_b = tb["kva"].to_numpy(float) if "kva" in tb.columns else np.full(len(tb), np.nan)
    hh = ta["households"].to_numpy(float) if "households" in ta.columns else kva_a * np.nan
    m.add_set(
        "trafo",
        TRAFO_DIFF_FIELDS,
        [
            [
                f"transformer {t}",
                _r(kva_a[i], 0),
                _r(kva_b[i], 0),
                _r(hh[i], 0),
                _r(pa[i], 1),
                _r(pb[i], 1),
                _r(pb[i] - pa[i], 1),
            ]
            for i, t in enumerate(ta["transformer"])
        ],
    )
    grid_layers(m, LOAD_BINS, lines, ta, subs, values)
    if subs is not None and "sub" in m.sets:
        m.add_set(
            "sub",
            SUB_DIFF_FIELDS,
            [
                [f"substation {s}", _r(a, 1), _r(b, 1), _r(b - a, 1)]
                for s, a, b in zip(
                    sa["substation"],
                    sa["peak_loading_percent"],
                    sb["peak_loading_percent"],
                    strict=True,
                )
            ],
        )
    rise = np.nanmax(pb - pa) if len(pa) else math.nan
    text = (
        f"<p>Transformer peak loading of {esc(label_b)} minus {esc(label_a)}, in "
        f"percentage points: largest rise {rise:+.1f} pp; transformers above rating "
        f"{int((pa > 100).sum())} vs {int((pb > 100).sum())}.</p>"
    )
    return text + m.html([LOAD_BINS.legend()])


def interventions_section(runs: list[RunDir], labels: list[str]) -> str:
    rows = []
    for label, run in zip(labels, runs, strict=True):
        for iv in run.interventions:
            rows.append(
                f"<tr><td>{esc(label)}</td><td>{esc(iv['kind'])}</td>"
                f"<td>{esc(iv['label'])}</td><td>{esc(clock(iv['start_s']))}</td>"
                f"<td>{esc(clock(iv['end_s'], 'end of run'))}</td>"
                f'<td class="num">{len(iv["links"])}</td></tr>'
            )
    if not rows:
        return section(
            "interventions", TITLES["interventions"], note("None of the runs has interventions.")
        )
    head = "".join(f"<th>{h}</th>" for h in ["Run", "Kind", "What", "From", "To", "Links"])
    return section(
        "interventions",
        TITLES["interventions"],
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
    )
