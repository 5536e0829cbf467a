"""Turn OSM way tags into road attributes: drivability, speed, lanes, direction, capacity.

Pure functions over a ``Mapping[str, str]`` of one way's tags. Every default below names its
source; values marked *judgement* are engineering choices, not taken from a standard.

Sources cited:

* OSM wiki: "Key:maxspeed", "Default speed limits", "Key:lanes", "Key:oneway",
  "Tag:junction=circular".
* SUMO netconvert: the OSM typemap ``data/typemap/osmNetconvert.typ.xml`` (``numLanes``,
  ``speed``, ``priority`` per ``highway.*`` type) and ``NIImporter_OpenStreetMap.cpp``.
* HCM 2010 (Highway Capacity Manual): base saturation flow 1,900 pc/h/ln at signalised
  intersections (ch. 18); basic freeway capacity ``1,700 + 10 * FFS`` pc/h/ln for
  FFS 55-70 mph (ch. 11); multilane highway capacity ``1,000 + 20 * FFS`` for FFS 45-60 mph
  (ch. 14); single-lane ramp roadway capacity 2,000 pc/h at FFS 30-40 mph (ch. 13).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

KPH = 1000.0 / 3600.0  # m/s per km/h
MPH = 1609.344 / 3600.0  # m/s per mph (international mile, exact)
KNOT = 1852.0 / 3600.0  # m/s per knot (international nautical mile, exact)

# Rank of each drivable class = SUMO typemap ``priority`` (osmNetconvert.typ.xml).
DRIVABLE_HIGHWAYS: dict[str, int] = {
    "motorway": 14,
    "trunk": 13,
    "primary": 12,
    "secondary": 11,
    "tertiary": 10,
    "motorway_link": 9,
    "trunk_link": 8,
    "primary_link": 7,
    "secondary_link": 6,
    "tertiary_link": 5,
    "unclassified": 4,
    "residential": 3,
    "road": 3,  # not in the SUMO typemap; judgement: ranked with residential
    "living_street": 2,
    "service": 1,
}
#: a dead end of a road this big (tertiary_link and up) was cut by the extract: they rarely end
CUT_END_MIN_RANK = DRIVABLE_HIGHWAYS["tertiary_link"]
# Integer codes stored in arrays are indices into this tuple: keep the order stable.
HIGHWAY_CLASSES: tuple[str, ...] = (*DRIVABLE_HIGHWAYS, "other")


@dataclass(frozen=True, slots=True)
class ClassDefaults:
    """Defaults for one highway class when the way's tags do not say."""

    speed_kph: float
    lanes_per_direction: int
    capacity_vph_per_lane: float  # saturation-flow-like capacity, pcu/h/lane


_U = 50.0  # urban limit: DE/FR/IT/AT/CH...:urban = 50 km/h (OSM wiki "Default speed limits")
# lanes_per_direction: SUMO typemap numLanes (per direction) unless noted.
DEFAULTS: dict[str, ClassDefaults] = {
    # 100 km/h judgement (urban freeway; US urban interstates 55-65 mph; SUMO's 39.44 m/s
    # is the German no-limit case); 2,300 = HCM 2010 basic freeway capacity at FFS 60 mph.
    "motorway": ClassDefaults(100.0, 2, 2300.0),
    # 80 km/h judgement (SUMO: 100); 2,000 = HCM 2010 multilane highway at FFS 50 mph.
    "trunk": ClassDefaults(80.0, 2, 2000.0),
    # urban limit (SUMO's 100 km/h is rural); 1,900 = HCM 2010 base saturation flow.
    "primary": ClassDefaults(_U, 2, 1900.0),
    "secondary": ClassDefaults(_U, 1, 1900.0),  # urban limit (SUMO: 100); HCM 2010 base
    # urban limit (SUMO: 80); 1,800 judgement: HCM base less ~5% for narrower collector lanes.
    "tertiary": ClassDefaults(_U, 1, 1800.0),
    # 60 km/h judgement (SUMO: 80); 2,000 = HCM 2010 single-lane ramp at FFS 30-40 mph.
    "motorway_link": ClassDefaults(60.0, 1, 2000.0),
    "trunk_link": ClassDefaults(_U, 1, 2000.0),  # urban limit (SUMO: 80); HCM ramp as above
    "primary_link": ClassDefaults(_U, 1, 1900.0),  # urban limit (SUMO: 80); HCM 2010 base
    "secondary_link": ClassDefaults(_U, 1, 1900.0),  # urban limit (SUMO: 80); HCM 2010 base
    "tertiary_link": ClassDefaults(_U, 1, 1800.0),  # urban limit (SUMO: 80); as tertiary
    # urban limit (= SUMO 13.89 m/s); 1,600 judgement: HCM base less ~15% for parking,
    # narrow lanes and side friction on local streets.
    "unclassified": ClassDefaults(_U, 1, 1600.0),
    "residential": ClassDefaults(_U, 1, 1600.0),  # as unclassified
    "road": ClassDefaults(_U, 1, 1600.0),  # no SUMO type; judgement: as residential
    # 10 km/h = SUMO 2.78 m/s (shared space); 600 judgement (walking-pace shared surface).
    "living_street": ClassDefaults(10.0, 1, 600.0),
    # 20 km/h = SUMO 5.56 m/s; 800 judgement (access roads, frequent conflicts).
    "service": ClassDefaults(20.0, 1, 800.0),
    "other": ClassDefaults(_U, 1, 1600.0),  # judgement: as residential
}

