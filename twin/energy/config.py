"""Scenario section ``[energy]``: the grid, household loads, EV charging, prices and carbon.

The defaults are US figures; the scenario's ``region`` (twin/region.py) replaces the regional
ones (currency and price, carbon intensity, the day's temperatures, the UTC offset) where the
scenario does not set them.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from twin.energy.synthesis import GridConfig
from twin.energy.weather import WEATHER_PRESETS
from twin.timefmt import PositiveDurationS, Section

# US average residential electricity price 2023: 16.0 US cents/kWh (EIA, Electric Power
# Monthly, table 5.3, annual 2023).
US_PRICE_USD_PER_KWH = 0.16
# US average CO2 intensity of electricity generation 2022: 0.855 lb/kWh = 388 g/kWh (EIA FAQ
# "How much carbon dioxide is produced per kilowatthour of U.S. electricity generation?").
US_CARBON_G_PER_KWH = 388.0


def _hourly(value: float | tuple[float, ...], what: str) -> float | tuple[float, ...]:
    if isinstance(value, tuple):
        if len(value) != 24:
            raise ValueError(f"{what}: expected one number or 24 hourly values, got {len(value)}")
        if any(v < 0 for v in value):
            raise ValueError(f"{what}: values must be >= 0")
    elif value < 0:
        raise ValueError(f"{what}: expected a number >= 0, got {value}")
    return value


def usd_price_alias(data: Any) -> Any:
    """A table's old key ``price_usd_per_kwh = x`` as ``price_per_kwh = x`` with ``currency =
    "USD"`` (ValueError if both prices are given or the currency is another)."""
    if not isinstance(data, dict) or "price_usd_per_kwh" not in data:
        return data
    data = dict(data)
    price = data.pop("price_usd_per_kwh")
    if "price_per_kwh" in data:
        raise ValueError(
            "price_usd_per_kwh and price_per_kwh both given; keep price_per_kwh (in `currency`)"
        )
    if data.setdefault("currency", "USD") != "USD":
        raise ValueError(
            f"price_usd_per_kwh is in USD but currency = {data['currency']!r}; give "
            "price_per_kwh (in `currency`) instead"
        )
    data["price_per_kwh"] = price
    return data


class EnergyConfig(Section):
    """``[energy]``: the electricity side of the twin (grid, loads, EVs, PV)."""

    #: simulate the grid, household loads and EV charging; default true
    enabled: bool = True
    #: the energy tick: loads, EV charging and the power flow, a whole number of minutes
    #: dividing a day; default "1min"
    tick: PositiveDurationS = 60.0
    #: outdoor temperature day: one of "mild", "summer", "heatwave", "cold"; default "summer".
    #: The named days are Baltimore's (twin/energy/weather.py); a region with its own climate
    #: turns them into its own (twin/region.py, weather_day_c)
    weather: str = "summer"
    #: override the preset's daily minimum / maximum outdoor temperature, deg C
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    #: month of the simulated day (load shape, sun); default 7
    month: int = Field(7, ge=1, le=12)
    #: day of the month (sun position); default 15
    day: int = Field(15, ge=1, le=31)
    #: hours from UTC of the clock times (sun position); default: from the map's time zone on
    #: the month and day (twin/region.py), else (the "us" region, at sea) round(longitude / 15).
    #: ``"auto"`` asks for that default explicitly, replacing a value a base file set
    utc_offset_h: float | None = Field(None, ge=-12, le=14)
    #: EV battery capacity, kWh; default 60 (a mid-size battery EV)
    ev_battery_kwh: float = Field(60.0, gt=0)
    #: home charger power, kW; default 7.2 (SAE J1772 level 2, 240 V x 30 A)
    ev_charger_kw: float = Field(7.2, gt=0)
    #: EV consumption, kWh per km from the battery; default 0.18
    ev_kwh_per_km: float = Field(0.18, gt=0)
    #: state of charge an EV should have at its next departure, share of capacity; default 0.9
    ev_target_soc: float = Field(0.9, gt=0, le=1)
    #: state of charge at the start of the run, share of capacity, drawn uniformly in this
    #: [low, high] range per EV (EVs start at home, unplugged: they plug in when they next
    #: get home); default [0.3, 0.9]
    ev_start_soc: tuple[float, float] = (0.3, 0.9)
    #: share of households with rooftop PV, in [0, 1]; default 0
    pv_share: float = Field(0.0, ge=0, le=1)
    #: PV size per equipped household, kWp; default 5 (a typical US residential system)
    pv_kwp: float = Field(5.0, gt=0)
    #: ISO 4217 code of the currency of ``price_per_kwh`` and of the cost KPI
    #: (``energy.cost_<currency>``); default "USD", or the region's
    currency: str = "USD"
    #: price of electricity in ``currency`` per kWh: one number or 24 hourly values; default
    #: 0.16 USD (EIA 2023), or the region's. ``price_usd_per_kwh`` (the old name) is accepted and
    #: means the same with currency = "USD"
    price_per_kwh: float | tuple[float, ...] = US_PRICE_USD_PER_KWH
    #: carbon intensity, g CO2/kWh: one number or 24 hourly values; default 388 (EIA 2022)
    carbon_g_per_kwh: float | tuple[float, ...] = US_CARBON_G_PER_KWH
    #: indoor comfort band, deg C (degree-hours outside it are reported); default [18, 27]
    comfort_band_c: tuple[float, float] = (18.0, 27.0)
    #: ``[energy.grid]``: how the distribution grid is synthesised
    grid: GridConfig = Field(default_factory=GridConfig)

    @property
    def price_usd_per_kwh(self) -> float | tuple[float, ...]:
        """``price_per_kwh`` under its old name, for readers written before ``currency``: it is
        in USD only when ``currency`` is "USD" (read ``price_per_kwh`` and ``currency``)."""
        return self.price_per_kwh

    @property
    def temperature_range_c(self) -> tuple[float, float]:
        """(min, max) outdoor temperature of the day: the preset unless overridden."""
        day = WEATHER_PRESETS[self.weather]
        lo = day.min_c if self.temp_min_c is None else self.temp_min_c
        hi = day.max_c if self.temp_max_c is None else self.temp_max_c
        return lo, hi

    @model_validator(mode="before")
    @classmethod
    def _auto_offset(cls, data: Any) -> Any:
        """``utc_offset_h = "auto"`` leaves the key unset (the default), so a file can undo
        the offset its base file set for another map (dortmund.toml on baltimore.toml)."""
        if isinstance(data, dict) and data.get("utc_offset_h") == "auto":
            data = {k: v for k, v in data.items() if k != "utc_offset_h"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _usd_price(cls, data: Any) -> Any:
        """``price_usd_per_kwh = x`` is ``price_per_kwh = x`` with ``currency = "USD"``."""
        return usd_price_alias(data)

    @model_serializer(mode="wrap")
    def _dump_usd_price(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A USD price is written as ``price_usd_per_kwh`` (without ``currency``), as before
        ``currency`` existed, so files written for USD read the same in any version."""
        out = handler(self)
        if out.get("currency") == "USD" and "price_per_kwh" in out:
            del out["currency"]
            out["price_usd_per_kwh"] = out.pop("price_per_kwh")
        return out

    @field_validator(
        "price_per_kwh", "carbon_g_per_kwh", "comfort_band_c", "ev_start_soc", mode="before"
    )
    @classmethod
    def _list_to_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("price_per_kwh")
    @classmethod
    def _price(cls, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
        return _hourly(value, "price")

    @field_validator("carbon_g_per_kwh")
    @classmethod
    def _carbon(cls, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
        return _hourly(value, "carbon intensity")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
            raise ValueError(f'expected an ISO 4217 code such as "EUR", got {value!r}')
        return value

    @field_validator("weather")
    @classmethod
    def _weather(cls, value: str) -> str:
        if value not in WEATHER_PRESETS:
            raise ValueError(
                f"expected one of {', '.join(map(repr, WEATHER_PRESETS))}, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _checks(self) -> EnergyConfig:
        minutes = self.tick / 60.0
        if minutes != int(minutes) or 1440 % int(minutes):
            raise ValueError(f"tick must be whole minutes dividing a day, got {self.tick:g} s")
        t_lo, t_hi = self.temperature_range_c
        if t_lo > t_hi:
            raise ValueError(f"temp_min_c ({t_lo:g}) must not exceed temp_max_c ({t_hi:g})")
        s_lo, s_hi = self.ev_start_soc
        if not 0 <= s_lo <= s_hi <= 1:
            raise ValueError(f"ev_start_soc must be [low, high] within [0, 1], got {[s_lo, s_hi]}")
        lo, hi = self.comfort_band_c
        if lo >= hi:
            raise ValueError(f"comfort_band_c must be [low, high] with low < high, got {[lo, hi]}")
        return self
