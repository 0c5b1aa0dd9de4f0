"""Per-job thresholds (`spec.alerts`): which are crossed now, judged from runs and from the clock.

Pure like the rest of the core: given the status, the thresholds and the current time, these functions
say which thresholds a finished run or the passing time crosses, and `decide` turns each new crossing
into a Warning Event `ThresholdExceeded` plus a `status.history` entry, and keeps the condition
`Degraded` (docs/troubleshooting.md#thresholdexceeded).

How each threshold is judged and cleared:

- `maxRejectedPercent`, `minRecords`, `maxRecordDrop`: judged on every successful run; back within
  bounds with the next successful run within bounds.
- `maxRunDuration`: judged on the run in flight, then on every finished run; back within bounds with
  the next finished run within bounds.
- `noSuccessFor`: judged by the clock (the core asks to be woken when it falls due); back within
  bounds with a successful run.

A threshold removed from the spec is cleared at once. A run that crosses a threshold again posts a new
Event (each run is a new fact); a crossing that merely persists (the run in flight, the clock) posts
one Event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from destinations.api.durations import format_duration
from destinations.api.models import (
    AlertThresholds,
    DestinationJobStatus,
    LastRun,
    Phase,
    RunResult,
    ThresholdCrossing,
)

THRESHOLDS = ("maxRejectedPercent", "minRecords", "maxRecordDrop", "maxRunDuration", "noSuccessFor")
"""Every `spec.alerts` threshold, as spelled in YAML (and in the metric's `threshold` label)."""
RUN_THRESHOLDS = ("maxRejectedPercent", "minRecords", "maxRecordDrop")
"""Thresholds judged on the records of a successful run."""
_NOT_JUDGED_FOR_NO_SUCCESS = {Phase.PAUSED, Phase.COMPLETED}


@dataclass(frozen=True)
class Measurement:
    """One threshold judged once: what was measured, against which limit, and whether it crossed."""

    threshold: str
    value: str
    limit: str
    crossed: bool


def configured(alerts: AlertThresholds | None) -> tuple[str, ...]:
    """The thresholds set in `spec.alerts`, in the order of `THRESHOLDS`."""
    if alerts is None:
        return ()
    values = {
        "maxRejectedPercent": alerts.max_rejected_percent,
        "minRecords": alerts.min_records,
        "maxRecordDrop": alerts.max_record_drop,
        "maxRunDuration": alerts.max_run_duration,
        "noSuccessFor": alerts.no_success_for,
    }
    return tuple(name for name in THRESHOLDS if values[name] is not None)


def measure_run(
    alerts: AlertThresholds, run: LastRun, duration: timedelta, previous_read: int | None
) -> list[Measurement]:
    """Judge a finished run against the run thresholds that apply to its result.

    Record thresholds apply to successful runs only (a failed run's counts are partial, and it is an
    `Error` already); `maxRunDuration` applies to every finished run. `previous_read` is what the
    previous successful run read (None: no baseline yet, so `maxRecordDrop` is not judged).
    """
    measured: list[Measurement] = []
    records = run.records
    if run.result == RunResult.SUCCEEDED:
        seen = records.read + records.failed
        if alerts.max_rejected_percent is not None and seen > 0:
            # Records dropped as invalid (no email) are rejected too, only before sending (issue 15).
            count = records.omitted + records.failed + (records.invalid or 0)
            rejected = 100 * count / seen
            measured.append(
                Measurement(
                    "maxRejectedPercent",
                    f"{_percent(rejected)}% ({count} of {seen} records)",
                    f"{_percent(alerts.max_rejected_percent)}%",
                    rejected > alerts.max_rejected_percent,
                )
            )
        if alerts.min_records is not None:
            measured.append(
                Measurement(
                    "minRecords",
                    f"{records.read} records read",
                    f"{alerts.min_records} records",
                    records.read < alerts.min_records,
                )
            )
        if alerts.max_record_drop is not None and previous_read:
            drop = 100 * (previous_read - records.read) / previous_read
            measured.append(
                Measurement(
                    "maxRecordDrop",
                    f"{_percent(max(drop, 0.0))}% fewer records ({records.read} read, "
                    f"{previous_read} in the previous successful run)",
                    f"{_percent(alerts.max_record_drop)}%",
                    drop > alerts.max_record_drop,
                )
            )
    if alerts.max_run_duration is not None and run.result in (RunResult.SUCCEEDED, RunResult.FAILED):
        measured.append(_duration_measurement(alerts.max_run_duration, duration))
    return measured


def measure_run_in_flight(alerts: AlertThresholds, started_at: datetime, now: datetime) -> Measurement | None:
    """`maxRunDuration` of the run in flight; None when it is not set."""
    if alerts.max_run_duration is None:
        return None
    return _duration_measurement(alerts.max_run_duration, now - started_at, in_flight=True)


def measure_no_success(
    alerts: AlertThresholds, status: DestinationJobStatus, now: datetime, reference: datetime | None
) -> Measurement | None:
    """`noSuccessFor` against `reference` (the last success, else the first error); None if not judged."""
    limit = alerts.no_success_for
    if limit is None or reference is None or status.phase in _NOT_JUDGED_FOR_NO_SUCCESS:
        return None
    waited = now - reference
    since = "the last successful run" if status.last_successful_time else "the first error (never succeeded)"
    return Measurement(
        "noSuccessFor",
        f"{format_duration(max(waited, timedelta()))} since {since}",
        format_duration(limit),
        waited > limit,
    )


def apply(
    crossings: Sequence[ThresholdCrossing],
    measured: Sequence[Measurement],
    *,
    run: int | None,
    now: str,
    new_fact: bool,
) -> tuple[list[ThresholdCrossing], list[ThresholdCrossing]]:
    """Fold measurements into the crossings: (all crossings now, the ones to announce).

    A crossed measurement replaces the threshold's crossing; it is announced when the threshold was
    not crossed before, or when `new_fact` (a finished run crossed it again). A measurement within
    bounds clears the threshold.
    """
    current = {crossing.threshold: crossing for crossing in crossings}
    announce: list[ThresholdCrossing] = []
    for measurement in measured:
        before = current.get(measurement.threshold)
        if not measurement.crossed:
            current.pop(measurement.threshold, None)
            continue
        crossing = ThresholdCrossing(
            threshold=measurement.threshold,
            value=measurement.value,
            limit=measurement.limit,
            run=run if run is not None else (before.run if before is not None else None),
            since=before.since if before is not None else now,
        )
        current[measurement.threshold] = crossing
        repeated_for_same_run = before is not None and before.run == run and run is not None
        if before is None or (new_fact and not repeated_for_same_run):
            announce.append(crossing)
    ordered = [current[name] for name in THRESHOLDS if name in current]
    return ordered, announce


def keep_configured(
    crossings: Sequence[ThresholdCrossing], alerts: AlertThresholds | None
) -> list[ThresholdCrossing]:
    """Drop the crossings of thresholds no longer set in the spec."""
    names = configured(alerts)
    return [crossing for crossing in crossings if crossing.threshold in names]


def message(crossing: ThresholdCrossing) -> str:
    """The text of the `ThresholdExceeded` Event and history entry: threshold, value, limit and run."""
    run = f"run {crossing.run}: " if crossing.run is not None else ""
    return f"{run}{crossing.threshold} exceeded: {crossing.value}, threshold {crossing.limit}"


def degraded(crossings: Sequence[ThresholdCrossing]) -> tuple[str, str, str]:
    """The `Degraded` condition as (status, reason, message)."""
    if not crossings:
        return "False", "WithinThresholds", "every threshold of spec.alerts is within bounds"
    if len(crossings) == 1:
        reason = crossings[0].threshold[0].upper() + crossings[0].threshold[1:] + "Exceeded"
    else:
        reason = "ThresholdsExceeded"
    return "True", reason, "; ".join(message(crossing) for crossing in crossings)


def _duration_measurement(limit: timedelta, took: timedelta, *, in_flight: bool = False) -> Measurement:
    took = max(took, timedelta())
    value = f"running for {format_duration(took)}" if in_flight else f"took {format_duration(took)}"
    return Measurement("maxRunDuration", value, format_duration(limit), took > limit)


def _percent(value: float) -> str:
    """12.5 → "12.5", 12.0 → "12", 1/3 → "0.33"."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
