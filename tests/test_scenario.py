"""Scenario parsing, loading, inheritance and error messages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import tomli_w
from pydantic import ValidationError

from twin.errors import ScenarioError, TwinError
from twin.scenario import (
    MapConfig,
    Scenario,
    TimeConfig,
    format_clock,
    format_duration,
    load_scenario,
    parse_clock_s,
    parse_duration_s,
)

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- parsers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h", 7200),
        ("90min", 5400),
        ("15 min", 900),
        ("30s", 30),
        ("1h30min", 5400),
        ("1h 30min 15s", 5415),
        ("1.5h", 5400),
        (".5min", 30),
        ("1d", 86400),
        ("00:15:00", 900),
        ("01:30", 5400),
        ("1:00:30.5", 3630.5),
        ("90", 90),
        (" 2h ", 7200),
        (45, 45),
        (2.5, 2.5),
        (0, 0),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "2 hours", "h", "1m", "30min1h", "1h1h", "-5s", "-1", "1:5", "abc", True, None]
)
def test_parse_duration_invalid(text: object) -> None:
    with pytest.raises(ValueError, match=r'expected a duration such as "2h" or "90min"'):
        parse_duration_s(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("07:00", 25200),
        ("7:00", 25200),
        ("07:00:30", 25230),
        ("00:00", 0),
        ("24:00", 86400),
        ("25:30", 91800),
        ("48:00", 172800),
        (dt.time(7, 0, 30), 25230),
    ],
)
def test_parse_clock(text: str | dt.time, seconds: float) -> None:
    assert parse_clock_s(text) == seconds


@pytest.mark.parametrize("text", ["7", "07:60", "7h", "48:00:01", "49:00", "-1:00", "", 25200])
def test_parse_clock_invalid(text: object) -> None:
    with pytest.raises(ValueError, match=r'expected a time of day such as "07:00"'):
        parse_clock_s(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(7200, "2h"), (5400, "1h30min"), (90, "1min30s"), (0, "0s"), (86400, "24h"), (0.5, "0.5s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(25200, "07:00"), (25230, "07:00:30"), (0, "00:00"), (90000, "25:00")]
)
def test_format_clock(seconds: float, text: str) -> None:
    assert format_clock(seconds) == text


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 3599, 3600.1, 5415, 0.25, 123456.789, 1e-3])
def test_duration_round_trip(seconds: float) -> None:
    assert parse_duration_s(format_duration(seconds)) == seconds


@pytest.mark.parametrize("seconds", [0, 1, 25200, 25230, 25230.5, 86399.75, 172800])
def test_clock_round_trip(seconds: float) -> None:
    assert parse_clock_s(format_clock(seconds)) == seconds


def test_format_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)
    with pytest.raises(ValueError):
        format_clock(48 * 3600 + 1)


# --- shipped scenarios -------------------------------------------------------------------


def test_load_baltimore() -> None:
    s = load_scenario(SCENARIOS / "baltimore.toml")
    assert s.name == "baltimore"
    assert s.seed == 42
    assert s.map.file == REPO / "maps" / "baltimore.osm.bz2"
    assert s.map.file.is_absolute()
    assert (s.map.consolidate_m, s.map.signal_snap_m, s.map.keep_largest_scc) == (10, 30, True)
    assert (s.time.start_s, s.time.duration_s, s.time.report_interval_s) == (23400, 10800, 900)
    assert s.demand.kind == "population" and s.population.households == "auto"
    assert s.source == SCENARIOS / "baltimore.toml"


def test_load_baltimore_short_inherits() -> None:
    base = load_scenario(SCENARIOS / "baltimore.toml")
    s = load_scenario(SCENARIOS / "baltimore-short.toml")
    assert s.name == "baltimore-short"  # name is per file, not inherited
    assert s.description == ""
    assert s.seed == 42
    assert s.map == base.map
    assert s.map.file == REPO / "maps" / "baltimore.osm.bz2"
    assert s.time.start_s == 23400
    assert (s.time.duration_s, s.time.report_interval_s) == (900, 300)


def test_load_accepts_str_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    s = load_scenario("scenarios/baltimore.toml")
    assert s.source == SCENARIOS / "baltimore.toml"


# --- inheritance -------------------------------------------------------------------------


def test_inheritance_nested_merge_and_relative_paths(tmp_path: Path) -> None:
    write(
        tmp_path / "base" / "city.toml",
        'seed = 7\nname = "city"\n[map]\nfile = "maps/city.osm"\nconsolidate_m = 5\n'
        '[time]\nstart = "06:00"\nduration = "2h"\n',
    )
    write(
        tmp_path / "whatif" / "mid.toml",
        'base = "../base/city.toml"\n[map]\nsignal_snap_m = 12.5\n[time]\nduration = "3h"\n',
    )
    child = write(
        tmp_path / "whatif" / "deep" / "leaf.toml",
        'base = "../mid.toml"\nseed = 8\n[time]\nreport_interval = "30min"\n',
    )
    s = load_scenario(child)
    assert s.name == "leaf"
    assert s.seed == 8
    assert s.map.file == tmp_path / "base" / "maps" / "city.osm"  # against the base's dir
    assert (s.map.consolidate_m, s.map.signal_snap_m) == (5, 12.5)
    assert (s.time.start_s, s.time.duration_s, s.time.report_interval_s) == (21600, 10800, 1800)


def test_child_path_resolves_against_child_dir(tmp_path: Path) -> None:
    write(tmp_path / "a" / "base.toml", '[map]\nfile = "x.osm"\n')
    child = write(tmp_path / "b" / "child.toml", 'base = "../a/base.toml"\n[map]\nfile = "y.osm"\n')
    assert load_scenario(child).map.file == tmp_path / "b" / "y.osm"


def test_inheritance_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.toml", 'base = "b.toml"\n')
    write(tmp_path / "b.toml", 'base = "c.toml"\n')
    write(tmp_path / "c.toml", 'base = "a.toml"\n')
    with pytest.raises(
        ScenarioError, match=r"inheritance cycle: a.toml -> b.toml -> c.toml -> a.toml"
    ):
        load_scenario("a.toml")


def test_self_inheritance_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path / "self.toml", 'base = "self.toml"\n')
    with pytest.raises(ScenarioError, match="inheritance cycle"):
        load_scenario(path)


def test_missing_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "child.toml", 'base = "nope.toml"\n')
    with pytest.raises(
        ScenarioError, match=r"^child.toml: base: scenario file not found: nope.toml$"
    ):
        load_scenario("child.toml")


def test_error_names_the_file_that_set_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.toml", '[map]\nfile = "m.osm"\nconsolidat_m = 3\n')
    write(tmp_path / "child.toml", 'base = "base.toml"\n[time]\nduration = "2 hours"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario("child.toml")
    lines = str(info.value).splitlines()
    assert sorted(lines) == sorted(
        [
            "base.toml: map.consolidat_m: unknown key "
            "(expected one of: file, consolidate_m, signal_snap_m, signal_join_m, "
            "keep_largest_scc, untagged_lanes)",
            'child.toml: time.duration: expected a duration such as "2h" or "90min", '
            'got "2 hours" (accepted: "1h30min", "1.5h", "15 min", "30s", "H:MM[:SS]", or seconds)',
        ]
    )


# --- validation errors -------------------------------------------------------------------


def load_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Scenario:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "scenarios" / "x.toml", text)
    return load_scenario("scenarios/x.toml")


MAP = '[map]\nfile = "m.osm"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MAP + "consolidat_m = 3\n",
            "scenarios/x.toml: map.consolidat_m: unknown key "
            "(expected one of: file, consolidate_m, signal_snap_m, signal_join_m, "
            "keep_largest_scc, untagged_lanes)",
        ),
        (
            "sed = 1\n" + MAP,
            "scenarios/x.toml: sed: unknown key "
            "(expected one of: base, name, seed, description, region, map, time, traffic, "
            "demand, population, energy, control, intervention)",
        ),
        ('seed = "abc"\n' + MAP, 'scenarios/x.toml: seed: expected an integer >= 0, got "abc"'),
        ("seed = -1\n" + MAP, "scenarios/x.toml: seed: expected an integer >= 0, got -1"),
        ("seed = 1.0\n" + MAP, "scenarios/x.toml: seed: expected an integer >= 0, got 1.0"),
        ('name = ""\n' + MAP, 'scenarios/x.toml: name: expected a non-empty string, got ""'),
        (
            MAP + 'consolidate_m = "10"\n',
            'scenarios/x.toml: map.consolidate_m: expected a number >= 0, got "10"',
        ),
        (
            MAP + "signal_snap_m = nan\n",
            "scenarios/x.toml: map.signal_snap_m: expected a number >= 0, got nan",
        ),
        (
            MAP + 'keep_largest_scc = "yes"\n',
            'scenarios/x.toml: map.keep_largest_scc: expected true or false, got "yes"',
        ),
        ("[map]\nfile = 3\n", "scenarios/x.toml: map.file: expected a file path, got 3"),
        ("[map]\n", "scenarios/x.toml: map.file: missing required key"),
        ("seed = 1\n", "scenarios/x.toml: map: missing required table"),
        ("map = 3\n", "scenarios/x.toml: map: expected a table, got 3"),
        (
            MAP + '[time]\nstart = "7am"\n',
            'scenarios/x.toml: time.start: expected a time of day such as "07:00", got "7am" '
            '(accepted: "H:MM" or "H:MM:SS", from "00:00" to "48:00")',
        ),
        (
            MAP + '[time]\nduration = "0s"\n',
            'scenarios/x.toml: time.duration: expected a duration > 0, got "0s"',
        ),
        (
            MAP + '[time]\nduration = "10min"\n',
            "scenarios/x.toml: time: report_interval (15min) must not exceed duration (10min)",
        ),
    ],
)
def test_validation_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(tmp_path, monkeypatch, text)
    assert str(info.value) == message


def test_several_problems_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = 'seed = "abc"\n[map]\nfile = "m.osm"\nconsolidat_m = 3\n[time]\nduration = "2 hours"\n'
    with pytest.raises(ScenarioError) as info:
        load_text(tmp_path, monkeypatch, text)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert all(line.startswith("scenarios/x.toml: ") for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"seed", "map.consolidat_m", "time.duration"}


def test_toml_local_time_and_integer_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_text(tmp_path, monkeypatch, MAP + "[time]\nstart = 08:30:00\nduration = 1800\n")
    assert (s.time.start_s, s.time.duration_s, s.time.report_interval_s) == (30600, 1800, 900)


def test_map_file_need_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_text(tmp_path, monkeypatch, '[map]\nfile = "../maps/none.osm"\n')
    assert s.map.file == tmp_path / "maps" / "none.osm"
    assert not s.map.file.exists()


def test_bad_toml_syntax(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ScenarioError, match=r"^scenarios/x.toml: invalid TOML: .*line 2"):
        load_text(tmp_path, monkeypatch, 'seed = 1\nname = "unterminated\n')


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match=f"^scenario file not found: {path}$"):
        load_scenario(path)
    assert issubclass(ScenarioError, TwinError)


# --- the Scenario object -----------------------------------------------------------------


def test_to_toml_dict_round_trip(tmp_path: Path) -> None:
    s = load_scenario(SCENARIOS / "baltimore-short.toml").with_overrides(
        {"time": {"start": "23:59:30.5", "duration": "1h0.25s"}, "map.consolidate_m": 2.5}
    )
    data = s.to_toml_dict()
    assert data["map"]["file"] == str(REPO / "maps" / "baltimore.osm.bz2")
    assert data["time"] == {"start": "23:59:30.5", "duration": "1h0.25s", "report_interval": "5min"}
    assert "source" not in data
    copy = tmp_path / "elsewhere" / "copy.toml"
    copy.parent.mkdir()
    copy.write_bytes(tomli_w.dumps(data).encode())
    again = load_scenario(copy)
    assert again == s
    assert again.name == "baltimore-short"
    assert again.source == copy and s.source != copy  # provenance is not compared
    assert hash(again) == hash(s)


def test_with_overrides() -> None:
    s = load_scenario(SCENARIOS / "baltimore.toml")
    t = s.with_overrides({"seed": 3, "time": {"duration": "2h"}, "map.file": "other.osm"})
    assert (t.seed, t.time.duration_s) == (3, 7200)
    assert t.time.start_s == s.time.start_s and t.time.report_interval_s == 900
    assert t.map.file == SCENARIOS / "other.osm"  # relative to the source file, as if written there
    assert t.map.consolidate_m == s.map.consolidate_m
    assert t.source == s.source
    assert s.seed == 42  # the original is unchanged
    with pytest.raises(ScenarioError, match=r"^overrides: time.duration: expected a duration"):
        s.with_overrides({"time.duration": "forever"})
    with pytest.raises(ScenarioError, match=r"^overrides: map.nope: unknown key"):
        s.with_overrides({"map": {"nope": 1}})


def test_from_dict(tmp_path: Path) -> None:
    s = Scenario.from_dict({"map": {"file": "m.osm"}}, base_dir=tmp_path)
    assert s.map.file == tmp_path / "m.osm"
    assert (s.name, s.seed, s.source) == ("scenario", 0, None)
    assert s.time == TimeConfig()
    src = tmp_path / "sub" / "named.toml"
    s = Scenario.from_dict({"map": {"file": "m.osm"}}, source=src)
    assert (s.name, s.source, s.map.file) == ("named", src, tmp_path / "sub" / "m.osm")
    with pytest.raises(ScenarioError, match=r"named.toml: seed: expected an integer"):
        Scenario.from_dict({"seed": "x", "map": {"file": "m"}}, source=src)
    with pytest.raises(ScenarioError, match="base: inheritance needs a scenario file"):
        Scenario.from_dict({"base": "a.toml"})


def test_frozen() -> None:
    s = load_scenario(SCENARIOS / "baltimore.toml")
    with pytest.raises(ValidationError):
        s.seed = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.time.duration_s = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.map.file = Path("x")  # type: ignore[misc]
    assert isinstance(s.map, MapConfig)


def test_a_run_past_48_00_is_refused_at_load(tmp_path):
    from twin.scenario import Scenario

    data = {"map": {"file": "m.osm"}, "time": {"start": "20:00", "duration": "30h"}}
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data, base_dir=tmp_path)
    assert "time: the run would end at 50:00 (start 20:00 + 30h); runs end by 48:00" in str(
        info.value
    )
    data["time"]["duration"] = "28h"  # ends at 48:00 exactly: allowed
    assert Scenario.from_dict(data, base_dir=tmp_path).time.duration_s == 28 * 3600


def test_untagged_lanes_take_known_classes_and_sane_counts(tmp_path: Path) -> None:
    base = 'seed = 1\n[map]\nfile = "city.osm"\n'
    write(tmp_path / "ok.toml", base + "untagged_lanes = {tertiary = 2, secondary = 3}\n")
    s = load_scenario(tmp_path / "ok.toml")
    assert s.map.build_options().untagged_lanes == (("secondary", 3), ("tertiary", 2))
    assert load_scenario(tmp_path / "ok.toml").map.build_options() == s.map.build_options()
    for bad, says in [("highway = 2", "unknown road class 'highway'"), ("secondary = 9", "1-8")]:
        write(tmp_path / "bad.toml", base + f"untagged_lanes = {{{bad}}}\n")
        with pytest.raises(ScenarioError, match=says):
            load_scenario(tmp_path / "bad.toml")