WALK_KPH = 7.0  # maxspeed=walk; judgement: top of the 4-7 km/h "Schrittgeschwindigkeit" range
NONE_KPH = 130.0  # maxspeed=none: German Autobahn advisory speed (Richtgeschwindigkeit)

# Country zone codes (maxspeed=CC:zone), km/h, from the OSM wiki "Default speed limits".
ZONE_SPEEDS_KPH: dict[str, float] = {
    "AT:urban": 50.0, "AT:rural": 100.0, "AT:motorway": 130.0,
    "CH:urban": 50.0, "CH:rural": 80.0, "CH:trunk": 100.0, "CH:motorway": 120.0,
    "CZ:urban": 50.0, "CZ:rural": 90.0, "CZ:motorway": 130.0,
    "DE:urban": 50.0, "DE:rural": 100.0, "DE:motorway": NONE_KPH,
    "DE:living_street": WALK_KPH, "DE:bicycle_road": 30.0,
    "DK:urban": 50.0, "DK:rural": 80.0, "DK:motorway": 130.0,
    "FR:urban": 50.0, "FR:rural": 80.0, "FR:motorway": 130.0,
    "IT:urban": 50.0, "IT:rural": 90.0, "IT:motorway": 130.0,
    "PL:urban": 50.0, "PL:rural": 90.0, "PL:motorway": 140.0,
    "RU:urban": 60.0, "RU:rural": 90.0, "RU:motorway": 110.0, "RU:living_street": 20.0,
    "GB:nsl_restricted": 30 * MPH / KPH, "GB:nsl_single": 60 * MPH / KPH,
    "GB:nsl_dual": 70 * MPH / KPH, "GB:motorway": 70 * MPH / KPH,
}  # fmt: skip
_MPH_COUNTRIES = frozenset({"GB", "UK", "US"})  # zone:NN numbers are mph there (Key:maxspeed)

_NUM = re.compile(r"(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots?)?", re.IGNORECASE)
_ZONE = re.compile(r"([A-Z]{2})(?:-[A-Z0-9]+)?:zone:?(\d+)")
_UNIT_MPS = {None: KPH, "km/h": KPH, "kmh": KPH, "kph": KPH, "mph": MPH, "knot": KNOT,
             "knots": KNOT}  # fmt: skip


def _values(value: str | None) -> list[str]:
    """The semicolon-separated parts of a tag value, stripped, empties dropped."""
    return [] if value is None else [v.strip() for v in value.split(";") if v.strip()]


def _one_speed_mps(value: str) -> float | None:
    if m := _NUM.fullmatch(value):
        mps = float(m.group(1)) * _UNIT_MPS[m.group(2) and m.group(2).lower()]
        return mps if mps > 0 else None
    low = value.lower()
    if low == "walk":
        return WALK_KPH * KPH
    if low == "none":
        return NONE_KPH * KPH
    if value in ZONE_SPEEDS_KPH:
        return ZONE_SPEEDS_KPH[value] * KPH
    if m := _ZONE.fullmatch(value):  # e.g. DE:zone30, DE:zone:30
        unit = MPH if m.group(1) in _MPH_COUNTRIES else KPH
        return float(m.group(2)) * unit if int(m.group(2)) > 0 else None
    return None  # signals, variable, unknown zones (e.g. US has no national ones), garbage


