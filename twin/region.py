"""Regional defaults: the figures that differ by country, chosen from where the map is.

A scenario's top-level ``region`` key (default ``"auto"``) names a preset of :data:`PRESETS`
or asks for the one of the map's country. The model resolves it once the road network is
loaded (:func:`apply_region`, called by :class:`~twin.model.CityModel`):

1. the map's centre is the mean longitude/latitude of the road network's nodes (the same point
   the energy side takes for the sun);
2. its IANA time zone comes from ``timezonefinder`` (offline polygons of the time-zone
   boundaries) and its country from the time-zone database's ``zone.tab`` (shipped in the
   ``tzdata`` package: one ISO 3166 country per zone). Nothing is downloaded at run time;
3. ``"auto"`` takes the country's preset; a country without one takes ``"eu"`` if it is in
   Europe (:data:`EUROPE` or a ``Europe/*`` zone) and the US figures otherwise, with a note
   saying so. An explicit preset is taken as given, wherever the map is.

The preset then fills only the keys the scenario did not set explicitly: a key set in the
file, in a base file it inherits, by ``--set`` / ``with_overrides`` or by an intervention
wins (:meth:`twin.scenario.Scenario.with_defaults`). The keys a preset sets:

- ``[population]`` ``persons_shares``, ``car_shares``, ``car_mode_share``;
- ``[energy]`` ``currency`` and ``price_per_kwh`` (together: a price is never put in a currency
  the scenario did not choose), ``carbon_g_per_kwh``. ``tariff`` interventions on a scenario
  without a price of its own are laid over the region's (in its currency); one priced in
  another currency (the old ``price_usd_per_kwh``) is an error;
- ``[energy]`` ``temp_min_c`` / ``temp_max_c``, only if neither is set: without a ``weather``
  key, a typical day of the month's season from a representative city's climate normals (June
  to August: the July normals; December to February: the January normals; the months
  between: their midpoint; seasons swapped south of the equator); with one (or a ``weather``
  intervention), that named day in the preset's climate (:func:`weather_day_c`: the named
  days of twin/energy/weather.py are Baltimore's);
- ``[energy]`` ``utc_offset_h``: from the map's time zone on the scenario's month and day
  (daylight saving included); without a zone (at sea) it stays unset and the energy side keeps
  its longitude / 15 guess.

``employment_rate``, ``other_tours_per_adult`` and the rest keep their (US) defaults: no
comparable source was at hand for every preset (see :data:`PRESETS`).

The ``"us"`` preset is exactly the defaults the scenario models declare (the same constants)
and sets neither the day nor the UTC offset, so a US map (and a non-European country without
a preset, which gets the US figures) runs bit for bit as it did before regions existed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from twin.energy.config import US_CARBON_G_PER_KWH, US_PRICE_USD_PER_KWH
from twin.energy.weather import WEATHER_PRESETS
from twin.errors import ScenarioError
from twin.interventions.config import Tariff, tariff_currency_errors, with_tariffs
from twin.population.config import US_CAR_MODE_SHARE, US_CAR_SHARES, US_PERSONS_SHARES

if TYPE_CHECKING:
    from twin.network.road import RoadNet
    from twin.scenario import Scenario

__all__ = [
    "PRESETS",
    "REGION_VALUES",
    "Preset",
    "Region",
    "apply_region",
    "locate",
    "map_centre",
    "resolve",
    "utc_offset_h",
]

#: the year whose daylight-saving rules date the scenario's month and day (any recent year:
#: results must not depend on the day the run is made)
RULES_YEAR = 2025


@dataclass(frozen=True)
class Preset:
    """The figures of one region (units in the names; sources beside them in PRESETS)."""

    name: str
    #: ISO 4217 code of the price
    currency: str
    #: household electricity price, currency per kWh, taxes included
    price_per_kwh: float
    #: carbon intensity of the grid's electricity, g CO2 per kWh
    carbon_g_per_kwh: float
    #: (min, max) deg C of a typical July and January day; None: the ``weather`` preset
    #: decides the day, whatever the month (the defaults' behaviour)
    summer_c: tuple[float, float] | None
    winter_c: tuple[float, float] | None
    #: ``[population]`` keys and values
    population: dict[str, Any] = field(default_factory=dict)
    #: set ``utc_offset_h`` from the map's time zone (False: leave the defaults' longitude / 15
    #: guess)
    zone_offset: bool = True


# Every figure below carries its source. "Not verified here" marks a figure recalled from the
# named source but not checked against it when this table was written: treat it as rounded.
PRESETS: dict[str, Preset] = {
    # The scenario models' own defaults (twin/population/config.py, twin/energy/config.py,
    # twin/energy/weather.py), with their sources there: CPS ASEC 2020 table HH-4, ACS 2019
    # table B08201, NHTS 2017, EIA Electric Power Monthly table 5.3 (2023), EIA FAQ (2022).
    # It changes nothing, so that every US scenario and test runs bit for bit as before this
    # module: the day stays the ``weather`` preset's (default "summer", about Baltimore's July
    # normal) in any month, and the UTC offset the longitude / 15 guess (set utc_offset_h, as
    # baltimore.toml does). Turning on zone_offset and adding a winter day (Baltimore-
    # Washington airport, NOAA 1991-2020 January normal: highs near 6 C, lows near -3 C) is
    # a deliberate change of US results for the scenarios that leave those keys unset.
    "us": Preset(
        name="United States",
        currency="USD",
        price_per_kwh=US_PRICE_USD_PER_KWH,
        carbon_g_per_kwh=US_CARBON_G_PER_KWH,
        summer_c=None,
        winter_c=None,
        population={
            "persons_shares": US_PERSONS_SHARES,
            "car_shares": US_CAR_SHARES,
            "car_mode_share": US_CAR_MODE_SHARE,
        },
        zone_offset=False,
    ),
    # EU-27 average.
    "eu": Preset(
        name="European Union (average)",
        currency="EUR",
        # Eurostat nrg_pc_204 (household consumers, band DC 2,500-5,000 kWh/yr, all taxes and
        # levies included), EU-27, 2024-S2: 0.2872 EUR/kWh.
        price_per_kwh=0.2872,
        # EEA indicator "Greenhouse gas emission intensity of electricity generation" (ENER
        # 038): 2023 was 19 % below 2022; about 210 g CO2e/kWh in 2023 - the absolute figure is
        # not verified here.
        carbon_g_per_kwh=210.0,
        # Brussels-Uccle, RMI 1991-2020 normals, rounded; a stand-in for western central
        # Europe, not an EU average (not verified here).
        summer_c=(14.0, 24.0),
        winter_c=(1.0, 6.0),
        population={
            # Eurostat household statistics, EU-27 2023, households of 1..5+ persons about
            # 36/32/15/12/5 % (average size 2.3) - table and figures not verified here.
            "persons_shares": (0.36, 0.32, 0.15, 0.12, 0.05),
            # No EU-wide distribution of cars per household was at hand; Germany's (MiD 2017,
            # below) stands in: Germany's cars per inhabitant are close to the EU average
            # (Eurostat road_eqs_carhab; not verified here).
            "car_shares": (0.22, 0.53, 0.21, 0.04),
            # No EU-wide commuting mode share was at hand; Germany's (below) stands in.
            "car_mode_share": 0.65,
        },
    ),
    "de": Preset(
        name="Germany",
        currency="EUR",
        # Eurostat nrg_pc_204, band DC, all taxes, Germany, 2024-S2: 0.3943 EUR/kWh.
        price_per_kwh=0.3943,
        # Umweltbundesamt, "Entwicklung der spezifischen Treibhausgas-Emissionen des deutschen
        # Strommix 1990-2024": emission factor of the electricity mix 2023, 380 g CO2/kWh.
        carbon_g_per_kwh=380.0,
        # Frankfurt am Main airport, DWD 1991-2020 normals, rounded (not verified here).
        summer_c=(15.0, 26.0),
        winter_c=(-1.0, 4.0),
        population={
            # Destatis, Mikrozensus 2018 (press release 2019): households of 1, 2, 3, 4, 5+
            # persons 42, 34, 12, 9, 3 %.
            "persons_shares": (0.42, 0.34, 0.12, 0.09, 0.03),
            # Mobilitaet in Deutschland 2017 (infas/DLR for BMVI): households with no car 22 %,
            # one 53 %, two 21 %, three or more 4 %.
            "car_shares": (0.22, 0.53, 0.21, 0.04),
            # Destatis, Mikrozensus 2024 commuter survey: 65 % of commuters go by car
            # (68 % in 2020).
            "car_mode_share": 0.65,
        },
    ),
    "fr": Preset(
        name="France",
        currency="EUR",
        # Eurostat nrg_pc_204, band DC, all taxes, France, 2024-S2: 0.2926 EUR/kWh.
        price_per_kwh=0.2926,
        # RTE, Bilan electrique 2023: carbon intensity of French generation, 32 g CO2e/kWh.
        carbon_g_per_kwh=32.0,
        # Paris-Montsouris, Meteo-France 1991-2020 normals, rounded (not verified here).
        summer_c=(16.0, 26.0),
        winter_c=(3.0, 8.0),
        population={
            # INSEE, recensement 2020, households of 1..5+ persons about 37/33/13/11/6 % - not
            # verified here.
            "persons_shares": (0.37, 0.33, 0.13, 0.11, 0.06),
            # INSEE, recensement: about 82 % of households own a car and 35 % two or more - not
            # verified here; "two or more" is drawn as two.
            "car_shares": (0.18, 0.47, 0.35),
            # INSEE Focus no 143 (2019), census 2015: 70 % of employees go to work mainly by car.
            "car_mode_share": 0.70,
        },
    ),
    "gb": Preset(
        name="United Kingdom",
        currency="GBP",
        # Ofgem price cap, 1 Oct - 31 Dec 2024, direct debit, average unit rate 24.50 p/kWh
        # (the standing charge of 60.99 p/day is left out: the twin prices energy drawn).
        price_per_kwh=0.2450,
        # Ember yearly electricity data (as republished by Our World in Data), United Kingdom
        # 2023: 237.6 g CO2e/kWh (life-cycle basis, unlike the direct figures of DE/FR/US).
        carbon_g_per_kwh=238.0,
        # London Heathrow, Met Office 1991-2020 normals, rounded (not verified here).
        summer_c=(14.0, 24.0),
        winter_c=(2.0, 8.0),
        population={
            # ONS, Families and households in the UK 2023: households of 1..5+ persons about
            # 30/35/15/13/7 % - not verified here.
            "persons_shares": (0.30, 0.35, 0.15, 0.13, 0.07),
            # DfT National Travel Survey 2023, table NTS0205 (England): no car 22 %, one car
            # 44 %, two or more 34 % ("two or more" drawn as two).
            "car_shares": (0.22, 0.44, 0.34),
            # Census 2011 (England and Wales; RAC Foundation, "The Car and the Commute", 2013,
            # table 1): about two thirds of commuters drive or ride in a car or van - not
            # verified here.
            "car_mode_share": 0.67,
        },
    ),
    "nl": Preset(
        name="Netherlands",
        currency="EUR",
        # Eurostat's Dutch average price is pulled down by the fixed energy-tax rebate per
        # connection (0.06 EUR/kWh in 2022-S1), which says nothing about the price of a kWh
        # drawn; the EU-27 average (0.2872 EUR/kWh, 2024-S2) stands in. Not a Dutch figure.
        price_per_kwh=0.2872,
        # Ember yearly electricity data, Netherlands 2023: about 270 g CO2e/kWh - not verified
        # here.
        carbon_g_per_kwh=270.0,
        # De Bilt, KNMI 1991-2020 normals, rounded (not verified here).
        summer_c=(13.0, 23.0),
        winter_c=(1.0, 6.0),
        population={
            # CBS, households of 1..5+ persons 2023 about 39/33/12/11/5 % - not verified here.
            "persons_shares": (0.39, 0.33, 0.12, 0.11, 0.05),
            # CBS: about a quarter of households have no car - not verified here; "two or
            # more" drawn as two.
            "car_shares": (0.25, 0.50, 0.25),
            # CBS/KiM (ODiN): about half of commutes by car - not verified here.
            "car_mode_share": 0.55,
        },
    ),
}

#: the values a scenario's ``region`` key accepts
REGION_VALUES: tuple[str, ...] = ("auto", *PRESETS)

#: ISO 3166 codes of the countries that fall back to "eu" when they have no preset (beside any
#: country whose zone is Europe/*): EU-27, EFTA, the Balkans, the microstates, dependencies
_EUROPE_CODES = (
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK "
    "IS LI NO CH GB AD MC SM VA AL BA ME MK RS MD UA BY GI IM JE GG FO AX SJ"
)
EUROPE = frozenset(_EUROPE_CODES.split(" "))


@dataclass(frozen=True)
class Region:
    """Where a scenario's map is and which preset its regional defaults came from."""

    #: the scenario's ``region`` value: "auto" or a preset
    requested: str
    #: the preset applied (a key of PRESETS)
    preset: str
    #: ISO 3166 code of the map centre's country; None when unknown (at sea)
    country: str | None
    #: IANA time zone of the map centre; None when unknown
    time_zone: str | None
    #: the map centre, degrees
    lon: float
    lat: float
    #: why this preset, when it is not the country's own ("" otherwise)
    note: str = ""
    #: the keys the preset set (the rest were explicit), dotted
    applied: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: ``de (Germany; map centre in DE, Europe/Berlin)``, and the note."""
        how = "map centre" if self.requested == "auto" else "set in the scenario; map centre"
        where = ", ".join(x for x in (self.country, self.time_zone) if x) or "unknown place"
        text = f"{self.preset} ({PRESETS[self.preset].name}; {how} in {where})"
        return f"{text}; {self.note}" if self.note else text

    def summary(self) -> str:
        """:meth:`describe` and which keys the preset filled (a run's region line)."""
        if not self.applied:
            return f"{self.describe()}; every regional key set explicitly"
        keys = ", ".join(k.split(".", 1)[1] for k in self.applied)
        return f"{self.describe()}; from the preset: {keys}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able record (the run's run.json ``region``)."""
        return {
            "requested": self.requested,
            "preset": self.preset,
            "country": self.country,
            "time_zone": self.time_zone,
            "lon": round(self.lon, 6),
            "lat": round(self.lat, 6),
            "note": self.note,
            "applied": list(self.applied),
            "summary": self.summary(),
        }


@functools.cache
def _zone_countries() -> dict[str, str]:
    """IANA zone -> ISO 3166 code, from tzdata's zone.tab (one country per zone)."""
    text = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _, zone = line.split("\t")[:3]
            out[zone] = code
    return out


@functools.cache
def _country_names() -> dict[str, str]:
    text = resources.files("tzdata.zoneinfo").joinpath("iso3166.tab").read_text(encoding="utf-8")
    return dict(
        line.split("\t")[:2] for line in text.splitlines() if line and not line.startswith("#")
    )


@functools.cache
def _finder() -> Any:
    from timezonefinder import TimezoneFinder  # ~1 s to import: only when a map is located

    return TimezoneFinder()


@functools.lru_cache(maxsize=256)
def locate(lon: float, lat: float) -> tuple[str | None, str | None]:
    """(IANA time zone, ISO 3166 country) of a point, offline; None where unknown (the open
    sea has Etc/GMT zones and no country). Zones found are kept in the user cache directory
    (``locations.json``), so a map's later runs skip timezonefinder's ~1 s import."""
    key = f"{float(lon):.5f},{float(lat):.5f}"
    known = _known_locations()
    if key in known:
        zone = known[key]
    else:
        zone = _finder().timezone_at(lng=float(lon), lat=float(lat))
        _remember_location(key, zone)
    return zone, _zone_countries().get(zone) if zone else None


def _locations_file() -> Path:
    from twin.network.cache import cache_dir

    return cache_dir() / "locations.json"


def _known_locations() -> dict[str, str | None]:
    if os.environ.get("TWIN_NO_CACHE") == "1":
        return {}
    try:
        data = json.loads(_locations_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_location(key: str, zone: str | None) -> None:
    """Add one location to the file (atomically; a cache that cannot be written is skipped)."""
    if os.environ.get("TWIN_NO_CACHE") == "1":
        return
    path = _locations_file()
    data = {**_known_locations(), key: zone}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def resolve(requested: str, lon: float, lat: float) -> Region:
    """The preset for a ``region`` value at the map centre (lon, lat), and why."""
    zone, country = locate(lon, lat)
    if requested != "auto":
        if requested not in PRESETS:
            raise ValueError(f"unknown region {requested!r}; expected one of {REGION_VALUES}")
        return Region(requested, requested, country, zone, lon, lat)
    code = (country or "").lower()
    if code in PRESETS:
        return Region(requested, code, country, zone, lon, lat)
    name = _country_names().get(country or "", "")
    place = f"{name} ({country})" if country else "an unknown country"
    if country in EUROPE or (zone or "").startswith("Europe/"):
        note = f"no preset for {place}: the EU average is used"
        return Region(requested, "eu", country, zone, lon, lat, note)
    note = f"no preset for {place}: the US figures are used"
    return Region(requested, "us", country, zone, lon, lat, note)


def utc_offset_h(zone: str, month: int, day: int) -> float:
    """Hours from UTC of the clock in ``zone`` at noon of the month and day (daylight saving
    as ruled in RULES_YEAR; a day past the month's end is its last day)."""
    first_next = dt.date(RULES_YEAR + month // 12, month % 12 + 1, 1)
    last = (first_next - dt.timedelta(days=1)).day
    noon = dt.datetime(RULES_YEAR, month, min(day, last), 12, tzinfo=ZoneInfo(zone))
    offset = noon.utcoffset()
    assert offset is not None
    return offset.total_seconds() / 3600.0


def season_day_c(preset: Preset, month: int, lat: float) -> tuple[float, float] | None:
    """(min, max) deg C of a typical day of ``month`` (see the module docstring); None when
    the preset leaves the day to the ``weather`` preset."""
    summer, winter = preset.summer_c, preset.winter_c
    if summer is None or winter is None:
        return None
    if lat < 0:  # southern hemisphere: July is winter
        month = (month + 5) % 12 + 1
    if month in (6, 7, 8):
        return summer
    if month in (12, 1, 2):
        return winter
    return (summer[0] + winter[0]) / 2.0, (summer[1] + winter[1]) / 2.0


#: the named ``weather`` days relative to the defaults' own: "heatwave" is the summer day this
#: much warmer (min, max; K) and "cold" the winter day this much colder, as the defaults'
#: heat wave is over Baltimore's July normal and their cold snap under its January normal
#: (twin/energy/weather.py)
HEATWAVE_K = (
    WEATHER_PRESETS["heatwave"].min_c - WEATHER_PRESETS["summer"].min_c,
    WEATHER_PRESETS["heatwave"].max_c - WEATHER_PRESETS["summer"].max_c,
)
COLD_SNAP_K = 6.0


def weather_day_c(preset: Preset, weather: str) -> tuple[float, float] | None:
    """(min, max) deg C of a named ``weather`` day in the preset's climate: "summer" its July
    day, "heatwave" that day HEATWAVE_K warmer, "cold" its January day COLD_SNAP_K colder,
    "mild" the day between (spring or autumn); None when the preset leaves the day to the
    ``weather`` presets (the "us" one: they are Baltimore's)."""
    summer, winter = preset.summer_c, preset.winter_c
    if summer is None or winter is None:
        return None
    if weather == "summer":
        return summer
    if weather == "heatwave":
        return summer[0] + HEATWAVE_K[0], summer[1] + HEATWAVE_K[1]
    if weather == "cold":
        return winter[0] - COLD_SNAP_K, winter[1] - COLD_SNAP_K
    return (summer[0] + winter[0]) / 2.0, (summer[1] + winter[1]) / 2.0  # "mild"


def preset_defaults(scenario: Scenario, region: Region) -> dict[str, Any]:
    """The dotted keys and values the region offers this scenario (explicit keys are
    dropped later, by Scenario.with_defaults)."""
    preset = PRESETS[region.preset]
    out: dict[str, Any] = {f"population.{k}": v for k, v in preset.population.items()}
    energy = scenario.energy
    given = energy.model_fields_set
    if "currency" not in given and "price_per_kwh" not in given:
        out["energy.currency"] = preset.currency
        out["energy.price_per_kwh"] = preset.price_per_kwh
    elif "price_per_kwh" not in given and energy.currency == preset.currency:
        out["energy.price_per_kwh"] = preset.price_per_kwh
    elif "currency" not in given:  # a price without a currency is in the local one
        out["energy.currency"] = preset.currency
    tariffs = [item for item in scenario.intervention if isinstance(item, Tariff)]
    if tariffs and "price_per_kwh" not in given:  # they wait for this price (Tariff)
        base = out.get("energy.price_per_kwh", energy.price_per_kwh)
        out["energy.price_per_kwh"] = with_tariffs(base, tariffs)
    out["energy.carbon_g_per_kwh"] = preset.carbon_g_per_kwh
    if not given & {"temp_min_c", "temp_max_c"}:
        if "weather" in given:  # a named day, as the preset's climate has it
            day = weather_day_c(preset, energy.weather)
        else:
            day = season_day_c(preset, energy.month, region.lat)
        if day is not None:
            out["energy.temp_min_c"], out["energy.temp_max_c"] = day
    if preset.zone_offset and region.time_zone is not None:
        out["energy.utc_offset_h"] = utc_offset_h(region.time_zone, energy.month, energy.day)
    return out


def map_centre(net: RoadNet) -> tuple[float, float]:
    """The mean longitude and latitude of the road network's nodes, degrees."""
    return float(net.node_lon.mean()), float(net.node_lat.mean())


def apply_region(scenario: Scenario, net: RoadNet) -> tuple[Scenario, Region]:
    """The scenario with its region's defaults in the keys it did not set, and the region."""
    lon, lat = map_centre(net)
    region = resolve(scenario.region, lon, lat)
    offered = preset_defaults(scenario, region)
    applied = tuple(k for k in offered if not scenario.is_set(k))
    region = dataclasses.replace(region, applied=applied)
    scenario = scenario.with_defaults(offered)
    errors = tariff_currency_errors(scenario.intervention, scenario.energy.currency)
    if errors:
        raise ScenarioError(f"{errors[0]} (region {region.describe()})")
    return scenario, region
