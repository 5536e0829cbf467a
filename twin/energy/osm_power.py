"""Power features of an OSM file: substations, transformers and lines, as projected arrays.

One pass of pyosmium over the objects tagged ``power=*`` (node locations kept, so ways come
with their coordinates; this works on files not sorted by id, such as
``maps/columbus.osm.bz2``, where node locations that are not known yet are skipped and
counted). What is read (tags as on the OSM wiki, ``Key:power``):

- **substations**: ``power=substation`` and the deprecated ``power=sub_station``, as nodes or
  closed ways (the polygon's centroid); ``substation=*`` is kept as the kind, and
  ``substation=minor_distribution`` marks an MV/LV kiosk (:attr:`PowerFeatures.sub_minor`).
  Multipolygon relations are counted in ``skipped_relations`` but not read (rare for
  substations; a relation's outline would need area assembly).
- **transformers**: ``power=transformer`` nodes (closed ways: their centroid); the highest of
  ``voltage`` and ``voltage:primary`` is the primary voltage, ``voltage:secondary`` the
  secondary one.
- **lines**: ``power=line``, ``minor_line`` and ``cable`` ways as polylines, with the highest
  value of their ``voltage`` tag; ``line=busbar`` / ``bay`` (wiring inside a substation) are
  flagged in :attr:`PowerFeatures.line_in_substation`.

Voltages are OSM's: volts, several circuits separated by ``;``; values that are not numbers
(``medium``, ``low``) read as unknown (nan). Arrays are stored in kV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
import shapely
from pyproj import Transformer

from twin.errors import MapError
from twin.memo import file_memo
from twin.network.osm import map_format

SUBSTATION_TAGS = ("substation", "sub_station")  # power=*; sub_station is the old spelling
LINE_KINDS = ("line", "minor_line", "cable")  # power=* of ways read as lines (index: line_kind)
MINOR_DISTRIBUTION = "minor_distribution"  # substation=* of an MV/LV kiosk
IN_SUBSTATION_LINES = ("busbar", "bay")  # line=* of wiring inside a substation


@dataclass(eq=False)
class PowerFeatures:
    """Mapped power infrastructure of one map; coordinates in the map's metres (``crs``)."""

    crs: str
    # substations (one row per node or closed way)
    sub_x_m: np.ndarray  # float64 location (a polygon's centroid)
    sub_y_m: np.ndarray
    sub_kind: np.ndarray  # object: the substation=* value ("" when not tagged)
    sub_minor: np.ndarray  # bool: substation=minor_distribution (an MV/LV kiosk)
    sub_voltage_kv: np.ndarray  # float64 highest voltage tagged; nan
    sub_osm_id: np.ndarray  # int64 OSM id (node or way, see sub_is_way)
    sub_is_way: np.ndarray  # bool
    sub_name: np.ndarray  # object: name=* ("" when not tagged)
    # transformers
    trafo_x_m: np.ndarray  # float64
    trafo_y_m: np.ndarray
    trafo_primary_kv: np.ndarray  # float64 highest of voltage / voltage:primary; nan
    trafo_secondary_kv: np.ndarray  # float64 voltage:secondary; nan
    trafo_osm_id: np.ndarray  # int64
    # lines and cables: CSR polylines
    line_offsets: np.ndarray  # int64 (n_lines + 1,) into line_xy_m
    line_xy_m: np.ndarray  # float64 (n_points, 2)
    line_kind: np.ndarray  # int8 index into LINE_KINDS
    line_voltage_kv: np.ndarray  # float64 highest voltage tagged; nan
    line_in_substation: np.ndarray  # bool: line=busbar / bay
    line_osm_id: np.ndarray  # int64 way id
    # what could not be read
    skipped_relations: int = 0  # multipolygon substations (not read)
    skipped_missing_nodes: int = 0  # way nodes without a location in the file

    @property
    def n_substations(self) -> int:
        return len(self.sub_x_m)

    @property
    def n_transformers(self) -> int:
        return len(self.trafo_x_m)

    @property
    def n_lines(self) -> int:
        return len(self.line_kind)

    @property
    def line_length_m(self) -> np.ndarray:
        """float64 length of each line's polyline."""
        seg = np.hypot(*np.diff(self.line_xy_m, axis=0).T) if len(self.line_xy_m) else np.zeros(0)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        return cum[self.line_offsets[1:] - 1] - cum[self.line_offsets[:-1]]

    def line_geometry(self, line: int) -> np.ndarray:
        """The (k, 2) polyline of one line in metres."""
        return self.line_xy_m[self.line_offsets[line] : self.line_offsets[line + 1]]

    def summary(self) -> dict[str, int | float]:
        """Counts, JSON-able."""
        return {
            "substations": int((~self.sub_minor).sum()),
            "minor_distribution": int(self.sub_minor.sum()),
            "transformers": self.n_transformers,
            **{f"{k}s": int((self.line_kind == i).sum()) for i, k in enumerate(LINE_KINDS)},
            "line_km": float(self.line_length_m.sum() / 1000.0),
            "skipped_relations": self.skipped_relations,
            "skipped_missing_nodes": self.skipped_missing_nodes,
        }


