"""Issue 15 in the core: a pause carries its reason; a run's rejections reach `status.lastRun`."""

from __future__ import annotations

from destinations.api.models import Phase, RecordCounts, Rejection, RunResult
from destinations.api.runs import RunReport
from destinations.lifecycle import PostEvent, RunFinished, SpecChanged
from tests.lifecycle.harness import JobHarness, job_spec


def _pause(job: JobHarness, reason: str | None) -> None:
    job.spec = job_spec(paused=True)
    job.generation += 1
    job.observe(SpecChanged(), pause_reason=reason)


def test_the_pause_reason_is_in_the_status_message_the_event_and_the_history() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    _pause(job, "holiday  freeze\nuntil Monday")
    assert job.phase == Phase.PAUSED
    assert (
        job.status.message == "paused by spec.paused (holiday freeze until Monday); set it to false to resume"
    )
    events = [a for a in job.decisions[-1].actions if isinstance(a, PostEvent)]
    assert [(e.reason, e.message) for e in events] == [
        ("Paused", "paused by spec.paused: holiday freeze until Monday")
    ]
    assert job.status.history[-1].message == "paused by spec.paused: holiday freeze until Monday"


def test_a_pause_without_a_reason_says_what_it_always_said() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    _pause(job, None)
    assert job.status.message == "paused by spec.paused; set it to false to resume"
    assert job.status.history[-1].message == "paused by spec.paused"


def test_the_runs_rejections_land_in_last_run() -> None:
    job = JobHarness()
    job.create()
    report = RunReport(
        result=RunResult.SUCCEEDED,
        records=RecordCounts(read=3, added=2, omitted=1, invalid=1),
        rejections=[Rejection(key="gone@example.com", reason="ERROR_GENERIC: permanently deleted")],
    )
    job.observe(RunFinished(job.current_run_number, report))
    assert job.status.last_run is not None
    assert job.status.last_run.model_dump(
        include={"rejections", "records"}, exclude_none=True, by_alias=True
    ) == {
        "records": {
            "read": 3,
            "added": 2,
            "updated": 0,
            "removed": 0,
            "omitted": 1,
            "failed": 0,
            "invalid": 1,
        },
        "rejections": [{"key": "gone@example.com", "reason": "ERROR_GENERIC: permanently deleted"}],
    }


def test_a_run_without_rejections_writes_none() -> None:
    job = JobHarness()
    job.create()
    job.finish()
    assert job.status.last_run is not None
    assert "rejections" not in job.status.last_run.model_dump(exclude_none=True)


def test_records_dropped_as_invalid_count_toward_max_rejected_percent() -> None:
    job = JobHarness(job_spec(alerts={"maxRejectedPercent": 10}))
    job.create()
    decision = job.finish(records=RecordCounts(read=100, added=85, omitted=5, invalid=10))
    assert [
        a.message for a in decision.actions if isinstance(a, PostEvent) and a.reason == "ThresholdExceeded"
    ] == ["run 1: maxRejectedPercent exceeded: 15% (15 of 100 records), threshold 10%"]
