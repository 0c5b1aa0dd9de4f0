"""Output a person reads at a glance, and `-o yaml|json` for machines.

Colour comes from rich, which turns it off when stdout is not a terminal, when `NO_COLOR` is set
(https://no-color.org) or with `--no-color`; the text is the same with or without colour, so tests
read the plain form. Times are shown as RFC 3339 with a relative part (`5m ago`, `in 2s`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from rich.console import Console
from rich.text import Text

#: Styles per phase and health: red needs attention, yellow is waiting on something, green is fine.
STYLES: dict[str, str] = {
    "Running": "bold cyan",
    "Sleeping": "green",
    "Pending": "yellow",
    "Paused": "yellow",
    "Failed": "bold red",
    "Completed": "green",
    "Healthy": "green",
    "Unhealthy": "bold red",
    "Unknown": "yellow",
    "succeeded": "green",
    "failed": "red",
    "rate_limited": "yellow",
}


def make_console(no_color: bool = False, stream: Any = None) -> Console:
    """A console writing to stdout (or `stream`) that never wraps lines: output is copied and grepped."""
    return Console(
        file=stream or sys.stdout,
        no_color=no_color,
        # --no-color: no escape sequences at all (NO_COLOR alone still allows bold, as no-color.org says).
        color_system=None if no_color else "auto",
        highlight=False,
        soft_wrap=True,
        emoji=False,
        markup=False,
    )


def styled(value: str, style: str | None = None) -> Text:
    """`value` in its STYLES colour (or `style`); text appended later keeps the default style."""
    text = Text()
    text.append(value, style=style or STYLES.get(value, ""))
    return text


def table(
    console: Console, header: Sequence[str], rows: Sequence[Sequence[str]], styled_columns: Sequence[int] = ()
) -> None:
    """A kubectl-style table: columns padded and three spaces apart, no borders, header in upper case."""
    widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
    for index, row in enumerate([header, *rows]):
        line = Text()
        for column, cell in enumerate(row):
            last = column == len(row) - 1
            padded = str(cell) if last else str(cell).ljust(widths[column] + 3)
            if index == 0:
                line.append(padded, style="bold")
            elif column in styled_columns:
                line.append(padded, style=STYLES.get(str(cell).strip(), ""))
            else:
                line.append(padded)
        line.rstrip()
        console.print(line)


def dump(data: Any, output: str) -> str:
    """`data` as YAML (block style, keys in order) or indented JSON, ending with a newline."""
    if output == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(delta: timedelta) -> str:
    """`delta` in the largest two units kubectl would use: `45s`, `5m`, `3h12m`, `2d4h`."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds}s" if seconds and minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours and days < 10 else f"{days}d"


def relative(value: str | None, now: datetime | None = None) -> str:
    """An RFC 3339 time with how long ago (or how soon) it is: `2026-05-01T10:00:00Z (5m ago)`."""
    moment = parse_time(value)
    if moment is None:
        return value or "-"
    now = now or datetime.now(UTC)
    delta = moment - now
    if abs(delta) < timedelta(seconds=1):
        return f"{value} (now)"
    when = f"in {human_duration(delta)}" if delta > timedelta(0) else f"{human_duration(delta)} ago"
    return f"{value} ({when})"


def age(value: str | None, now: datetime | None = None) -> str:
    """kubectl's AGE column: `45s`, `5m`, `3d`."""
    moment = parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration((now or datetime.now(UTC)) - moment)


def counts(records: Mapping[str, Any] | None) -> str:
    """Record counts in one phrase: `read 3, added 2, updated 1, removed 0, omitted 0, failed 0`."""
    records = records or {}
    names = ("read", "added", "updated", "removed", "omitted", "failed")
    return ", ".join(f"{name} {int(records.get(name) or 0)}" for name in names)
