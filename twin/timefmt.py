"""Times of day and durations as users write them, and the strict base of scenario sections.

``parse_duration_s("1h30min") == 5400``, ``parse_clock_s("07:00") == 25200`` and their
inverses; :data:`DurationS` is a float field that a TOML file sets with a duration string;
:class:`Section` is the base of every scenario table (strict types, unknown keys forbidden).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

MAX_CLOCK_S = 48 * 3600.0  # a run may go past midnight, up to 48:00

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION_UNITS = re.compile(
    rf"\s*(?:{_NUM}\s*d)?\s*(?:{_NUM}\s*h)?\s*(?:{_NUM}\s*min)?\s*(?:{_NUM}\s*s)?\s*"
)
_HMS = re.compile(r"\s*(\d+):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?\s*")
_DURATION_FORMS = '(accepted: "1h30min", "1.5h", "15 min", "30s", "H:MM[:SS]", or seconds)'
_CLOCK_FORMS = '(accepted: "H:MM" or "H:MM:SS", from "00:00" to "48:00")'


def show_value(value: Any) -> str:
    """A value as a user would write it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    return str(value)


def num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def parse_duration_s(text: str | int | float) -> float:
    """Seconds in ``"2h"``, ``"90min"``, ``"1h30min"``, ``"1.5h"``, ``"30s"``, ``"01:30"``
    (H:MM[:SS]), ``"90"`` or a number of seconds. Raises ValueError otherwise."""
    bad = ValueError(
        f'expected a duration such as "2h" or "90min", got {show_value(text)} {_DURATION_FORMS}'
    )
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise bad
    if isinstance(text, str):
        if m := _HMS.fullmatch(text):
            seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3] or 0)
        elif re.fullmatch(rf"\s*{_NUM}\s*", text):
            seconds = float(text)
        elif (m := _DURATION_UNITS.fullmatch(text)) and any(m.groups()):
            d, h, mins, s = (float(g or 0) for g in m.groups())
            seconds = d * 86400 + h * 3600 + mins * 60 + s
        else:
            raise bad
    else:
        seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise bad
    return seconds


def parse_clock_s(text: str | dt.time) -> float:
    """Seconds since midnight of ``"07:00"``, ``"7:00"``, ``"07:00:30"``, up to ``"48:00"``
    (a TOML local time ``07:00:00`` works too). Raises ValueError otherwise."""
    if isinstance(text, dt.time) and text.tzinfo is None:
        return text.hour * 3600 + text.minute * 60 + text.second + text.microsecond / 1e6
    m = _HMS.fullmatch(text) if isinstance(text, str) else None
    seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3] or 0) if m else -1.0
    if not 0 <= seconds <= MAX_CLOCK_S:
        raise ValueError(
            f'expected a time of day such as "07:00", got {show_value(text)} {_CLOCK_FORMS}'
        )
    return seconds


def _hms(seconds: float) -> tuple[int, int, float]:
    """Whole hours, whole minutes and the seconds left, exactly (each step at most halves)."""
    h, m = int(seconds) // 3600, int(seconds) % 3600 // 60
    return h, m, seconds - h * 3600 - m * 60


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration_s: 7200 -> "2h", 5400 -> "1h30min", 0 -> "0s"."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a finite number of seconds >= 0, got {seconds}")
    h, m, s = _hms(seconds)
    parts = [f"{h}h" if h else "", f"{m}min" if m else "", f"{num_text(s)}s" if s else ""]
    return "".join(parts) or "0s"


def format_clock(seconds: float) -> str:
    """The inverse of parse_clock_s: 25200 -> "07:00", 25230 -> "07:00:30"."""
    if not 0 <= seconds <= MAX_CLOCK_S:
        raise ValueError(
            f"expected seconds since midnight in [0, {MAX_CLOCK_S:.0f}], got {seconds}"
        )
    h, m, s = _hms(seconds)
    return f"{h:02d}:{m:02d}" + (f":{'0' if s < 10 else ''}{num_text(s)}" if s else "")


class Section(BaseModel):
    """Base of every section: strict types, unknown keys forbidden, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _positive_duration_s(value: Any) -> float:
    seconds = parse_duration_s(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration > 0, got {show_value(value)}")
    return seconds


#: a duration field (float seconds) set in TOML as "2h", "90min", "30s", ...
DurationS = Annotated[
    float,
    BeforeValidator(parse_duration_s),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
#: a duration field that must be > 0
PositiveDurationS = Annotated[
    float,
    BeforeValidator(_positive_duration_s),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
#: a time-of-day field (float seconds since midnight) set in TOML as "07:30"
ClockS = Annotated[
    float,
    BeforeValidator(parse_clock_s),
    PlainSerializer(format_clock, return_type=str, when_used="json"),
]
