"""scripts/check_examples.py, the end-to-end workflow's check of the example jobs on kind.

The workflow itself runs on GitHub's runners only; these tests prove the check fails on each kind of
difference (phase, reason, created-by, sync pod, a missing job) and that it covers exactly the jobs of
examples/jobs/.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_examples", REPO_ROOT / "scripts" / "check_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_examples"] = module
    spec.loader.exec_module(module)
    return module


check = _load()
USER = "kubernetes-admin"


def _job(name: str, phase: str, reason: str, created_by: str = USER) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"destinations.dev/created-by": created_by}},
        "status": {"phase": phase, "reason": reason, "createdBy": created_by, "message": "m"},
    }


def _pod(job: str, run: int, phase: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{job}-run-{run}", "labels": {"destinations.dev/job": job}},
        "status": {"phase": phase},
    }


def _settled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    waiting = [
        "churn-risk-to-facebook",
        "customers-to-salesforce",
        "loyal-customers-to-google",
        "mailchimp-members-to-warehouse",
        "newsletter-to-mailchimp",
        "salesforce-won-opportunities",
        "signups-enriched-from-salesforce",
    ]
    jobs = [_job(name, "Pending", "WaitingForAuthorization") for name in waiting] + [
        _job("high-value-users-to-events-api", "Pending", "FirstRunScheduled"),
        _job("legacy-crm-backfill", "Running", "RunInProgress"),
        _job("lookalike-seed-to-facebook", "Paused", "PausedBySpec"),
        _job("signups-company-enrichment", "Sleeping", "BackingOff"),
    ]
    pods = [
        _pod("legacy-crm-backfill", 1, "Pending"),
        _pod("signups-company-enrichment", 1, "Failed"),
        _pod("signups-company-enrichment", 2, "Running"),
    ]
    return jobs, pods


def test_the_expectations_name_exactly_the_example_jobs() -> None:
    names = sorted(
        document["metadata"]["name"]
        for path in (REPO_ROOT / "examples" / "jobs").glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document and document["kind"] == "DestinationJob"
    )
    assert names == sorted(check.EXPECTED)
    assert len(names) == 11


def test_settled_examples_pass() -> None:
    jobs, pods = _settled()
    assert check.problems(jobs, pods, USER) == []


def test_a_wrong_phase_or_reason_is_named_with_the_jobs_message() -> None:
    jobs, pods = _settled()
    jobs[0] = _job("churn-risk-to-facebook", "Pending", "FirstRunScheduled")
    assert check.problems(jobs, pods, USER) == [
        "churn-risk-to-facebook: phase/reason Pending/FirstRunScheduled, "
        "expected Pending/WaitingForAuthorization (m)"
    ]


def test_a_missing_or_foreign_created_by_stamp_fails() -> None:
    jobs, pods = _settled()
    jobs[1] = _job("customers-to-salesforce", "Pending", "WaitingForAuthorization", created_by="someone")
    del jobs[2]["metadata"]["annotations"]
    assert check.problems(jobs, pods, USER) == [
        "customers-to-salesforce: created-by annotation 'someone' and status.createdBy 'someone', "
        "expected 'kubernetes-admin'",
        "loyal-customers-to-google: created-by annotation None and status.createdBy "
        "'kubernetes-admin', expected 'kubernetes-admin'",
    ]


def test_a_sync_pod_missing_in_the_wrong_phase_or_unexpected_fails() -> None:
    jobs, pods = _settled()
    pods = [
        _pod("legacy-crm-backfill", 1, "Running"),
        _pod("newsletter-to-mailchimp", 1, "Failed"),
    ]
    assert check.problems(jobs, pods, USER) == [
        "legacy-crm-backfill: sync pod legacy-crm-backfill-run-1 in phase 'Running', expected 'Pending' "
        "(pods: ['legacy-crm-backfill-run-1'])",
        "newsletter-to-mailchimp: expected no sync pod, found ['newsletter-to-mailchimp-run-1']",
        "signups-company-enrichment: sync pod signups-company-enrichment-run-1 in phase 'absent', "
        "expected 'Failed' (pods: none)",
    ]


def test_a_missing_job_and_an_unknown_job_fail() -> None:
    jobs, pods = _settled()
    jobs = [job for job in jobs if job["metadata"]["name"] != "legacy-crm-backfill"]
    jobs.append(_job("stray", "Pending", "FirstRunScheduled"))
    assert check.problems(jobs, pods, USER) == [
        "stray: a job the examples do not define",
        "legacy-crm-backfill: missing",
    ]


def test_the_command_line_needs_the_user_who_applied_the_examples() -> None:
    with pytest.raises(SystemExit) as exited:
        check.main([])
    assert exited.value.code == 2
