"""A job's life end to end: the real operator, the sandbox kubelet running the real worker, and a local
HTTP endpoint standing in for the provider. Each test works in a namespace of its own."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import AUTHORIZATIONS, JOBS, OperatorCluster


def _last_result(status: dict[str, Any]) -> str | None:
    return (status.get("lastRun") or {}).get("result")


def _failing_retry() -> dict[str, str]:
    """Exactly two runs before Failed: the first error starts the 1s budget; the retry, 1s later, ends
    at least 1s after it (failAfter is reached), whatever the machine's speed."""
    return {"initialBackoff": "1s", "maxBackoff": "1s", "failAfter": "1s"}


def test_happy_path_delivers_records_and_sleeps_until_the_next_run(cluster: OperatorCluster) -> None:
    # An hour between runs: the job must be seen Sleeping however long a run takes on a loaded machine.
    namespace = cluster.setup("happy", schedule={"every": "1h"})

    status = cluster.wait_for(namespace, lambda s: _last_result(s) == "succeeded", "a successful run")

    assert [row["email"] for row in cluster.provider.received[namespace][:3]] == [
        "user0@example.com",
        "user1@example.com",
        "user2@example.com",
    ]
    assert status["lastRun"]["records"]["read"] == 3
    assert status["lastRun"]["records"]["added"] == 3
    sleeping = cluster.wait_for_phase(namespace, "Sleeping")
    assert sleeping["nextRunAt"]
    cluster.wait_for_events(namespace, "Synced")
    synced = [event for event in cluster.events(namespace) if event["reason"] == "Synced"]
    assert "3 read, 3 added" in synced[0]["message"]
    assert any(entry["event"] == "Synced" for entry in sleeping["history"])


