"""Regional defaults (twin/region.py): the map's country, its preset, and explicit keys winning."""

from __future__ import annotations

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


def test_a_us_map_with_all_regional_keys_set_is_left_as_it_is():
    sc = load_scenario(ROOT / "scenarios" / "baltimore.toml")
    out, region = apply_region(sc, net_at(*BALTIMORE))
    assert out is sc and region.preset == "us" and region.applied == ()


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
    assert out.energy.temperature_range_c == (-9.0, 0.0)  # the explicit preset's range
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
