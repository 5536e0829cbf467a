"""Regional defaults (twin/region.py): the map's country, its preset, and explicit keys winning."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from twin.cli import main
from twin.cli_run import load_scenario_arg, parse_sets
from twin.energy.config import EnergyConfig
from twin.errors import ScenarioError
from twin.population.config import PopulationConfig
from twin.region import PRESETS, REGION_VALUES, apply_region, locate, resolve, utc_offset_h
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
DORTMUND_MAP = ROOT / "maps" / "dortmund.osm.bz2"
BALTIMORE = (-76.572, 39.288)  # the centre of maps/baltimore.osm.bz2's road nodes
DORTMUND = (7.465, 51.514)  # the centre of maps/dortmund.osm.bz2's road nodes


def net_at(lon: float, lat: float) -> SimpleNamespace:
    """A stand-in road network: apply_region reads only the node coordinates."""
    return SimpleNamespace(
        node_lon=np.array([lon - 0.01, lon + 0.01]), node_lat=np.array([lat] * 2)
    )


def write(path: Path, text: str, *, top: str = "") -> Path:
    """A scenario on the Dortmund map: ``top`` keys, then [map], then the tables in ``text``."""
    path.write_text(f'{top}[map]\nfile = "{DORTMUND_MAP.as_posix()}"\n{text}')
    return path


# --- where the map is ---------------------------------------------------------------------------


def test_baltimore_is_us_and_dortmund_is_de():
    assert locate(*BALTIMORE) == ("America/New_York", "US")
    assert locate(*DORTMUND) == ("Europe/Berlin", "DE")
    assert resolve("auto", *BALTIMORE).preset == "us"
    region = resolve("auto", *DORTMUND)
    assert (region.preset, region.country, region.note) == ("de", "DE", "")


def test_a_country_without_a_preset_falls_back_with_a_note():
    warsaw = resolve("auto", 21.01, 52.23)
    assert (warsaw.preset, warsaw.country) == ("eu", "PL")
    assert "no preset for Poland (PL)" in warsaw.note and "EU average" in warsaw.note
    aguascalientes = resolve("auto", -102.29, 21.88)
    assert (aguascalientes.preset, aguascalientes.country) == ("us", "MX")
    assert "US figures" in aguascalientes.note
    explicit = resolve("fr", *BALTIMORE)  # an explicit preset is taken wherever the map is
    assert (explicit.preset, explicit.country, explicit.note) == ("fr", "US", "")


def test_the_utc_offset_includes_daylight_saving():
    assert utc_offset_h("Europe/Berlin", 7, 15) == 2.0
    assert utc_offset_h("Europe/Berlin", 1, 15) == 1.0
    assert utc_offset_h("America/New_York", 7, 15) == -4.0
    assert utc_offset_h("America/New_York", 1, 15) == -5.0
    assert utc_offset_h("Europe/Berlin", 2, 31) == 1.0  # past the month's end: its last day


# --- the presets --------------------------------------------------------------------------------


def test_the_us_preset_is_the_cited_us_figures_and_the_defaults():
    us = PRESETS["us"]
    # CPS ASEC 2020 HH-4; ACS 2019 B08201; NHTS 2017; EIA EPM 5.3 2023; EIA 2022
    assert us.population == {
        "persons_shares": (0.282, 0.349, 0.151, 0.126, 0.058, 0.034),
        "car_shares": (0.086, 0.325, 0.371, 0.218),
        "car_mode_share": 0.87,
    }
    assert (us.currency, us.price_per_kwh, us.carbon_g_per_kwh) == ("USD", 0.16, 388.0)
    assert us.summer_c is None  # the "summer" weather preset: Baltimore's July normal
    pop, energy = PopulationConfig(), EnergyConfig()
    assert {k: getattr(pop, k) for k in us.population} == us.population
    assert (energy.currency, energy.price_per_kwh, energy.carbon_g_per_kwh) == ("USD", 0.16, 388.0)
    assert energy.temperature_range_c == (21.0, 31.0)


def test_every_preset_is_valid_in_a_scenario():
    for code, preset in PRESETS.items():
        PopulationConfig(**preset.population)
        EnergyConfig(currency=preset.currency, price_per_kwh=preset.price_per_kwh)
        assert len(preset.currency) == 3, code
    assert ("auto", *PRESETS) == REGION_VALUES


def test_a_us_map_gets_exactly_the_old_defaults(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(f'[map]\nfile = "{(ROOT / "maps" / "baltimore.osm.bz2").as_posix()}"\n')
    sc = load_scenario(path)
    out, region = apply_region(sc, net_at(*BALTIMORE))
    assert region.preset == "us"
    assert out.population == sc.population and out.energy == sc.energy  # same values
    assert out.energy.utc_offset_h is None  # the longitude / 15 guess, as before
    assert out.to_toml_dict() == sc.to_toml_dict()


def test_a_us_map_with_all_regional_keys_set_is_left_as_it_is(tmp_path):
    regional = (
        "[population]\ncar_shares = [0.1, 0.9]\npersons_shares = [1.0]\ncar_mode_share = 0.5\n"
        '[energy]\nprice_per_kwh = 0.1\ncurrency = "USD"\ncarbon_g_per_kwh = 1\n'
    )
    path = tmp_path / "b.toml"
    path.write_text(
        f'[map]\nfile = "{(ROOT / "maps" / "baltimore.osm.bz2").as_posix()}"\n{regional}'
    )
    sc = load_scenario(path)
    out, region = apply_region(sc, net_at(*BALTIMORE))
    assert out is sc and region.preset == "us" and region.applied == ()


#: the keys baltimore.toml leaves to the region preset, and the values it set before
BALTIMORE_REGIONAL = {
    "population.persons_shares": (0.282, 0.349, 0.151, 0.126, 0.058, 0.034),
    "population.car_shares": (0.086, 0.325, 0.371, 0.218),
    "population.car_mode_share": 0.87,
    "energy.currency": "USD",
    "energy.price_per_kwh": 0.16,
    "energy.carbon_g_per_kwh": 388.0,
}


def _get(sc, key: str):
    section, leaf = key.split(".")
    return getattr(getattr(sc, section), leaf)


def test_baltimore_leaves_its_regional_keys_to_the_us_preset_which_gives_the_same():
    sc = load_scenario(ROOT / "scenarios" / "baltimore.toml")
    assert not any(sc.is_set(k) for k in [*BALTIMORE_REGIONAL, "energy.weather"])
    out, region = apply_region(sc, net_at(*BALTIMORE))
    assert region.preset == "us" and set(region.applied) == set(BALTIMORE_REGIONAL)
    assert {k: _get(out, k) for k in BALTIMORE_REGIONAL} == BALTIMORE_REGIONAL
    assert out.energy.weather == "summer" and out.energy.temperature_range_c == (21.0, 31.0)
    assert out.energy.utc_offset_h == -4  # kept explicit: the us preset sets no offset


def test_the_dortmund_scenario_resolves_to_the_german_preset():
    sc = load_scenario(ROOT / "scenarios" / "dortmund.toml")
    assert not any(sc.is_set(k) for k in BALTIMORE_REGIONAL)
    assert not sc.is_set("energy.utc_offset_h")  # "auto" undoes baltimore.toml's -4
    out, region = apply_region(sc, net_at(*DORTMUND))
    de = PRESETS["de"]
    assert region.preset == "de" and set(BALTIMORE_REGIONAL) <= set(region.applied)
    assert out.population.persons_shares == de.population["persons_shares"]
    assert out.population.car_shares == de.population["car_shares"]
    assert out.population.car_mode_share == de.population["car_mode_share"] == 0.65
    assert (out.energy.currency, out.energy.price_per_kwh) == ("EUR", de.price_per_kwh)
    assert out.energy.carbon_g_per_kwh == de.carbon_g_per_kwh == 380.0
    assert out.energy.utc_offset_h == 2.0  # 15 July in Europe/Berlin: CEST
    assert out.energy.temperature_range_c == de.summer_c == (15.0, 26.0)
    # the rest is baltimore.toml's
    balt = load_scenario(ROOT / "scenarios" / "baltimore.toml")
    assert (out.time, out.traffic, out.demand, out.control) == (
        balt.time,
        balt.traffic,
        balt.demand,
        balt.control,
    )
    assert out.population.employment_rate == balt.population.employment_rate
    assert out.energy.ev_battery_kwh == balt.energy.ev_battery_kwh
    # and in winter the offset follows the zone: CET
    winter, _ = apply_region(sc.with_overrides({"energy.month": 1}), net_at(*DORTMUND))
    assert winter.energy.utc_offset_h == 1.0
    assert winter.energy.temperature_range_c == de.winter_c


def test_utc_offset_auto_undoes_a_base_files_offset(tmp_path):
    write(tmp_path / "base.toml", "[energy]\nutc_offset_h = -4\n")
    child = tmp_path / "child.toml"
    child.write_text('base = "base.toml"\n[energy]\nutc_offset_h = "auto"\n')
    sc = load_scenario(child)
    assert sc.energy.utc_offset_h is None and not sc.is_set("energy.utc_offset_h")
    out, region = apply_region(sc, net_at(*DORTMUND))
    assert out.energy.utc_offset_h == 2.0 and "energy.utc_offset_h" in region.applied
    assert out.with_overrides({}) == out
    with pytest.raises(ScenarioError, match="utc_offset_h"):
        write(tmp_path / "bad.toml", '[energy]\nutc_offset_h = "local"\n')
        load_scenario(tmp_path / "bad.toml")


def test_the_named_weather_days_follow_the_regions_climate(tmp_path):
    de = PRESETS["de"]
    expected = {
        "summer": de.summer_c,
        "heatwave": (de.summer_c[0] + 6.0, de.summer_c[1] + 7.0),  # as the US heat wave
        "cold": (de.winter_c[0] - 6.0, de.winter_c[1] - 6.0),  # as the US cold snap
        "mild": ((15.0 - 1.0) / 2, (26.0 + 4.0) / 2),
    }
    for weather, day in expected.items():
        sc = load_scenario(write(tmp_path / "w.toml", f'[energy]\nweather = "{weather}"\n'))
        out, _ = apply_region(sc, net_at(*DORTMUND))
        assert out.energy.temperature_range_c == day, weather
        # the same through the weather intervention (it sets the key)
        what_if = load_scenario(write(tmp_path / "i.toml", "")).with_overrides(
            {"intervention": [{"kind": "weather", "weather": weather}]}
        )
        assert apply_region(what_if, net_at(*DORTMUND))[0].energy.temperature_range_c == day
    # a US map keeps the presets' own (Baltimore's) days
    us = load_scenario(write(tmp_path / "u.toml", '[energy]\nweather = "heatwave"\n'))
    assert apply_region(us, net_at(*BALTIMORE))[0].energy.temperature_range_c == (27.0, 38.0)
    # explicit temperatures win over the named day
    own = load_scenario(
        write(tmp_path / "o.toml", '[energy]\nweather = "heatwave"\ntemp_max_c = 35\n')
    )
    assert apply_region(own, net_at(*DORTMUND))[0].energy.temperature_range_c == (27.0, 35.0)


# --- applying a preset --------------------------------------------------------------------------


def test_dortmund_gets_german_defaults(tmp_path):
    sc = load_scenario(write(tmp_path / "d.toml", ""))
    out, region = apply_region(sc, net_at(*DORTMUND))
    de = PRESETS["de"]
    assert region.preset == "de" and "population.car_shares" in region.applied
    assert out.population.car_shares == de.population["car_shares"]
    assert out.population.persons_shares == de.population["persons_shares"]
    assert out.population.car_mode_share == de.population["car_mode_share"]
    assert (out.energy.currency, out.energy.price_per_kwh) == ("EUR", de.price_per_kwh)
    assert out.energy.carbon_g_per_kwh == de.carbon_g_per_kwh
    assert out.energy.utc_offset_h == 2.0  # July 15 (the default day): CEST
    assert out.energy.temperature_range_c == de.summer_c
    assert out.population.employment_rate == sc.population.employment_rate  # not regional
    # the filled scenario writes out and reads back the same
    assert out.with_overrides({}) == out


def test_a_winter_day_in_dortmund(tmp_path):
    sc = load_scenario(write(tmp_path / "d.toml", "[energy]\nmonth = 1\n"))
    out, _ = apply_region(sc, net_at(*DORTMUND))
    assert out.energy.utc_offset_h == 1.0  # CET
    assert out.energy.temperature_range_c == PRESETS["de"].winter_c


def test_keys_set_in_the_file_in_a_base_file_or_by_set_win(tmp_path):
    base = write(
        tmp_path / "base.toml",
        '[population]\ncar_shares = [0.5, 0.5]\n[energy]\nutc_offset_h = 0\nweather = "cold"\n',
    )
    child = tmp_path / "child.toml"
    child.write_text('base = "base.toml"\n[energy]\ncarbon_g_per_kwh = 100\n')
    sc = load_scenario(child)
    assert sc.is_set("population.car_shares") and not sc.is_set("population.persons_shares")
    out, region = apply_region(sc, net_at(*DORTMUND))
    assert out.population.car_shares == (0.5, 0.5)  # from the base file
    assert out.energy.carbon_g_per_kwh == 100  # from the file
    assert out.energy.utc_offset_h == 0 and out.energy.weather == "cold"
    assert out.energy.temperature_range_c == (-7.0, -2.0)  # the named day in Germany's climate
    assert out.population.persons_shares == PRESETS["de"].population["persons_shares"]
    assert "population.car_shares" not in region.applied
    # --set: an override is explicit; everything else stays a default the region fills
    over = load_scenario_arg(base, parse_sets(["population.car_mode_share=0.3"]), None)
    assert over.is_set("population.car_mode_share") and not over.is_set("energy.carbon_g_per_kwh")
    out, _ = apply_region(over, net_at(*DORTMUND))
    assert out.population.car_mode_share == 0.3
    assert out.energy.carbon_g_per_kwh == PRESETS["de"].carbon_g_per_kwh


def test_an_explicit_region_applies_its_preset_anywhere(tmp_path):
    sc = load_scenario(write(tmp_path / "d.toml", "", top='region = "us"\n'))
    out, region = apply_region(sc, net_at(*DORTMUND))
    assert region.preset == "us"
    assert out.population.car_shares == PRESETS["us"].population["car_shares"]
    assert out.energy.currency == "USD"
    assert out.energy.utc_offset_h is None and out.energy.temperature_range_c == (21.0, 31.0)


def test_price_and_currency(tmp_path):
    usd = load_scenario(write(tmp_path / "a.toml", "[energy]\nprice_usd_per_kwh = 0.2\n"))
    assert (usd.energy.currency, usd.energy.price_per_kwh) == ("USD", 0.2)
    assert usd.to_toml_dict()["energy"]["price_usd_per_kwh"] == 0.2  # written as before
    out, _ = apply_region(usd, net_at(*DORTMUND))
    assert (out.energy.currency, out.energy.price_per_kwh) == ("USD", 0.2)  # USD stays USD
    local = load_scenario(write(tmp_path / "b.toml", "[energy]\nprice_per_kwh = 0.5\n"))
    out, _ = apply_region(local, net_at(*DORTMUND))
    assert (out.energy.currency, out.energy.price_per_kwh) == ("EUR", 0.5)  # the local currency
    with pytest.raises(ScenarioError, match="price_usd_per_kwh is in USD but currency = 'EUR'"):
        load_scenario(
            write(tmp_path / "c.toml", '[energy]\ncurrency = "EUR"\nprice_usd_per_kwh = 0.2\n')
        )
    with pytest.raises(ScenarioError, match=r"energy.currency: expected an ISO 4217 code"):
        load_scenario(write(tmp_path / "d.toml", '[energy]\ncurrency = "euro"\n'))


def test_an_invalid_region_is_a_scenario_error(tmp_path, capsys):
    path = write(tmp_path / "bad.toml", "", top='region = "mars"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "bad.toml: region: expected one of 'auto', 'us', 'eu', 'de'" in message
    assert "got 'mars'" in message
    assert main(["run", str(path), "--no-report", "--out", str(tmp_path / "out")]) == 2
    assert "region: expected one of" in capsys.readouterr().err


def test_dortmund_through_the_real_map(tmp_path, roadnet):
    sc = load_scenario(write(tmp_path / "d.toml", ""))
    out, region = apply_region(sc, roadnet("dortmund"))
    assert (region.preset, region.country, region.time_zone) == ("de", "DE", "Europe/Berlin")
    assert out.energy.currency == "EUR"
    assert "de (Germany; map centre in DE, Europe/Berlin)" in region.summary()


def test_a_located_place_is_remembered_on_disk(tmp_path, monkeypatch):
    import twin.region as region

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TWIN_NO_CACHE", raising=False)
    locate.cache_clear()
    assert locate(7.4640, 51.5136) == ("Europe/Berlin", "DE")
    assert (tmp_path / "locations.json").exists()
    locate.cache_clear()

    def no_finder():
        raise AssertionError("timezonefinder was asked again")

    monkeypatch.setattr(region, "_finder", no_finder)
    assert locate(7.4640, 51.5136) == ("Europe/Berlin", "DE")
    locate.cache_clear()


def test_grid_info_applies_the_region_as_a_run_does(capsys):
    scenario = ROOT / "scenarios" / "dortmund.toml"
    assert main(["grid", "info", str(scenario), "--households", "300", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["households_connected"] == 300
    assert data["region"]["preset"] == "de"
    assert "population.car_shares" in data["region"]["applied"]
    assert main(["grid", "info", str(DORTMUND_MAP), "--households", "300"]) == 0
    assert "region de (Germany; map centre in DE, Europe/Berlin)" in capsys.readouterr().out