def parse_maxspeed_mps(value: str | None) -> float | None:
    """A ``maxspeed`` value in m/s, or None when absent or unparseable.

    Accepts ``50`` (km/h), ``50 km/h``, ``50kmh``, ``50 kph``, ``30 mph``, ``10 knots``,
    ``walk`` (:data:`WALK_KPH`), ``none`` (:data:`NONE_KPH`), zone codes from
    :data:`ZONE_SPEEDS_KPH` and ``CC:zoneNN`` / ``CC:zone:NN``. For several values
    (``50;30``) the lowest parseable one is taken: the conservative reading.
    """
    speeds = [s for v in _values(value) if (s := _one_speed_mps(v)) is not None]
    return min(speeds) if speeds else None


def parse_lanes(value: str | None) -> int | None:
    """A positive lane count, or None.

    ``2;3`` gives the lowest (the bottleneck, as for maxspeed); non-integers such as
    ``1.5`` give None (Key:lanes counts whole lanes), so the caller falls back to a default.
    """
    counts = [int(v) for v in _values(value) if v.isdigit() and int(v) > 0]
    return min(counts) if counts else None


# osmnx 2.1 network_type="drive" (osmnx/_overpass.py _get_network_filter and
# settings.default_access). Overpass regexes are case-sensitive and unanchored, so
# "service=alley_street" and "motor_vehicle=unknown" are excluded too: kept as in osmnx.
_OSMNX_DRIVE_HIGHWAY = re.compile(
    "abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|escalator|"
    "footway|no|path|pedestrian|planned|platform|proposed|raceway|razed|rest_area|service|"
    "services|steps|track"
)
# osmnx network_type="drive_service": the same without "service".
_OSMNX_DRIVE_SERVICE_HIGHWAY = re.compile(_OSMNX_DRIVE_HIGHWAY.pattern.replace("|service|", "|"))
_OSMNX_DRIVE_SERVICE = re.compile("alley|driveway|emergency_access|parking|parking_aisle|private")
_OSMNX_DRIVE_SERVICE_SERVICE = re.compile("emergency_access|parking|parking_aisle|private")
_OSMNX_NEGATIVE = (
    ("area", re.compile("yes")),
    ("access", re.compile("private")),
)


def drivable_reason(tags: Mapping[str, str], *, include_service: bool = False) -> str | None:
    """None when the way is a public road for private cars, else a short reason (``key=value``).

    Same as osmnx ``network_type="drive"`` (``"drive_service"`` with ``include_service``):
    needs ``highway``; excludes ``area=yes``, ``access=private``, non-road highway values
    (footway, construction, ..., and ``service`` itself for "drive"), ``motor_vehicle=no``,
    ``motorcar=no`` and ``service=alley|driveway|emergency_access|parking|parking_aisle|
    private``. Like osmnx, ``access=no`` passes and ``motor=no`` is not looked at. One
    addition: the class must be in :data:`DRIVABLE_HIGHWAYS`, which drops values osmnx lets
    through (``busway``, ``bus_stop``, ``escape``, ...).
    """
    highway = tags.get("highway")
    if highway is None:
        return "not a highway"
    for key, pattern in _OSMNX_NEGATIVE:
        if (v := tags.get(key)) is not None and pattern.search(v):
            return f"{key}={v}"
    hw_re = _OSMNX_DRIVE_SERVICE_HIGHWAY if include_service else _OSMNX_DRIVE_HIGHWAY
    if hw_re.search(highway):
        return f"highway={highway}"
    for key in ("motor_vehicle", "motorcar"):  # osmnx: [key!~"no"], unanchored
        if (v := tags.get(key)) is not None and "no" in v:
            return f"{key}={v}"
    svc_re = _OSMNX_DRIVE_SERVICE_SERVICE if include_service else _OSMNX_DRIVE_SERVICE
    if (v := tags.get("service")) is not None and svc_re.search(v):
        return f"service={v}"
    if highway_class(highway) not in DRIVABLE_HIGHWAYS:
        return f"highway={highway}"
    return None


