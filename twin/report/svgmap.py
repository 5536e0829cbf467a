"""Inline SVG vector maps: lon/lat projected to a ~1000 px local equirectangular view box,
paths in 0.1 px steps, colour bins as scoped CSS classes, and per-element hover figures in a
JSON blob that the page's small script (html.MAP_JS) reads for its tooltip, zoom and pan."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from matplotlib import colormaps, colors

MAP_WIDTH_PX = 1000.0
MARGIN_PX = 12.0
INTERVENTION_COLOR = "#d0009a"  # magenta: closed roads, intervention points and elements

# road classes drawn thick / medium (others thin), bottom to top
MAJOR = {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"}
MEDIUM = {"secondary", "secondary_link", "tertiary", "tertiary_link"}


class Projection:
    """Local equirectangular projection of lon/lat onto a view box ``MAP_WIDTH_PX`` wide
    (x east, y south), with cos(latitude) scaling of longitudes at the centre."""

    def __init__(self, lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> None:
        if not all(map(math.isfinite, (lon_min, lat_min, lon_max, lat_max))):
            lon_min, lat_min, lon_max, lat_max = 0.0, 0.0, 0.01, 0.01
        self.lon0, self.lat0 = lon_min, lat_max
        self.kx = math.cos(math.radians((lat_min + lat_max) / 2))
        x_span, y_span = (lon_max - lon_min) * self.kx, lat_max - lat_min
        self.scale = (MAP_WIDTH_PX - 2 * MARGIN_PX) / max(x_span, y_span, 1e-9)  # px per deg
        self.width = x_span * self.scale + 2 * MARGIN_PX
        self.height = y_span * self.scale + 2 * MARGIN_PX
        self.bounds = (lon_min, lat_min, lon_max, lat_max)

    @classmethod
    def fit(cls, lon: np.ndarray, lat: np.ndarray) -> Projection:
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        ok = np.isfinite(lon) & np.isfinite(lat)
        if not ok.any():
            return cls(math.nan, math.nan, math.nan, math.nan)
        return cls(lon[ok].min(), lat[ok].min(), lon[ok].max(), lat[ok].max())

    def tenths(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """View-box coordinates in integer tenths of a pixel."""
        x = ((np.asarray(lon, float) - self.lon0) * self.kx * self.scale + MARGIN_PX) * 10
        y = ((self.lat0 - np.asarray(lat, float)) * self.scale + MARGIN_PX) * 10
        return np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)

    def point(self, lon: float, lat: float) -> tuple[str, str] | None:
        if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        x, y = self.tenths(np.array([lon]), np.array([lat]))
        return _num(int(x[0])), _num(int(y[0]))


def wkt_coords(wkt: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """All coordinates (n x 2, lon/lat) of WKT line strings and the index of the geometry
    each belongs to; unreadable or missing geometries contribute none."""
    arr = np.array([w if isinstance(w, str) else None for w in wkt], dtype=object)
    geoms = shapely.from_wkt(arr, on_invalid="ignore")
    return shapely.get_coordinates(geoms, return_index=True)


def line_paths(wkt: Sequence[Any], proj: Projection) -> list[str]:
    """One SVG path ``d`` per WKT line string (multi-part geometries get one ``M`` per part;
    "" for a missing one): absolute start, then relative steps, in 0.1 px."""
    arr = np.array([w if isinstance(w, str) else None for w in wkt], dtype=object)
    geoms = shapely.from_wkt(arr, on_invalid="ignore")
    parts, owner = shapely.get_parts(geoms, return_index=True)
    coords, part_of = shapely.get_coordinates(parts, return_index=True)
    x, y = proj.tenths(coords[:, 0], coords[:, 1])
    d = [""] * len(arr)
    bounds = np.searchsorted(part_of, np.arange(len(parts) + 1))
    for p in range(len(parts)):
        a, b = bounds[p], bounds[p + 1]
        if b - a < 2:
            continue
        d[owner[p]] += _part_d(x[a:b], y[a:b])
    return d


def _part_d(x: np.ndarray, y: np.ndarray) -> str:
    dx, dy = np.diff(x), np.diff(y)
    keep = (dx != 0) | (dy != 0)
    if not keep.any():
        keep[0] = True
    steps = " ".join(f"{_num(a)} {_num(b)}" for a, b in zip(dx[keep], dy[keep], strict=True))
    return f"M{_num(int(x[0]))} {_num(int(y[0]))}l{steps}".replace(" -", "-")


def _num(tenths: int) -> str:
    """An integer number of tenths as the shortest decimal: 12 -> "1.2", 5 -> ".5"."""
    sign, a = ("-" if tenths < 0 else ""), abs(int(tenths))
    q, r = divmod(a, 10)
    return sign + (str(q) if not r else f"{q}.{r}" if q else f".{r}")


@dataclass
class Bins:
    """Colour classes of a value: ``edges`` (n + 1, may start/end with +-inf), one colour
    and one legend tick per edge; values outside or NaN fall in the no-data class."""

    title: str
    edges: list[float]
    colors: list[str]
    ticks: list[str]
    nodata_color: str = "#c8c8c8"
    nodata_label: str = "no data"
    extra_color: str = ""  # an optional class -2 ("qx"), e.g. "traffic in one run only"
    extra_label: str = ""

    def index(self, values: Any) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        i = np.digitize(v, self.edges[1:-1], right=False)
        i[~np.isfinite(v) | (v < self.edges[0]) | (v > self.edges[-1])] = -1
        return i

    def css(self, scope: str, prop: str = "stroke", prefix: str = "q") -> str:
        rules = [f"{scope} .{prefix}{k}{{{prop}:{c}}}" for k, c in enumerate(self.colors)]
        rules.append(f"{scope} .{prefix}n{{{prop}:{self.nodata_color}}}")
        if self.extra_color:
            rules.append(f"{scope} .{prefix}x{{{prop}:{self.extra_color}}}")
        return "\n".join(rules)

    def legend(self) -> str:
        """A colour bar as a small inline SVG: the bins, their edge values, the no-data box."""
        n, box_w, h = len(self.colors), 44, 14
        parts = [
            f'<rect x="{k * box_w}" y="18" width="{box_w}" height="{h}" fill="{c}"/>'
            for k, c in enumerate(self.colors)
        ]
        for k, t in enumerate(self.ticks):
            if t:
                parts.append(
                    f'<text x="{k * box_w}" y="46" text-anchor="middle">{html.escape(t)}</text>'
                )
        x0 = n * box_w + 24
        for color, label in (
            (self.nodata_color, self.nodata_label),
            (self.extra_color, self.extra_label),
        ):
            if not color:
                continue
            parts.append(
                f'<rect x="{x0}" y="18" width="{box_w / 2}" height="{h}" fill="{color}"/>'
                f'<text x="{x0 + box_w / 2 + 4}" y="29">{html.escape(label)}</text>'
            )
            x0 += box_w / 2 + 16 + 6 * len(label)
        width = x0
        return (
            f'<svg class="cbar" viewBox="-20 0 {width + 40} 52" width="{width + 40}" '
            f'height="52" role="img"><text x="0" y="11" class="ct">{html.escape(self.title)}'
            f"</text>{''.join(parts)}</svg>"
        )


def cmap_colors(name: str, n: int, lo: float = 0.0, hi: float = 1.0) -> list[str]:
    cmap = colormaps[name]
    return [colors.to_hex(cmap(lo + (hi - lo) * (k + 0.5) / n)) for k in range(n)]


def congestion_bins() -> Bins:
    edges = [k / 10 for k in range(11)]
    return Bins(
        "speed / free-flow speed at the peak interval (red: congested)",
        edges,
        cmap_colors("RdYlGn", 10, 0.0, 1.0),
        [f"{e:.1f}" for e in edges],
        nodata_label="no traffic",
    )


def loading_bins(title: str) -> Bins:
    edges = [0, 20, 40, 60, 80, 90, 100, 120, math.inf]
    cols = [*cmap_colors("RdYlGn_r", 6, 0.0, 0.72), "#c4002b", "#67001f"]
    ticks = ["0", "20", "40", "60", "80", "90", "100", "120", ""]
    return Bins(title, [float(e) for e in edges], cols, ticks)


def diverging_bins(title: str, steps: list[float], cmap: str, nodata: str) -> Bins:
    """Bins symmetric around 0: (-inf, -s_k], ..., (-s_0, s_0), ..., [s_k, inf)."""
    inner = sorted(steps)
    edges = [-math.inf, *[-s for s in inner[::-1]], *inner, math.inf]
    n = len(edges) - 1
    ticks = ["", *[f"{e:+g}" for e in edges[1:-1]], ""]
    cols = cmap_colors(cmap, n, 0.05, 0.95)
    cols[len(inner)] = "#cfcfcf"  # no change: visible, neutral
    return Bins(title, edges, cols, ticks, nodata_color="#ececec", nodata_label=nodata)


class SvgMap:
    """One zoomable map: layers of SVG markup, scoped CSS, hover figures per element set."""

    def __init__(self, map_id: str, proj: Projection, title: str) -> None:
        self.id, self.proj, self.title = map_id, proj, title
        self.layers: list[str] = []
        self.css: list[str] = []
        self.sets: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []

    def add_set(
        self, name: str, fields: list[tuple[str, str, int | None]], rows: list[list[Any]]
    ) -> None:
        """Hover figures of the elements of a ``<g data-s=name>`` group: ``fields`` are
        (label, unit, decimals or None for text), the first is the tooltip's title; an
        element's ``data-i`` is its row."""
        self.sets[name] = {"fields": fields, "rows": [[_json_value(v) for v in r] for r in rows]}

    def html(self, legends: Sequence[str] = ()) -> str:
        blob = json.dumps(self.sets, separators=(",", ":"), allow_nan=False)
        blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        w, h = f"{self.proj.width:.0f}", f"{self.proj.height:.0f}"
        notes = "".join(f'<p class="note">{n}</p>' for n in self.notes)
        return (
            f'<div class="map" id="{self.id}" data-src="{self.id}-data">'
            f"<style>{chr(10).join(self.css)}</style>"
            '<div class="mapbar"><button type="button" data-z="in" title="zoom in">+</button>'
            '<button type="button" data-z="out" title="zoom out">&minus;</button>'
            '<button type="button" data-z="home" title="whole map">reset</button>'
            f'<span class="hint">{html.escape(self.title)}: wheel to zoom, drag to pan, '
            "hover for figures</span></div>"
            f'<svg viewBox="0 0 {w} {h}" preserveAspectRatio="xMidYMid meet" role="img" '
            f'aria-label="{html.escape(self.title)}">{"".join(self.layers)}</svg>'
            f'<div class="legends">{"".join(legends)}</div>{notes}'
            f'<script type="application/json" id="{self.id}-data">{blob}</script></div>'
        )


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def road_layer(net: Any, d: list[str], bin_idx: np.ndarray, order: np.ndarray | None = None) -> str:
    """The network's links, one ``<path data-i=row>`` each, grouped by road class width,
    coloured by ``bin_idx`` (-1: no data); drawn in ``order`` within a group (last on top)."""
    highway = net["highway"].astype(str).to_numpy() if "highway" in net.columns else None
    width = np.full(len(d), 2, dtype=int)
    if highway is not None:
        width[np.isin(highway, list(MEDIUM))] = 1
        width[np.isin(highway, list(MAJOR))] = 0
    order = np.arange(len(d)) if order is None else order
    out = ['<g data-s="link" class="roads">']
    for w, cls in ((2, "wc"), (1, "wb"), (0, "wa")):
        rows = [i for i in order if width[i] == w and d[i]]
        if not rows:
            continue
        paths = "".join(
            f'<path class="q{bin_class(bin_idx[i])}" data-i="{i}" d="{d[i]}"/>' for i in rows
        )
        out.append(f'<g class="{cls}">{paths}</g>')
    out.append("</g>")
    return "".join(out)


