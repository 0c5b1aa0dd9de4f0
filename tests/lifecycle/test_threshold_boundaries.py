"""`spec.alerts` at their limits: a value equal to a threshold is within bounds ("exceeded" means beyond).

Each expected measurement is written out in full (threshold, value text, limit text, crossed), so a
change to a comparison, a unit or a message is seen here. The rules are in
operator/destinations/lifecycle/thresholds.py and docs/troubleshooting.md#thresholdexceeded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from destinations.api.models import (
    AlertThresholds,
    DestinationJobStatus,
    LastRun,
    Phase,
    RecordCounts,
    RunResult,
    ThresholdCrossing,
)
from destinations.lifecycle.thresholds import (
    Measurement,
    configured,
    degraded,
    measure_no_success,
    measure_run,
    measure_run_in_flight,
    message,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SINCE = "2026-01-05T08:00:00Z"


def _alerts(**fields: Any) -> AlertThresholds:
    return AlertThresholds.model_validate(fields)


def _run(result: RunResult = RunResult.SUCCEEDED, **records: int) -> LastRun:
    return LastRun(
        number=7,
        result=result,
        started_at="2026-01-05T08:00:00Z",
        finished_at="2026-01-05T08:10:00Z",
        records=RecordCounts(**records),
    )


# ------------------------------------------------------------------------------ maxRejectedPercent


def test_a_rejected_share_equal_to_the_limit_is_within_bounds() -> None:
    measured = measure_run(_alerts(maxRejectedPercent=10), _run(read=90, failed=10), timedelta(), None)
    assert measured == [Measurement("maxRejectedPercent", "10% (10 of 100 records)", "10%", False)]


def test_one_record_seen_and_rejected_is_judged() -> None:
    measured = measure_run(_alerts(maxRejectedPercent=10), _run(read=1, omitted=1), timedelta(), None)
    assert measured == [Measurement("maxRejectedPercent", "100% (1 of 1 records)", "10%", True)]


def test_a_run_that_saw_no_record_is_not_judged_on_rejections() -> None:
    assert measure_run(_alerts(maxRejectedPercent=10), _run(), timedelta(), None) == []


def test_percentages_drop_trailing_zeros_and_keep_two_decimals() -> None:
    measured = measure_run(_alerts(maxRejectedPercent=12.5), _run(read=3, omitted=1), timedelta(), None)
    assert measured == [Measurement("maxRejectedPercent", "33.33% (1 of 3 records)", "12.5%", True)]


def test_record_thresholds_do_not_judge_a_failed_run() -> None:
    alerts = _alerts(maxRejectedPercent=1, minRecords=100, maxRecordDrop=5)
    assert measure_run(alerts, _run(RunResult.FAILED, read=1, failed=9), timedelta(), 1000) == []


# -------------------------------------------------------------------------------------- minRecords


def test_a_run_reading_exactly_min_records_is_within_bounds() -> None:
    measured = measure_run(_alerts(minRecords=50), _run(read=50), timedelta(), None)
    assert measured == [Measurement("minRecords", "50 records read", "50 records", False)]


def test_a_run_reading_one_record_fewer_than_min_records_crosses_it() -> None:
    measured = measure_run(_alerts(minRecords=50), _run(read=49), timedelta(), None)
    assert measured == [Measurement("minRecords", "49 records read", "50 records", True)]


# ----------------------------------------------------------------------------------- maxRecordDrop


def test_a_drop_equal_to_the_limit_is_within_bounds() -> None:
    measured = measure_run(_alerts(maxRecordDrop=25), _run(read=75), timedelta(), 100)
    assert measured == [
        Measurement(
            "maxRecordDrop", "25% fewer records (75 read, 100 in the previous successful run)", "25%", False
        )
    ]


def test_a_drop_beyond_the_limit_crosses_it() -> None:
    measured = measure_run(_alerts(maxRecordDrop=25), _run(read=74), timedelta(), 100)
    assert measured == [
        Measurement(
            "maxRecordDrop", "26% fewer records (74 read, 100 in the previous successful run)", "25%", True
        )
    ]


def test_more_records_than_before_reads_as_no_drop() -> None:
    measured = measure_run(_alerts(maxRecordDrop=25), _run(read=150), timedelta(), 100)
    assert measured == [
        Measurement(
            "maxRecordDrop", "0% fewer records (150 read, 100 in the previous successful run)", "25%", False
        )
    ]


def test_without_a_previous_successful_run_the_drop_is_not_judged() -> None:
    assert measure_run(_alerts(maxRecordDrop=25), _run(read=1), timedelta(), None) == []
    assert measure_run(_alerts(maxRecordDrop=25), _run(read=1), timedelta(), 0) == []


# ---------------------------------------------------------------------------------- maxRunDuration


def test_a_run_lasting_exactly_max_run_duration_is_within_bounds() -> None:
    measured = measure_run(_alerts(maxRunDuration="30m"), _run(), timedelta(minutes=30), None)
    assert measured == [Measurement("maxRunDuration", "took 30m", "30m", False)]


def test_a_failed_run_one_second_past_max_run_duration_crosses_it() -> None:
    measured = measure_run(
        _alerts(maxRunDuration="30m"), _run(RunResult.FAILED), timedelta(minutes=30, seconds=1), None
    )
    assert measured == [Measurement("maxRunDuration", "took 30m1s", "30m", True)]


def test_a_rate_limited_run_is_not_judged_on_its_duration() -> None:
    assert (
        measure_run(_alerts(maxRunDuration="1m"), _run(RunResult.RATE_LIMITED), timedelta(hours=1), None)
        == []
    )


def test_the_run_in_flight_is_judged_on_how_long_it_has_run() -> None:
    alerts = _alerts(maxRunDuration="30m")
    started = NOW - timedelta(minutes=30)
    assert measure_run_in_flight(alerts, started, NOW) == Measurement(
        "maxRunDuration", "running for 30m", "30m", False
    )
    assert measure_run_in_flight(alerts, started, NOW + timedelta(seconds=1)) == Measurement(
        "maxRunDuration", "running for 30m1s", "30m", True
    )
    assert measure_run_in_flight(_alerts(minRecords=1), started, NOW) is None


# ------------------------------------------------------------------------------------ noSuccessFor


def test_no_success_for_exactly_the_limit_is_within_bounds() -> None:
    status = DestinationJobStatus(phase=Phase.SLEEPING, last_successful_time="2026-01-05T03:00:00Z")
    measured = measure_no_success(_alerts(noSuccessFor="6h"), status, NOW, NOW - timedelta(hours=6))
    assert measured == Measurement("noSuccessFor", "6h since the last successful run", "6h", False)


def test_no_success_for_counts_from_the_first_error_when_never_succeeded() -> None:
    status = DestinationJobStatus(phase=Phase.SLEEPING)
    measured = measure_no_success(_alerts(noSuccessFor="6h"), status, NOW, NOW - timedelta(hours=7))
    assert measured == Measurement("noSuccessFor", "7h since the first error (never succeeded)", "6h", True)


def test_no_success_for_is_not_judged_while_paused_or_completed_or_without_a_reference() -> None:
    alerts = _alerts(noSuccessFor="1h")
    long_ago = NOW - timedelta(days=3)
    for phase in (Phase.PAUSED, Phase.COMPLETED):
        assert measure_no_success(alerts, DestinationJobStatus(phase=phase), NOW, long_ago) is None
    assert measure_no_success(alerts, DestinationJobStatus(phase=Phase.SLEEPING), NOW, None) is None
    assert measure_no_success(_alerts(minRecords=1), DestinationJobStatus(), NOW, long_ago) is None


# ---------------------------------------------------------------------------------- texts, Degraded


def test_the_message_names_the_run_only_when_there_is_one() -> None:
    with_run = ThresholdCrossing(
        threshold="minRecords", value="3 records read", limit="5 records", run=4, since=SINCE
    )
    without = ThresholdCrossing(
        threshold="noSuccessFor", value="2h since the first error", limit="1h", since=SINCE
    )
    assert message(with_run) == "run 4: minRecords exceeded: 3 records read, threshold 5 records"
    assert message(without) == "noSuccessFor exceeded: 2h since the first error, threshold 1h"


def test_degraded_names_one_threshold_or_says_several() -> None:
    one = ThresholdCrossing(
        threshold="minRecords", value="3 records read", limit="5 records", run=4, since=SINCE
    )
    other = ThresholdCrossing(threshold="maxRunDuration", value="took 2h", limit="1h", run=4, since=SINCE)
    assert degraded([]) == ("False", "WithinThresholds", "every threshold of spec.alerts is within bounds")
    assert degraded([one]) == (
        "True",
        "MinRecordsExceeded",
        "run 4: minRecords exceeded: 3 records read, threshold 5 records",
    )
    assert degraded([one, other]) == (
        "True",
        "ThresholdsExceeded",
        "run 4: minRecords exceeded: 3 records read, threshold 5 records; "
        "run 4: maxRunDuration exceeded: took 2h, threshold 1h",
    )


def test_configured_lists_the_set_thresholds_in_their_documented_order() -> None:
    assert configured(None) == ()
    assert configured(_alerts(noSuccessFor="1h", minRecords=1, maxRejectedPercent=5)) == (
        "maxRejectedPercent",
        "minRecords",
        "noSuccessFor",
    )
