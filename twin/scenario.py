"""Scenario files: schema, loading, inheritance and validation errors.

A scenario is a TOML file validated against the models below. Rules a user can rely on:

- Unknown keys are errors; every error names the file, the dotted key and what was expected.
- ``base = "other.toml"`` (relative to the inheriting file) inherits another scenario. Tables
  merge key by key, the child winning; any other value (arrays included) is replaced whole.
  ``name`` and ``description`` describe one file and are not inherited: ``name`` defaults to
  the stem of the file being loaded.
- Relative paths resolve against the directory of the file that set them, before merging.
- Times of day are ``"07:00"`` strings, durations ``"2h"`` / ``"90min"`` strings; the models
  hold them as float seconds (``start_s``, ``duration_s``, ``report_interval_s``).

- ``region`` (default ``"auto"``: the map's country) fills the regional defaults (household
  sizes and cars, price and currency, carbon, the day's temperatures, the UTC offset) once the
  map is loaded, in the keys the scenario does not set explicitly: a key set in the file, in a
  base file, by an override or by an intervention keeps its value (twin/region.py,
  :meth:`Scenario.with_defaults`).

To add a section: write a ``Section`` subclass and add one field to ``Scenario``. Path fields
(``Path`` or ``Path | None``) in any section are resolved automatically.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from twin.control.config import ControlConfig
from twin.energy.config import EnergyConfig
from twin.errors import ScenarioError
from twin.interventions.config import (
    Intervention,
    apply_settings,
    dump,
    parse_interventions,
    setting_keys,
)
from twin.network.config import MapConfig
from twin.population.config import PopulationConfig
from twin.region import REGION_VALUES
from twin.timefmt import (
    MAX_CLOCK_S,
    Section,
    format_clock,
    format_duration,
    num_text,
    parse_clock_s,
    parse_duration_s,
    show_value,
)
from twin.traffic.config import DemandConfig, TrafficConfig

__all__ = [
    "MapConfig",
    "Scenario",
    "TimeConfig",
    "format_clock",
    "format_duration",
    "load_scenario",
    "parse_clock_s",
    "parse_duration_s",
]


class TimeConfig(Section):
    """``[time]``: when the simulated day starts, how long it runs, how often it reports."""

    #: time of day the run starts, "H:MM[:SS]" up to "48:00"; default "07:00"
    start_s: float = Field(parse_clock_s("07:00"), alias="start")
    #: simulated duration, > 0; default "1h"
    duration_s: float = Field(3600.0, alias="duration")
    #: how often results are recorded, in (0, duration]; default "15min"
    report_interval_s: float = Field(900.0, alias="report_interval")

    @field_validator("start_s", mode="before")
    @classmethod
    def _parse_start(cls, value: Any) -> float:
        return parse_clock_s(value)

    @field_validator("duration_s", "report_interval_s", mode="before")
    @classmethod
    def _parse_positive(cls, value: Any) -> float:
        seconds = parse_duration_s(value)
        if seconds <= 0:
            raise ValueError(f"expected a duration > 0, got {show_value(value)}")
        return seconds

    @model_validator(mode="after")
    def _interval_within_duration(self) -> TimeConfig:
        end_s = self.start_s + self.duration_s
        if end_s > MAX_CLOCK_S:
            raise ValueError(
                f"the run would end at {int(end_s // 3600):02d}:{int(end_s % 3600 // 60):02d} "
                f"(start {format_clock(self.start_s)} + {format_duration(self.duration_s)}); "
                "runs end by 48:00 (shorten duration or start earlier)"
            )
        if self.report_interval_s > self.duration_s:
            raise ValueError(
                f"report_interval ({format_duration(self.report_interval_s)}) must not exceed "
                f"duration ({format_duration(self.duration_s)})"
            )
        return self

    @field_serializer("start_s", when_used="json")
    def _dump_start(self, value: float) -> str:
        return format_clock(value)

    @field_serializer("duration_s", "report_interval_s", when_used="json")
    def _dump_duration(self, value: float) -> str:
        return format_duration(value)


class Scenario(Section):
    """A validated scenario. ``source`` is the file it was loaded from (not compared)."""

    #: label of the run and its outputs; default: the stem of the loaded file (not inherited)
    name: str = Field("scenario", min_length=1)
    #: root of every named random stream, >= 0; default 0
    seed: int = Field(0, ge=0)
    #: free text (not inherited); default empty
    description: str = ""
    #: where the regional defaults come from: "auto" (the country of the map's centre) or a
    #: preset: "us", "eu" (EU average), "de", "fr", "gb", "nl" (twin/region.py); default "auto"
    region: str = "auto"
    map: MapConfig  # required table
    time: TimeConfig = Field(default_factory=TimeConfig)
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    #: what-ifs, ``[[intervention]]`` tables (twin/interventions/config.py); default none
    intervention: tuple[SerializeAsAny[Intervention], ...] = ()

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _intervention_settings(cls, data: Any, info: ValidationInfo) -> Any:
        if (info.context or {}).get("settings_applied"):  # a validated scenario's own keys
            return data
        return apply_settings(data) if isinstance(data, dict) else data

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in REGION_VALUES:
            raise ValueError(
                f"expected one of {', '.join(map(repr, REGION_VALUES))}, got {value!r}"
            )
        return value

    @field_validator("intervention", mode="before")
    @classmethod
    def _interventions(cls, value: Any) -> tuple[Intervention, ...]:
        return tuple(parse_interventions(value))

    @field_serializer("intervention", when_used="json")
    def _dump_interventions(self, value: tuple[Intervention, ...]) -> list[dict[str, Any]]:
        return dump(list(value))

    @model_validator(mode="after")
    def _population_for_demand(self) -> Scenario:
        if self.demand.kind == "population" and not self.population.enabled:
            raise ValueError(
                'demand.kind = "population" needs population.enabled = true '
                '(or set demand.kind = "random" or "csv")'
            )
        if self.energy.enabled and not self.population.enabled:
            raise ValueError(
                "energy.enabled needs population.enabled = true (the grid serves the "
                "households); set energy.enabled = false for traffic only"
            )
        if self.control.controls_signals and not self.traffic.enabled:
            raise ValueError(
                f"control.signals = {self.control.signals!r} needs traffic.enabled = true"
            )
        if self.control.controls_charging and not self.energy.enabled:
            raise ValueError(
                f"control.charging = {self.control.charging!r} needs energy.enabled = true"
            )
        return self

    @property
    def source(self) -> Path | None:
        return self._source

    def __eq__(self, other: object) -> bool:
        return self.__dict__ == other.__dict__ if isinstance(other, Scenario) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        *,
        source: str | Path | None = None,
        base_dir: str | Path | None = None,
    ) -> Scenario:
        """Validate a plain dict. Relative paths resolve against ``base_dir``, else the
        directory of ``source``, else the working directory. Raises ScenarioError."""
        if "base" in data:
            raise ScenarioError("base: inheritance needs a scenario file; use load_scenario")
        source = Path(os.path.abspath(source)) if source is not None else None
        base = Path(base_dir) if base_dir is not None else source.parent if source else Path.cwd()
        data = _resolve_paths(data, cls, base)
        if source is not None:
            data.setdefault("name", source.stem)
        return _validate(data, source=source, origins={}, label=_display(source) if source else "")

    def to_toml_dict(self) -> dict[str, Any]:
        """A plain, fully resolved dict (absolute paths, "07:00" / "2h" strings) that
        tomli_w can write and load_scenario reads back into an equal Scenario."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def is_set(self, key: str) -> bool:
        """Whether the dotted ``key`` (field names: ``"population.car_shares"``) was given
        explicitly: in the file, a base file, an override or by an intervention."""
        obj: BaseModel = self
        *parents, leaf = key.split(".")
        for part in parents:
            if part not in obj.model_fields_set:
                return False
            obj = getattr(obj, part)
        return leaf in obj.model_fields_set

    def with_defaults(self, defaults: dict[str, Any]) -> Scenario:
        """A copy in which each dotted key of ``defaults`` (field names, values as a scenario
        file would give them) that was not set explicitly (:meth:`is_set`) takes that value;
        explicit keys keep theirs. ``self`` when there is nothing to fill."""
        todo = {key: value for key, value in defaults.items() if not self.is_set(key)}
        if not todo:
            return self
        data = self._explicit_dict()
        for key, value in todo.items():
            model: type[BaseModel] = Scenario
            table = data
            *parents, leaf = key.split(".")
            for part in parents:
                info = model.model_fields[part]
                table = table.setdefault(info.alias or part, {})
                model = _section_model(info) or model
            table[model.model_fields[leaf].alias or leaf] = value
        # the interventions' settings are in the explicit keys already, and the defaults were
        # chosen with them (a weather what-if must not clear the region's day it asked for)
        return _validate(
            data, source=self.source, origins={}, label="regional defaults", settings_applied=True
        )

    def _explicit_dict(self) -> dict[str, Any]:
        """The keys given explicitly, as to_toml_dict writes them (the rest are defaults)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A copy with ``overrides`` deep-merged in and re-validated. Keys may be nested dicts
        or dotted (``{"time.duration": "2h"}``); relative paths resolve as in the source file."""
        nested: dict[str, Any] = {}
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            table = nested
            for part in parents:
                table = table.setdefault(part, {})
            table[leaf] = value
        base = self.source.parent if self.source else Path.cwd()
        # only the explicit keys: what stayed a default stays one (regional defaults fill it)
        merged = _deep_merge(self._explicit_dict(), _resolve_paths(nested, Scenario, base))
        try:
            set_by = setting_keys(merged.get("intervention"))
        except ValueError:
            set_by = {}  # reported by the validation below
        for key in overrides:
            if key in set_by:
                raise ScenarioError(
                    f"overrides: {key}: set by {set_by[key]}; change or remove that "
                    "intervention instead"
                )
        return _validate(merged, source=self.source, origins={}, label="overrides")