def highway_class(value: str | None) -> str:
    """The normalised class: first of several values (``primary;secondary``), else "other"."""
    parts = _values(value)
    return parts[0] if parts and parts[0] in DRIVABLE_HIGHWAYS else "other"


_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_REVERSE = frozenset({"-1", "reverse"})
_ONEWAY_NO = frozenset({"no", "false", "0"})
_REVERSIBLE = frozenset({"reversible", "alternating"})


def is_reversible(tags: Mapping[str, str]) -> bool:
    """``oneway=reversible|alternating``: direction changes over time. Callers drop these."""
    return tags.get("oneway", "").strip().lower() in _REVERSIBLE


def oneway_direction(tags: Mapping[str, str]) -> int:
    """1: forward (way order) only; -1: reverse only; 0: both directions.

    Explicit ``oneway`` wins. Untagged (or unrecognised) ways are one-way forward when
    ``junction=roundabout`` (Key:oneway: implied), ``junction=circular`` (wiki: generally
    one-way; two-way ones carry ``oneway=no``) or ``highway=motorway`` (Key:oneway: implied;
    osmnx implies it only for roundabouts). Reversible ways give 0: see :func:`is_reversible`.
    """
    value = tags.get("oneway", "").strip().lower()
    if value in _ONEWAY_FORWARD:
        return 1
    if value in _ONEWAY_REVERSE:
        return -1
    if value in _ONEWAY_NO or value in _REVERSIBLE:
        return 0
    if tags.get("junction") in ("roundabout", "circular"):
        return 1
    return 1 if highway_class(tags.get("highway")) == "motorway" else 0


@dataclass(frozen=True, slots=True)
class RoadAttrs:
    """Road attributes of one way; ``forward`` is the way's node order."""

    highway: str  # normalised class, one of HIGHWAY_CLASSES
    highway_code: int  # index into HIGHWAY_CLASSES
    oneway: int  # 1, -1 or 0, see oneway_direction
    is_roundabout: bool  # junction=roundabout
    is_reversible: bool  # oneway=reversible|alternating
    lanes_forward: int  # 0 when no travel forward
    lanes_backward: int  # 0 when no travel backward
    speed_forward_mps: float
    speed_backward_mps: float
    capacity_vph_per_lane: float
    speed_from_default: bool  # some travelled direction has the class default speed
    lanes_from_default: bool  # some travelled direction has the class default lanes


def _zone_speed(tags: Mapping[str, str]) -> float | None:
    """Speed from a zone given outside ``maxspeed`` (e.g. ``source:maxspeed=DE:urban``)."""
    for key in ("maxspeed:type", "source:maxspeed", "zone:maxspeed"):
        parts = _values(tags.get(key))
        if parts and (parts[0] in ZONE_SPEEDS_KPH or _ZONE.fullmatch(parts[0])):
            return parse_maxspeed_mps(parts[0])
    return None


def _split_lanes(
    tags: Mapping[str, str], oneway: int, split: bool
) -> tuple[int | None, int | None]:
    """(forward, backward) lane counts from tags, None where the tags do not say."""
    total = parse_lanes(tags.get("lanes"))
    fwd = parse_lanes(tags.get("lanes:forward"))
    bwd = parse_lanes(tags.get("lanes:backward"))
    if oneway == 1:  # lanes:forward excludes contraflow (bus) lanes counted in lanes
        return fwd or total, 0
    if oneway == -1:
        return 0, bwd or total
    if fwd and bwd:
        return fwd, bwd
    if total is None:
        return fwd, bwd
    if not split:  # each direction gets the way's lanes, as osmnx copies tags to both edges
        return fwd or total, bwd or total
    # Key:lanes: lanes counts lanes:both_ways (centre turn lanes) too; they carry no through
    # traffic. Split as SUMO's NIImporter_OpenStreetMap: forward ceil(n/2), rest backward,
    # at least one lane each way.
    n = total - (parse_lanes(tags.get("lanes:both_ways")) or 0)
    n = n if n >= 1 else total
    if fwd:
        return fwd, max(1, n - fwd)
    if bwd:
        return max(1, n - bwd), bwd
    return max(1, math.ceil(n / 2)), max(1, n - math.ceil(n / 2))


