"""The page around a report: inline CSS, the small map script (zoom, pan, hover tooltip), the
section and table helpers, and KPI values in readable units and clock times."""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from twin.report.data import clock

CSS = """
:root{--fg:#1d2430;--muted:#5b6576;--line:#d9dee7;--bg:#f5f7fa;--accent:#1f5fa8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",
 "Liberation Sans",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:18px 22px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 10px;color:var(--accent)}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;
 margin:14px 0}
p.lead{margin:0 0 10px;color:var(--muted);font-size:15px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
nav{font-size:13px;margin-top:8px}nav a{margin-right:12px;color:var(--accent)}
table{border-collapse:collapse;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef2f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.key{color:var(--muted);font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
table.headline td.val{font-weight:600;font-size:15px}
details{margin-top:10px}summary{cursor:pointer;color:var(--accent)}
p.note{color:var(--muted);font-style:italic;margin:6px 0}
p.warn{background:#fff2e0;border-left:4px solid #e8890c;padding:8px 12px;margin:8px 0}
.plot svg{width:100%;height:auto;display:block}
pre{background:#f0f2f5;padding:10px;overflow:auto;font-size:12px;max-height:420px}
.map{position:relative}
.map>svg{width:100%;height:auto;max-height:86vh;display:block;background:#fbfbf8;
 border:1px solid var(--line);border-radius:6px;cursor:grab;touch-action:none}
.map>svg.dragging{cursor:grabbing}
.map svg path{fill:none;vector-effect:non-scaling-stroke;stroke-linecap:round;
 stroke-linejoin:round}
.map .wa{stroke-width:2.6px}.map .wb{stroke-width:1.7px}.map .wc{stroke-width:1.1px}
.map path[data-i]:hover{stroke-width:5px}
.map .gl-mv{stroke-width:2.2px}.map .gl-lv{stroke-width:.9px}.map .bg{stroke:#d5d5d5;
 stroke-width:.8px}
.map .pts circle,.map .pts rect{stroke:#222;stroke-width:.7px;vector-effect:non-scaling-stroke}
.map .pts circle:hover,.map .pts rect:hover{stroke-width:2.5px}
.map .iv .ivl{stroke:#d0009a;stroke-width:6px;stroke-dasharray:7 5;opacity:.85}
.map .iv .ivl:hover{stroke-width:9px}
.map .iv .ivp{fill:#d0009a;stroke:#fff;stroke-width:1.5px}
.map .iv .ivt{fill:none;stroke:#d0009a;stroke-width:3px;stroke-dasharray:4 3;
 vector-effect:non-scaling-stroke}
.mapbar{display:flex;gap:6px;align-items:center;margin:0 0 6px}
.mapbar button{font:inherit;padding:1px 10px;border:1px solid var(--line);background:#fff;
 border-radius:4px;cursor:pointer}
.mapbar .hint{color:var(--muted);font-size:12px;margin-left:6px}
.legends{display:flex;flex-wrap:wrap;gap:6px 26px;align-items:center;margin-top:6px;
 font-size:12px}
svg.cbar{font-size:11px;overflow:visible}svg.cbar .ct{font-weight:600}
.swatch{display:inline-block;width:26px;height:0;border-top:4px dashed #d0009a;
 vertical-align:middle;margin-right:4px}
#tip{position:fixed;display:none;pointer-events:none;z-index:10;background:#fff;
 border:1px solid #889;border-radius:5px;padding:6px 9px;font-size:12px;
 box-shadow:0 2px 8px rgba(0,0,0,.2);max-width:340px}
#tip b{display:block;margin-bottom:2px}#tip span{color:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
"""