def load_table(path: Path, table: str, model: type[BaseModel]) -> Any:
    """Validate the one table ``[table]`` of the TOML file ``path`` against ``model`` (the
    ``[evaluate]`` and ``[sweep]`` files); TwinError naming the file and key on bad input."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    if set(data) != {table}:
        raise ScenarioError(f"{path}: expected one table [{table}], found {sorted(data) or 'none'}")
    try:
        return model.model_validate(data[table])
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(f"{path}: {table}.{key}: {err['msg']}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Load, inherit and validate a scenario file. Raises ScenarioError."""
    source = Path(os.path.abspath(path))
    data, origins = _load_raw(source, ())
    data.setdefault("name", source.stem)
    return _validate(data, source=source, origins=origins, label=_display(source))


def _display(path: Path) -> str:
    """A path as short as possible for messages: relative to the working dir if inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load_raw(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged raw dict of ``path`` and its bases, and which file set each leaf key."""
    if path in chain:
        raise ScenarioError(
            "inheritance cycle: " + " -> ".join(_display(p) for p in (*chain, path))
        )
    where = _display(path)
    if not path.is_file():
        prefix = f"{_display(chain[-1])}: base: " if chain else ""
        raise ScenarioError(f"{prefix}scenario file not found: {where}")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{where}: cannot read scenario file: {exc}") from None
    data = _resolve_paths(data, Scenario, path.parent)
    base_ref = data.pop("base", None)
    origins = {key: where for key in _set_keys(data)}
    if base_ref is None:
        return data, origins
    if not isinstance(base_ref, str):
        raise ScenarioError(
            f"{where}: base: expected a scenario file path, got {show_value(base_ref)}"
        )
    base_data, base_origins = _load_raw(
        Path(os.path.abspath(path.parent / base_ref)), (*chain, path)
    )
    for key in ("name", "description"):  # they describe one file
        base_data.pop(key, None)
        base_origins.pop(key, None)
    merged = _deep_merge(base_data, data)
    if "intervention" in base_data and "intervention" in data:  # a what-if adds to its base's
        merged["intervention"] = [*base_data["intervention"], *data["intervention"]]
    return merged, {**base_origins, **origins}


