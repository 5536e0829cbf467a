"""Tests for twin.network.tags: OSM way tags -> road attributes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from twin.network.tags import (
    DEFAULTS,
    DRIVABLE_HIGHWAYS,
    HIGHWAY_CLASSES,
    KPH,
    NONE_KPH,
    WALK_KPH,
    ZONE_SPEEDS_KPH,
    RoadAttrs,
    drivable_reason,
    highway_class,
    is_reversible,
    is_roundabout_way,
    oneway_direction,
    parse_lanes,
    parse_maxspeed_mps,
    parse_turn_lanes,
    road_attributes,
    turn_lanes_by_direction,
)

MAPS = Path(__file__).resolve().parent.parent / "maps"


# --- tables -----------------------------------------------------------------------------


def test_tables_are_consistent() -> None:
    assert HIGHWAY_CLASSES[-1] == "other"
    assert set(HIGHWAY_CLASSES) == set(DRIVABLE_HIGHWAYS) | {"other"}
    assert set(DEFAULTS) == set(HIGHWAY_CLASSES)
    assert len(set(HIGHWAY_CLASSES)) == len(HIGHWAY_CLASSES)
    assert "busway" not in DRIVABLE_HIGHWAYS
    for d in DEFAULTS.values():
        assert d.speed_kph > 0 and d.lanes_per_direction >= 1 and d.capacity_vph_per_lane > 0
    top = max(DRIVABLE_HIGHWAYS.values())
    low = min(DRIVABLE_HIGHWAYS.values())
    assert DRIVABLE_HIGHWAYS["motorway"] == top
    assert DRIVABLE_HIGHWAYS["service"] == low
    assert DRIVABLE_HIGHWAYS["living_street"] < DRIVABLE_HIGHWAYS["residential"]
    ranks = [DRIVABLE_HIGHWAYS[c] for c in ("motorway", "trunk", "primary", "secondary")]
    assert ranks == sorted(ranks, reverse=True)
    assert DEFAULTS["primary"].capacity_vph_per_lane == 1900.0  # HCM 2010 base sat. flow
    assert 2000.0 <= DEFAULTS["motorway"].capacity_vph_per_lane <= 2400.0


# --- maxspeed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mps"),
    [
        ("30 mph", 13.4112),
        ("30mph", 13.4112),
        ("30 MPH", 13.4112),
        ("50", 50 / 3.6),
        ("50 km/h", 50 / 3.6),
        ("50kmh", 50 / 3.6),
        ("50 kph", 50 / 3.6),
        ("7.5", 7.5 / 3.6),
        ("10 knots", 10 * 1852 / 3600),
        (" 40 ", 40 / 3.6),
        ("50;30", 30 / 3.6),
        ("30 mph;40", 40 / 3.6),  # lowest across units: 40 km/h < 30 mph
        ("50;signals", 50 / 3.6),
        ("walk", WALK_KPH / 3.6),
        ("none", NONE_KPH / 3.6),
        ("DE:urban", 50 / 3.6),
        ("DE:rural", 100 / 3.6),
        ("DE:motorway", 130 / 3.6),
        ("DE:living_street", WALK_KPH / 3.6),
        ("RU:urban", 60 / 3.6),
        ("RU:rural", 90 / 3.6),
        ("FR:urban", 50 / 3.6),
        ("FR:rural", 80 / 3.6),
        ("IT:motorway", 130 / 3.6),
        ("GB:nsl_single", 60 * 0.44704),
        ("GB:nsl_dual", 70 * 0.44704),
        ("DE:zone30", 30 / 3.6),
        ("DE:zone:30", 30 / 3.6),
        ("GB:zone20", 20 * 0.44704),
    ],
)
def test_parse_maxspeed(value: str, mps: float) -> None:
    got = parse_maxspeed_mps(value)
    assert got is not None
    assert abs(got - mps) < 1e-9


def test_mph_is_exact() -> None:
    assert parse_maxspeed_mps("30 mph") == pytest.approx(13.4112, abs=1e-9)
    assert parse_maxspeed_mps("50") == pytest.approx(13.888888888888889, abs=1e-9)


@pytest.mark.parametrize(
    "value",
    [None, "", "fast", "signals", "variable", "0", "-30", "50 furlongs", "US:urban",
     "XX:unknown", "DE:zone:0", "50,5", ";", "mph"],
)  # fmt: skip
def test_parse_maxspeed_garbage(value: str | None) -> None:
    assert parse_maxspeed_mps(value) is None


def test_zone_table_plausible() -> None:
    for code, kph in ZONE_SPEEDS_KPH.items():
        assert ":" in code and 5 <= kph <= 140, code


# --- lanes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "lanes"),
    [("2", 2), (" 3 ", 3), ("2;3", 2), ("4;x", 4), ("1.5", None), ("0", None), ("-1", None),
     ("two", None), ("", None), (None, None)],
)  # fmt: skip
def test_parse_lanes(value: str | None, lanes: int | None) -> None:
    assert parse_lanes(value) == lanes


# --- oneway -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "direction"),
    [
        ({"highway": "residential"}, 0),
        ({"highway": "residential", "oneway": "yes"}, 1),
        ({"highway": "residential", "oneway": "true"}, 1),
        ({"highway": "residential", "oneway": "1"}, 1),
        ({"highway": "residential", "oneway": "-1"}, -1),
        ({"highway": "residential", "oneway": "reverse"}, -1),
        ({"highway": "residential", "oneway": "no"}, 0),
        ({"highway": "residential", "oneway": "garbage"}, 0),
        ({"highway": "primary", "junction": "roundabout"}, 1),
        ({"highway": "primary", "junction": "roundabout", "oneway": "no"}, 0),
        ({"highway": "primary", "junction": "roundabout", "oneway": "-1"}, -1),
        ({"highway": "primary", "junction": "circular"}, 1),
        ({"highway": "primary", "junction": "circular", "oneway": "no"}, 0),
        ({"highway": "motorway"}, 1),
        ({"highway": "motorway", "oneway": "no"}, 0),
        ({"highway": "motorway", "oneway": "-1"}, -1),
        ({"highway": "motorway_link"}, 0),
        ({"highway": "residential", "oneway": "reversible"}, 0),
        ({"highway": "residential", "oneway": "alternating"}, 0),
    ],
)
def test_oneway_direction(tags: dict[str, str], direction: int) -> None:
    assert oneway_direction(tags) == direction


def test_reversible() -> None:
    assert is_reversible({"highway": "primary", "oneway": "reversible"})
    assert is_reversible({"highway": "primary", "oneway": "alternating"})
    assert not is_reversible({"highway": "primary", "oneway": "yes"})
    assert not is_reversible({"highway": "primary"})
    assert road_attributes({"highway": "primary", "oneway": "reversible"}).is_reversible


# --- drivable filter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ({}, "not a highway"),
        ({"building": "yes"}, "not a highway"),
        ({"highway": "residential"}, None),
        ({"highway": "primary", "oneway": "yes", "maxspeed": "50"}, None),
        ({"highway": "motorway_link"}, None),
        ({"highway": "living_street"}, None),
        ({"highway": "road"}, None),
        ({"highway": "unclassified", "access": "yes"}, None),
        ({"highway": "unclassified", "access": "destination"}, None),
        ({"highway": "unclassified", "access": "no"}, None),  # as osmnx: only private
        ({"highway": "residential", "motor": "no"}, None),  # osmnx ignores motor=*
        ({"highway": "residential", "service": "drive-through"}, None),
        ({"highway": "footway"}, "highway=footway"),
        ({"highway": "cycleway"}, "highway=cycleway"),
        ({"highway": "pedestrian"}, "highway=pedestrian"),
        ({"highway": "steps"}, "highway=steps"),
        ({"highway": "track"}, "highway=track"),
        ({"highway": "path"}, "highway=path"),
        ({"highway": "construction", "construction": "primary"}, "highway=construction"),
        ({"highway": "proposed"}, "highway=proposed"),
        ({"highway": "raceway"}, "highway=raceway"),
        ({"highway": "abandoned"}, "highway=abandoned"),
        ({"highway": "elevator"}, "highway=elevator"),
        ({"highway": "services"}, "highway=services"),
        ({"highway": "service"}, "highway=service"),
        ({"highway": "service", "service": "parking_aisle"}, "highway=service"),
        ({"highway": "busway"}, "highway=busway"),
        ({"highway": "bus_stop"}, "highway=bus_stop"),
        ({"highway": "residential", "area": "yes"}, "area=yes"),
        ({"highway": "pedestrian", "area": "yes"}, "area=yes"),
        ({"highway": "residential", "area": "no"}, None),
        ({"highway": "residential", "access": "private"}, "access=private"),
        ({"highway": "residential", "motor_vehicle": "no"}, "motor_vehicle=no"),
        ({"highway": "residential", "motorcar": "no"}, "motorcar=no"),
        ({"highway": "residential", "service": "parking_aisle"}, "service=parking_aisle"),
        ({"highway": "residential", "service": "alley"}, "service=alley"),
        ({"highway": "residential", "service": "alley_street"}, "service=alley_street"),
        ({"highway": "residential", "service": "driveway"}, "service=driveway"),
        ({"highway": "residential", "service": "emergency_access"}, "service=emergency_access"),
    ],
)
def test_drivable_reason(tags: dict[str, str], reason: str | None) -> None:
    assert drivable_reason(tags) == reason


def test_drivable_reason_drive_service() -> None:
    ok = {"highway": "service"}
    assert drivable_reason(ok, include_service=True) is None
    assert drivable_reason({**ok, "service": "alley"}, include_service=True) is None
    assert drivable_reason({**ok, "service": "driveway"}, include_service=True) is None
    aisle = {**ok, "service": "parking_aisle"}
    assert drivable_reason(aisle, include_service=True) == "service=parking_aisle"
    private = {**ok, "access": "private"}
    assert drivable_reason(private, include_service=True) == "access=private"
    assert drivable_reason({"highway": "footway"}, include_service=True) == "highway=footway"


# --- road attributes --------------------------------------------------------------------


def test_highway_class() -> None:
    assert highway_class("primary") == "primary"
    assert highway_class("primary;secondary") == "primary"
    assert highway_class("busway") == "other"
    assert highway_class(None) == "other"
    assert HIGHWAY_CLASSES[road_attributes({"highway": "trunk"}).highway_code] == "trunk"
    assert road_attributes({"highway": "weird"}).highway == "other"


def test_defaults_flagged() -> None:
    a = road_attributes({"highway": "residential"})
    assert isinstance(a, RoadAttrs)
    d = DEFAULTS["residential"]
    assert a.speed_from_default and a.lanes_from_default
    assert a.speed_forward_mps == a.speed_backward_mps == pytest.approx(d.speed_kph * KPH)
    assert a.lanes_forward == a.lanes_backward == d.lanes_per_direction
    assert a.capacity_vph_per_lane == d.capacity_vph_per_lane
    assert a.oneway == 0 and not a.is_roundabout

    b = road_attributes({"highway": "residential", "maxspeed": "25 mph", "lanes": "2"})
    assert not b.speed_from_default and not b.lanes_from_default
    assert b.speed_forward_mps == pytest.approx(25 * 0.44704)
    assert (b.lanes_forward, b.lanes_backward) == (1, 1)

    c = road_attributes({"highway": "motorway", "maxspeed": "garbage", "lanes": "x"})
    assert c.speed_from_default and c.lanes_from_default and c.oneway == 1
    assert c.lanes_forward == DEFAULTS["motorway"].lanes_per_direction
    assert c.lanes_backward == 0


@pytest.mark.parametrize(
    ("tags", "fwd", "bwd"),
    [
        ({"lanes": "1"}, 1, 1),  # single-lane two-way road: one lane each way (as SUMO)
        ({"lanes": "2"}, 1, 1),
        ({"lanes": "3"}, 2, 1),  # forward gets ceil(n/2), as SUMO netconvert
        ({"lanes": "4"}, 2, 2),
        ({"lanes": "5"}, 3, 2),
        ({"lanes": "3", "lanes:both_ways": "1"}, 1, 1),  # centre turn lane removed
        ({"lanes": "3", "lanes:forward": "1"}, 1, 2),
        ({"lanes": "3", "lanes:backward": "1"}, 2, 1),
        ({"lanes:forward": "2", "lanes:backward": "3"}, 2, 3),
        ({"lanes": "4", "lanes:forward": "3", "lanes:backward": "1"}, 3, 1),
        ({"lanes": "2", "oneway": "yes"}, 2, 0),
        ({"lanes": "3", "oneway": "yes", "lanes:forward": "2"}, 2, 0),  # contraflow bus lane
        ({"lanes": "2", "oneway": "-1"}, 0, 2),
        ({"lanes": "3", "junction": "roundabout"}, 3, 0),
    ],
)
def test_lane_split(tags: dict[str, str], fwd: int, bwd: int) -> None:
    a = road_attributes({"highway": "secondary", **tags})
    assert (a.lanes_forward, a.lanes_backward) == (fwd, bwd)
    assert not a.lanes_from_default


def test_lane_split_disabled() -> None:
    a = road_attributes({"highway": "primary", "lanes": "4"}, direction_lanes_split=False)
    assert (a.lanes_forward, a.lanes_backward) == (4, 4)
    b = road_attributes(
        {"highway": "primary", "lanes": "4", "lanes:forward": "3"}, direction_lanes_split=False
    )
    assert (b.lanes_forward, b.lanes_backward) == (3, 4)


def test_partial_lanes_flagged() -> None:
    a = road_attributes({"highway": "primary", "lanes:forward": "3"})
    assert a.lanes_forward == 3
    assert a.lanes_backward == DEFAULTS["primary"].lanes_per_direction
    assert a.lanes_from_default


def test_directional_speeds() -> None:
    a = road_attributes({"highway": "primary", "maxspeed": "50", "maxspeed:backward": "30"})
    assert a.speed_forward_mps == pytest.approx(50 / 3.6)
    assert a.speed_backward_mps == pytest.approx(30 / 3.6)
    assert not a.speed_from_default

    b = road_attributes({"highway": "primary", "maxspeed:forward": "70"})
    assert b.speed_forward_mps == pytest.approx(70 / 3.6)
    assert b.speed_backward_mps == pytest.approx(DEFAULTS["primary"].speed_kph / 3.6)
    assert b.speed_from_default  # backward fell back to the class default

    c = road_attributes({"highway": "primary", "oneway": "yes", "maxspeed:forward": "70"})
    assert not c.speed_from_default  # the untravelled direction does not count


def test_zone_from_source_tag() -> None:
    a = road_attributes({"highway": "residential", "source:maxspeed": "DE:zone30"})
    assert a.speed_forward_mps == pytest.approx(30 / 3.6)
    assert not a.speed_from_default
    b = road_attributes({"highway": "residential", "source:maxspeed": "sign"})
    assert b.speed_from_default


def test_roundabout_attrs() -> None:
    a = road_attributes({"highway": "primary", "junction": "roundabout"})
    assert a.is_roundabout and a.oneway == 1 and a.lanes_backward == 0
    b = road_attributes({"highway": "primary", "junction": "roundabout", "oneway": "no"})
    assert b.is_roundabout and b.oneway == 0 and b.lanes_backward >= 1
    assert not road_attributes({"highway": "primary", "junction": "circular"}).is_roundabout


def test_road_attrs_frozen() -> None:
    a = road_attributes({"highway": "primary"})
    with pytest.raises(AttributeError):
        a.highway = "trunk"  # type: ignore[misc]


# --- a real extract ---------------------------------------------------------------------


def test_west_oakland_ways() -> None:
    osmium = pytest.importorskip("osmium")
    path = MAPS / "west-oakland.osm.bz2"
    if not path.exists():
        pytest.skip(f"{path} missing")
    reasons: Counter[str] = Counter()
    drivable: list[RoadAttrs] = []
    ways = osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(
        osmium.filter.KeyFilter("highway")
    )
    for way in ways:
        tags = {t.k: t.v for t in way.tags}
        reason = drivable_reason(tags)
        if reason is None:
            attrs = road_attributes(tags)
            assert attrs.highway in DRIVABLE_HIGHWAYS
            assert attrs.speed_forward_mps > 0 and attrs.capacity_vph_per_lane > 0
            assert attrs.lanes_forward + attrs.lanes_backward >= 1
            drivable.append(attrs)
        else:
            assert isinstance(reason, str) and reason
            reasons[reason] += 1
    assert len(drivable) + sum(reasons.values()) == 31  # every highway way is classified
    assert reasons["highway=footway"] >= 1
    assert reasons["highway=service"] >= 1
    assert len(drivable) >= 10
    assert any(a.oneway == 1 for a in drivable)
    assert any(a.speed_from_default and a.speed_forward_mps > 0 for a in drivable)
    # 7th Street is mapped oneway=yes, lanes=3: all three lanes forward, from the tags
    assert any(a.highway == "secondary" and a.lanes_forward == 3 for a in drivable)


# --- roundabouts and turn lanes -------------------------------------------------------------


def test_is_roundabout_way() -> None:
    assert is_roundabout_way({"highway": "primary", "junction": "roundabout"})
    assert is_roundabout_way({"highway": "primary", "junction": "circular"})
    assert not is_roundabout_way({"highway": "primary", "junction": "yes"})
    assert not is_roundabout_way({"highway": "primary"})


@pytest.mark.parametrize(
    ("value", "lanes"),
    [
        ("left|through|through;right", ({"left"}, {"through"}, {"through", "right"})),
        ("left||right", ({"left"}, {"none"}, {"right"})),
        ("reverse;left|none", ({"reverse", "left"}, {"none"})),
        (" Left | Through ", ({"left"}, {"through"})),
        (
            "merge_to_right|slight_left;sharp_right",
            ({"merge_to_right"}, {"slight_left", "sharp_right"}),
        ),
        ("left|bogus", ({"left"}, {"none"})),  # unknown values read as unmarked
        ("|", ({"none"}, {"none"})),
    ],
)
def test_parse_turn_lanes(value: str, lanes: tuple[set[str], ...]) -> None:
    assert parse_turn_lanes(value) == tuple(frozenset(x) for x in lanes)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_parse_turn_lanes_absent(value: str | None) -> None:
    assert parse_turn_lanes(value) is None


@pytest.mark.parametrize(
    ("tags", "oneway", "expected"),
    [
        ({"turn:lanes": "left|through"}, 1, ("left|through", "")),
        ({"turn:lanes": "left|through"}, -1, ("", "left|through")),
        ({"turn:lanes": "left|through"}, 0, ("", "")),  # ambiguous on a two-way road
        ({"turn:lanes:forward": "left|through", "turn:lanes:backward": "right"}, 0,
         ("left|through", "right")),
        ({"turn:lanes:forward": "left|through", "turn:lanes": "x"}, 1, ("left|through", "")),
        ({"turn:lanes:backward": "left|through"}, 1, ("", "")),  # no backward travel
    ],
)  # fmt: skip
def test_turn_lanes_by_direction(tags: dict[str, str], oneway: int, expected) -> None:
    assert turn_lanes_by_direction(tags, oneway) == expected