def parse_voltage_kv(text: str | None) -> float:
    """The highest voltage in an OSM ``voltage`` value (volts, ``;``-separated) in kV; nan."""
    best = np.nan
    for part in (text or "").split(";"):
        try:
            volts = float(part.strip())
        except ValueError:
            continue
        if np.isfinite(volts) and volts > 0 and not volts / 1000.0 <= best:
            best = volts / 1000.0
    return best


def empty_power_features(crs: str) -> PowerFeatures:
    """A map with no power features."""
    f64, i64 = np.zeros(0), np.zeros(0, dtype=np.int64)
    return PowerFeatures(
        crs, f64, f64, np.zeros(0, dtype=object), np.zeros(0, dtype=bool), f64, i64,
        np.zeros(0, dtype=bool), np.zeros(0, dtype=object), f64, f64, f64, f64, i64,
        np.zeros(1, dtype=np.int64), np.zeros((0, 2)), np.zeros(0, dtype=np.int8), f64,
        np.zeros(0, dtype=bool), i64,
    )  # fmt: skip


class _Reader:
    """Collects the features in lon/lat while pyosmium walks the file."""

    def __init__(self) -> None:
        self.sub: list[tuple[float, float, str, bool, float, int, bool, str]] = []
        self.trafo: list[tuple[float, float, float, float, int]] = []
        self.line_pts: list[list[tuple[float, float]]] = []
        self.line_meta: list[tuple[int, float, bool, int]] = []
        self.skipped_relations = 0
        self.skipped_missing_nodes = 0

    def points(self, way: osmium.osm.Way) -> list[tuple[float, float]]:
        pts = []
        for n in way.nodes:
            if n.location.valid():
                pts.append((n.location.lon, n.location.lat))
            else:
                self.skipped_missing_nodes += 1
        return pts

    def centre(self, obj: osmium.osm.Node | osmium.osm.Way) -> tuple[float, float] | None:
        if obj.is_node():
            loc = obj.location
            return (loc.lon, loc.lat) if loc.valid() else None
        pts = self.points(obj)
        if not pts:
            return None
        if len(pts) >= 4 and obj.is_closed():
            c = shapely.Polygon(pts).centroid  # in degrees: fine at substation scale
            if not c.is_empty:
                return (c.x, c.y)
        arr = np.asarray(pts)
        return (float(arr[:, 0].mean()), float(arr[:, 1].mean()))

    def add(self, obj: osmium.osm.OSMObject) -> None:
        tags = obj.tags
        power = tags.get("power")
        if obj.is_relation():
            if power in SUBSTATION_TAGS:
                self.skipped_relations += 1
            return
        if power in SUBSTATION_TAGS or power == "transformer":
            if obj.is_way() and not obj.is_closed():
                return  # a substation or transformer drawn as an open way: not an outline
            c = self.centre(obj)
            if c is None:
                return
            if power == "transformer":
                primary = max(
                    parse_voltage_kv(tags.get("voltage")),
                    parse_voltage_kv(tags.get("voltage:primary")),
                    key=lambda v: -np.inf if np.isnan(v) else v,
                )
                secondary = parse_voltage_kv(tags.get("voltage:secondary"))
                self.trafo.append((*c, primary, secondary, obj.id))
                return
            kind = tags.get("substation", "")
            self.sub.append(
                (*c, kind, kind == MINOR_DISTRIBUTION, parse_voltage_kv(tags.get("voltage")),
                 obj.id, obj.is_way(), tags.get("name", ""))
            )  # fmt: skip
        elif power in LINE_KINDS and obj.is_way():
            pts = self.points(obj)
            if len(pts) >= 2:
                self.line_pts.append(pts)
                self.line_meta.append(
                    (
                        LINE_KINDS.index(power),
                        parse_voltage_kv(tags.get("voltage")),
                        tags.get("line") in IN_SUBSTATION_LINES,
                        obj.id,
                    )
                )


