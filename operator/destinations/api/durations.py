"""Go-style durations (`90s`, `1h30m`, `10h`) as used across Kubernetes, plus `d` for days.

Kubernetes users write durations the way Go's `time.ParseDuration` reads them; `90d` is accepted too
because purge periods are naturally counted in days.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
ACCEPTED = "a duration such as 90s, 15m, 1h30m, 10h or 90d (units ms, s, m, h, d)"
#: Go's `time.Duration` is an int64 of nanoseconds: nothing longer parses in Kubernetes tools, and a
#: schedule counted from today with it still lands in a representable year.
MAX_DURATION = timedelta(hours=2562047, minutes=47, seconds=16)
MAX_DURATION_TEXT = "2562047h47m16s (about 292 years)"


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text; raise ValueError naming what is accepted (at most MAX_DURATION)."""
    if not isinstance(text, str) or not text or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not {ACCEPTED}")
    total = timedelta()
    try:
        for number, unit in _PART.findall(text):
            total += float(number) * UNITS[unit]
    except OverflowError:
        total = MAX_DURATION + UNITS["s"]
    if total > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than {MAX_DURATION_TEXT}, the longest duration Go can hold")
    if total <= timedelta():
        raise ValueError(f"{text!r} must be longer than zero; expected {ACCEPTED}")
    return total


def format_duration(value: timedelta) -> str:
    """Render a timedelta in the shortest exact Go-style form (days when whole)."""
    milliseconds = round(value.total_seconds() * 1000)
    if milliseconds == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(UNITS[unit].total_seconds() * 1000)
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _coerce(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        # The CRD says `type: string`: `60` or `true` is refused, as the API server does; quoting it
        # would not help a number without its unit, so the message says what to write.
        kind = (
            "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "value"
        )
        raise ValueError(
            f"must be {ACCEPTED}, written as text; not the {kind} {json.dumps(value, default=str)}"
        )
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
"""A duration field: written as text in YAML, a `timedelta` in Python."""

NEVER = "never"


def _coerce_optional(value: Any) -> Any:
    if value is None or value == NEVER:
        return None
    return _coerce(value)


def _format_optional(value: timedelta | None) -> str:
    return NEVER if value is None else format_duration(value)


DurationOrNever = Annotated[
    timedelta | None,
    BeforeValidator(_coerce_optional),
    PlainSerializer(_format_optional, return_type=str),
    WithJsonSchema({"type": "string", "pattern": f"^(never|{DURATION_PATTERN[1:-1]})$"}),
]
"""A duration, or `never` (stored as None) to switch the behaviour off."""
