"""When a job is due: `every`, `cron` (in an IANA time zone) and `once`.

All functions are pure: the caller passes the reference times, nothing reads the clock.

Decisions (see docs/lifecycle.md):

- `every` counts from the *start* of the previous run; a job that never ran is due immediately.
- `cron` fires at the first matching wall-clock time strictly after the previous run's start (or after
  the job's creation for the first run), in `timezone` (UTC by default).
- A local time skipped by a spring-forward change fires at the instant the gap ends (02:30 on the night
  Paris jumps from 02:00 to 03:00 fires at 03:00 CEST); several skipped times collapse into that one run.
- A local time repeated by a fall-back change fires once, at its first occurrence.
- Missed runs collapse: the due time is computed from the previous run only, so a job whose due time
  passed long ago (operator down, job paused) runs once, then continues from that run's start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from destinations.api.models import Schedule

#: How far past `after` (in wall-clock time) a match is looked for before giving up. A validated
#: expression matches at least every eight years (29 February); the search never gets near this.
_SEARCH_HORIZON = timedelta(days=9 * 366)


def next_due(schedule: Schedule, *, last_started: datetime | None, reference: datetime) -> datetime:
    """The time the next run is due.

    `last_started` is the start of the previous run (None if the job never ran); `reference` is the
    time to count from when it never ran (its creation, or now). The result may lie in the past:
    the run is then overdue and starts at once, just once.
    """
    if schedule.every is not None:
        return reference if last_started is None else last_started + schedule.every
    if schedule.cron is not None:
        return next_cron_time(schedule.cron, schedule.timezone, after=last_started or reference)
    return reference if last_started is None else last_started  # once: due until it succeeds


def next_cron_time(expression: str, timezone: str | None, *, after: datetime) -> datetime:
    """The first instant strictly after `after` at which `expression` matches in `timezone` (UTC default).

    Wall-clock times map to instants without ever going backwards (`local_to_instant`), so the search
    starts at the wall-clock time of `after` itself: every earlier wall time maps to an instant at or
    before `after`. Only the times of a repeated (fall-back) hour that were already passed are skipped,
    at most one hour of candidates, so even `* * * * *` is answered after a few dozen steps.

    Raises ValueError for an expression that never matches (refused by `Schedule` validation).
    """
    zone = ZoneInfo(timezone or "UTC")
    local_after = after.astimezone(zone).replace(tzinfo=None)
    try:
        iterator = croniter(expression, local_after)
        while True:
            wall_time: datetime = iterator.get_next(datetime)
            instant = local_to_instant(wall_time, zone)
            if instant > after:
                return instant
            if wall_time - local_after > _SEARCH_HORIZON:  # pragma: no cover - cannot happen
                break
    except CroniterError as error:
        raise ValueError(f"cron {expression!r} has no time after {after.isoformat()}: {error}") from error
    raise ValueError(f"cron {expression!r} has no time after {after.isoformat()}")  # pragma: no cover


def local_to_instant(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """Map a naive wall-clock time in `zone` to a UTC instant, resolving DST corner cases.

    A repeated time maps to its first occurrence (fold=0); a skipped time maps to the end of the gap.
    """
    first = wall_time.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall_time:
        return instant
    # Skipped by a spring-forward change: zoneinfo reads it with the offset before the gap, which lands
    # after the gap's end; the gap ends at the first whole minute whose wall time exists, found by
    # walking back from that instant.
    gap_end = instant
    while True:
        earlier = gap_end - timedelta(minutes=1)
        earlier_wall = earlier.astimezone(zone).replace(tzinfo=None)
        if earlier_wall < wall_time:
            return gap_end
        gap_end = earlier
