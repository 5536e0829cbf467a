"""Draw a synthesised city grid over its roads, and summarise it (``twin grid info``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from twin.energy.cable_geometry import cable_polylines
from twin.energy.osm_power import PowerFeatures
from twin.energy.summary import grid_summary
from twin.energy.synthesis import (
    KIND_LV_CABLE,
    KIND_MV_CABLE,
    KIND_SERVICE,
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
