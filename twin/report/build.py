"""``write_report``: a run directory's ``report.html``, one self-contained page."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from twin.report import plots
from twin.report.data import RunDir, clock
from twin.report.html import (
    esc,
    headline,
    kpi_text,
    note,
    number,
    page,
    plot,
    section,
    table,
    write_atomic,
)
from twin.report.svgmap import (
    Bins,
    Projection,
    SvgMap,
    circles,
    congestion_bins,
    grouped_lines,
    intervention_layer,
    line_paths,
    loading_bins,
    road_layer,
    wkt_coords,
)
from twin.timefmt import format_duration

SECTIONS = [
    ("header", "Run"),
    ("kpis", "Key figures"),
    ("road-map", "Road congestion map"),
    ("traffic", "Traffic over time"),
    ("grid-map", "Grid loading map"),
    ("transformers", "Busiest transformers"),
    ("substation", "Substation load"),
    ("voltage", "Voltage range"),
    ("ev", "EV charging"),
    ("interventions", "Interventions"),
]
TITLES = dict(SECTIONS)

LINK_FIELDS = [
    ("street", "", None),
    ("road class", "", None),
    ("lanes", "", 0),
    ("length", "m", 0),
    ("free-flow speed (limit)", "km/h", 0),
    ("mean speed", "km/h", 1),
    ("speed / free flow", "%", 0),
    ("flow", "veh/h", 0),
    ("mean queue", "veh", 1),
    ("max queue", "veh", 0),
    ("link", "", None),
    ("OSM way", "", None),
]
TRAFO_FIELDS = [
    ("transformer", "", None),
    ("rating", "kVA", 0),
    ("households", "", 0),
    ("substation", "", None),
    ("peak loading", "%", 1),
    ("peak", "kVA", 0),
    ("minutes above rating", "min", 0),
]
SUB_FIELDS = [
    ("substation", "", None),
    ("rating", "MVA", 1),
    ("peak loading", "%", 1),
    ("peak", "MVA", 2),
    ("minutes above rating", "min", 0),
]
IV_FIELDS = [("intervention", "", None), ("kind", "", None), ("from", "", None), ("to", "", None)]


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the run directory's files alone; return its path."""
    run = RunDir(run_dir)
    proj = projection(run)
    sections = [
        header_section(run),
        kpi_section(run),
        road_map_section(run, proj),
        traffic_section(run),
        grid_map_section(run, proj),
        transformers_section(run),
        substation_section(run),
        voltage_section(run),
        ev_section(run),
        interventions_section(run),
    ]
    text = page(f"twin report: {run.name}", sections, SECTIONS[1:])
    return write_atomic(run.path / "report.html", text)


def projection(run: RunDir) -> Projection:
    """One projection for every map of a run: the extent of its roads and grid."""
    lon, lat = [], []
    for name in ("network", "grid_lines"):
        df = run.table(name)
        if df is not None and "geometry_wkt" in df.columns:
            coords, _ = wkt_coords(df["geometry_wkt"].tolist())
            lon.append(coords[:, 0])
            lat.append(coords[:, 1])
    for name in ("transformers", "substations"):
        df = run.table(name)
        if df is not None and {"lon", "lat"} <= set(df.columns):
            lon.append(df["lon"].to_numpy(float))
            lat.append(df["lat"].to_numpy(float))
    if not lon:
        return Projection.fit(np.array([]), np.array([]))
    return Projection.fit(np.concatenate(lon), np.concatenate(lat))


# ------------------------------------------------------------------------------ sections


def header_section(run: RunDir) -> str:
    rows = [("Scenario", run.name), ("Seed", run.seed)]
    if run.period_s is not None:
        a, b = run.period_s
        rows.append(("Simulated", f"{clock(a)} - {clock(b)} ({format_duration(b - a)})"))
    rows.append(("twin version", run.twin_version))
    finished = run.info.get("finished_at")
    if finished:
        rows.append(("Finished", str(finished).replace("T", " ")))
    wall = run.kpi("run.wall_s")
    if math.isfinite(wall):
        rows.append(("Run time", f"{wall:,.1f} s"))
    machine = run.info.get("machine", {})
    if machine:
        rows.append(
            ("Machine", f"{machine.get('platform', '')}, {machine.get('cpu_count', '?')} CPUs")
        )
    rows.append(("Run directory", run.path.resolve().name))
    meta = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    desc = f'<p class="lead">{esc(run.description)}</p>' if run.description else ""
    scen = (
        (
            f"<details><summary>Scenario file (resolved)</summary><pre>"
            f"{esc(run.scenario_text)}</pre></details>"
        )
        if run.scenario_text
        else ""
    )
    return (
        f'<section id="header"><h1>{esc(run.name)}</h1>{desc}'
        f'<dl class="meta">{meta}</dl>{warnings(run)}{scen}</section>'
    )


