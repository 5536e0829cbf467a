"""``[[intervention]]``: what-ifs in a scenario file, one table per change, each with a kind.

Every intervention takes ``at`` (a clock time, default: the run's start) and an optional
``until`` (default: the end of the run), and an optional ``label`` shown in the report. Times
past midnight continue the clock ("25:30"), as ``[time] start`` does. The setting-like
kinds write the keys of :data:`SETTING_KEYS` (which ``--set`` may then not override).
Kinds (their keys in :data:`KINDS`):

- ``close_road``: ``way`` (OSM way ids) or ``street`` (a name; ``bbox`` = [W, S, E, N]
  narrows it); vehicles on their way re-route around it, later trips never route over it;
- ``speed_limit``: the same road selection, ``speed_kmh`` (new limit);
- ``demand``: ``scale`` the trips departing in [at, until);
- ``event``: ``trips`` visitors drawn to ``place`` ([lon, lat]) arriving by ``at``, leaving
  from ``until``;
- ``transformer_outage``: ``transformers`` (ids as in transformers.csv) or ``feeder`` (an MV
  feeder id) out of service in [at, until): their households are unserved and counted;
- ``transformer_rating``, ``ev_adoption``, ``weather``: from the start only (``factor`` x
  the rating of ``transformers``; EV ``share`` of car-owning households; ``weather`` preset,
  which on a map whose region has its own climate is that named day in it: twin/region.py);
- ``tariff``: ``price_per_kwh`` in the hours of [at, until) (both required), in the run's
  currency (``[energy] currency``, else the region's); the old key ``price_usd_per_kwh`` is
  accepted and means a USD price (a run in another currency refuses it). It is laid over the
  scenario's own price, or over the region's when the scenario sets none (twin/region.py);
- ``signal_control``: the signal ``policy`` (a name, or an absolute ``.onnx`` path) from
  ``at`` to ``until``, then the scenario's own again;
- ``remove_signal``: the signal of OSM node ``junction`` taken out, from the start; the
  junction runs as an all-way stop (``control = "all_way_stop"``) or by road-class priority.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.energy.config import usd_price_alias
from twin.timefmt import parse_clock_s, show_value


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: str
    #: clock time it takes effect ("H:MM"); default: the run's start
    at: float | None = None
    #: clock time it ends; default: the end of the run
    until: float | None = None
    #: shown in the report; default: made from the keys
    label: str = ""

    @field_validator("at", "until", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> float | None:
        return None if value is None else parse_clock_s(value)

    from_start_only: ClassVar[bool] = False

    def describe(self) -> str:
        return self.kind


class _Roads(_Base):
    #: OSM way ids
    way: list[int] = Field(default_factory=list)
    #: street name (the OSM name tag)
    street: str = ""
    #: [west, south, east, north] in degrees: only links inside it
    bbox: tuple[float, float, float, float] | None = None

    def roads(self) -> str:
        what = f"{self.street}" if self.street else "way " + ", ".join(map(str, self.way))
        if self.bbox:
            what += " (in " + ", ".join(f"{x:.4f}" for x in self.bbox) + ")"
        return what


class CloseRoad(_Roads):
    kind: str = "close_road"

    def describe(self) -> str:
        return f"close {self.roads()}"


class SpeedLimit(_Roads):
    kind: str = "speed_limit"
    speed_kmh: float = Field(gt=0, le=200)

    def describe(self) -> str:
        return f"speed limit {self.speed_kmh:g} km/h on {self.roads()}"


class Demand(_Base):
    kind: str = "demand"
    scale: float = Field(ge=0, le=10)

    def describe(self) -> str:
        return f"demand x{self.scale:g}"


class Event(_Base):
    kind: str = "event"
    #: [lon, lat] of the venue
    place: tuple[float, float]
    #: visitors arriving by car (one trip there and one back each)
    trips: int = Field(gt=0, le=200_000)
    #: arrivals spread over this many minutes before ``at``; departures after ``until``
    spread_min: float = Field(45.0, gt=0, le=240)

    def describe(self) -> str:
        return f"event: {self.trips:,} visitors at {self.place[0]:.5f}, {self.place[1]:.5f}"


class TransformerOutage(_Base):
    kind: str = "transformer_outage"
    transformers: list[int] = Field(default_factory=list)
    feeder: int | None = None

    def describe(self) -> str:
        if self.feeder is not None:
            return f"MV feeder {self.feeder} out of service"
        return "transformer " + ", ".join(map(str, self.transformers)) + " out of service"


class TransformerRating(_Base):
    kind: str = "transformer_rating"
    transformers: list[int] = Field(min_length=1)
    factor: float = Field(gt=0, le=10)
    from_start_only: ClassVar[bool] = True

    def describe(self) -> str:
        return f"transformer {', '.join(map(str, self.transformers))} rating x{self.factor:g}"


class EvAdoption(_Base):
    kind: str = "ev_adoption"
    share: float = Field(ge=0, le=1)
    from_start_only: ClassVar[bool] = True

    def describe(self) -> str:
        return f"EV adoption {self.share:.0%} of car-owning households"


class Weather(_Base):
    kind: str = "weather"
    weather: str
    from_start_only: ClassVar[bool] = True

    @field_validator("weather")
    @classmethod
    def _preset(cls, value: str) -> str:
        from twin.energy.weather import WEATHER_PRESETS

        if value not in WEATHER_PRESETS:
            raise ValueError(f"expected one of {', '.join(map(repr, WEATHER_PRESETS))}")
        return value

    def describe(self) -> str:
        return f"weather: {self.weather}"


class Tariff(_Base):
    kind: str = "tariff"
    #: the price in the hours of [at, until), in ``currency`` per kWh
    price_per_kwh: float = Field(ge=0, le=100)
    #: ISO 4217 code of the price; default: the run's currency. The old key
    #: ``price_usd_per_kwh`` sets "USD"; a run priced in another currency refuses the tariff
    currency: str | None = Field(None, pattern="^[A-Z]{3}$")

    @model_validator(mode="before")
    @classmethod
    def _usd_price(cls, data: Any) -> Any:
        """``price_usd_per_kwh = x`` (the old key) is ``price_per_kwh = x, currency = "USD"``."""
        return usd_price_alias(data)

    def describe(self, currency: str | None = None) -> str:
        """``tariff 0.48 EUR/kWh``: in its own currency, else ``currency`` (the run's)."""
        unit = self.currency or currency
        return (
            f"tariff {self.price_per_kwh:g} {unit}/kWh"
            if unit
            else f"tariff {self.price_per_kwh:g}/kWh"
        )


class RemoveSignal(_Base):
    kind: str = "remove_signal"
    #: OSM node id of the signalised junction (any of its nodes or its signal nodes)
    junction: int
    #: what controls it instead: "all_way_stop" (stop signs on every approach) or "priority"
    #: (the major road has priority; minor approaches give way)
    control: str = Field("all_way_stop", pattern="^(all_way_stop|priority)$")
    from_start_only: ClassVar[bool] = True

    def describe(self) -> str:
        return f"signal at node {self.junction} removed ({self.control.replace('_', '-')})"


class SignalControlChange(_Base):
    kind: str = "signal_control"
    #: the signal policy from ``at``: a name ``twin policies`` lists (or an absolute path to
    #: an ONNX model); at ``until`` the scenario's ``[control] signals`` policy returns
    policy: str = Field(min_length=1)

    def describe(self) -> str:
        return f"signal control: {self.policy}"


KINDS: dict[str, type[_Base]] = {
    c.model_fields["kind"].default: c
    for c in (
        CloseRoad, SpeedLimit, Demand, Event, TransformerOutage, TransformerRating, EvAdoption,
        Weather, Tariff, RemoveSignal, SignalControlChange,
    )
}  # fmt: skip

Intervention = _Base


def parse_interventions(raw: Any) -> list[_Base]:
    """Validate the ``[[intervention]]`` tables; ValueError naming the table and key."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise ValueError("intervention: expected an array of tables ([[intervention]])")
    out = []
    for i, table in enumerate(raw, start=1):
        if isinstance(table, _Base):
            out.append(table)
            continue
        where = f"intervention {i}"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: expected a table, got {show_value(table)}")
        kind = table.get("kind")
        cls = KINDS.get(kind)
        if cls is None:
            raise ValueError(f"{where}: kind {show_value(kind)} is not one of {', '.join(KINDS)}")
        try:
            item = cls.model_validate(table)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                keys = ", ".join(n for n in cls.model_fields if n != "kind")
                msg = f"unknown key (expected one of: kind, {keys})"
            elif err["type"] == "missing":
                msg = "missing required key"
            else:
                msg = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
            raise ValueError(f"{where} ({kind}): {key + ': ' if key else ''}{msg}") from None
        out.append(_check(item, where))
    return out


def _check(item: _Base, where: str) -> _Base:
    label = f"{where} ({item.kind})"
    if item.from_start_only and (item.at is not None or item.until is not None):
        raise ValueError(f"{label}: applies from the start of the run only; remove at/until")
    if item.at is not None and item.until is not None and item.until <= item.at:
        raise ValueError(
            f"{label}: until must be after at (times past midnight continue the clock: 24:30)"
        )
    if isinstance(item, _Roads) and not (item.way or item.street):
        raise ValueError(f'{label}: give the roads: way = [OSM way ids] or street = "name"')
    if isinstance(item, _Roads) and item.bbox:
        w, s, e, n = item.bbox
        if not (w < e and s < n):
            raise ValueError(f"{label}: bbox must be [west, south, east, north]")
    if isinstance(item, TransformerOutage) and not item.transformers and item.feeder is None:
        raise ValueError(f"{label}: give transformers = [ids] or feeder = id")
    if isinstance(item, SignalControlChange) and item.policy.endswith(".onnx"):
        from pathlib import Path

        if not Path(item.policy).is_absolute():
            raise ValueError(f"{label}: policy: give an ONNX model by its absolute path")
    if isinstance(item, Tariff) and (item.at is None or item.until is None):
        raise ValueError(f"{label}: give at and until, the hours the price applies")
    if isinstance(item, Event) and item.at is None:
        raise ValueError(f"{label}: give at, the time the event starts")
    return item


def dump(items: list[_Base]) -> list[dict[str, Any]]:
    """The interventions as TOML-ready tables (clock times as "H:MM")."""
    from twin.timefmt import format_clock

    out = []
    for item in items:
        d = item.model_dump(exclude_defaults=True)
        d = {"kind": item.kind, **d}
        for key in ("at", "until"):
            if d.get(key) is not None:
                d[key] = format_clock(d[key])
        out.append(d)
    return out


#: the scenario keys each setting-like kind writes (a tariff: the price under either name)
SETTING_KEYS = {
    "ev_adoption": ("population.ev_share",),
    "weather": ("energy.weather",),  # and clears energy.temp_min_c / temp_max_c
    "tariff": ("energy.price_per_kwh", "energy.price_usd_per_kwh"),
}


def setting_keys(raw: Any) -> dict[str, str]:
    """Scenario key -> "intervention N (kind)" for the keys the interventions set."""
    return {
        key: f"intervention {i} ({item.kind})"
        for i, item in enumerate(parse_interventions(raw), start=1)
        for key in SETTING_KEYS.get(item.kind, ())
    }


def with_tariffs(
    price: float | list[float] | tuple[float, ...], items: list[_Base] | tuple[_Base, ...]
) -> float | list[float] | tuple[float, ...]:
    """A price (one number or 24 hourly values) with each tariff of ``items`` in its hours,
    as 24 hourly values; ``price`` unchanged when there is no tariff or the list is not 24
    long (the schema reports it). Laying the same tariffs over twice changes nothing."""
    tariffs = [item for item in items if isinstance(item, Tariff)]
    if not tariffs:
        return price
    if isinstance(price, list | tuple):
        if len(price) != 24:
            return price
        hourly = list(price)
    else:
        hourly = [price] * 24
    for item in tariffs:
        assert item.at is not None and item.until is not None  # _check requires both
        first, last = int(item.at // 3600), int(-(-item.until // 3600))
        for h in range(first, min(last, first + 24)):
            hourly[h % 24] = item.price_per_kwh
    return hourly


def tariff_currency_errors(items: tuple[_Base, ...], currency: str) -> list[str]:
    """A message for each tariff priced in a currency other than the run's."""
    return [
        f"intervention {i} (tariff): its price is in {item.currency} (price_usd_per_kwh) but "
        f"the run is priced in {currency}; give price_per_kwh, in {currency}"
        for i, item in enumerate(items, start=1)
        if isinstance(item, Tariff) and item.currency not in (None, currency)
    ]


def apply_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The raw scenario dict with the setting-like interventions (EV adoption, weather,
    tariff) written into the keys they set, so every component reads one value. A tariff on a
    scenario that sets no price waits for the region's (:func:`twin.region.preset_defaults`)."""
    items = parse_interventions(data.get("intervention"))
    if not items:
        return data
    data = dict(data)

    def section(name: str) -> dict[str, Any]:
        table = data.get(name)
        table = dict(table) if isinstance(table, dict) else {}
        data[name] = table
        return table

    for item in items:
        if isinstance(item, EvAdoption):
            section("population")["ev_share"] = item.share
        elif isinstance(item, Weather):  # the preset decides the day: no explicit range
            energy = section("energy")
            energy["weather"] = item.weather
            energy.pop("temp_min_c", None)
            energy.pop("temp_max_c", None)
        elif isinstance(item, Tariff):  # over the scenario's price, under the name it used
            energy = section("energy")
            key = "price_usd_per_kwh" if "price_usd_per_kwh" in energy else "price_per_kwh"
            if key in energy:  # else over the region's price, once it is known (region.py)
                energy[key] = with_tariffs(energy[key], [item])
    return data
