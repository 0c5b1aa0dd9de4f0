"""When runs are due: every, cron in a time zone across daylight-saving changes, once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from destinations.api.models import Schedule
from destinations.lifecycle import next_cron_time, next_due

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def local(zone: ZoneInfo, text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


def test_every_job_that_never_ran_is_due_immediately() -> None:
    assert next_due(Schedule(every=timedelta(hours=1)), last_started=None, reference=NOW) == NOW


def test_every_counts_from_the_previous_runs_start() -> None:
    started = NOW - timedelta(minutes=10)
    assert next_due(
        Schedule(every=timedelta(hours=1)), last_started=started, reference=NOW
    ) == started + timedelta(hours=1)


def test_every_missed_slots_collapse_into_one_overdue_time() -> None:
    started = NOW - timedelta(days=3)
    due = next_due(Schedule(every=timedelta(hours=1)), last_started=started, reference=NOW)
    assert due == started + timedelta(hours=1)
    assert due < NOW


def test_once_job_that_never_ran_is_due_immediately() -> None:
    assert next_due(Schedule(once=True), last_started=None, reference=NOW) == NOW


def test_cron_first_run_waits_for_the_next_matching_time() -> None:
    due = next_due(Schedule(cron="0 6 * * *"), last_started=None, reference=NOW)
    assert due == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)


def test_cron_defaults_to_utc_and_fires_strictly_after_the_reference() -> None:
    assert next_cron_time("0 9 * * *", None, after=NOW) == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_cron_honours_the_time_zone() -> None:
    due = next_cron_time("0 6 * * *", "Europe/Paris", after=NOW)
    assert due == local(PARIS, "2026-01-06T06:00:00")
    assert due == datetime(2026, 1, 6, 5, 0, tzinfo=UTC)


def test_cron_missed_slots_collapse_into_the_first_overdue_one() -> None:
    last_started = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    due = next_due(Schedule(cron="0 6 * * *"), last_started=last_started, reference=NOW)
    assert due == datetime(2026, 1, 2, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # Paris springs forward on 2026-03-29 at 02:00 CET to 03:00 CEST: 02:30 does not exist.
        ("Europe/Paris", "2026-03-29T00:00:00", "2026-03-29T03:00:00"),
        # New York springs forward on 2026-03-08 at 02:00 EST to 03:00 EDT.
        ("America/New_York", "2026-03-08T00:00:00", "2026-03-08T03:00:00"),
    ],
)
def test_cron_time_skipped_by_spring_forward_fires_when_the_gap_ends(
    zone: str, after: str, expected: str
) -> None:
    due = next_cron_time("30 2 * * *", zone, after=local(ZoneInfo(zone), after))
    assert due == local(ZoneInfo(zone), expected)


@pytest.mark.parametrize(
    ("zone", "day"), [("Europe/Paris", "2026-03-29"), ("America/New_York", "2026-03-08")]
)
def test_cron_times_skipped_by_spring_forward_collapse_into_one_run(zone: str, day: str) -> None:
    tz = ZoneInfo(zone)
    first = next_cron_time("*/20 2 * * *", zone, after=local(tz, f"{day}T00:00:00"))
    second = next_cron_time("*/20 2 * * *", zone, after=first)
    assert first == local(tz, f"{day}T03:00:00")
    assert second.date() > first.date()


def test_cron_on_the_day_after_spring_forward_keeps_its_wall_clock_time() -> None:
    due = next_cron_time("30 2 * * *", "Europe/Paris", after=local(PARIS, "2026-03-29T03:00:00"))
    assert due == local(PARIS, "2026-03-30T02:30:00")


@pytest.mark.parametrize(
    ("zone", "day", "utc_of_first_occurrence"),
    [
        # Paris falls back on 2026-10-25 at 03:00 CEST to 02:00 CET: 02:30 happens twice.
        ("Europe/Paris", "2026-10-25", "2026-10-25T00:30:00+00:00"),
        # New York falls back on 2026-11-01 at 02:00 EDT to 01:00 EST: 01:30 happens twice.
        ("America/New_York", "2026-11-01", "2026-11-01T05:30:00+00:00"),
    ],
)
def test_cron_time_repeated_by_fall_back_fires_once_at_its_first_occurrence(
    zone: str, day: str, utc_of_first_occurrence: str
) -> None:
    tz = ZoneInfo(zone)
    wall = "02:30" if zone == "Europe/Paris" else "01:30"
    expression = f"{wall[3:]} {int(wall[:2])} * * *"
    first = next_cron_time(expression, zone, after=local(tz, f"{day}T00:00:00"))
    second = next_cron_time(expression, zone, after=first)
    assert first == datetime.fromisoformat(utc_of_first_occurrence)
    assert second - first > timedelta(hours=23)


def test_cron_after_a_time_inside_the_repeated_hour_moves_on_to_the_next_day() -> None:
    inside_second_occurrence = local(PARIS, "2026-10-25T02:40:00", fold=1)
    due = next_cron_time("30 2 * * *", "Europe/Paris", after=inside_second_occurrence)
    assert due == local(PARIS, "2026-10-26T02:30:00")


def test_hourly_cron_keeps_real_time_order_through_fall_back() -> None:
    after = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    times = []
    for _ in range(5):
        after = next_cron_time("30 * * * *", "Europe/Paris", after=after)
        times.append(after)
    assert times == sorted(times)
    assert all(later - earlier <= timedelta(hours=2) for earlier, later in itertools.pairwise(times))