def warnings(run: RunDir) -> str:
    from twin.results import load_kpis
    from twin.traffic.jams import gridlock_warning_with_streets

    out = []
    try:  # the same warning as twin run's summary
        kpis = load_kpis(run.path)
        text = gridlock_warning_with_streets(kpis, run.table("links"), run.table("network"))
    except (OSError, ValueError, KeyError):
        text = None
    if text:
        out.append(" ".join(line.strip() for line in text.splitlines()))
    over = run.kpi("energy.trafos_overloaded")
    if over > 0:
        out.append(f"{over:,.0f} transformers loaded above their rating.")
    return "".join(f'<p class="warn">{esc(w)}</p>' for w in out)


def kpi_section(run: RunDir) -> str:
    if not run.kpis:
        return section("kpis", TITLES["kpis"], note("No KPI table in this run directory."))
    rows = [(name, kpi_text(name, v, u), u) for name, (v, u) in run.kpis.items()]
    full = table(["KPI", "Value", "Unit"], rows, num_cols=[1])
    return section(
        "kpis",
        TITLES["kpis"],
        f"{_headline_table(run)}<details><summary>All {len(rows)} KPIs</summary>{full}</details>",
    )


def _headline_table(run: RunDir) -> str:
    rows = "".join(
        f'<tr><td>{esc(label)}</td><td class="val">{esc(text)}</td><td class="key">{esc(key)}'
        "</td></tr>"
        for label, text, key in headline(run.kpis)
    )
    if not rows:
        return note("No headline figures: neither traffic nor energy was simulated.")
    return (
        '<table class="headline"><thead><tr><th>Figure</th><th>Value</th><th>KPI</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def link_rows(net: pd.DataFrame, state: pd.DataFrame) -> list[list]:
    """Hover figures of every network link (LINK_FIELDS) in a link state."""
    n = len(net)

    def col(name: str, default: object = None) -> np.ndarray:
        return net[name].to_numpy() if name in net.columns else np.full(n, default)

    names, hw, lanes = col("name", ""), col("highway", ""), col("lanes", None)
    length, limit = col("length_m", np.nan), col("speed_limit_mps", np.nan)
    ids, ways = col("link", -1), col("osm_way", None)
    speed = state["mean_speed_mps"].to_numpy(float) if "mean_speed_mps" in state else [np.nan] * n
    ratio, flow = state["speed_ratio"].to_numpy(float), state["flow_vph"].to_numpy(float)
    mq = state["mean_queue_veh"].to_numpy(float) if "mean_queue_veh" in state else [np.nan] * n
    xq = state["max_queue_veh"].to_numpy(float) if "max_queue_veh" in state else [np.nan] * n
    rows = []
    for i in range(n):
        name = names[i] if isinstance(names[i], str) and names[i] else f"unnamed {hw[i]}"
        rows.append(
            [
                name,
                str(hw[i]),
                _r(lanes[i], 0),
                _r(length[i], 0),
                _r(limit[i] * 3.6, 0),
                _r(speed[i] * 3.6, 1),
                _r(ratio[i] * 100, 0),
                _r(flow[i], 0),
                _r(mq[i], 1),
                _r(xq[i], 0),
                _r(ids[i], 0),
                _r(ways[i], 0),
            ]
        )
    return rows


def _r(v: object, decimals: int) -> float | int | None:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return round(x) if decimals == 0 else round(x, decimals)


def iv_rows(run: RunDir) -> list[list]:
    return [
        [
            iv["label"] or iv["kind"],
            iv["kind"],
            clock(iv["start_s"]),
            clock(iv["end_s"], "end of run"),
        ]
        for iv in run.interventions
    ]


def road_map_section(run: RunDir, proj: Projection) -> str:
    net = run.table("network")
    sid, title = "road-map", TITLES["road-map"]
    if net is None or "geometry_wkt" not in net.columns or not len(net):
        return section(sid, title, note("No road network table: traffic was not simulated."))
    d = line_paths(net["geometry_wkt"].tolist(), proj)
    peak = run.peak_interval
    bins = congestion_bins()
    state = run.link_state(peak[0] if peak else math.nan)
    ratio = state["speed_ratio"].to_numpy(float)
    m = SvgMap("map-roads", proj, "Road network")
    m.css.append(bins.css("#map-roads"))
    order = np.argsort(-np.nan_to_num(ratio, nan=2.0), kind="stable")
    m.layers.append(road_layer(net, d, bins.index(ratio), order))
    m.add_set("link", LINK_FIELDS, link_rows(net, state))
    legends = [bins.legend()]
    legends += _intervention_overlay(run, m, net, d)
    if peak is None:
        caption = note(
            "No per-link traffic results (links table) in this run: the network "
            "is drawn without congestion colours."
        )
    else:
        ts = run.table("timeseries")
        veh = ""
        if ts is not None and {"time_s", "vehicles_running"} <= set(ts.columns):
            at = ts[ts["time_s"] == peak[1]]["vehicles_running"]
            if len(at):
                veh = f", {number(float(at.iloc[0]))} vehicles driving at {clock(peak[1])}"
        caption = (
            f"<p>Peak interval <b>{clock(peak[0])} - {clock(peak[1])}</b>{esc(veh)}. "
            "Colour: mean speed over the link's free-flow speed (speed limit); grey "
            "links saw no vehicle in the interval. Hover a street for its figures.</p>"
        )
    if peak is not None:
        caption += _active_note(run, peak)
    return section(sid, title, caption + m.html(legends))


def _active_note(run: RunDir, interval: tuple[float, float]) -> str:
    """Which interventions on roads were in force during ``interval``."""
    parts = []
    for iv in run.interventions:
        if not iv["links"]:
            continue
        start = iv["start_s"] if iv["start_s"] is not None else -math.inf
        end = iv["end_s"] if iv["end_s"] is not None else math.inf
        active = "in force" if start < interval[1] and end > interval[0] else "not in force"
        when = f"{clock(iv['start_s'])} - {clock(iv['end_s'], 'end of run')}"
        parts.append(f"{esc(iv['label'] or iv['kind'])} ({when}): {active} in this interval")
    return f"<p>Marked in magenta: {'; '.join(parts)}.</p>" if parts else ""


def _intervention_overlay(
    run: RunDir,
    m: SvgMap,
    net: pd.DataFrame | None,
    d: list[str],
    trafo_xy: dict[int, tuple[float, float]] | None = None,
) -> list[str]:
    """Mark the run's interventions on a map; the legend entries for them."""
    if not run.interventions:
        return []
    link_d: dict[int, str] = {}
    if net is not None and d:
        link_d = {int(k): d[i] for i, k in enumerate(net["link"].to_numpy())}
    m.layers.append(intervention_layer(m.proj, run.interventions, link_d, trafo_xy))
    m.add_set("iv", IV_FIELDS, iv_rows(run))
    return [
        '<span><span class="swatch"></span>interventions: affected streets (dashed), '
        "elements (ringed) and places (diamonds)</span>"
    ]


def traffic_section(run: RunDir) -> str:
    svg = plots.traffic_figure(run) if run.has("timeseries") else None
    if svg is not None and "vehicles_running" not in run.table("timeseries").columns:
        svg = None
    return section(
        "traffic",
        TITLES["traffic"],
        plot(svg, "No traffic time series: traffic was not simulated."),
    )


def grid_map_section(run: RunDir, proj: Projection) -> str:
    sid, title = "grid-map", TITLES["grid-map"]
    lines, trafos, subs = (
        run.table("grid_lines"),
        run.table("transformers"),
        run.table("substations"),
    )
    if lines is None and trafos is None:
        return section(sid, title, note("No grid tables: the energy model was not simulated."))
    bins = loading_bins("peak loading over the run (% of rating)")
    m = SvgMap("map-grid", proj, "Distribution grid")
    m.css += [bins.css("#map-grid", "stroke", "q"), bins.css("#map-grid", "fill", "f")]
    grid_layers(m, bins, lines, trafos, subs)
    trafo_xy = None
    if trafos is not None and {"lon", "lat"} <= set(trafos.columns):
        x, y = proj.tenths(trafos["lon"].fillna(0), trafos["lat"].fillna(0))
        trafo_xy = {
            int(t): (xi / 10, yi / 10)
            for t, xi, yi in zip(trafos["transformer"], x, y, strict=True)
        }
    legends = [
        bins.legend(),
        "<span>thick lines: medium voltage; thin: low voltage; "
        "circles: MV/LV transformers (area by kVA); squares: substations</span>",
    ]
    legends += _intervention_overlay(run, m, None, [], trafo_xy)
    caption = (
        "<p>Cables coloured by their peak loading over the run, transformers and "
        "substations by theirs. Hover a transformer or substation for its figures.</p>"
    )
    return section(sid, title, caption + m.html(legends))


def grid_layers(
    m: SvgMap,
    bins: Bins,
    lines: pd.DataFrame | None,
    trafos: pd.DataFrame | None,
    subs: pd.DataFrame | None,
    values: dict[str, np.ndarray] | None = None,
) -> None:
    """Cables (one path per level and bin), transformers and substations onto ``m``;
    ``values`` overrides the coloured value per table (else peak_loading_percent)."""
    values = values or {}
    if lines is not None and "geometry_wkt" in lines.columns and len(lines):
        d = line_paths(lines["geometry_wkt"].tolist(), m.proj)
        val = values.get(
            "grid_lines",
            lines.get("peak_loading_percent", pd.Series(np.nan, index=lines.index)).to_numpy(float),
        )
        idx = bins.index(val)
        level = lines["level"].astype(str).to_numpy() if "level" in lines.columns else None
        for lv, cls in (("LV", "gl-lv"), ("MV", "gl-mv")):
            sel = (
                np.ones(len(d), bool)
                if level is None
                else (level == lv)
                if lv == "MV"
                else (level != "MV")
            )
            if level is None and lv == "MV":
                break
            dd = [x if s else "" for x, s in zip(d, sel, strict=True)]
            m.layers.append(grouped_lines(dd, idx, cls))
    if trafos is not None and {"lon", "lat"} <= set(trafos.columns) and len(trafos):
        kva = (
            trafos["kva"].to_numpy(float)
            if "kva" in trafos.columns
            else np.full(len(trafos), 400.0)
        )
        r = 2.5 + 3.5 * np.sqrt(np.nan_to_num(kva, nan=400.0) / 400.0)
        val = values.get(
            "transformers",
            trafos.get("peak_loading_percent", pd.Series(np.nan, index=trafos.index)).to_numpy(
                float
            ),
        )
        m.layers.append(circles(m.proj, trafos["lon"], trafos["lat"], r, bins.index(val), "trafo"))
        if "trafo" not in m.sets:
            m.add_set("trafo", TRAFO_FIELDS, trafo_rows(trafos))
    if subs is not None and {"lon", "lat"} <= set(subs.columns) and len(subs):
        val = values.get(
            "substations",
            subs.get("peak_loading_percent", pd.Series(np.nan, index=subs.index)).to_numpy(float),
        )
        m.layers.append(
            circles(
                m.proj,
                subs["lon"],
                subs["lat"],
                np.full(len(subs), 8.0),
                bins.index(val),
                "sub",
                shape="square",
            )
        )
        m.add_set(
            "sub",
            SUB_FIELDS,
            sub_rows(subs),
        )


def sub_rows(subs: pd.DataFrame) -> list[list]:
    return [
        [
            f"substation {r.get('substation')}",
            _r(r.get("mva"), 1),
            _r(r.get("peak_loading_percent"), 1),
            _r(r.get("peak_mva"), 2),
            _r(r.get("minutes_above_rating"), 0),
        ]
        for r in subs.to_dict(orient="records")
    ]


def trafo_rows(trafos: pd.DataFrame) -> list[list]:
    return [
        [
            f"transformer {r.get('transformer')}",
            _r(r.get("kva"), 0),
            _r(r.get("households"), 0),
            r.get("substation"),
            _r(r.get("peak_loading_percent"), 1),
            _r(r.get("peak_kva"), 0),
            _r(r.get("minutes_above_rating"), 0),
        ]
        for r in trafos.to_dict(orient="records")
    ]


def transformers_section(run: RunDir) -> str:
    sid, title = "transformers", TITLES["transformers"]
    top = plots.busiest_transformers(run)
    if top is None:
        return section(
            sid, title, note("No transformer table: the energy model was not simulated.")
        )
    svg = plots.transformer_figure(run)
    rows = [[r[0].removeprefix("transformer "), *r[1:]] for r in trafo_rows(top)]
    n_over = int((run.table("transformers")["peak_loading_percent"] > 100).sum())
    tab = table(
        [
            "Transformer",
            "kVA",
            "Households",
            "Substation",
            "Peak loading %",
            "Peak kVA",
            "Minutes above rating",
        ],
        rows,
        num_cols=range(7),
    )
    return section(
        sid,
        title,
        plot(svg, "No per-interval transformer loading table.")
        + f"<p>{n_over:,} of {len(run.table('transformers')):,} transformers peaked "
        f"above their rating. The five busiest:</p>{tab}",
    )


def substation_section(run: RunDir) -> str:
    sid, title = "substation", TITLES["substation"]
    svg = plots.substation_figure(run)
    if svg is None:
        return section(sid, title, note("No energy table: the energy model was not simulated."))
    subs = run.table("substations")
    tab = ""
    if subs is not None and len(subs):
        rows = [[r[0].removeprefix("substation "), *r[1:]] for r in sub_rows(subs)]
        tab = table(
            ["Substation", "MVA", "Peak loading %", "Peak MVA", "Minutes above rating"],
            rows,
            num_cols=range(5),
        )
    return section(sid, title, plot(svg, "") + tab)


def voltage_section(run: RunDir) -> str:
    sid, title = "voltage", TITLES["voltage"]
    svg = plots.voltage_figure(run)
    if svg is None:
        return section(sid, title, note("No voltages: the energy model was not simulated."))
    houses = run.kpi("energy.houses_outside_ansi")
    mins = run.kpi("energy.house_minutes_outside_ansi")
    text = ""
    if math.isfinite(houses):
        text = (
            f"<p>{number(houses)} households saw a voltage outside the ANSI range "
            f"({number(mins)} household-minutes).</p>"
        )
    return section(sid, title, plot(svg, "") + text)


def ev_section(run: RunDir) -> str:
    sid, title = "ev", TITLES["ev"]
    if not run.has("energy"):
        return section(sid, title, note("No energy table: the energy model was not simulated."))
    evs = run.table("evs")
    if evs is None or not len(evs):
        return section(sid, title, note("No EVs in this run."))
    svg = plots.ev_figure(run)
    facts = [
        ("EVs", number(float(len(evs)))),
        ("Energy charged", kpi_text("energy.ev_kwh", run.kpi("energy.ev_kwh"), "kWh")),
        ("Peak EV charging", kpi_text("energy.ev_peak_kw", run.kpi("energy.ev_peak_kw"), "kW")),
        ("Unmet at departure", kpi_text("", run.kpi("energy.ev_unmet_departure_kwh"), "kWh")),
        ("Unmet while driving", kpi_text("", run.kpi("energy.ev_unmet_drive_kwh"), "kWh")),
    ]
    return section(sid, title, plot(svg, "") + table(["Figure", "Value"], facts))


def interventions_section(run: RunDir) -> str:
    sid, title = "interventions", TITLES["interventions"]
    if not run.interventions:
        return section(sid, title, note("No interventions in this run."))
    net = run.table("network")
    names: dict[int, str] = {}
    if net is not None and "name" in net.columns:
        names = {
            int(k): v
            for k, v in zip(net["link"], net["name"], strict=True)
            if isinstance(v, str) and v
        }
    rows = []
    for iv in run.interventions:
        streets = sorted({names[k] for k in iv["links"] if k in names})
        what = []
        if iv["links"]:
            what.append(
                f"{len(iv['links'])} links"
                + (
                    f" ({', '.join(streets[:6])}{', ...' if len(streets) > 6 else ''})"
                    if streets
                    else ""
                )
            )
        if iv["transformers"]:
            what.append("transformers " + ", ".join(map(str, iv["transformers"][:10])))
        if iv["lon"] is not None and iv["lat"] is not None:
            what.append(f"at {iv['lat']:.5f}, {iv['lon']:.5f}")
        rows.append(
            [
                iv["intervention"],
                iv["kind"],
                iv["label"],
                clock(iv["start_s"]),
                clock(iv["end_s"], "end of run"),
                "; ".join(what),
            ]
        )
    tab = table(["#", "Kind", "What", "From", "To", "Affects"], rows, num_cols=[0])
    return section(
        sid,
        title,
        tab
        + note("Affected streets are marked dashed magenta on the road map; places as diamonds."),
    )
