"""Read an OpenStreetMap extract offline: drivable ways, their nodes, signals and signs.

One reader for every format: pyosmium reads ``.osm``, ``.osm.bz2``, ``.osm.gz`` and
``.osm.pbf`` (libosmium picks the decoder from the suffix). Two passes: ways first (keep the
drivable ones, as osmnx's ``network_type="drive"`` does), then only the nodes they reference
plus every traffic-signal, stop and give-way node, so memory stays proportional to the road network.

Real extracts cut out by a bounding box hold ways whose nodes are missing from the file. Such a
way is *repaired*: it is split at the missing nodes and every run of two or more consecutive
present nodes is kept as a way of its own. Ways with no such run are dropped. Both are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium

from twin.errors import MapError
from twin.network.tags import drivable_reason, is_reversible

SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".osm.xml", ".xml")
SIGNAL_TAGS = (("highway", "traffic_signals"), ("crossing", "traffic_signals"))
SIGN_HIGHWAYS = ("stop", "give_way")  # highway=stop / highway=give_way nodes
_DIRECTIONS = {"forward": 1, "backward": -1}  # Key:direction on a sign node; else 0 (unknown)


@dataclass(frozen=True)
class OsmSign:
    """A ``highway=stop`` or ``highway=give_way`` node.

    ``all_way`` is ``stop=all``; ``direction`` is +1 (``direction=forward``: faces traffic
    travelling in its way's node order), -1 (``backward``) or 0 (not given, or not one of
    those two, e.g. a compass bearing).
    """

    kind: str  # "stop" or "give_way"
    lonlat: tuple[float, float]
    all_way: bool = False
    direction: int = 0


@dataclass
class OsmWay:
    """A drivable way (or a repaired piece of one) with the OSM ids of its nodes, in order."""

    way_id: int
    node_ids: list[int]
    tags: dict[str, str]


@dataclass
class OsmExtract:
    """What twin needs from one OSM file: drivable ways, node coordinates, signal nodes."""

    path: Path
    ways: list[OsmWay]
    node_lonlat: dict[int, tuple[float, float]]
    signal_nodes: dict[int, tuple[float, float]]
    highway_ways: int = 0
    excluded: Counter = field(default_factory=Counter)
    ways_repaired: int = 0
    ways_dropped_missing_nodes: int = 0
    node_refs_missing: int = 0
    sign_nodes: dict[int, OsmSign] = field(default_factory=dict)


def map_format(path: Path) -> str:
    """The libosmium format name for a map file, from its suffix; MapError if unsupported."""
    name = path.name.lower()
    if name.endswith(".pbf"):
        return "pbf"
    for suffix, fmt in (
        (".osm.bz2", "osm.bz2"),
        (".osm.gz", "osm.gz"),
        (".osm", "osm"),
        (".xml", "osm"),
        (".xml.bz2", "osm.bz2"),
        (".xml.gz", "osm.gz"),
    ):
        if name.endswith(suffix):
            return fmt
    raise MapError(
        f"{path}: unsupported map file type (expected one of .osm, .osm.bz2, .osm.gz, .osm.pbf)"
    )


def _is_signal(tags: osmium.osm.TagList) -> bool:
    return any(tags.get(k) == v for k, v in SIGNAL_TAGS)


def _open(path: Path, entities: osmium.osm.osm_entity_bits) -> osmium.FileProcessor:
    return osmium.FileProcessor(osmium.io.File(str(path), map_format(path)), entities)


def read_osm(path: str | Path) -> OsmExtract:
    """Read the drivable road network and the traffic signals of one OSM file.

    Raises MapError (naming the file) when the file is missing, is not OSM, is truncated or
    corrupt, or holds no drivable roads.
    """
    path = Path(path)
    if not path.exists():
        raise MapError(f"{path}: map file not found")
    if not path.is_file():
        raise MapError(f"{path}: not a file")
    try:
        return _read(path)
    except RuntimeError as exc:  # libosmium reports decoder and parser errors this way
        raise MapError(f"{path}: not a readable OSM file ({exc})") from None


def _read(path: Path) -> OsmExtract:
    raw_ways: list[OsmWay] = []
    excluded: Counter = Counter()
    highway_ways = 0
    for way in _open(path, osmium.osm.WAY).with_filter(osmium.filter.KeyFilter("highway")):
        highway_ways += 1
        tags = dict(way.tags)
        reason = drivable_reason(tags)
        if reason is None and is_reversible(tags):
            reason = "oneway=reversible"
        if reason is not None:
            excluded[reason] += 1
            continue
        raw_ways.append(OsmWay(way.id, [n.ref for n in way.nodes], tags))

    wanted = {ref for w in raw_ways for ref in w.node_ids}
    node_lonlat: dict[int, tuple[float, float]] = {}
    signal_nodes: dict[int, tuple[float, float]] = {}
    sign_nodes: dict[int, OsmSign] = {}
    for node in _open(path, osmium.osm.NODE):
        nid = node.id
        in_road = nid in wanted
        tagged = len(node.tags) > 0
        signal = tagged and _is_signal(node.tags)
        sign = node.tags.get("highway") if tagged else None
        sign = sign if sign in SIGN_HIGHWAYS else None
        if not (in_road or signal or sign) or not node.location.valid():
            continue
        lonlat = (node.location.lon, node.location.lat)
        if in_road:
            node_lonlat[nid] = lonlat
        if signal:
            signal_nodes[nid] = lonlat
        if sign:
            sign_nodes[nid] = OsmSign(
                sign,
                lonlat,
                all_way=sign == "stop" and node.tags.get("stop", "").strip() == "all",
                direction=_DIRECTIONS.get(node.tags.get("direction", "").strip().lower(), 0),
            )

    extract = OsmExtract(path, [], node_lonlat, signal_nodes, highway_ways, excluded)
    extract.sign_nodes = sign_nodes
    _repair(raw_ways, extract)
    if not extract.ways:
        raise MapError(
            f"{path}: no drivable roads found ({highway_ways} highway ways read, "
            f"{sum(excluded.values())} excluded as not drivable)"
        )
    return extract


def _repair(raw_ways: list[OsmWay], extract: OsmExtract) -> None:
    """Split ways at nodes missing from the file; keep runs of >= 2 present nodes."""
    present = extract.node_lonlat
    for way in raw_ways:
        mask = np.fromiter((ref in present for ref in way.node_ids), bool, len(way.node_ids))
        if mask.all():
            extract.ways.append(way)
            continue
        extract.node_refs_missing += int((~mask).sum())
        runs, run = [], []
        for ref, ok in zip(way.node_ids, mask, strict=True):
            if ok:
                run.append(ref)
            else:
                if len(run) >= 2:
                    runs.append(run)
                run = []
        if len(run) >= 2:
            runs.append(run)
        if runs:
            extract.ways_repaired += 1
            extract.ways.extend(OsmWay(way.way_id, r, way.tags) for r in runs)
        else:
            extract.ways_dropped_missing_nodes += 1