def road_attributes(
    tags: Mapping[str, str],
    *,
    direction_lanes_split: bool = True,
    untagged_lanes: Mapping[str, int] | None = None,
) -> RoadAttrs:
    """Road attributes of a way, tags first and :data:`DEFAULTS` of its class otherwise.

    Speed per direction: ``maxspeed:forward`` / ``maxspeed:backward``, then ``maxspeed``,
    then a zone in ``maxspeed:type`` / ``source:maxspeed`` / ``zone:maxspeed``, then the
    class default. Lanes per direction: ``lanes:forward`` / ``lanes:backward``; else the
    total ``lanes`` split between the two directions of a two-way road (see
    ``_split_lanes``; with ``direction_lanes_split=False`` each direction gets the whole
    ``lanes``); else ``untagged_lanes`` of its class, else the class default. The direction a
    one-way road forbids gets 0 lanes.
    """
    hw = highway_class(tags.get("highway"))
    d = DEFAULTS[hw]
    lanes = (untagged_lanes or {}).get(hw, d.lanes_per_direction)
    oneway = oneway_direction(tags)
    base = parse_maxspeed_mps(tags.get("maxspeed")) or _zone_speed(tags)
    sf = parse_maxspeed_mps(tags.get("maxspeed:forward")) or base
    sb = parse_maxspeed_mps(tags.get("maxspeed:backward")) or base
    lf, lb = _split_lanes(tags, oneway, direction_lanes_split)
    used = [(sf, lf)] if oneway == 1 else [(sb, lb)] if oneway == -1 else [(sf, lf), (sb, lb)]
    return RoadAttrs(
        highway=hw,
        highway_code=HIGHWAY_CLASSES.index(hw),
        oneway=oneway,
        is_roundabout=tags.get("junction") == "roundabout",
        is_reversible=is_reversible(tags),
        lanes_forward=lanes if lf is None else lf,
        lanes_backward=lanes if lb is None else lb,
        speed_forward_mps=sf or d.speed_kph * KPH,
        speed_backward_mps=sb or d.speed_kph * KPH,
        capacity_vph_per_lane=d.capacity_vph_per_lane,
        speed_from_default=any(s is None for s, _ in used),
        lanes_from_default=any(n is None for _, n in used),
    )


# --- roundabouts and turn lanes -------------------------------------------------------------

ROUNDABOUT_JUNCTIONS = frozenset({"roundabout", "circular"})  # Key:junction


def is_roundabout_way(tags: Mapping[str, str]) -> bool:
    """``junction=roundabout`` or ``junction=circular``: part of a circulating carriageway."""
    return tags.get("junction", "").strip() in ROUNDABOUT_JUNCTIONS


# Key:turn values (OSM wiki "Key:turn"); anything else in a lane reads as "none".
TURN_VALUES = frozenset(
    {
        "left", "slight_left", "sharp_left", "through", "right", "slight_right", "sharp_right",
        "merge_to_left", "merge_to_right", "reverse", "none",
    }
)  # fmt: skip


def parse_turn_lanes(value: str | None) -> tuple[frozenset[str], ...] | None:
    """The lanes of a ``turn:lanes`` value, leftmost first, each the set of its turn values.

    ``left|through;right|`` gives ``({"left"}, {"through", "right"}, {"none"})``: an empty
    lane, and any unknown value, reads as ``none``. None when the value is absent or blank.
    """
    if value is None or not value.strip():
        return None
    lanes = []
    for lane in value.split("|"):
        parts = {p.strip().lower() for p in lane.split(";") if p.strip()}
        parts = {p if p in TURN_VALUES else "none" for p in parts}
        lanes.append(frozenset(parts or {"none"}))
    return tuple(lanes)


def turn_lanes_by_direction(tags: Mapping[str, str], oneway: int) -> tuple[str, str]:
    """(forward, backward) ``turn:lanes`` strings of a way ("" where not mapped).

    ``turn:lanes:forward`` / ``turn:lanes:backward`` apply to their direction; a bare
    ``turn:lanes`` applies to the one travelled direction of a one-way road (OSM wiki
    "Key:turn": on a two-way road it is ambiguous and is ignored here).
    """
    bare = tags.get("turn:lanes", "").strip()
    fwd = tags.get("turn:lanes:forward", "").strip()
    bwd = tags.get("turn:lanes:backward", "").strip()
    if oneway == 1:
        return fwd or bare, ""
    if oneway == -1:
        return "", bwd or bare
    return fwd, bwd
