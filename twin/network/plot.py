"""Draw a RoadNet: links by road class (width by lanes), signalised intersections marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from twin.network.road import RoadNet

CLASS_COLOURS = {  # one colour per group of road classes
    "motorway": "#c0392b",
    "trunk": "#d35400",
    "primary": "#e67e22",
    "secondary": "#f1c40f",
    "tertiary": "#7f8c8d",
}
OTHER_COLOUR = "#95a5a6"


def plot_roadnet(
    net: RoadNet, path: str | Path, *, title: str | None = None, dpi: int = 150
) -> Path:
    """Write a PNG (or any matplotlib format, by suffix) of the network; returns the path."""
    names = net.highway_names
    segments = [net.link_geometry(i) for i in range(net.n_links)]
    colours = []
    for code in net.link_highway:
        base = names[code].removesuffix("_link")
        colours.append(CLASS_COLOURS.get(base, OTHER_COLOUR))
    widths = 0.4 + 0.35 * np.minimum(net.link_lanes, 4)
    fig, ax = plt.subplots(figsize=(10, 10))
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths))
    if net.n_signals:
        ax.scatter(
            net.node_x_m[net.signal_node],
            net.node_y_m[net.signal_node],
            s=14,
            c="#2ecc71",
            edgecolors="black",
            linewidths=0.4,
            zorder=3,
            label=f"signalised intersections ({net.n_signals})",
        )
        ax.legend(loc="upper right", fontsize=8)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    s = net.summary()
    ax.set_title(
        title
        or f"{Path(str(s['file'])).name}: {s['nodes']} nodes, {s['links']} links, "
        f"{s['lane_km']:.0f} lane-km",
        fontsize=10,
    )
    ax.annotate(
        "© OpenStreetMap contributors (ODbL)",
        xy=(0.01, 0.01),
        xycoords="axes fraction",
        fontsize=7,
        color="#555555",
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