def test_created_by_annotation_is_copied_into_the_status(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("author")
    cluster.secret(namespace)
    cluster.authorization(namespace)
    manifest = cluster.job_manifest(namespace, schedule={"every": "1h"})
    manifest["metadata"]["annotations"] = {"destinations.dev/created-by": "alice@example.com"}
    cluster.create(JOBS.format(namespace=namespace), manifest)

    status = cluster.wait_for(namespace, lambda s: s.get("createdBy"), "createdBy")

    assert status["createdBy"] == "alice@example.com"


def test_failing_runs_back_off_into_failed_and_run_now_resumes_the_job(cluster: OperatorCluster) -> None:
    namespace = "failing"
    cluster.provider.behaviours[namespace].mode = "fail"
    cluster.setup(namespace, retry=_failing_retry())

    failed = cluster.wait_for_phase(namespace, "Failed")
    assert failed["consecutiveErrors"] == 2
    assert failed["runs"] == {"total": 2, "succeeded": 0, "failed": 2}
    assert failed["reason"] == "RetriesExhausted"
    assert "Stalled" in [condition["type"] for condition in failed["conditions"]]
    cluster.wait_for_events(namespace, "Error", "Failed")

    cluster.provider.behaviours[namespace].mode = "ok"
    requested = cluster.run_now(namespace)
    resumed = cluster.wait_for(namespace, lambda s: _last_result(s) == "succeeded", "a successful run")
    assert resumed["lastHandledRequestAt"] == requested
    assert resumed["consecutiveErrors"] == 0
    cluster.wait_for_events(namespace, "Resumed")


def test_rate_limited_run_sleeps_until_retry_after_without_counting_an_error(
    cluster: OperatorCluster,
) -> None:
    namespace = "limited"
    cluster.provider.behaviours[namespace].mode = "ratelimit"
    cluster.setup(namespace)

    status = cluster.wait_for(namespace, lambda s: _last_result(s) == "rate_limited", "a rate-limited run")

    assert status["phase"] == "Sleeping"
    assert status["reason"] == "RateLimited"
    assert status["consecutiveErrors"] == 0
    assert status["runs"]["failed"] == 0
    assert status["nextRunAt"] >= status["lastRun"]["finishedAt"]
    cluster.wait_for_events(namespace, "Sleeping")
    assert "Error" not in cluster.event_reasons(namespace)


def test_once_job_completes_and_is_purged_with_its_pods(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("once", schedule={"once": True}, purgeAfter="3s")

    cluster.wait_for_phase(namespace, "Completed")
    cluster.wait_for_events(namespace, "Completed")

    wait_until(lambda: cluster.get_job(namespace) is None, timeout=30, message="the purge")
    wait_until(lambda: not cluster.pods(namespace), timeout=30, message="its pods to go")


def test_pause_and_resume(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("pausing")
    cluster.wait_for(namespace, lambda s: _last_result(s) == "succeeded", "a first run")

    cluster.patch_job(namespace, {"spec": {"paused": True}})
    paused = cluster.wait_for_phase(namespace, "Paused")
    runs = paused["runs"]["total"]
    cluster.wait_for_events(namespace, "Paused")

    cluster.patch_job(namespace, {"spec": {"paused": False}})
    cluster.wait_for(namespace, lambda s: s["runs"]["total"] > runs, "a run after resuming")
    cluster.wait_for_events(namespace, "Resumed")


def test_spec_change_resumes_a_failed_job(cluster: OperatorCluster) -> None:
    namespace = "respec"
    cluster.provider.behaviours[namespace].mode = "fail"
    cluster.setup(namespace, retry=_failing_retry())
    cluster.wait_for_phase(namespace, "Failed")

    cluster.provider.behaviours[namespace].mode = "ok"
    cluster.patch_job(namespace, {"spec": {"displayName": "Fixed export"}})

    status = cluster.wait_for(namespace, lambda s: _last_result(s) == "succeeded", "a successful run")
    assert status["consecutiveErrors"] == 0
    assert status["observedGeneration"] == 2


def test_deleting_a_job_mid_run_deletes_its_pod(cluster: OperatorCluster) -> None:
    cluster.provider.hold("deleting")
    namespace = cluster.setup("deleting")
    cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    cluster.provider.wait_held(namespace)

    assert cluster.api.delete(f"{JOBS.format(namespace=namespace)}/export").status_code == 200

    wait_until(lambda: cluster.get_job(namespace) is None, timeout=20, message="the job to go")
    wait_until(lambda: not cluster.pods(namespace), timeout=30, message="its pod to go")
    cluster.provider.release(namespace)


def test_pod_deleted_mid_run_is_an_error(cluster: OperatorCluster) -> None:
    cluster.provider.hold("lostpod")
    namespace = cluster.setup("lostpod", retry={"initialBackoff": "1h"})
    running = cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    cluster.provider.wait_held(namespace)

    pod = running["currentRun"]["pod"]
    assert cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/{pod}").status_code == 200

    status = cluster.wait_for(namespace, lambda s: _last_result(s) == "failed", "the run to fail", timeout=45)
    assert status["phase"] == "Sleeping"
    assert status["reason"] == "BackingOff"
    assert status["consecutiveErrors"] == 1
    cluster.wait_for_events(namespace, "Error")
    cluster.provider.release(namespace)


def test_evicted_pod_mid_run_is_an_error(cluster: OperatorCluster) -> None:
    cluster.provider.hold("evicted")
    namespace = cluster.setup("evicted", retry={"initialBackoff": "1h"})
    running = cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    cluster.provider.wait_held(namespace)

    cluster.sandbox.evict_pod(namespace, running["currentRun"]["pod"])

    status = cluster.wait_for(namespace, lambda s: _last_result(s) == "failed", "the run to fail")
    assert "evicted" in status["lastRun"]["message"]
    assert status["consecutiveErrors"] == 1
    cluster.provider.release(namespace)


def test_job_created_before_its_authorization_waits_then_runs(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("early")
    cluster.secret(namespace)
    cluster.job(namespace)
    waiting = cluster.wait_for(
        namespace, lambda s: s.get("reason") == "WaitingForAuthorization", "the job to wait"
    )
    assert waiting["phase"] == "Pending"
    assert "hook" in waiting["message"]
    assert not cluster.pods(namespace)

    cluster.authorization(namespace)

    cluster.wait_for(namespace, lambda s: _last_result(s) == "succeeded", "a successful run")


def test_unhealthy_authorization_names_the_missing_secret(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("nosecret")
    cluster.authorization(namespace, secret="missing")

    def health() -> dict[str, Any]:
        body = cluster.api.get(f"{AUTHORIZATIONS.format(namespace=namespace)}/hook").json()
        status: dict[str, Any] = body.get("status") or {}
        return status if status.get("health") == "Unhealthy" else {}

    status = wait_until(health, timeout=20, message="the Authorization to be Unhealthy")
    assert "'missing'" in status["message"]
    assert status["conditions"][0]["type"] == "Ready"
    assert status["conditions"][0]["status"] == "False"


def test_authorization_turns_healthy_when_its_secret_appears(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("latesecret")
    cluster.authorization(namespace)
    path = f"{AUTHORIZATIONS.format(namespace=namespace)}/hook"

    def health() -> str:
        return str((cluster.api.get(path).json().get("status") or {}).get("health"))

    wait_until(lambda: health() == "Unhealthy", timeout=20, message="Unhealthy without its Secret")

    cluster.secret(namespace)

    wait_until(lambda: health() == "Healthy", timeout=20, message="Healthy once the Secret exists")


def test_authorization_deletion_is_held_while_a_job_uses_it(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("guarded", schedule={"every": "1h"})
    cluster.wait_for_phase(namespace, "Sleeping")
    path = f"{AUTHORIZATIONS.format(namespace=namespace)}/hook"
    wait_until(lambda: cluster.api.get(path).json().get("status", {}).get("usedBy") == 1, message="usedBy 1")

    assert cluster.api.delete(path).status_code == 200

    def held_message() -> str:
        body = cluster.api.get(path).json()
        message: str = (body.get("status") or {}).get("message") or ""
        return message if "deletion is held" in message else ""

    assert "export" in wait_until(held_message, timeout=20, message="the deletion to be held")
    assert cluster.api.get(path).status_code == 200

    assert cluster.api.delete(f"{JOBS.format(namespace=namespace)}/export").status_code == 200
    wait_until(
        lambda: cluster.api.get(path).status_code == 404, timeout=20, message="the Authorization to go"
    )


def test_history_limits_prune_finished_pods(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("history", schedule={"every": "1s"}, history={"succeeded": 1, "failed": 1})

    cluster.wait_for(
        namespace, lambda s: s.get("runs", {}).get("succeeded", 0) >= 4, "four successful runs", timeout=60
    )

    def kept() -> list[str]:
        return [
            pod["metadata"]["name"]
            for pod in cluster.pods(namespace)
            if pod["status"].get("phase") == "Succeeded" and not pod["metadata"].get("deletionTimestamp")
        ]

    wait_until(lambda: len(kept()) <= 1, timeout=20, message="at most one succeeded pod kept")


def test_invalid_spec_is_stalled_with_a_message_naming_the_field_and_no_pod(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("invalid")
    cluster.secret(namespace)
    cluster.authorization(namespace)
    cluster.job(namespace, provider="nosuch")

    status = cluster.wait_for(namespace, lambda s: s.get("reason") == "InvalidSpec", "the spec to be refused")

    assert status["phase"] == "Failed"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert "spec.provider" in stalled["message"]
    assert "nosuch" in stalled["message"]
    assert not cluster.pods(namespace)


def test_run_now_on_an_invalid_job_is_acknowledged_but_starts_nothing(cluster: OperatorCluster) -> None:
    namespace = cluster.namespace("invalid-run-now")
    cluster.secret(namespace)
    cluster.authorization(namespace)
    cluster.job(namespace, provider="nosuch")
    cluster.wait_for(namespace, lambda s: s.get("reason") == "InvalidSpec", "the spec to be refused")

    requested = cluster.run_now(namespace)

    status = cluster.wait_for(namespace, lambda s: s.get("lastHandledRequestAt") == requested, "the echo")
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidSpec")
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert "spec.provider" in stalled["message"]
    assert not cluster.pods(namespace)


def test_metrics_and_liveness_endpoints(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("metrics")
    cluster.wait_for(namespace, lambda s: _last_result(s) == "succeeded", "a successful run")

    def scraped() -> str:
        text = httpx.get(f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics").text
        return (
            text
            if 'destinations_runs_total{provider="webhook",result="succeeded",type="export"}' in text
            else ""
        )

    text = wait_until(scraped, timeout=10, message="the run in the metrics")
    assert 'destinations_jobs{phase="Sleeping"}' in text or 'destinations_jobs{phase="Running"}' in text
    assert "destinations_run_duration_seconds_bucket" in text
    assert 'destinations_records_total{operation="added",provider="webhook",type="export"}' in text
    health = httpx.get(f"http://127.0.0.1:{cluster.operator.liveness_port}/healthz")
    assert health.status_code == 200
