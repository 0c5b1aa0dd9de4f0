"""Every schedule that validates has a next run time, found quickly (issue 13, item 1).

Hypothesis writes cron expressions the way users do (every minute, steps, lists, narrow ranges, the
day-of-month/month combinations that exist only in leap years or never) and picks a time zone, with
its daylight-saving changes, and a reference time. Whatever `Schedule` accepts must yield a next
time strictly after the reference, whose wall-clock time the expression matches (or which ends a
skipped hour), within a few milliseconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from destinations.api.models import Schedule
from destinations.lifecycle import next_cron_time, next_due

#: Zones with the daylight-saving shapes that matter: none, one hour both ways (north and south),
#: half an hour (Lord Howe), two hours (Troll), and UTC itself.
ZONES = [
    None,
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Chatham",
]
#: Generous for a slow, shared CI machine; the old search took seconds or never ended.
TIME_LIMIT_SECONDS = 0.25

FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@st.composite
def cron_field(draw: st.DrawFn, index: int) -> str:
    low, high = FIELD_RANGES[index]
    value = st.integers(low, high)
    kind = draw(st.sampled_from(["star", "value", "range", "step", "range-step", "list"]))
    if kind == "star":
        return "*"
    if kind == "value":
        return str(draw(value))
    if kind == "range":
        first = draw(value)
        last = draw(st.integers(first, min(high, first + 2)))  # narrow ranges on purpose
        return f"{first}-{last}"
    if kind == "step":
        return f"*/{draw(st.integers(1, high - low + 1))}"
    if kind == "range-step":
        first = draw(value)
        last = draw(st.integers(first, high))
        return f"{first}-{last}/{draw(st.integers(1, high - low + 1))}"
    items = draw(st.lists(value, min_size=1, max_size=3, unique=True))
    return ",".join(str(item) for item in items)


@st.composite
def cron_expression(draw: st.DrawFn) -> str:
    return " ".join(draw(cron_field(index)) for index in range(5))


instants = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2045, 12, 31),
    timezones=st.just(UTC),
)


def schedule_or_none(expression: str, zone: str | None) -> Schedule | None:
    try:
        return Schedule(cron=expression, timezone=zone)
    except ValidationError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=cron_expression(), zone=st.sampled_from(ZONES), after=instants)
@example(expression="* * * * *", zone=None, after=datetime(2026, 11, 29, 21, 0, 30, tzinfo=UTC))
@example(expression="* * * * *", zone="Europe/Paris", after=datetime(2026, 10, 25, 0, 59, tzinfo=UTC))
@example(expression="* * * * *", zone="Europe/Paris", after=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
@example(expression="*/1 * * * *", zone="Australia/Lord_Howe", after=datetime(2026, 4, 4, 14, 45, tzinfo=UTC))
@example(expression="0-1 2 29 2 *", zone="America/New_York", after=datetime(2026, 3, 1, tzinfo=UTC))
@example(expression="30 2 * * *", zone="Europe/Paris", after=datetime(2026, 3, 28, 23, tzinfo=UTC))
def test_every_valid_cron_schedule_has_a_next_time_found_quickly(
    expression: str, zone: str | None, after: datetime
) -> None:
    schedule = schedule_or_none(expression, zone)
    if schedule is None:
        return
    started = time.perf_counter()
    due = next_due(schedule, last_started=after, reference=after)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_LIMIT_SECONDS, f"{expression!r} in {zone}: {elapsed:.3f}s"
    assert due > after
    assert due - after <= timedelta(days=8 * 366 + 2)
    assert due.second == 0 and due.microsecond == 0
    wall = due.astimezone(ZoneInfo(zone or "UTC")).replace(tzinfo=None)
    # The wall-clock time matches, or the matching time fell in a skipped (spring-forward) gap and the
    # run moved to the gap's end, whose first minute is exactly `due`.
    just_before = (due - timedelta(minutes=1)).astimezone(ZoneInfo(zone or "UTC")).replace(tzinfo=None)
    skipped_gap = wall - just_before > timedelta(minutes=1)
    assert croniter.match(expression, wall) or skipped_gap, f"{expression!r} does not match {wall}"


@settings(max_examples=200, deadline=None)
@given(expression=cron_expression(), zone=st.sampled_from(ZONES), after=instants)
def test_a_cron_schedule_never_repeats_a_run_time(expression: str, zone: str | None, after: datetime) -> None:
    schedule = schedule_or_none(expression, zone)
    if schedule is None:
        return
    first = next_due(schedule, last_started=after, reference=after)
    second = next_due(schedule, last_started=first, reference=first)
    assert second > first


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # The literal case of issue 13: every minute, from a time with seconds.
        (
            "* * * * *",
            None,
            datetime(2026, 11, 29, 21, 0, 30, tzinfo=UTC),
            datetime(2026, 11, 29, 21, 1, tzinfo=UTC),
        ),
        # Every minute in Paris through the repeated hour (02:00 CEST -> 02:00 CET on 25 October 2026,
        # 01:00 UTC): the second pass of 02:xx fires nothing, 03:00 CET is next.
        (
            "* * * * *",
            "Europe/Paris",
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
        ),
        # 29 February only: the next one is in 2028.
        ("0 0 29 2 *", None, datetime(2026, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_literal_next_times(expression: str, zone: str | None, after: datetime, expected: datetime) -> None:
    assert next_cron_time(expression, zone, after=after) == expected


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "15 10 31 2 *"])
def test_a_cron_that_never_matches_is_refused_naming_why(expression: str) -> None:
    with pytest.raises(ValidationError, match="never matches"):
        Schedule(cron=expression)


@pytest.mark.parametrize("every", ["100000000d", "9999999999999999999999h", "2562048h"])
def test_an_interval_beyond_go_durations_is_refused(every: str) -> None:
    with pytest.raises(ValidationError, match="longer than 2562047h47m16s"):
        Schedule(every=every)


def test_the_longest_interval_still_has_a_next_time() -> None:
    schedule = Schedule(every="2562047h")
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_due(schedule, last_started=after, reference=after) == after + timedelta(hours=2562047)


@pytest.mark.parametrize(
    "expression",
    ["0 0 L * *", "0 0 L 2 *", "0 0 * * 5#5", "30 8 * jan-mar mon-fri", "0 12 1,15 * sun", "*/7 1-2 * * *"],
)
@pytest.mark.parametrize("zone", [None, "Europe/Paris", "Australia/Lord_Howe"])
def test_cron_extensions_that_validate_have_a_next_time(expression: str, zone: str | None) -> None:
    schedule = Schedule(cron=expression, timezone=zone)
    after = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    started = time.perf_counter()
    due = next_due(schedule, last_started=after, reference=after)
    assert time.perf_counter() - started < TIME_LIMIT_SECONDS
    assert after < due <= after + timedelta(days=366)