MAP_JS = """
(function () {
  "use strict";
  var tip = document.getElementById("tip");
  function cell(v, f) {
    if (v === null || v === undefined || v === "") return "\\u2013";
    if (typeof v === "number" && f[2] !== null) {
      v = v.toLocaleString("en-US", {minimumFractionDigits: f[2], maximumFractionDigits: f[2]});
    }
    return f[1] ? v + " " + f[1] : String(v);
  }
  function move(e) {
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth - 4) x = e.clientX - tip.offsetWidth - 14;
    if (y + tip.offsetHeight > window.innerHeight - 4) y = e.clientY - tip.offsetHeight - 14;
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  function hide() { tip.style.display = "none"; }
  function show(e, set, i) {
    var f = set.fields, row = set.rows[i];
    if (!row) { hide(); return; }
    tip.textContent = "";
    var title = document.createElement("b");
    title.textContent = cell(row[0], f[0]);
    tip.appendChild(title);
    for (var k = 1; k < f.length; k++) {
      var line = document.createElement("div"), label = document.createElement("span");
      label.textContent = f[k][0] + ": ";
      line.appendChild(label);
      line.appendChild(document.createTextNode(cell(row[k], f[k])));
      tip.appendChild(line);
    }
    tip.style.display = "block";
    move(e);
  }
  function initMap(box) {
    var svg = box.querySelector("svg");
    var data = JSON.parse(document.getElementById(box.getAttribute("data-src")).textContent);
    var vb = svg.viewBox.baseVal, home = [vb.x, vb.y, vb.width, vb.height], drag = null;
    function zoom(k, cx, cy) {
      var w = Math.max(home[2] / 400, Math.min(home[2] * 2, vb.width * k));
      k = w / vb.width;
      vb.x = cx - (cx - vb.x) * k; vb.y = cy - (cy - vb.y) * k;
      vb.width = w; vb.height = vb.height * k;
    }
    function reset() { vb.x = home[0]; vb.y = home[1]; vb.width = home[2]; vb.height = home[3]; }
    function at(e) {
      var p = svg.createSVGPoint();
      p.x = e.clientX; p.y = e.clientY;
      return p.matrixTransform(svg.getScreenCTM().inverse());
    }
    svg.addEventListener("wheel", function (e) {
      e.preventDefault();
      var p = at(e);
      zoom(e.deltaY < 0 ? 0.8 : 1.25, p.x, p.y);
    }, {passive: false});
    svg.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      drag = {x: e.clientX, y: e.clientY};
      hide();
    });
    window.addEventListener("pointerup", function () {
      drag = null; svg.classList.remove("dragging");
    });
    svg.addEventListener("pointermove", function (e) {
      if (drag) {
        var m = svg.getScreenCTM();
        svg.classList.add("dragging");
        vb.x -= (e.clientX - drag.x) / m.a; vb.y -= (e.clientY - drag.y) / m.d;
        drag.x = e.clientX; drag.y = e.clientY;
        return;
      }
      var el = e.target.closest ? e.target.closest("[data-i]") : null;
      var g = el ? el.closest("[data-s]") : null;
      var set = g ? data[g.getAttribute("data-s")] : null;
      if (set) show(e, set, +el.getAttribute("data-i")); else hide();
    });
    svg.addEventListener("pointerleave", hide);
    svg.addEventListener("dblclick", reset);
    box.querySelectorAll("button[data-z]").forEach(function (b) {
      b.addEventListener("click", function () {
        var z = b.getAttribute("data-z");
        if (z === "home") reset();
        else zoom(z === "in" ? 0.7 : 1 / 0.7, vb.x + vb.width / 2, vb.y + vb.height / 2);
      });
    });
  }
  var ok = true;
  document.querySelectorAll("div.map").forEach(function (box) {
    try { initMap(box); } catch (err) { ok = false; box.setAttribute("data-error", String(err)); }
  });
  document.body.setAttribute("data-ready", ok ? "1" : "error");
})();
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def plot(svg: str | None, missing: str) -> str:
    return f'<div class="plot">{svg}</div>' if svg else note(missing)


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    num_cols: Sequence[int] = (),
    cls: str = "",
) -> str:
    """An HTML table; every cell escaped; ``num_cols`` right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(v)}</td>' if k in num_cols else f"<td>{esc(v)}</td>"
            for k, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, sections: Sequence[str], nav: Sequence[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"{sections[0]}<nav>{links}</nav>{''.join(sections[1:])}"
        "<footer>Written by twin. One self-contained file: it opens offline and can be "
        "e-mailed.</footer></main>"
        f'<div id="tip" role="tooltip"></div><script>{MAP_JS}</script></body></html>\n'
    )