def _set_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key in ``data``, tables included ("time" and "time.duration")."""
    keys = []
    for key, value in data.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += _set_keys(value, f"{prefix}{key}.")
    return keys


def _deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key with ``child`` winning; other values are replaced whole."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _section_model(info: FieldInfo) -> type[BaseModel] | None:
    ann = info.annotation
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _is_path(info: FieldInfo) -> bool:
    ann = info.annotation
    return ann is Path or (isinstance(ann, types.UnionType) and Path in typing.get_args(ann))


def _is_policy_file(info: FieldInfo, value: Any) -> bool:
    """A policy field (``json_schema_extra={"policy": True}``) naming a model file."""
    extra = info.json_schema_extra
    return (
        isinstance(extra, dict)
        and bool(extra.get("policy"))
        and isinstance(value, str)
        and value.lower().endswith(".onnx")
    )


def _resolve_paths(data: dict[str, Any], model: type[BaseModel], base_dir: Path) -> dict[str, Any]:
    """A copy of ``data`` with relative path strings of ``model``'s Path fields (and policy
    fields naming a model file) made absolute."""
    out = dict(data)
    for name, info in model.model_fields.items():
        key = info.alias or name
        value = out.get(key)
        if (sub := _section_model(info)) and isinstance(value, dict):
            out[key] = _resolve_paths(value, sub, base_dir)
        elif (_is_path(info) and isinstance(value, str)) or _is_policy_file(info, value):
            out[key] = os.path.abspath(base_dir / Path(value).expanduser())
    return out


def _validate(
    data: dict[str, Any],
    *,
    source: Path | None,
    origins: dict[str, str],
    label: str,
    settings_applied: bool = False,
) -> Scenario:
    try:
        scenario = Scenario.model_validate(data, context={"settings_applied": settings_applied})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            where = origins.get(key, label)
            lines.append(f"{where + ': ' if where else ''}{key or 'scenario'}: {_describe(err)}")
        raise ScenarioError("\n".join(lines)) from None
    scenario._source = source
    return scenario


def _describe(err: Any) -> str:
    """What was wrong, in the user's terms, for one pydantic error."""
    model: type[BaseModel] | None = Scenario
    model_at, info = model, None
    for part in err["loc"]:
        fields = {(i.alias or n): i for n, i in model.model_fields.items()} if model else {}
        info = fields.get(str(part))
        model_at, model = model, _section_model(info) if info else None
    if err["type"] == "extra_forbidden":
        names = [i.alias or n for n, i in model_at.model_fields.items()] if model_at else []
        names = ["base", *names] if model_at is Scenario else names
        return f"unknown key (expected one of: {', '.join(names)})"
    if err["type"] == "missing":
        return "missing required " + ("table" if model else "key")
    if err["type"] == "value_error":
        return str(err["ctx"]["error"])
    if info is None:
        return err["msg"]
    return f"expected {_expected(info)}, got {show_value(err['input'])}"


def _expected(info: FieldInfo) -> str:
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if _section_model(info):
        return "a table"
    text = "a file path" if _is_path(info) else words.get(info.annotation, "a value")
    for meta in info.metadata:  # annotated_types constraints: Ge(ge=0), MinLen(1), ...
        for attr, op in {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}.items():
            text += f" {op} {num_text(getattr(meta, attr))}" if hasattr(meta, attr) else ""
        if getattr(meta, "min_length", 0) == 1:
            text = f"a non-empty {text.removeprefix('a ')}"
    return text
