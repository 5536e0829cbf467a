"""Cut an OSM extract to a smaller box, the way bounding-box extract tools do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmium


def clip_extract(src: Path, dst: Path, fraction: float) -> tuple[float, float, float, float]:
    """Cut ``src`` to a smaller box written to ``dst``; return the box (west, south, east,
    north).

    This is ``osmium extract --strategy simple``: the nodes inside the box, and every way with
    at least one node inside, with its full node list, so ways crossing the edge of the box
    reference nodes that are not in the output. Relations are left out. The box is centred on
    the median node position and spans ``fraction`` of the file's extent in each direction.
    """
    lon, lat = [], []
    for node in osmium.FileProcessor(str(src), osmium.osm.NODE):
        lon.append(node.location.lon)
        lat.append(node.location.lat)
    lon_a, lat_a = np.array(lon), np.array(lat)
    half_w = (lon_a.max() - lon_a.min()) * fraction / 2
    half_h = (lat_a.max() - lat_a.min()) * fraction / 2
    cx, cy = float(np.median(lon_a)), float(np.median(lat_a))
    west, south, east, north = cx - half_w, cy - half_h, cx + half_w, cy + half_h
    inside: set[int] = set()
    with osmium.SimpleWriter(str(dst), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY):
            if obj.is_node():
                loc = obj.location
                if west <= loc.lon <= east and south <= loc.lat <= north:
                    inside.add(obj.id)
                    writer.add_node(obj)
            elif any(ref.ref in inside for ref in obj.nodes):
                writer.add_way(obj)
    return west, south, east, north
