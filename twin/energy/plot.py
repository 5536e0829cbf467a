"""Draw a synthesised city grid over its roads, and summarise it (``twin grid info``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from twin.energy.design import design_load_kw
from twin.energy.osm_power import PowerFeatures
from twin.energy.synthesis import (
    KIND_LV_CABLE,
    KIND_MV_CABLE,
    KIND_SERVICE,
    LEVEL_LV,
    LEVEL_MV,
    CityGrid,
)
from twin.network.road import RoadNet

COLOURS = {  # by voltage level
    "road": "#d5d8dc",
    "HV": "#8e44ad",  # mapped 110 kV+ lines, substations
    "MV": "#c0392b",
    "LV": "#2471a3",
    "service": "#a9cce3",
    "transformer": "#f39c12",
}


def _key(x: float) -> str:
    return f"{x:g}"


def grid_summary(city: CityGrid) -> dict[str, Any]:
    """What the grid holds, JSON-able: sizes, cable km by level, equipment by rating, feeders."""
    g = city.grid
    kind = city.branch_kind
    km = np.nan_to_num(g.branch_length_km)
    lv_f = city.feeder_level == LEVEL_LV
    mv_f = city.feeder_level == LEVEL_MV
    service_m = km[city.connection_service] * 1000.0  # one per building / street home
    tr_units: Counter[str] = Counter()
    for kva, n in zip(city.trafo_kva.tolist(), city.trafo_parallel.tolist(), strict=True):
        tr_units[_key(kva)] += n
    sub_units: Counter[str] = Counter()
    for mva, n in zip(city.sub_mva.tolist(), city.sub_parallel.tolist(), strict=True):
        sub_units[_key(mva)] += n
    hh_tr = city.trafo_households
    return {
        "name": g.name,
        "buses": g.n_bus,
        "branches": g.n_branch,
        "lines": g.n_branch - g.n_trafo,
        "voltage_levels_kv": sorted({float(v) for v in g.bus_vn_kv}),
        "substations": city.n_substations,
        "substations_mapped": int((city.sub_osm_id >= 0).sum()),
        "substations_idle": int((city.sub_households == 0).sum()),
        "mapped_power_features_used": int(city.sub_merged.sum()),
        "hv_mv_transformers_by_mva": dict(sorted(sub_units.items(), key=lambda kv: float(kv[0]))),
        "mv_lv_transformers": city.n_transformers,
        "mv_lv_transformers_by_kva": dict(sorted(tr_units.items(), key=lambda kv: float(kv[0]))),
        "mv_lv_transformers_anchored": int((city.trafo_anchor_osm_id >= 0).sum()),
        "mv_lv_transformers_dedicated": int(city.trafo_dedicated.sum()),
        "installed_mv_lv_mva": float((city.trafo_kva * city.trafo_parallel).sum() / 1000.0),
        "mv_km": float(km[kind == KIND_MV_CABLE].sum()),
        "lv_km": float(km[kind == KIND_LV_CABLE].sum()),
        "lv_spur_km": float(km[(kind == KIND_LV_CABLE) & city.branch_spur].sum()),
        "service_km": float(km[kind == KIND_SERVICE].sum()),
        "tee_buses": int(((city.bus_level == LEVEL_LV) & (city.bus_node < 0)).sum())
        - city.n_connections,
        "service_connections": city.n_connections,
        "lv_m_per_household": float(km[kind == KIND_LV_CABLE].sum() * 1000.0)
        / max(city.n_households, 1),
        "service_m_per_connection": float(service_m.mean()) if len(service_m) else 0.0,
        "households": city.n_households,
        "households_connected": int((city.household_bus >= 0).sum()),
        "households_per_transformer_mean": float(hh_tr.mean()) if len(hh_tr) else 0.0,
        "households_per_transformer_max": int(hh_tr.max(initial=0)),
        "households_per_transformer_min": int(hh_tr.min()) if len(hh_tr) else 0,
        "design_load_mw": float(design_load_kw(city.n_households, city.cfg) / 1000.0),
        "mv_feeders": int(mv_f.sum()),
        "lv_feeders": int(lv_f.sum()),
        "max_mv_feeder_m": float(city.feeder_length_m[mv_f].max(initial=0.0)),
        "max_lv_feeder_m": float(city.feeder_length_m[lv_f].max(initial=0.0)),
        "median_service_m": float(np.median(service_m)) if len(service_m) else 0.0,
        "max_service_m": float(service_m.max(initial=0.0)),
        "services_at_max": int((service_m >= city.cfg.max_service_m * (1 - 1e-12)).sum()),
        "timings_s": dict(city.timings_s),
    }


def _piece(xy: np.ndarray, f0: float, f1: float) -> np.ndarray:
    """The part of the polyline ``xy`` between the fractions ``f0`` and ``f1`` of its length."""
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if cum[-1] <= 0:
        return xy[[0, -1]]
    lo, hi = sorted((f0 * cum[-1], f1 * cum[-1]))
    inner = (cum > lo) & (cum < hi)
    at = np.concatenate([[lo], cum[inner], [hi]])
    return np.column_stack([np.interp(at, cum, xy[:, 0]), np.interp(at, cum, xy[:, 1])])


def cable_polylines(city: CityGrid, net: RoadNet, branches: np.ndarray) -> list[np.ndarray]:
    """Polylines of cables: the stretch of their road link's geometry they follow, or a
    straight line between the buses."""
    g = city.grid
    out = []
    for k in branches.tolist():
        link = city.branch_link[k]
        if link >= 0:
            f0, f1 = city.branch_link_frac_from[k], city.branch_link_frac_to[k]
            out.append(_piece(net.link_geometry(int(link)), f0, f1))
        else:
            a, b = g.branch_from[k], g.branch_to[k]
            out.append(np.array([[g.bus_x_m[a], g.bus_y_m[a]], [g.bus_x_m[b], g.bus_y_m[b]]]))
    return out


def plot_grid(
    city: CityGrid,
    net: RoadNet,
    path: str | Path,
    *,
    power: PowerFeatures | None = None,
    services: bool = True,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Write a PNG (or any matplotlib format, by suffix) of the grid over the roads.

    MV cables red, LV cables blue (house connections light blue, unless ``services`` is
    False), MV/LV transformers orange triangles sized by rating, primary substations purple
    squares, and the mapped HV lines of ``power`` (if given) purple. Returns the path.
    """
    kind = city.branch_kind
    fig, ax = plt.subplots(figsize=(10, 10))
    roads = [net.link_geometry(i) for i in range(net.n_links)]
    ax.add_collection(LineCollection(roads, colors=COLOURS["road"], linewidths=0.5, zorder=1))
    handles = [Line2D([], [], color=COLOURS["road"], lw=1, label="roads")]
    if services:
        seg = cable_polylines(city, net, np.flatnonzero(kind == KIND_SERVICE))
        ax.add_collection(LineCollection(seg, colors=COLOURS["service"], linewidths=0.25, zorder=2))
        handles.append(Line2D([], [], color=COLOURS["service"], lw=1, label="house connections"))
    lv = np.flatnonzero(kind == KIND_LV_CABLE)
    width_lv = 0.6 + 0.3 * np.minimum(city.branch_parallel[lv], 3)
    ax.add_collection(
        LineCollection(
            cable_polylines(city, net, lv), colors=COLOURS["LV"], linewidths=width_lv, zorder=3
        )
    )
    handles.append(Line2D([], [], color=COLOURS["LV"], lw=1.2, label="LV 0.4 kV cables"))
    mv = np.flatnonzero(kind == KIND_MV_CABLE)
    ax.add_collection(
        LineCollection(
            cable_polylines(city, net, mv), colors=COLOURS["MV"], linewidths=1.6, zorder=4
        )
    )
    handles.append(Line2D([], [], color=COLOURS["MV"], lw=1.6, label="MV 20 kV cables"))
    if power is not None and power.n_lines:
        hv = [power.line_geometry(i) for i in range(power.n_lines)]
        ax.add_collection(
            LineCollection(hv, colors=COLOURS["HV"], linewidths=1.2, linestyles="--", zorder=4)
        )
        handles.append(
            Line2D([], [], color=COLOURS["HV"], lw=1.2, ls="--", label="mapped power lines")
        )
    kva = city.trafo_kva * city.trafo_parallel
    ax.scatter(
        net.node_x_m[city.trafo_node], net.node_y_m[city.trafo_node], s=8 + kva / 25.0,
        marker="^", c=COLOURS["transformer"], edgecolors="black", linewidths=0.4, zorder=5,
    )  # fmt: skip
    handles.append(
        Line2D([], [], marker="^", ls="", mfc=COLOURS["transformer"], mec="black",
               label=f"MV/LV transformers ({city.n_transformers}, size by kVA)")
    )  # fmt: skip
    ax.scatter(
        city.sub_x_m, city.sub_y_m, s=140, marker="s", c=COLOURS["HV"], edgecolors="white",
        linewidths=1.0, zorder=6,
    )  # fmt: skip
    handles.append(
        Line2D([], [], marker="s", ls="", mfc=COLOURS["HV"], mec="white", ms=9,
               label=f"HV/MV substations ({city.n_substations})")
    )  # fmt: skip
    ax.legend(handles=handles, loc="upper right", fontsize=7)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    s = grid_summary(city)
    ax.set_title(
        title
        or f"{s['name']}: {s['households']} households, {s['mv_lv_transformers']} transformers, "
        f"{s['mv_km']:.0f} km MV, {s['lv_km']:.0f} km LV",
        fontsize=10,
    )
    ax.annotate(
        "roads © OpenStreetMap contributors (ODbL); cables synthesised",
        xy=(0.01, 0.01), xycoords="axes fraction", fontsize=7, color="#555555",
    )  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
