"""RoadNet: the compiled road network as contiguous, typed numpy arrays.

This is what the traffic kernels read. Conventions:

- nodes ``0..n_nodes-1`` and links ``0..n_links-1`` are sorted by OSM ids, so a map compiles
  to the same arrays on every machine;
- relations are CSR: ``node_out_offsets[i]:node_out_offsets[i+1]`` indexes ``node_out_links``;
  the movements leaving link ``l`` are ``link_mov_offsets[l]:link_mov_offsets[l+1]``; phases of
  signal ``s`` are ``signal_phase_offsets[s]:...+1``; movements of phase ``p`` are
  ``phase_movs[phase_mov_offsets[p]:phase_mov_offsets[p+1]]``;
- lanes are numbered from the kerb: lane 0 is the rightmost (as in SUMO; right-hand traffic);
- coordinates ``node_x_m``/``node_y_m`` are metres in the map's UTM zone (``crs``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from twin.network.tags import HIGHWAY_CLASSES

FORMAT_VERSION = 2

# turn types of a movement (mov_turn)
TURN_U, TURN_LEFT, TURN_THROUGH, TURN_RIGHT = 0, 1, 2, 3
TURN_NAMES = ("U", "left", "through", "right")

# how a junction is controlled (node_control)
CTRL_PRIORITY, CTRL_SIGNAL, CTRL_ALL_WAY_STOP, CTRL_ROUNDABOUT = 0, 1, 2, 3
CONTROL_NAMES = ("priority", "signal", "all-way stop", "roundabout")
# the sign facing traffic that arrives at a link's end node (link_sign)
SIGN_NONE, SIGN_GIVE_WAY, SIGN_STOP = 0, 1, 2
SIGN_NAMES = ("none", "give way", "stop")
OPPOSING_MIN_DEG = 135.0  # two approaches whose headings differ by this much oppose each other


@dataclass(frozen=True)
class BuildOptions:
    """Options that change the compiled network (and so the cache key)."""

    consolidate_m: float = 10.0  # m, osmnx buffer radius: junctions < 2x this apart merge
    signal_snap_m: float = 30.0  # m, farthest a signal node may sit from its junction
    signal_join_m: float = 15.0  # m, buffer radius of signalised junctions (if > consolidate_m)
    # m, farthest a stop / give-way node may sit from its junction: as signal_snap_m (OSM wiki
    # "Tag:highway=stop": mapped at the stop line, a few metres before the junction)
    sign_snap_m: float = 30.0
    keep_largest_scc: bool = True  # keep only the largest strongly connected component
    # lanes a direction of a way of this class whose lanes OSM does not tag, instead of the
    # class default (tags.DEFAULTS); (class, lanes) pairs, sorted
    untagged_lanes: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict:
        """The options as JSON keeps them (``untagged_lanes`` a dict)."""
        return {**asdict(self), "untagged_lanes": dict(self.untagged_lanes)}


@dataclass(eq=False)
class RoadNet:
    """A compiled road network; every array is indexed by node, link, movement or signal."""

    # nodes
    node_x_m: np.ndarray  # float64, UTM easting
    node_y_m: np.ndarray  # float64, UTM northing
    node_lon: np.ndarray  # float64, degrees
    node_lat: np.ndarray  # float64, degrees
    node_osmid: np.ndarray  # int64, smallest OSM node id of the (consolidated) junction
    node_signal: np.ndarray  # int32, signal index or -1
    node_out_offsets: np.ndarray  # int64 CSR into node_out_links
    node_out_links: np.ndarray  # int32
    node_in_offsets: np.ndarray  # int64 CSR into node_in_links
    node_in_links: np.ndarray  # int32
    node_control: np.ndarray  # int8, CTRL_*: priority (signs, else road class), signal, ...
    # links
    link_from: np.ndarray  # int32 node index
    link_to: np.ndarray  # int32 node index
    link_length_m: np.ndarray  # float64
    link_lanes: np.ndarray  # int16, lanes in this direction
    link_speed_mps: np.ndarray  # float64, free-flow (speed limit) speed
    link_capacity_vph: np.ndarray  # float64, all lanes together
    link_highway: np.ndarray  # int8, index into HIGHWAY_CLASSES
    link_way_id: np.ndarray  # int64, OSM id of the (first) way the link came from
    link_speed_default: np.ndarray  # bool, speed from the per-class default, not maxspeed
    link_lanes_default: np.ndarray  # bool, lanes from the per-class default
    link_sign: np.ndarray  # int8, SIGN_* for traffic arriving at link_to (stop, give way)
    link_roundabout: np.ndarray  # bool, part of a roundabout's circulating carriageway
    link_turn_lanes: np.ndarray  # bool, movement lanes from OSM turn:lanes (else the default)
    link_opposing: np.ndarray  # int32, the opposing approach at link_to (-1 none)
    link_mov_offsets: np.ndarray  # int64 CSR into the movement arrays
    link_geom_offsets: np.ndarray  # int64 CSR into link_geom_xy_m
    link_geom_xy_m: np.ndarray  # float64 (n_points, 2), polyline of each link
    # movements (from-link -> to-link at the from-link's downstream node), sorted by from-link
    mov_from_link: np.ndarray  # int32
    mov_to_link: np.ndarray  # int32
    mov_turn: np.ndarray  # int8, TURN_*
    mov_angle_deg: np.ndarray  # float32, signed turning angle, + = right
    mov_lane_first: np.ndarray  # int16, lowest from-link lane that may take it
    mov_lane_last: np.ndarray  # int16, highest from-link lane that may take it
    # signalised intersections
    signal_node: np.ndarray  # int32
    signal_osm_offsets: np.ndarray  # int64 CSR into signal_osm_ids
    signal_osm_ids: np.ndarray  # int64, the OSM signal nodes this intersection stands for
    signal_phase_offsets: np.ndarray  # int64 CSR into phases
    phase_mov_offsets: np.ndarray  # int64 CSR into phase_movs
    phase_movs: np.ndarray  # int32 movement indices served by the phase
    # metadata (JSON-able): source file, crs, options, build report
    meta: dict[str, Any]

    def link_name(self, link: int) -> str:
        """The OSM street name of a link ("" where the way has none)."""
        names = self.meta.get("link_names") or ()
        return names[link] if link < len(names) else ""

    @property
    def n_nodes(self) -> int:
        return len(self.node_x_m)

    @property
    def n_links(self) -> int:
        return len(self.link_from)

    @property
    def n_movements(self) -> int:
        return len(self.mov_from_link)

    @property
    def n_signals(self) -> int:
        return len(self.signal_node)

    @property
    def n_phases(self) -> int:
        return len(self.phase_mov_offsets) - 1

    @property
    def highway_names(self) -> tuple[str, ...]:
        return tuple(self.meta.get("highway_classes", HIGHWAY_CLASSES))

    def link_geometry(self, link: int) -> np.ndarray:
        """The (k, 2) polyline of one link in metres."""
        a, b = self.link_geom_offsets[link], self.link_geom_offsets[link + 1]
        return self.link_geom_xy_m[a:b]

    def out_links(self, node: int) -> np.ndarray:
        return self.node_out_links[self.node_out_offsets[node] : self.node_out_offsets[node + 1]]

    def in_links(self, node: int) -> np.ndarray:
        return self.node_in_links[self.node_in_offsets[node] : self.node_in_offsets[node + 1]]

    def movements_from(self, link: int) -> range:
        return range(self.link_mov_offsets[link], self.link_mov_offsets[link + 1])

    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        return (
            float(self.node_lon.min()),
            float(self.node_lat.min()),
            float(self.node_lon.max()),
            float(self.node_lat.max()),
        )

    def summary(self) -> dict[str, Any]:
        """The headline figures of the network and of how it was built."""
        report = self.meta.get("report", {})
        lane_km = float((self.link_length_m * self.link_lanes).sum() / 1000.0)
        return {
            "file": self.meta.get("source", ""),
            "nodes": self.n_nodes,
            "links": self.n_links,
            "movements": self.n_movements,
            "road_km": round(float(self.link_length_m.sum() / 1000.0), 3),
            "lane_km": round(lane_km, 3),
            "signalised_intersections": self.n_signals,
            "signal_phases": self.n_phases,
            "signal_nodes_in_file": report.get("signal_nodes", 0),
            "signal_nodes_attached": len(self.signal_osm_ids),
            "signal_nodes_dropped": sum(report.get("signals_dropped", {}).values()),
            "ways_repaired": report.get("ways_repaired", 0),
            "ways_dropped_missing_nodes": report.get("ways_dropped_missing_nodes", 0),
            "ways_excluded_not_drivable": sum(report.get("excluded_ways", {}).values()),
            "scc_nodes_dropped": report.get("scc_nodes_dropped", 0),
            "scc_links_dropped": report.get("scc_edges_dropped", 0),
            "cut_carriageway_ends": len(self.meta.get("cut_end_nodes", [])),
            "bbox_lonlat": [round(v, 6) for v in self.bbox_lonlat()],
        }

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write all arrays and the metadata to one ``.npz`` file (no pickle)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
        meta = dict(self.meta, format_version=FORMAT_VERSION)
        arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> RoadNet:
        """Read a network written by :meth:`save`; ValueError if it is another format version."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path}: RoadNet format {meta.get('format_version')}, "
                    f"expected {FORMAT_VERSION}"
                )
            arrays = {f.name: data[f.name] for f in fields(cls) if f.name != "meta"}
        return cls(**arrays, meta=meta)


def report_dict(report: Any) -> dict[str, Any]:
    """A dataclass build report as a JSON-able dict."""
    return asdict(report)