@file_memo()
def read_power_features(path: str | Path, crs: str) -> PowerFeatures:
    """Substations, transformers and lines of the OSM file ``path``, projected to ``crs``.

    Raises :class:`~twin.errors.MapError` (naming the file) when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise MapError(f"{path}: map file not found")
    reader = _Reader()
    try:
        fp = osmium.FileProcessor(osmium.io.File(str(path), map_format(path)))
        for obj in fp.with_locations().with_filter(osmium.filter.KeyFilter("power")):
            reader.add(obj)
    except RuntimeError as exc:  # libosmium reports decoder and parser errors this way
        raise MapError(f"{path}: not a readable OSM file ({exc})") from None
    return _project(reader, crs)


def _project(r: _Reader, crs: str) -> PowerFeatures:
    to_m = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def xy(lonlat: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
        if not lonlat:
            return np.zeros(0), np.zeros(0)
        a = np.asarray(lonlat, dtype=np.float64)
        x, y = to_m.transform(a[:, 0], a[:, 1])
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    out = empty_power_features(crs)
    if r.sub:
        cols = list(zip(*r.sub, strict=True))
        out.sub_x_m, out.sub_y_m = xy(list(zip(cols[0], cols[1], strict=True)))
        out.sub_kind = np.asarray(cols[2], dtype=object)
        out.sub_minor = np.asarray(cols[3], dtype=bool)
        out.sub_voltage_kv = np.asarray(cols[4], dtype=np.float64)
        out.sub_osm_id = np.asarray(cols[5], dtype=np.int64)
        out.sub_is_way = np.asarray(cols[6], dtype=bool)
        out.sub_name = np.asarray(cols[7], dtype=object)
    if r.trafo:
        cols = list(zip(*r.trafo, strict=True))
        out.trafo_x_m, out.trafo_y_m = xy(list(zip(cols[0], cols[1], strict=True)))
        out.trafo_primary_kv = np.asarray(cols[2], dtype=np.float64)
        out.trafo_secondary_kv = np.asarray(cols[3], dtype=np.float64)
        out.trafo_osm_id = np.asarray(cols[4], dtype=np.int64)
    if r.line_pts:
        sizes = np.array([len(p) for p in r.line_pts], dtype=np.int64)
        x, y = xy([p for pts in r.line_pts for p in pts])
        out.line_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        out.line_xy_m = np.column_stack([x, y])
        cols = list(zip(*r.line_meta, strict=True))
        out.line_kind = np.asarray(cols[0], dtype=np.int8)
        out.line_voltage_kv = np.asarray(cols[1], dtype=np.float64)
        out.line_in_substation = np.asarray(cols[2], dtype=bool)
        out.line_osm_id = np.asarray(cols[3], dtype=np.int64)
    out.skipped_relations = r.skipped_relations
    out.skipped_missing_nodes = r.skipped_missing_nodes
    return out
