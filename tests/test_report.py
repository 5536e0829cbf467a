"""The one-file HTML run report and the comparison report: sections, self-containment, the
vector maps and their hover figures, interventions, missing tables, KPI differences, and the
page as a browser renders it (headless Chromium, network disabled)."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin import CityModel, load_scenario
from twin.report import write_comparison, write_report
from twin.report.html import kpi_text
from twin.report.svgmap import Projection, line_paths

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
RUN_SECTIONS = [
    "header",
    "kpis",
    "road-map",
    "traffic",
    "grid-map",
    "transformers",
    "substation",
    "voltage",
    "ev",
    "interventions",
]
ENERGY_SECTIONS = ["grid-map", "transformers", "substation", "voltage", "ev"]
COMPARE_SECTIONS = ["header", "kpis", "difference-maps", "timeseries", "interventions"]
CLOSED_LINKS = [0, 1, 2]


def _run(dst: Path, overrides: dict) -> Path:
    sc = load_scenario(SCENARIOS / "baltimore-short.toml").with_overrides(
        {"time.duration": "10min", "time.report_interval": "5min", **overrides}
    )
    CityModel(sc).run(progress=False).save(dst)
    return dst


def _interventions(start_s: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "intervention": [0, 1],
            "kind": ["close_road", "transformer_outage"],
            "start_s": [start_s + 120.0, start_s],
            "end_s": [np.nan, start_s + 300.0],
            "label": ['Close "Main" St <b>& co</b>', "Transformer 0 out of service"],
            "links": [CLOSED_LINKS, []],
            "transformers": [[], [0]],
            "lon": [np.nan, -76.58],
            "lat": [np.nan, 39.28],
        }
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 10-minute Baltimore runs: ``full`` (traffic, energy, 30 % EVs, a synthetic
    interventions table) and ``traffic`` (energy disabled)."""
    root = tmp_path_factory.mktemp("report-runs")
    full = _run(root / "full", {"population.ev_share": 0.3})
    start_s = float(pd.read_parquet(full / "timeseries.parquet")["time_s"].min())
    _interventions(start_s).to_parquet(full / "interventions.parquet", index=False)
    traffic = _run(root / "traffic", {"energy.enabled": False})
    return {"full": full, "traffic": traffic, "root": root}


@pytest.fixture(scope="module")
def full_report(runs: dict[str, Path]) -> str:
    return write_report(runs["full"]).read_text()


