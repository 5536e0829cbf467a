"""Where things are: the run directory's geometry tables (WKT in longitude/latitude).

A run directory must be readable without the model that wrote it (the HTML report, ``twin
compare`` and the GeoPackage export read only files), so a run writes, beside its results:

- ``network``: one row per link: ids, OSM way and street name, class, lanes, length, speed
  limit, and ``geometry_wkt`` (a ``LINESTRING`` in WGS 84 lon/lat);
- ``grid_lines``: one row per MV and LV cable (house connections left out) with its peak
  loading and its ``geometry_wkt``;
- ``lon`` / ``lat`` columns on the transformer and substation tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

if TYPE_CHECKING:
    from twin.energy.synthesis import CityGrid
    from twin.network.road import RoadNet


def _to_lonlat(net: RoadNet) -> Transformer:
    return Transformer.from_crs(net.meta["crs"], "EPSG:4326", always_xy=True)


def _wkt(lon: np.ndarray, lat: np.ndarray, offsets: np.ndarray) -> list[str]:
    """``LINESTRING`` texts of the polylines ``offsets`` cuts the point arrays into."""
    which = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    lines = shapely.linestrings(np.column_stack([lon, lat]), indices=which)
    return shapely.to_wkt(lines, rounding_precision=6, trim=False).tolist()


def network_table(net: RoadNet) -> pd.DataFrame:
    """One row per link with its attributes and its polyline."""
    xy = net.link_geom_xy_m
    lon, lat = _to_lonlat(net).transform(xy[:, 0], xy[:, 1]) if len(xy) else ([], [])
    names = net.highway_names
    return pd.DataFrame(
        {
            "link": np.arange(net.n_links),
            "from_node": net.link_from,
            "to_node": net.link_to,
            "osm_way": net.link_way_id,
            "name": [net.link_name(i) for i in range(net.n_links)],
            "highway": [names[h] for h in net.link_highway.tolist()],
            "lanes": net.link_lanes,
            "lanes_tagged": ~net.link_lanes_default,  # False: the class default (no OSM tag)
            "length_m": net.link_length_m,
            "speed_limit_mps": net.link_speed_mps,
            "signalised_end": net.node_signal[net.link_to] >= 0,
            "geometry_wkt": _wkt(np.asarray(lon), np.asarray(lat), net.link_geom_offsets),
        }
    )


def node_lonlat(net: RoadNet, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of road nodes (nan where the index is -1)."""
    nodes = np.asarray(nodes, dtype=np.int64)
    ok = nodes >= 0
    lon = np.full(len(nodes), np.nan)
    lat = np.full(len(nodes), np.nan)
    lon[ok] = net.node_lon[nodes[ok]]
    lat[ok] = net.node_lat[nodes[ok]]
    return lon, lat


def grid_lines_table(
    city: CityGrid, net: RoadNet, peak_loading_percent: np.ndarray
) -> pd.DataFrame:
    """MV and LV cables with their level, type, peak loading and polyline."""
    from twin.energy.cable_geometry import cable_xy
    from twin.energy.synthesis import KIND_LV_CABLE, KIND_MV_CABLE

    kind = city.branch_kind
    branches = np.flatnonzero((kind == KIND_MV_CABLE) | (kind == KIND_LV_CABLE))
    xy, offsets = cable_xy(city, net, branches)
    lon, lat = _to_lonlat(net).transform(xy[:, 0], xy[:, 1]) if len(xy) else ([], [])
    return pd.DataFrame(
        {
            "branch": branches,
            "level": np.where(kind[branches] == KIND_MV_CABLE, "MV", "LV"),
            "type": city.branch_type[branches].astype(str),
            "households": city.branch_households[branches],
            "peak_loading_percent": np.asarray(peak_loading_percent)[branches],
            "geometry_wkt": _wkt(np.asarray(lon), np.asarray(lat), offsets),
        }
    )