def bin_class(b: int) -> str:
    """The CSS class suffix of a bin index: the index, "n" (no data, -1) or "x" (-2)."""
    return "n" if b == -1 else "x" if b == -2 else str(b)


def grouped_lines(d: list[str], bin_idx: np.ndarray, cls: str) -> str:
    """Lines merged into one path per colour bin (not hoverable): compact for big grids."""
    out = []
    for b in sorted(set(bin_idx.tolist())):
        joined = "".join(d[i] for i in np.flatnonzero(bin_idx == b) if d[i])
        if joined:
            out.append(f'<path class="{cls} q{bin_class(b)}" d="{joined}"/>')
    return "".join(out)


def circles(
    proj: Projection,
    lon: Any,
    lat: Any,
    r_px: Any,
    bin_idx: np.ndarray,
    set_name: str,
    shape: str = "circle",
) -> str:
    """Points as circles (or squares) with ``data-i`` rows, filled by colour bin."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    ok = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(np.asarray(r_px, float))
    x, y = proj.tenths(np.where(ok, lon, 0.0), np.where(ok, lat, 0.0))
    items = []
    for i, (xi, yi, r, b) in enumerate(zip(x, y, np.asarray(r_px, float), bin_idx, strict=True)):
        if not ok[i]:
            continue
        cls = f"f{bin_class(b)}"
        if shape == "circle":
            items.append(
                f'<circle class="{cls}" data-i="{i}" cx="{_num(xi)}" cy="{_num(yi)}" r="{r:.1f}"/>'
            )
        else:
            items.append(
                f'<rect class="{cls}" data-i="{i}" x="{_num(xi - int(r * 10))}" '
                f'y="{_num(yi - int(r * 10))}" width="{2 * r:.1f}" '
                f'height="{2 * r:.1f}"/>'
            )
    return f'<g data-s="{set_name}" class="pts">{"".join(items)}</g>'


def intervention_layer(
    proj: Projection,
    interventions: list[dict[str, Any]],
    link_d: dict[int, str],
    trafo_xy: dict[int, tuple[float, float]] | None = None,
) -> str:
    """Interventions over a map: their links outlined (dashed magenta), their transformers
    ringed, their points as diamonds; hover rows are the interventions' indexes."""
    out = ['<g data-s="iv" class="iv">']
    for k, iv in enumerate(interventions):
        d = "".join(link_d.get(link, "") for link in iv["links"])
        if d:
            out.append(f'<path class="ivl" data-i="{k}" d="{d}"/>')
        for t in iv["transformers"] if trafo_xy else []:
            if t in trafo_xy:
                x, y = trafo_xy[t]
                out.append(f'<circle class="ivt" data-i="{k}" cx="{x:.1f}" cy="{y:.1f}" r="9"/>')
        p = proj.point(iv["lon"], iv["lat"]) if iv["lon"] is not None else None
        if p is not None:
            out.append(f'<path class="ivp" data-i="{k}" d="M{p[0]} {p[1]}m-8 0l8-8 8 8-8 8z"/>')
    out.append("</g>")
    return "".join(out)
