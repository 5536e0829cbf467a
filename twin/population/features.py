"""Buildings, land use and points of interest of an OSM file, as arrays in the map's metres.

One pass of pyosmium with area assembly (closed ways and multipolygon relations become areas;
multipolygons cut open by the extract's bounding box cannot be assembled and are skipped, as
osmnx's ``features_from_xml`` skips them). Every polygon is reduced to its centroid and its
area; the residential land-use polygons are kept whole, since homes are placed inside them.

Categories (the population model's view of the tags; see the README's "Population"):

- dwellings: ``building`` in RESIDENTIAL_BUILDINGS, or ``building=yes`` inside
  ``landuse=residential``;
- workplaces: ``building`` in WORK_BUILDINGS, other ``building=yes``, ``office=*``,
  ``landuse`` in WORK_LANDUSE, and amenities/shops (they employ people too);
- shops and errands: ``shop=*``, ``amenity`` in ERRAND_AMENITIES, ``building`` retail /
  supermarket / commercial, ``landuse=retail``;
- schools: ``amenity`` in SCHOOL_AMENITIES, ``building`` school / kindergarten / college.

A building with a footprint over MAX_BUILDING_M2 is a mapping error: left out, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
import shapely
from pyproj import Transformer

from twin.errors import MapError
from twin.memo import file_memo
from twin.network.osm import map_format

log = logging.getLogger(__name__)

RESIDENTIAL_BUILDINGS = frozenset(
    {"house", "detached", "terrace", "apartments", "residential", "semidetached_house",
     "bungalow"}
)  # fmt: skip
ONE_DWELLING_BUILDINGS = frozenset({"house", "detached", "semidetached_house", "bungalow"})
WORK_BUILDINGS = frozenset(
    {"office", "commercial", "retail", "industrial", "warehouse", "supermarket", "school",
     "college", "university", "kindergarten", "hospital", "civic", "government", "public",
     "hotel", "manufacture", "Mixed_use", "mixed_use"}
)  # fmt: skip
SHOP_BUILDINGS = frozenset({"retail", "supermarket", "commercial", "kiosk"})
SCHOOL_BUILDINGS = frozenset({"school", "kindergarten", "college"})
WORK_LANDUSE = frozenset({"commercial", "retail", "industrial", "institutional"})
SCHOOL_AMENITIES = frozenset({"school", "kindergarten", "college"})
ERRAND_AMENITIES = frozenset(
    {"restaurant", "cafe", "fast_food", "bar", "pub", "bank", "pharmacy", "marketplace",
     "cinema", "theatre", "library", "post_office", "fuel", "doctors", "dentist", "clinic",
     "hospital", "place_of_worship", "community_centre", "ice_cream", "food_court",
     "veterinary", "car_wash", "arts_centre", "nightclub"}
)  # fmt: skip
# A footprint no building has: the largest on Earth cover ~0.5 km2 (the Aalsmeer flower
# auction hall, 518,000 m2). A larger one is a mapping error (columbus.osm: "LeVeque Tower",
# a 47-storey tower, drawn over 1.8 km2) and would hold a whole city's shops.
MAX_BUILDING_M2 = 1_000_000.0
# Default levels when building:levels is not mapped (judgement: US low-rise city fabric).
DEFAULT_LEVELS = {"apartments": 4.0, "office": 3.0, "hospital": 4.0, "hotel": 4.0}
DEFAULT_LEVELS_OTHER = 2.0

# Kinds of point of interest (POI_KINDS index is stored in ``poi_kind``).
POI_KINDS = ("shop", "errand", "school", "office")

_KEYS = ("building", "landuse", "amenity", "shop", "office")


@dataclass(eq=False)
class MapFeatures:
    """Buildings, land-use areas and POIs of one map; coordinates in the map's UTM metres."""

    bldg_x_m: np.ndarray  # float64 centroid
    bldg_y_m: np.ndarray
    bldg_area_m2: np.ndarray  # float64 footprint
    bldg_levels: np.ndarray  # float64, building:levels or the default for its type
    bldg_flats: np.ndarray  # int32, building:flats, or -1 where not mapped
    bldg_type: np.ndarray  # object array of the building=* value
    bldg_osm_id: np.ndarray  # int64 way id (relation ids negative)
    landuse_x_m: np.ndarray  # float64 centroid
    landuse_y_m: np.ndarray
    landuse_area_m2: np.ndarray
    landuse_type: np.ndarray  # object array of the landuse=* value
    residential_areas: np.ndarray  # shapely Polygons of landuse=residential
    poi_x_m: np.ndarray  # float64
    poi_y_m: np.ndarray
    poi_kind: np.ndarray  # int8 index into POI_KINDS

    @property
    def bldg_floor_m2(self) -> np.ndarray:
        return self.bldg_area_m2 * self.bldg_levels

    def in_residential(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Whether each point lies inside a ``landuse=residential`` area."""
        inside = np.zeros(len(x_m), dtype=bool)
        if len(self.residential_areas) and len(x_m):
            tree = shapely.STRtree(self.residential_areas)
            pts = shapely.points(x_m, y_m)
            hit_pts, _ = tree.query(pts, predicate="within")
            inside[hit_pts] = True
        return inside

    def summary(self) -> dict[str, int]:
        kinds = {k: int((self.poi_kind == i).sum()) for i, k in enumerate(POI_KINDS)}
        return {
            "buildings": len(self.bldg_x_m),
            "landuse_areas": len(self.landuse_x_m),
            "residential_areas": len(self.residential_areas),
            **{f"poi_{k}": v for k, v in kinds.items()},
        }


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) and value > 0 else None


def _poi_kind(tags: osmium.osm.TagList) -> int:
    if "shop" in tags:
        return 0
    amenity = tags.get("amenity")
    if amenity in ERRAND_AMENITIES:
        return 1
    if amenity in SCHOOL_AMENITIES:
        return 2
    if "office" in tags:
        return 3
    return -1


class _Rings:
    """Polygon rings gathered for one vectorised projection: lon/lat points with offsets."""

    def __init__(self) -> None:
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.offsets: list[int] = [0]
        self.owner: list[int] = []  # index of the polygon the ring belongs to
        self.sign: list[float] = []  # +1 outer ring, -1 inner ring

    def add(self, area: osmium.osm.Area | osmium.osm.Way, owner: int) -> None:
        if isinstance(area, osmium.osm.Way):  # a closed way read without area assembly
            self._ring(area.nodes, owner, 1.0)
            return
        for outer in area.outer_rings():
            self._ring(outer, owner, 1.0)
            for inner in area.inner_rings(outer):
                self._ring(inner, owner, -1.0)

    def _ring(
        self, ring: osmium.osm.OuterRing | osmium.osm.WayNodeList, owner: int, sign: float
    ) -> None:
        for node in ring:
            self.lon.append(node.lon)
            self.lat.append(node.lat)
        self.offsets.append(len(self.lon))
        self.owner.append(owner)
        self.sign.append(sign)


def _ring_geometry(
    rings: _Rings, n_polygons: int, to_utm: Transformer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per polygon (area m2, centroid x, centroid y); plus the projected points and offsets."""
    x, y = to_utm.transform(np.asarray(rings.lon), np.asarray(rings.lat))
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    off = np.asarray(rings.offsets, dtype=np.int64)
    area = np.zeros(n_polygons)
    cx = np.zeros(n_polygons)
    cy = np.zeros(n_polygons)
    if len(off) > 1 and len(x):
        # shoelace per ring over consecutive points (rings are closed: last point = first);
        # a cross term straddling two rings is never summed (reduceat over each ring's range)
        x0, y0 = x - x.mean(), y - y.mean()  # centred for precision
        nxt = np.arange(1, len(x) + 1) % len(x)
        cross = x0 * y0[nxt] - x0[nxt] * y0
        cross[off[1:] - 1] = 0.0  # the pair from a ring's last point to the next ring's first
        starts = off[:-1]
        a2 = np.add.reduceat(cross, starts)
        mx = np.add.reduceat((x0 + x0[nxt]) * cross, starts)
        my = np.add.reduceat((y0 + y0[nxt]) * cross, starts)
        owner = np.asarray(rings.owner)
        sign = np.asarray(rings.sign)
        ring_area = np.abs(a2) / 2.0 * sign
        orient = np.where(a2 < 0, -1.0, 1.0)
        np.add.at(area, owner, ring_area)
        np.add.at(cx, owner, mx * orient * sign / 6.0)
        np.add.at(cy, owner, my * orient * sign / 6.0)
        ok = area > 0
        cx[ok] = cx[ok] / area[ok] + x.mean()
        cy[ok] = cy[ok] / area[ok] + y.mean()
    return area, cx, cy, x, y, off


@file_memo()
def read_features(path: str | Path, crs: str) -> MapFeatures:
    """Buildings, land use and POIs of the OSM file ``path``, projected to ``crs``."""
    path = Path(path)
    if not path.is_file():
        raise MapError(f"{path}: map file not found")
    try:
        try:
            return _read(path, crs, assemble=True)
        except RuntimeError as exc:
            if "out of order" not in str(exc):
                raise
            # libosmium's area assembler needs a file sorted by type and id; read an
            # unsorted one with closed ways as polygons (multipolygon relations skipped)
            log.info("%s is not sorted (%s): reading closed ways only", path, exc)
            return _read(path, crs, assemble=False)
    except RuntimeError as exc:
        raise MapError(f"{path}: not a readable OSM file ({exc})") from None


def _polygons(path: Path, assemble: bool):
    """Nodes and polygons (areas, or closed ways when not assembling) with the keys wanted."""
    fp = osmium.FileProcessor(osmium.io.File(str(path), map_format(path)))
    fp = fp.with_areas() if assemble else fp.with_locations()
    for obj in fp.with_filter(osmium.filter.KeyFilter(*_KEYS)):
        if (
            obj.is_node()
            or (assemble and obj.is_area())
            or (not assemble and obj.is_way() and len(obj.nodes) >= 4 and obj.is_closed())
        ):
            yield obj


def _osm_id(obj: osmium.osm.Area | osmium.osm.Way) -> int:
    """The OSM way id of a polygon; a multipolygon relation's id negated."""
    if obj.is_way():
        return obj.id
    return obj.orig_id() if obj.from_way() else -obj.orig_id()


def _read(path: Path, crs: str, *, assemble: bool) -> MapFeatures:
    to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    b_rings, l_rings, p_rings = _Rings(), _Rings(), _Rings()
    b_levels: list[float] = []
    b_flats: list[int] = []
    b_type: list[str] = []
    b_id: list[int] = []
    l_type: list[str] = []
    poi_lon: list[float] = []
    poi_lat: list[float] = []
    poi_kind: list[int] = []
    p_kind: list[int] = []  # kinds of POIs mapped as areas (centroids computed below)
    for obj in _polygons(path, assemble):
        if obj.is_node():
            kind = _poi_kind(obj.tags)
            if kind >= 0 and obj.location.valid():
                poi_lon.append(obj.location.lon)
                poi_lat.append(obj.location.lat)
                poi_kind.append(kind)
            continue
        tags = obj.tags
        building = tags.get("building")
        if building is not None and building != "no":
            b_rings.add(obj, len(b_type))
            levels = _float(tags.get("building:levels"))
            b_levels.append(levels or DEFAULT_LEVELS.get(building, DEFAULT_LEVELS_OTHER))
            flats = _float(tags.get("building:flats"))
            b_flats.append(round(flats) if flats else -1)
            b_type.append(building)
            b_id.append(_osm_id(obj))
        landuse = tags.get("landuse")
        if landuse is not None:
            l_rings.add(obj, len(l_type))
            l_type.append(landuse)
        kind = _poi_kind(tags)
        if kind >= 0 and building is None:  # a building's POI tags are its building's
            p_rings.add(obj, len(p_kind))
            p_kind.append(kind)

    b_area, bx, by, *_ = _ring_geometry(b_rings, len(b_type), to_utm)
    l_area, lx, ly, lpx, lpy, loff = _ring_geometry(l_rings, len(l_type), to_utm)
    _, px, py, *_ = _ring_geometry(p_rings, len(p_kind), to_utm)
    nx, ny = to_utm.transform(np.asarray(poi_lon), np.asarray(poi_lat))

    l_type_arr = np.asarray(l_type, dtype=object)
    owner = np.asarray(l_rings.owner, dtype=np.int64)
    sign = np.asarray(l_rings.sign)
    residential: list[shapely.Polygon] = []
    for i in np.flatnonzero(l_type_arr == "residential"):
        for r in np.flatnonzero((owner == i) & (sign > 0)):
            ring = np.column_stack([lpx[loff[r] : loff[r + 1]], lpy[loff[r] : loff[r + 1]]])
            if len(ring) >= 4:
                residential.append(shapely.make_valid(shapely.Polygon(ring)))

    b_keep = (b_area > 0) & (b_area <= MAX_BUILDING_M2)
    _warn_implausible(path, np.asarray(b_id, dtype=np.int64)[b_area > MAX_BUILDING_M2])
    l_keep = l_area > 0
    return MapFeatures(
        bldg_x_m=bx[b_keep],
        bldg_y_m=by[b_keep],
        bldg_area_m2=b_area[b_keep],
        bldg_levels=np.asarray(b_levels, dtype=np.float64)[b_keep],
        bldg_flats=np.asarray(b_flats, dtype=np.int32)[b_keep],
        bldg_type=np.asarray(b_type, dtype=object)[b_keep],
        bldg_osm_id=np.asarray(b_id, dtype=np.int64)[b_keep],
        landuse_x_m=lx[l_keep],
        landuse_y_m=ly[l_keep],
        landuse_area_m2=l_area[l_keep],
        landuse_type=l_type_arr[l_keep],
        residential_areas=np.asarray(residential, dtype=object),
        poi_x_m=np.concatenate([np.asarray(nx, dtype=np.float64), px]),
        poi_y_m=np.concatenate([np.asarray(ny, dtype=np.float64), py]),
        poi_kind=np.asarray(poi_kind + p_kind, dtype=np.int8),
    )


def _warn_implausible(path: Path, osm_ids: np.ndarray) -> None:
    if len(osm_ids):
        ids = ", ".join(f"way {i}" if i > 0 else f"relation {-i}" for i in osm_ids[:5])
        log.warning(
            "%s: %d building(s) with a footprint over %.0f km2 left out as mapping errors: %s",
            path, len(osm_ids), MAX_BUILDING_M2 / 1e6, ids,
        )  # fmt: skip
