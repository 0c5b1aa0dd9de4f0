"""Per-job and per-Authorization gauges, computed at scrape time from what the operator holds.

Every family is labelled `namespace`, `job`, `provider`, `type` (the DestinationJob's own namespace and
name: scrape with `honor_labels: true`, as for kube-state-metrics, so they are not renamed
`exported_namespace`/`exported_job`). The series are made from the jobs the operator holds when
Prometheus scrapes, so a deleted job's series vanish with it, and none outlives its job.

Cardinality is bounded by the number of jobs; per job at most 21 series (docs/operator.md#metrics):

| family | series per job |
|---|---|
| `destinations_job_phase` (label `phase`, 1 for the current one) | 6 |
| `destinations_job_last_run_records` (label `operation`) | 6, once a run finished |
| `destinations_job_last_run_duration_seconds` | 1, once a run finished |
| `destinations_job_last_success_timestamp_seconds` | 1, once a run succeeded |
| `destinations_job_last_failure_timestamp_seconds` | 1, once a run failed |
| `destinations_job_consecutive_errors` | 1 |
| `destinations_job_threshold_exceeded` (label `threshold`) | 1 per threshold set in `spec.alerts`, up to 5 |

`destinations_authorization_health` (labels `namespace`, `authorization`, `provider`, `health`) has
3 series per Authorization, and the aggregate `destinations_jobs_threshold_exceeded` (label
`threshold`, 5 series) counts the jobs crossing each threshold. `--no-per-job-metrics` turns the
per-job families off for very large installations; the aggregates stay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from destinations.api.models import DestinationJobStatus, Health, Phase
from destinations.lifecycle import parse_time
from destinations.lifecycle.thresholds import THRESHOLDS

if TYPE_CHECKING:
    from destinations.controller.authorizations import AuthorizationController
    from destinations.controller.jobs import JobController

JOB_LABELS = ["namespace", "job", "provider", "type"]
RECORD_OPERATIONS = ("read", "added", "updated", "removed", "omitted", "failed")
SERIES_PER_JOB_AT_MOST = len(Phase) + len(RECORD_OPERATIONS) + 4 + len(THRESHOLDS)
"""21: the documented bound (docs/operator.md#metrics)."""


@dataclass(frozen=True)
class JobSample:
    """One job as the per-job families see it."""

    namespace: str
    job: str
    provider: str
    type: str
    read_status: Callable[[], DestinationJobStatus]
    """The job's status, read only for the per-job families: a sleeping job keeps it as JSON text,
    and parsing 10,000 of them at every scrape would cost a second of the operator's CPU."""
    thresholds: tuple[str, ...]
    """The `spec.alerts` thresholds set, spelled as in YAML."""
    crossed: tuple[str, ...]
    """The thresholds the job crosses now (`status.thresholdsExceeded`)."""

    @property
    def status(self) -> DestinationJobStatus:
        return self.read_status()


@dataclass(frozen=True)
class AuthorizationSample:
    namespace: str
    authorization: str
    provider: str
    health: str


def job_sample(
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    status: DestinationJobStatus | Callable[[], DestinationJobStatus],
    crossed: Iterable[str] | None = None,
) -> JobSample:
    """A sample from the job's raw spec (it may not validate: unknown values become "").

    `status` is the status or a function reading it; `crossed` the thresholds crossed now (read from
    the status when not given).
    """
    alerts = spec.get("alerts")
    thresholds = (
        tuple(name for name in THRESHOLDS if alerts.get(name) is not None)
        if isinstance(alerts, Mapping)
        else ()
    )
    if isinstance(status, DestinationJobStatus):
        model = status
        read_status: Callable[[], DestinationJobStatus] = lambda: model  # noqa: E731
    else:
        read_status = status
    if crossed is None:
        crossed = (crossing.threshold for crossing in read_status().thresholds_exceeded)
    return JobSample(
        namespace=namespace,
        job=name,
        provider=_text(spec.get("provider")),
        type=_text(spec.get("type")),
        read_status=read_status,
        thresholds=thresholds,
        crossed=tuple(crossed),
    )


def samples_of(jobs: JobController) -> list[JobSample]:
    """Every job the controller runs (read from the metrics thread: a snapshot of the runners)."""
    return [
        job_sample(
            runner.view.namespace, runner.view.name, runner.view.spec, runner.status_snapshot, runner.crossed
        )
        for runner in list(jobs.runners.values())
    ]


def authorization_samples_of(authorizations: AuthorizationController) -> list[AuthorizationSample]:
    return [
        AuthorizationSample(
            entry.namespace, entry.name, _text(entry.spec.get("provider")), entry.status.health.value
        )
        for entry in list(authorizations.entries.values())
        if not entry.deleting
    ]


class JobMetricsCollector(Collector):
    """The per-job families (unless `per_job` is False) and the Authorization health family."""

    def __init__(
        self,
        jobs: Callable[[], Iterable[JobSample]],
        authorizations: Callable[[], Iterable[AuthorizationSample]],
        *,
        per_job: bool = True,
        crossed: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        """`crossed` gives each threshold each job crosses now, for the aggregate family without a
        sample per job (read from the jobs' samples when not given)."""
        self._jobs = jobs
        self._authorizations = authorizations
        self._crossed = crossed
        self.per_job = per_job

    def collect(self) -> Iterable[GaugeMetricFamily]:
        samples = list(self._jobs()) if self.per_job or self._crossed is None else []
        if self.per_job:
            yield from self._job_families(samples)
        crossing = GaugeMetricFamily(
            "destinations_jobs_threshold_exceeded",
            "DestinationJobs crossing each spec.alerts threshold now",
            labels=["threshold"],
        )
        if self._crossed is not None:
            counts = Counter(self._crossed())
        else:
            counts = Counter(threshold for sample in samples for threshold in sample.crossed)
        for threshold in THRESHOLDS:
            crossing.add_metric([threshold], counts.get(threshold, 0))
        yield crossing
        health = GaugeMetricFamily(
            "destinations_authorization_health",
            "Health of each Authorization's credentials: 1 for its current health, 0 for the others",
            labels=["namespace", "authorization", "provider", "health"],
        )
        for sample in self._authorizations():
            for value in Health:
                health.add_metric(
                    [sample.namespace, sample.authorization, sample.provider, value.value],
                    1 if sample.health == value.value else 0,
                )
        yield health

    def _job_families(self, samples: list[JobSample]) -> Iterable[GaugeMetricFamily]:
        phase = _family("phase", "The job's phase: 1 for the current one, 0 for the others", ["phase"])
        records = _family(
            "last_run_records", "Records handled by the job's last finished run, by operation", ["operation"]
        )
        duration = _family("last_run_duration_seconds", "How long the job's last finished run took")
        last_success = _family(
            "last_success_timestamp_seconds", "When the job's last successful run finished (Unix time)"
        )
        last_failure = _family(
            "last_failure_timestamp_seconds", "When the job's last failed run finished (Unix time)"
        )
        errors = _family("consecutive_errors", "Failed runs in a row since the last success")
        exceeded = _family(
            "threshold_exceeded",
            "1 while the job crosses this spec.alerts threshold, 0 while within bounds",
            ["threshold"],
        )
        for sample in samples:
            labels = [sample.namespace, sample.job, sample.provider, sample.type]
            status = sample.status
            current = status.phase.value if status.phase is not None else None
            for value in Phase:
                phase.add_metric([*labels, value.value], 1 if current == value.value else 0)
            last = status.last_run
            if last is not None:
                counts = last.records.model_dump()
                for operation in RECORD_OPERATIONS:
                    records.add_metric([*labels, operation], counts.get(operation, 0))
                if last.started_at:
                    took = parse_time(last.finished_at) - parse_time(last.started_at)
                    duration.add_metric(labels, max(took.total_seconds(), 0.0))
            if status.last_successful_time:
                last_success.add_metric(labels, parse_time(status.last_successful_time).timestamp())
            if status.last_failure_time:
                last_failure.add_metric(labels, parse_time(status.last_failure_time).timestamp())
            errors.add_metric(labels, status.consecutive_errors)
            crossed = {crossing.threshold for crossing in status.thresholds_exceeded}
            for threshold in sample.thresholds:
                exceeded.add_metric([*labels, threshold], 1 if threshold in crossed else 0)
        yield from (phase, records, duration, last_success, last_failure, errors, exceeded)


def _family(name: str, documentation: str, extra_labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        f"destinations_job_{name}", documentation, labels=[*JOB_LABELS, *(extra_labels or [])]
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
