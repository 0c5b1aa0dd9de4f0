"""`spec.alerts` end to end: a job crossing each threshold shows the Warning Event, the Degraded
condition and the metric; the shipped rules and dashboard read only metrics the operator exports.

The real operator, the sandbox kubelet running the real worker, and the fake provider of the harness;
the metrics are scraped from the operator's own /metrics. Each test works in a namespace of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import JOBS, OperatorCluster
from tests.shipping.monitoring import metrics_used

HOURLY = {"every": "1h"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(cluster: OperatorCluster) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics", timeout=10)
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def series(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return {found: value for (sample, found), value in samples.items() if sample == name and wanted <= found}


def threshold_metric(cluster: OperatorCluster, namespace: str, threshold: str) -> float | None:
    found = series(
        scrape(cluster),
        "destinations_job_threshold_exceeded",
        namespace=namespace,
        job="export",
        threshold=threshold,
    )
    return next(iter(found.values()), None)


def degraded(status: dict[str, Any]) -> tuple[str, str] | None:
    for condition in status.get("conditions", []):
        if condition["type"] == "Degraded":
            return condition["status"], condition["reason"]
    return None


def threshold_events(cluster: OperatorCluster, namespace: str) -> list[dict[str, Any]]:
    return [event for event in cluster.events(namespace) if event["reason"] == "ThresholdExceeded"]


def expect_crossing(
    cluster: OperatorCluster, namespace: str, threshold: str, reason: str, message_part: str
) -> dict[str, Any]:
    """The Event, the condition and the metric of one crossing; returns the status."""
    status = cluster.wait_for(namespace, lambda s: degraded(s) == ("True", reason), f"Degraded {reason}")
    cluster.wait_for_events(namespace, "ThresholdExceeded")
    event = threshold_events(cluster, namespace)[0]
    assert event["type"] == "Warning"
    assert f"{threshold} exceeded" in event["message"]
    assert message_part in event["message"]
    assert event["involvedObject"]["name"] == "export"
    assert any(entry["event"] == "ThresholdExceeded" for entry in status["history"])
    wait_until(lambda: threshold_metric(cluster, namespace, threshold) == 1, message=f"{threshold} metric 1")
    return status


def test_rejected_records_over_max_rejected_percent(cluster: OperatorCluster) -> None:
    namespace = "alert-rejected"
    # Three records and a line that is not a JSON object: 1 of 4 records failed, 25%.
    cluster.provider.records[namespace] = [{"email": f"user{i}@example.com"} for i in range(3)] + [
        "not a record"
    ]  # type: ignore[list-item]
    cluster.setup(namespace, schedule=HOURLY, alerts={"maxRejectedPercent": 10})

    status = expect_crossing(
        cluster, namespace, "maxRejectedPercent", "MaxRejectedPercentExceeded", "25% (1 of 4 records)"
    )

    assert status["thresholdsExceeded"][0]["run"] == 1
    assert status["lastRun"]["records"]["failed"] == 1


def test_too_few_records_cross_min_records_and_a_full_run_clears_it(cluster: OperatorCluster) -> None:
    namespace = "alert-min-records"
    cluster.setup(namespace, schedule=HOURLY, alerts={"minRecords": 5})

    expect_crossing(
        cluster, namespace, "minRecords", "MinRecordsExceeded", "3 records read, threshold 5 records"
    )
    sleeping = cluster.wait_for_phase(namespace, "Sleeping")
    # kstatus reads Ready, Reconciling and Stalled only: Ready=True and neither abnormal-true condition
    # is Current, Degraded or not (https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md).
    conditions = {condition["type"]: condition["status"] for condition in sleeping["conditions"]}
    assert conditions == {"Ready": "True", "Degraded": "True"}

    cluster.provider.records[namespace] = [{"email": f"user{i}@example.com"} for i in range(8)]
    cluster.run_now(namespace)

    cleared = cluster.wait_for(
        namespace, lambda s: degraded(s) == ("False", "WithinThresholds"), "back in bounds"
    )
    assert cleared.get("thresholdsExceeded", []) == []
    wait_until(lambda: threshold_metric(cluster, namespace, "minRecords") == 0, message="minRecords metric 0")


def test_a_drop_against_the_previous_run_crosses_max_record_drop(cluster: OperatorCluster) -> None:
    namespace = "alert-drop"
    cluster.provider.records[namespace] = [{"email": f"user{i}@example.com"} for i in range(4)]
    cluster.setup(namespace, schedule=HOURLY, alerts={"maxRecordDrop": 50})
    first = cluster.wait_for(
        namespace, lambda s: (s.get("lastRun") or {}).get("result") == "succeeded", "run 1"
    )
    assert first["lastSuccessfulRead"] == 4
    assert degraded(first) == ("False", "WithinThresholds")

    cluster.provider.records[namespace] = [{"email": "user0@example.com"}]
    cluster.run_now(namespace)

    status = expect_crossing(
        cluster, namespace, "maxRecordDrop", "MaxRecordDropExceeded", "75% fewer records"
    )
    assert status["thresholdsExceeded"][0]["run"] == 2


def test_a_slow_run_crosses_max_run_duration_while_it_runs(cluster: OperatorCluster) -> None:
    namespace = "alert-slow"
    cluster.provider.hold(namespace)  # the run stays in flight until the crossing is seen
    cluster.setup(namespace, schedule=HOURLY, alerts={"maxRunDuration": "1s"})

    running = expect_crossing(cluster, namespace, "maxRunDuration", "MaxRunDurationExceeded", "running for")
    assert running["phase"] == "Running"
    cluster.provider.release(namespace)

    finished = cluster.wait_for(namespace, lambda s: s.get("phase") == "Sleeping", "the run finished")
    assert degraded(finished) == ("True", "MaxRunDurationExceeded")
    assert finished["thresholdsExceeded"][0]["value"].startswith("took ")
    assert len(threshold_events(cluster, namespace)) == 1  # one run, one Event


def test_no_success_for_a_while_crosses_no_success_for(cluster: OperatorCluster) -> None:
    namespace = "alert-no-success"
    cluster.provider.behaviours[namespace].mode = "fail"
    # One failed run, then a backoff longer than the test: the crossing comes from the clock alone.
    retry = {"initialBackoff": "1h", "maxBackoff": "1h", "failAfter": "10h"}
    cluster.setup(namespace, schedule=HOURLY, retry=retry, alerts={"noSuccessFor": "2s"})

    status = expect_crossing(
        cluster, namespace, "noSuccessFor", "NoSuccessForExceeded", "since the first error (never succeeded)"
    )

    assert status["consecutiveErrors"] == 1
    assert status["runs"] == {"total": 1, "succeeded": 0, "failed": 1}
    assert status["lastFailureTime"] == status["errorsSince"] == status["lastRun"]["finishedAt"]


def test_a_deleted_jobs_series_disappear(cluster: OperatorCluster) -> None:
    namespace = "alert-deleted"
    cluster.setup(namespace, schedule=HOURLY, alerts={"minRecords": 5})
    cluster.wait_for(namespace, lambda s: s.get("lastRun"), "a finished run")
    wait_until(
        lambda: series(scrape(cluster), "destinations_job_phase", namespace=namespace), message="series"
    )
    assert len(series(scrape(cluster), "destinations_job_phase", namespace=namespace)) == 6

    response = cluster.api.delete(f"{JOBS.format(namespace=namespace)}/export")
    assert response.status_code == 200, response.text

    def gone() -> bool:
        return not [
            name
            for name, labels in scrape(cluster)
            if name.startswith("destinations_job_") and dict(labels).get("namespace") == namespace
        ]

    wait_until(gone, message=f"no per-job series of namespace {namespace}")
    # The namespace's Authorization is still there, and so is its health.
    assert len(series(scrape(cluster), "destinations_authorization_health", namespace=namespace)) == 3


def test_every_metric_a_rule_or_panel_uses_is_exported(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("alert-scrape")
    cluster.secret(namespace)
    cluster.authorization(namespace)
    cluster.job(namespace, "good", schedule=HOURLY, alerts={"minRecords": 1})
    failing = cluster.namespace("alert-scrape-failing")
    cluster.secret(failing)
    cluster.authorization(failing)
    cluster.provider.behaviours[failing].mode = "fail"
    cluster.job(failing, "bad", schedule=HOURLY)
    finished: Callable[[dict[str, Any]], Any] = lambda s: s.get("lastRun")  # noqa: E731
    cluster.wait_for(namespace, finished, "a finished run", name="good")
    cluster.wait_for(failing, finished, "a finished run", name="bad")

    exported = {name for name, _ in scrape(cluster)}
    used = metrics_used()

    assert {name for name in used if name not in exported} == set(), {
        name: sorted(places) for name, places in used.items() if name not in exported
    }
    assert len(used) >= 10  # the rules and dashboard read the per-job, aggregate and health families