def write_atomic(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------------ KPI values


def number(value: float, decimals: int | None = None) -> str:
    """A number with thousands separators; integers without decimals, else ~4 significant."""
    if value is None or not math.isfinite(value):
        return "–"
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    a = abs(value)
    d = 0 if a >= 1000 else 1 if a >= 100 else 2 if a >= 10 else 3 if a >= 0.01 else 6
    return f"{value:,.{d}f}"


def kpi_text(name: str, value: float, unit: str) -> str:
    """A KPI's value in readable units: clock times for times of day, minutes next to long
    durations, MW for large kW, thousands separators."""
    if value is None or not math.isfinite(value):
        return "–"
    if unit == "s" and name.endswith("_at_s"):
        return clock(value)
    if unit == "s" and abs(value) >= 120:
        minutes = value / 60
        longer = f"{minutes / 60:,.2f} h" if minutes >= 120 else f"{minutes:,.1f} min"
        return f"{number(value, 0)} s ({longer})"
    if unit == "kW" and abs(value) >= 1000:
        return f"{number(value, 0)} kW ({value / 1000:,.2f} MW)"
    if unit == "kWh" and abs(value) >= 10000:
        return f"{number(value, 0)} kWh ({value / 1000:,.1f} MWh)"
    if unit == "pu":
        return f"{value:.3f} pu"
    if unit == "%":
        return f"{value:,.1f} %"
    if unit == "count":
        return number(value)
    return f"{number(value)} {unit}".rstrip()


def headline(kpis: dict[str, tuple[float, str]]) -> list[tuple[str, str, str]]:
    """The figures a reader looks for first: (label, value text, KPI key)."""
    k = {name: v for name, (v, _) in kpis.items()}
    rows: list[tuple[str, str, str]] = []

    def get(name: str) -> float:
        return k.get(name, math.nan)

    def add(label: str, text: str, key: str) -> None:
        rows.append((label, text, key))

    if "traffic.trips" in k:
        trips, done = get("traffic.trips"), get("traffic.trips_completed")
        pct = f" ({100 * done / trips:.0f} %)" if trips else ""
        add("Trips completed", f"{number(done)} of {number(trips)}{pct}",
            "traffic.trips_completed")  # fmt: skip
        add("Mean trip time", f"{get('traffic.mean_duration_s') / 60:,.1f} min",
            "traffic.mean_duration_s")  # fmt: skip
        add("Mean delay (time lost to traffic)",
            f"{get('traffic.mean_time_loss_s') / 60:,.1f} min",
            "traffic.mean_time_loss_s")  # fmt: skip
        grid = get("traffic.vehicles_gridlocked")
        pct = f" ({100 * grid / trips:.1f} % of trips)" if trips and math.isfinite(grid) else ""
        add("Gridlocked vehicles", f"{number(grid)}{pct}", "traffic.vehicles_gridlocked")
        if "traffic.mean_speed_kmh" in k:
            add("Mean network speed", f"{get('traffic.mean_speed_kmh'):.1f} km/h",
                "traffic.mean_speed_kmh")  # fmt: skip
        if "traffic.vehicle_km" in k:
            add("Vehicle km driven", f"{number(get('traffic.vehicle_km'), 0)} km",
                "traffic.vehicle_km")  # fmt: skip
    if "interventions.vehicles_detoured" in k:
        add("Vehicles detoured (closures)",
            f"{number(get('interventions.vehicles_detoured'))}, "
            f"{number(get('interventions.vehicles_without_detour'))} without a detour",
            "interventions.vehicles_detoured")  # fmt: skip
    if "energy.peak_kw" in k:
        add("Peak load (substations)",
            f"{get('energy.peak_kw') / 1000:,.2f} MW at {clock(get('energy.peak_at_s'))}",
            "energy.peak_kw")  # fmt: skip
        add("Highest transformer loading",
            f"{get('energy.trafo_loading_max_percent'):.0f} % of rating",
            "energy.trafo_loading_max_percent")  # fmt: skip
        add("Transformers overloaded", number(get("energy.trafos_overloaded")),
            "energy.trafos_overloaded")  # fmt: skip
        add("Voltage range",
            f"{get('energy.v_min_pu'):.3f} - {get('energy.v_max_pu'):.3f} pu",
            "energy.v_min_pu")  # fmt: skip
        if "energy.ev_unmet_departure_kwh" in k:
            add("EV energy unmet at departure",
                f"{number(get('energy.ev_unmet_departure_kwh'), 0)} kWh "
                f"({number(get('energy.evs'))} EVs)", "energy.ev_unmet_departure_kwh")  # fmt: skip
        if "energy.unserved_kwh" in k:
            add("Energy not served (outages)",
                f"{number(get('energy.unserved_kwh'), 0)} kWh, up to "
                f"{number(get('energy.households_unserved_max'))} households unserved",
                "energy.unserved_kwh")  # fmt: skip
        if "energy.import_kwh" in k:
            add("Energy imported", f"{get('energy.import_kwh') / 1000:,.1f} MWh",
                "energy.import_kwh")  # fmt: skip
    return rows
