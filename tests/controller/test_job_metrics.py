"""Per-job gauges: labels, values, the documented series bound, deleted jobs and the off switch."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from destinations.api.models import DestinationJobStatus
from destinations.controller.job_metrics import (
    AuthorizationSample,
    JobMetricsCollector,
    JobSample,
    job_sample,
)
from destinations.controller.settings import add_arguments, settings_from

LABELS = {"namespace": "marketing", "job": "vip-export", "provider": "webhook", "type": "export"}

STATUS = DestinationJobStatus.model_validate(
    {
        "phase": "Sleeping",
        "consecutiveErrors": 2,
        "lastRun": {
            "number": 7,
            "result": "failed",
            "startedAt": "2026-01-05T09:00:00Z",
            "finishedAt": "2026-01-05T09:02:30Z",
            "records": {"read": 120, "added": 100, "omitted": 15, "failed": 5},
        },
        "lastSuccessfulTime": "2026-01-05T08:00:00Z",
        "lastFailureTime": "2026-01-05T09:02:30Z",
        "thresholdsExceeded": [
            {
                "threshold": "maxRejectedPercent",
                "value": "16%",
                "limit": "10%",
                "run": 6,
                "since": "2026-01-05T08:00:00Z",
            }
        ],
    }
)
SPEC = {
    "provider": "webhook",
    "type": "export",
    "alerts": {"maxRejectedPercent": 10, "minRecords": 5, "maxRunDuration": None},
}


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


PER_JOB = "destinations_job_"


def scrape(
    jobs: Sequence[JobSample], authorizations: Sequence[AuthorizationSample] = (), **options: bool
) -> Samples:
    registry = CollectorRegistry()
    registry.register(JobMetricsCollector(lambda: jobs, lambda: authorizations, **options))
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def series(samples: Samples, name: str, **labels: str) -> float:
    return float(samples[(name, tuple(sorted({**LABELS, **labels}.items())))])


def test_every_per_job_family_carries_the_status_values() -> None:
    samples = scrape([job_sample("marketing", "vip-export", SPEC, STATUS)])

    assert series(samples, "destinations_job_phase", phase="Sleeping") == 1
    assert series(samples, "destinations_job_phase", phase="Failed") == 0
    assert series(samples, "destinations_job_last_run_records", operation="read") == 120
    assert series(samples, "destinations_job_last_run_records", operation="omitted") == 15
    assert series(samples, "destinations_job_last_run_records", operation="removed") == 0
    assert series(samples, "destinations_job_last_run_duration_seconds") == 150
    # 2026-01-05T08:00:00Z and 09:02:30Z as Unix time.
    assert series(samples, "destinations_job_last_success_timestamp_seconds") == 1767600000
    assert series(samples, "destinations_job_last_failure_timestamp_seconds") == 1767603750
    assert series(samples, "destinations_job_consecutive_errors") == 2
    assert series(samples, "destinations_job_threshold_exceeded", threshold="maxRejectedPercent") == 1
    assert series(samples, "destinations_job_threshold_exceeded", threshold="minRecords") == 0


def test_the_aggregate_counts_jobs_crossing_each_threshold() -> None:
    other = STATUS.model_copy(update={"thresholds_exceeded": []})
    samples = scrape(
        [
            job_sample("marketing", "vip-export", SPEC, STATUS),
            job_sample("sales", "crm", SPEC, STATUS),
            job_sample("sales", "quiet", SPEC, other),
        ]
    )
    counts = {
        dict(labels)["threshold"]: value
        for (name, labels), value in samples.items()
        if name == "destinations_jobs_threshold_exceeded"
    }
    assert counts == {
        "maxRejectedPercent": 2,
        "minRecords": 0,
        "maxRecordDrop": 0,
        "maxRunDuration": 0,
        "noSuccessFor": 0,
    }


def test_without_per_job_metrics_the_aggregate_reads_the_crossings_not_a_sample_per_job() -> None:
    """At 10,000 jobs a scrape must not build (or parse the status of) a sample per job (issue 18)."""

    def no_samples() -> list[JobSample]:
        raise AssertionError("no sample per job is built without per-job metrics")

    registry = CollectorRegistry()
    crossed = ["maxRejectedPercent", "noSuccessFor", "maxRejectedPercent"]
    registry.register(JobMetricsCollector(no_samples, list, per_job=False, crossed=lambda: crossed))
    counts = {
        sample.labels["threshold"]: sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if sample.name == "destinations_jobs_threshold_exceeded"
    }
    assert counts == {
        "maxRejectedPercent": 2,
        "minRecords": 0,
        "maxRecordDrop": 0,
        "maxRunDuration": 0,
        "noSuccessFor": 1,
    }


def test_a_job_has_at_most_21_series_and_one_per_threshold_set() -> None:
    every_threshold = {
        "maxRejectedPercent": 1,
        "minRecords": 1,
        "maxRecordDrop": 1,
        "maxRunDuration": "1m",
        "noSuccessFor": "1h",
    }
    full = scrape([job_sample("marketing", "vip-export", {**SPEC, "alerts": every_threshold}, STATUS)])
    without_alerts = scrape([job_sample("marketing", "vip-export", {"provider": "webhook"}, STATUS)])
    new_job = scrape([job_sample("marketing", "vip-export", {}, DestinationJobStatus(phase="Pending"))])

    def per_job(samples: Samples) -> int:
        return sum(1 for name, _ in samples if name.startswith(PER_JOB))

    assert per_job(full) == 21
    assert per_job(without_alerts) == 16
    assert per_job(new_job) == 7  # six phases and the error count, until a run finishes


def test_a_job_gone_from_the_operator_leaves_no_series() -> None:
    jobs = [job_sample("marketing", "vip-export", SPEC, STATUS), job_sample("sales", "crm", SPEC, STATUS)]
    registry_jobs = list(jobs)
    registry = CollectorRegistry()
    registry.register(JobMetricsCollector(lambda: registry_jobs, lambda: []))
    assert 'job="crm"' in generate_latest(registry).decode()

    registry_jobs.pop()

    assert 'job="crm"' not in generate_latest(registry).decode()
    assert 'job="vip-export"' in generate_latest(registry).decode()


def test_per_job_metrics_off_keeps_only_the_aggregates() -> None:
    samples = scrape(
        [job_sample("marketing", "vip-export", SPEC, STATUS)],
        [AuthorizationSample("marketing", "hook", "webhook", "Unhealthy")],
        per_job=False,
    )

    assert {name for name, _ in samples} == {
        "destinations_authorization_health",
        "destinations_jobs_threshold_exceeded",
    }
    health = {
        dict(labels)["health"]: value
        for (name, labels), value in samples.items()
        if name == "destinations_authorization_health"
    }
    assert health == {"Healthy": 0, "Unhealthy": 1, "Unknown": 0}


@pytest.mark.parametrize(
    ("argv", "environment", "expected"),
    [
        ([], {}, True),
        (["--no-per-job-metrics"], {}, False),
        ([], {"DESTINATIONS_PER_JOB_METRICS": "false"}, False),
        (["--per-job-metrics"], {"DESTINATIONS_PER_JOB_METRICS": "false"}, True),
    ],
)
def test_the_per_job_switch_reads_the_flag_then_the_environment(
    argv: list[str], environment: dict[str, str], expected: bool
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert settings_from(parser.parse_args(argv), environment).per_job_metrics is expected


def test_a_bad_per_job_switch_value_is_refused_naming_it() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ValueError, match="per-job-metrics: 'maybe' is not a boolean; expected one of 0, 1"):
        settings_from(parser.parse_args([]), {"DESTINATIONS_PER_JOB_METRICS": "maybe"})