def _section(text: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">.*?</section>', text, re.S)
    assert m, f"section {sid} missing"
    return m[0]


def _map_data(text: str, map_id: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{map_id}-data">(.*?)</script>', text, re.S)
    assert m, f"no hover data for {map_id}"
    return json.loads(m[1])


def _assert_self_contained(text: str) -> None:
    for attr, value in re.findall(r"\s(src|href)\s*=\s*[\"']?([^\"'\s>]*)", text):
        assert value.startswith("#"), f"{attr}={value}: a reference outside the file"
    assert not re.search(r"url\(\s*['\"]?(?!#)", text), "a CSS url() outside the file"
    assert "@import" not in text and "<link" not in text and "<iframe" not in text
    assert "http://" not in text and "https://" not in text


def test_report_has_every_section_and_is_self_contained(
    runs: dict[str, Path], full_report: str
) -> None:
    assert (runs["full"] / "report.html").is_file()
    for sid in RUN_SECTIONS:
        assert "<h2>" in _section(full_report, sid) or sid == "header"
    _assert_self_contained(full_report)
    assert full_report.count("<script>") == 1  # the map script, inline
    # clock times, not seconds since midnight, in the header and the KPI table
    assert "06:30 - 06:40 (10min)" in _section(full_report, "header")
    kpis = pd.read_parquet(runs["full"] / "kpis.parquet")
    peak_at = float(kpis.set_index("kpi").loc["energy.peak_at_s", "value"])
    assert kpi_text("energy.peak_at_s", peak_at, "s") in _section(full_report, "kpis")
    assert full_report.count("<tr><td>energy.") >= 10  # the full KPI table, in <details>
    assert "<details>" in _section(full_report, "kpis")
    # the plots are inline SVG with titles, their ids made unique across figures
    ids = re.findall(r'\bid="([^"]+)"', full_report)
    assert len(ids) == len(set(ids))
    for title in [
        "Vehicles on the network",
        "Mean network speed",
        "Completed trips",
        "Substation load over the day",
        "Voltage range over the day",
        "Busiest transformers",
        "EV charging power",
    ]:
        assert title in full_report


def test_road_map_has_a_path_per_link_with_hover_figures(
    runs: dict[str, Path], full_report: str
) -> None:
    net = pd.read_parquet(runs["full"] / "network.parquet")
    road = _section(full_report, "road-map")
    roads = re.search(r'<g data-s="link" class="roads">(.*?)</g></g>', road, re.S)[0]
    drawn = [int(i) for i in re.findall(r'<path class="q[0-9n]+" data-i="(\d+)"', roads)]
    assert sorted(drawn) == list(range(len(net)))
    data = _map_data(full_report, "map-roads")
    fields = [f[0] for f in data["link"]["fields"]]
    assert fields[:2] == ["street", "road class"] and "mean speed" in fields
    rows = data["link"]["rows"]
    assert len(rows) == len(net)
    # a link's hover row carries its figures in the peak interval of the links table
    links = pd.read_parquet(runs["full"] / "links.parquet")
    t0 = re.search(r"Peak interval <b>(\d\d:\d\d)", road)[1]
    start = links["t_start_s"].unique()
    t_start = next(t for t in start if kpi_text("x_at_s", t, "s") == t0)
    sel = links[links["t_start_s"] == t_start].set_index("link")
    busiest = int(sel["flow_vph"].idxmax())
    i = int(np.flatnonzero(net["link"].to_numpy() == busiest)[0])
    assert rows[i][fields.index("flow")] == round(sel.loc[busiest, "flow_vph"])
    assert rows[i][fields.index("link")] == busiest
    speed = sel.loc[busiest, "mean_speed_mps"] * 3.6
    assert rows[i][fields.index("mean speed")] == pytest.approx(speed, abs=0.051)
    assert "speed / free-flow speed" in road  # the colour bar
    # the path geometry is the projected WKT, in 0.1 px steps
    d = re.search(rf'data-i="{i}" d="([^"]+)"', roads)[1]
    assert d.startswith("M") and "l" in d


def test_grid_map_and_transformers(runs: dict[str, Path], full_report: str) -> None:
    trafos = pd.read_parquet(runs["full"] / "transformers.parquet")
    grid = _section(full_report, "grid-map")
    assert len(re.findall(r'<circle class="f[0-9n]+" data-i="\d+"', grid)) == len(trafos)
    data = _map_data(full_report, "map-grid")
    assert len(data["trafo"]["rows"]) == len(trafos)
    top = trafos.sort_values("peak_loading_percent").iloc[-1]
    top_id = int(top["transformer"])
    row = data["trafo"]["rows"][int(np.flatnonzero(trafos["transformer"] == top_id)[0])]
    assert row[0] == f"transformer {top_id}"
    assert row[4] == pytest.approx(top["peak_loading_percent"], abs=0.051)
    assert "gl-lv" in grid and "gl-mv" in grid
    busiest = _section(full_report, "transformers")
    assert f'<td class="num">{top_id}</td>' in busiest
    assert "rating (100 %)" in busiest


def test_interventions_are_listed_and_marked(runs: dict[str, Path], full_report: str) -> None:
    iv = _section(full_report, "interventions")
    assert "Close &quot;Main&quot; St &lt;b&gt;&amp; co&lt;/b&gt;" in iv  # escaped
    assert "<b>& co</b>" not in full_report
    assert "06:32" in iv and "end of run" in iv  # clock times
    assert "06:30" in iv and "06:35" in iv
    assert "transformers 0" in iv
    # the closed links are outlined on the road map with the links' own geometry
    net = pd.read_parquet(runs["full"] / "network.parquet").set_index("link")
    road = _section(full_report, "road-map")
    closed = re.search(r'<path class="ivl" data-i="0" d="([^"]+)"', road)
    assert closed
    roads = re.search(r'<g data-s="link" class="roads">(.*?)</g></g>', road, re.S)[0]
    for link in CLOSED_LINKS:
        row = int(np.flatnonzero(net.index.to_numpy() == link)[0])
        assert re.search(rf'data-i="{row}" d="([^"]+)"', roads)[1] in closed[1]
    assert _map_data(full_report, "map-roads")["iv"]["rows"][0][1] == "close_road"
    grid = _section(full_report, "grid-map")
    assert '<circle class="ivt" data-i="1"' in grid  # the transformer out of service, ringed
    assert '<path class="ivp" data-i="1"' in grid  # and its point


def test_report_without_energy_omits_those_sections(runs: dict[str, Path]) -> None:
    text = write_report(runs["traffic"]).read_text()
    for sid in RUN_SECTIONS:
        _section(text, sid)
    for sid in ENERGY_SECTIONS:
        assert '<p class="note">' in _section(text, sid)
        assert "<svg" not in _section(text, sid)
    assert "No interventions" in _section(text, "interventions")
    assert "<svg" in _section(text, "road-map") and "<svg" in _section(text, "traffic")
    _assert_self_contained(text)


def test_report_with_nearly_nothing(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run directory that lost every table but the KPIs (or even those) still reports."""
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(runs["full"] / "kpis.parquet", bare)
    shutil.copy(runs["full"] / "scenario.toml", bare)
    text = write_report(bare).read_text()
    for sid in RUN_SECTIONS:
        _section(text, sid)
    assert "traffic.trips" in text
    (bare / "kpis.parquet").unlink()
    (bare / "scenario.toml").unlink()
    text = write_report(bare).read_text()
    for sid in RUN_SECTIONS:
        _section(text, sid)
    # links missing, network present: the network is drawn without congestion colours
    part = tmp_path / "part"
    shutil.copytree(runs["traffic"], part)
    (part / "links.parquet").unlink()
    (part / "links.csv").unlink()
    road = _section(write_report(part).read_text(), "road-map")
    assert "No per-link traffic results" in road and 'class="qn"' in road


def test_kpi_text() -> None:
    assert kpi_text("energy.peak_at_s", 34140.0, "s") == "09:29"
    assert kpi_text("traffic.mean_duration_s", 482.3, "s") == "482 s (8.0 min)"
    assert kpi_text("energy.peak_kw", 18283.9, "kW") == "18,284 kW (18.28 MW)"
    assert kpi_text("energy.v_min_pu", 0.97559, "pu") == "0.976 pu"
    assert kpi_text("traffic.trips", 24010.0, "count") == "24,010"
    assert kpi_text("x", math.nan, "kW") == "–"


def test_line_paths_round_trip() -> None:
    proj = Projection(-76.6, 39.25, -76.5, 39.3)
    d = line_paths(["LINESTRING (-76.6 39.3, -76.5 39.3, -76.5 39.25)", None, "nonsense"], proj)
    assert d[1] == "" and d[2] == ""
    nums = [float(x) for x in re.findall(r"-?\d*\.?\d+", d[0])]
    x0, y0, dx1, dy1, dx2, dy2 = nums
    assert (x0, y0) == (12.0, 12.0)  # the north-west corner, inside the margin
    assert dy1 == 0 and dx2 == 0 and dx1 > 0 and dy2 > 0
    assert dx1 == pytest.approx(976.0, abs=0.1)  # the wider extent spans the view box


class _Rows(HTMLParser):
    """Each ``<tr data-kpi>`` of a comparison's all-KPI table: name -> raw data-* numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, list[float]]] = {}
        self._kpi: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr":
            self._kpi = a.get("data-kpi")
            if self._kpi is not None:
                self.rows[self._kpi] = {"v": [], "d": [], "r": []}
        elif tag == "td" and self._kpi is not None:
            for k in ("v", "d", "r"):
                if f"data-{k}" in a:
                    self.rows[self._kpi][k].append(float(a[f"data-{k}"]))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_comparison_kpis_and_difference_maps(runs: dict[str, Path]) -> None:
    out = runs["root"] / "compare"
    # a third run: the first with every transformer 10 points more loaded (same grid)
    hot = out / "hot"
    shutil.copytree(runs["full"], hot)
    tr = pd.read_parquet(hot / "transformers.parquet")
    tr["peak_loading_percent"] += 10.0
    tr.to_parquet(hot / "transformers.parquet", index=False)
    dirs = [runs["full"], runs["traffic"], hot]
    path = write_comparison(dirs, out, labels=["base", "no energy", "hot"])
    assert path == out / "compare.html"
    text = path.read_text()
    for sid in COMPARE_SECTIONS:
        _section(text, sid)
    _assert_self_contained(text)
    # every KPI of any run has a row; values and differences match the kpis tables
    tables = [pd.read_parquet(d / "kpis.parquet").set_index("kpi")["value"] for d in dirs]
    names = list(dict.fromkeys(k for t in tables for k in t.index))
    parser = _Rows()
    parser.feed(re.search(r'<div class="all-kpis">.*?</div>', text, re.S)[0])
    assert list(parser.rows) == names
    for name in names:
        values = [float(t.get(name, np.nan)) for t in tables]
        row = parser.rows[name]
        assert all(_same(a, b) for a, b in zip(row["v"], values, strict=True)), name
        for k, v in enumerate(values[1:]):
            base = values[0]
            diff = v - base
            rel = 100 * diff / abs(base) if base else math.nan
            assert _same(row["d"][k], diff), name
            assert _same(row["r"][k], rel), name
    # difference maps: roads for every pair on the same map, the grid where both have one
    diff = _section(text, "difference-maps")
    net = pd.read_parquet(runs["full"] / "network.parquet")
    for k in (1, 2):
        for kind in ("speed", "flow"):
            m = re.search(rf'<div class="map" id="diff-{kind}-{k}".*?</svg>', diff, re.S)
            assert m, (kind, k)
            assert len(re.findall(r'<path class="q[0-9nx]+" data-i="\d+"', m[0])) == len(net)
    assert "no grid difference map" in diff  # the run without energy
    rows = _map_data(text, "diff-grid-2")["trafo"]["rows"]
    assert len(rows) == len(tr) and all(r[6] == pytest.approx(10.0) for r in rows)
    assert "change in peak loading" in diff
    assert "interventions" in diff  # the first run's closure, marked on its difference maps
    assert "Close &quot;Main&quot;" in _section(text, "interventions")
    for title in [
        "Vehicles on the network",
        "Mean network speed",
        "Substation load",
        "Lowest voltage on the grid",
    ]:
        assert title in _section(text, "timeseries")


def test_comparison_of_runs_on_different_maps(runs: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(runs["traffic"], other)
    net = pd.read_parquet(other / "network.parquet")
    net.iloc[1:].to_parquet(other / "network.parquet", index=False)
    text = write_comparison([runs["traffic"], other], tmp_path).read_text()
    assert "different road network" in _section(text, "difference-maps")
    assert 'id="diff-speed-1"' not in text
    assert "baltimore-short (traffic)" in text and "baltimore-short (other)" in text


def _chromium() -> str | None:
    return next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
    )


def _render(page: Path, png: Path, size: str) -> str:
    """Render ``page`` in headless Chromium with the network disabled; the DOM after its
    scripts ran (and a screenshot in ``png``)."""
    browser = _chromium()
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={png.parent / 'chromium-profile'}",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--window-size={size}",
        "--virtual-time-budget=5000",
        f"--screenshot={png}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt install chromium)")
def test_reports_render_in_chromium(
    runs: dict[str, Path], full_report: str, tmp_path: Path
) -> None:
    import matplotlib.image

    pages = [(runs["full"] / "report.html", RUN_SECTIONS)]
    compare = runs["root"] / "compare" / "compare.html"
    if not compare.exists():
        write_comparison([runs["full"], runs["traffic"]], compare.parent)
    pages.append((compare, COMPARE_SECTIONS))
    for k, (page, sections) in enumerate(pages):
        png = tmp_path / f"shot{k}.png"
        dom = _render(page, png, "1400,4000")
        assert re.search(r'<body[^>]*data-ready="1"', dom), "the map script did not finish"
        for sid in sections:
            assert f'<section id="{sid}">' in dom
        assert not re.search(r"<div[^>]*data-error=", dom)
        img = matplotlib.image.imread(png)
        assert img.shape[0] >= 2000 and img.shape[1] >= 1000
        assert float(img[..., :3].std()) > 0.05, "blank screenshot"


# run after the report's own script: hover a street, zoom with the wheel, drag; record results
_INTERACT_JS = """<script>
(function () {
  var svg = document.querySelector("#map-roads > svg");
  var path = document.querySelector('#map-roads path[data-i="ROW"]');
  var box = path.getBoundingClientRect(), x = box.x + box.width / 2, y = box.y + box.height / 2;
  path.dispatchEvent(new PointerEvent("pointermove", {bubbles: true, clientX: x, clientY: y}));
  var tip = document.getElementById("tip");
  document.body.setAttribute("data-tip", tip.style.display + "|" + tip.textContent);
  var vb = svg.viewBox.baseVal, w0 = vb.width;
  svg.dispatchEvent(new WheelEvent("wheel", {bubbles: true, cancelable: true, deltaY: -100,
                                             clientX: x, clientY: y}));
  document.body.setAttribute("data-zoom", (vb.width / w0).toFixed(3));
  var x0 = vb.x;
  svg.dispatchEvent(new PointerEvent("pointerdown", {bubbles: true, clientX: x, clientY: y}));
  svg.dispatchEvent(new PointerEvent("pointermove", {bubbles: true, clientX: x + 80, clientY: y}));
  window.dispatchEvent(new PointerEvent("pointerup", {bubbles: true}));
  document.body.setAttribute("data-pan", vb.x < x0 ? "1" : "0");
})();
</script></body>"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt install chromium)")
def test_map_hover_zoom_and_pan_in_chromium(
    runs: dict[str, Path], full_report: str, tmp_path: Path
) -> None:
    data = _map_data(full_report, "map-roads")["link"]
    fields = [f[0] for f in data["fields"]]
    row = max(range(len(data["rows"])), key=lambda i: data["rows"][i][fields.index("flow")] or 0)
    page = tmp_path / "interact.html"
    page.write_text(full_report.replace("</body>", _INTERACT_JS.replace("ROW", str(row)), 1))
    dom = _render(page, tmp_path / "interact.png", "1400,2400")
    body = re.search(r"<body([^>]*)>", dom)[1]
    tip = html.unescape(re.search(r'data-tip="([^"]*)"', body)[1])
    name = data["rows"][row][0]
    assert tip.startswith("block|") and name in tip
    assert "mean speed: " in tip and "veh/h" in tip
    assert 'data-zoom="0.800"' in body
    assert 'data-pan="1"' in body
