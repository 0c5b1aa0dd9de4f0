"""Purging finished jobs after purgeAfter, pruning sync pods beyond the history limits, pod names."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from destinations.api.models import Phase, RunResult
from destinations.api.runs import RunReport
from destinations.lifecycle import DeleteJob, DeletePod, FinishedPod, RunFinished, sync_pod_name
from tests.lifecycle.harness import JOB_NAME, JobHarness, finished_pods, job_spec

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _deletes_job(job: JobHarness) -> bool:
    return any(isinstance(action, DeleteJob) for action in job.decisions[-1].actions)


def _to_failed(job: JobHarness) -> None:
    job.spec = job_spec(retry={"failAfter": "1m"}, purgeAfter="90d")
    job.create()
    job.fail()
    job.wake()
    job.fail()


def _to_paused(job: JobHarness) -> None:
    job.spec = job_spec(purgeAfter="90d")
    job.create()
    job.finish()
    job.change_spec(purgeAfter="90d", paused=True)


def _to_completed(job: JobHarness) -> None:
    job.spec = job_spec(schedule={"once": True}, purgeAfter="90d")
    job.create()
    job.finish()


FINISHED: list[tuple[Phase, Callable[[JobHarness], None]]] = [
    (Phase.FAILED, _to_failed),
    (Phase.PAUSED, _to_paused),
    (Phase.COMPLETED, _to_completed),
]


@pytest.mark.parametrize(("phase", "scenario"), FINISHED, ids=[str(phase) for phase, _ in FINISHED])
def test_finished_job_is_purged_after_purge_after(
    phase: Phase, scenario: Callable[[JobHarness], None]
) -> None:
    job = JobHarness()
    scenario(job)
    assert job.phase == phase
    assert job.decisions[-1].wake_at == job.now + timedelta(days=90)
    job.advance(timedelta(days=90))
    job.tick()
    assert _deletes_job(job)
    assert not job.decisions[-1].status_changed


@pytest.mark.parametrize(("phase", "scenario"), FINISHED, ids=[str(phase) for phase, _ in FINISHED])
def test_finished_job_is_kept_until_purge_after(phase: Phase, scenario: Callable[[JobHarness], None]) -> None:
    job = JobHarness()
    scenario(job)
    job.advance(timedelta(days=90) - timedelta(seconds=1))
    job.tick()
    assert not _deletes_job(job)


def test_purge_after_never_keeps_a_finished_job_forever() -> None:
    job = JobHarness(job_spec(schedule={"once": True}, purgeAfter="never"))
    job.create()
    decision = job.finish()
    assert decision.wake_at is None
    job.advance(timedelta(days=3650))
    job.tick()
    assert not _deletes_job(job)


def test_sleeping_job_is_never_purged() -> None:
    job = JobHarness(job_spec(schedule={"every": "1000h"}, purgeAfter="1h"))
    job.create()
    job.finish()
    job.advance(timedelta(days=30))
    job.tick()
    assert not any(isinstance(action, DeleteJob) for decision in job.decisions for action in decision.actions)


def test_purge_counts_from_when_the_job_entered_its_phase() -> None:
    job = JobHarness()
    _to_paused(job)
    job.advance(timedelta(days=89))
    job.change_spec(purgeAfter="90d", paused=True, description="edited")
    job.advance(timedelta(days=1))
    job.tick()
    assert _deletes_job(job)


# ------------------------------------------------------------------------------------------- pods


def test_pods_beyond_the_history_limits_are_deleted_oldest_first() -> None:
    job = JobHarness(job_spec(history={"succeeded": 2, "failed": 1}))
    job.create()
    for _ in range(5):
        job.finish()
        job.wake()
    pods = finished_pods((1, True), (2, False), (3, True), (4, False), (5, True))
    decision = job.tick(finished_pods=pods)
    deleted = {action.pod_name for action in decision.actions if isinstance(action, DeletePod)}
    assert deleted == {f"{JOB_NAME}-run-1", f"{JOB_NAME}-run-2"}


def test_pod_of_the_run_in_flight_or_not_yet_recorded_is_never_deleted() -> None:
    job = JobHarness(job_spec(history={"succeeded": 0, "failed": 0}))
    job.create()
    decision = job.tick(finished_pods=finished_pods((1, True), (2, True)))
    assert not [action for action in decision.actions if isinstance(action, DeletePod)]


def test_the_pod_of_the_run_just_recorded_can_be_pruned_in_the_same_decision() -> None:
    job = JobHarness(job_spec(history={"succeeded": 0, "failed": 3}))
    job.create()
    job.now += timedelta(minutes=2)
    decision = job.observe(
        RunFinished(1, RunReport(result=RunResult.SUCCEEDED)),
        finished_pods=[FinishedPod(1, f"{JOB_NAME}-run-1", True)],
    )
    assert DeletePod(f"{JOB_NAME}-run-1", 1) in decision.actions


def test_pod_names_are_deterministic_from_job_and_run() -> None:
    assert sync_pod_name("vip-export", 7) == "vip-export-run-7"
    assert sync_pod_name("vip-export", 12) == "vip-export-run-12"


def test_pod_names_of_dotted_job_names_are_dns_labels() -> None:
    # sha256("eu.vip-export") starts with a4a27a84: the hash keeps it apart from `eu-vip-export`.
    assert sync_pod_name("eu.vip-export", 1) == "eu-vip-export-a4a27a84-run-1"


def test_a_dotted_and_a_dashed_job_name_never_share_a_pod() -> None:
    assert sync_pod_name("eu.vip-export", 1) != sync_pod_name("eu-vip-export", 1)
    assert sync_pod_name("eu-vip-export", 1) == "eu-vip-export-run-1"


@pytest.mark.parametrize("length", [55, 63, 200, 253])
def test_long_job_names_are_cut_and_hashed_into_63_characters(length: int) -> None:
    name = ("a" * (length - 1)) + "b"
    pod = sync_pod_name(name, 123456)
    assert len(pod) <= 63
    assert DNS_LABEL.match(pod)
    assert pod.endswith("-run-123456")


def test_long_job_names_sharing_a_prefix_get_different_pods() -> None:
    prefix = "x" * 70
    assert sync_pod_name(prefix + "-one", 1) != sync_pod_name(prefix + "-two", 1)


def test_cut_job_name_never_leaves_a_dangling_dash() -> None:
    pod = sync_pod_name("a" * 45 + "-" + "b" * 30, 1)
    assert "--" not in pod
    assert DNS_LABEL.match(pod)
