"""A restarted operator adopts the runs in flight: never a second pod for a run, never a lost result.

This module has its own sandbox and operator (the `cluster` fixture is per module): its tests kill it.
"""

from __future__ import annotations

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import OperatorCluster


def _pod_creations(cluster: OperatorCluster, namespace: str) -> int:
    return sum(
        1
        for record in cluster.operator_requests(namespace)
        if record.verb == "create" and record.resource == "pods" and record.code < 300
    )


def _pod_phase(cluster: OperatorCluster, namespace: str, name: str) -> str:
    phases = [
        pod["status"].get("phase", "") for pod in cluster.pods(namespace) if pod["metadata"]["name"] == name
    ]
    return phases[0] if phases else ""


def test_operator_killed_mid_run_records_the_result_after_restart_without_a_second_pod(
    cluster: OperatorCluster,
) -> None:
    cluster.provider.hold("killed")
    namespace = cluster.setup("killed", schedule={"every": "1h"})
    running = cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    pod = running["currentRun"]["pod"]
    cluster.provider.wait_held(namespace)

    cluster.operator.kill()
    assert _pod_phase(cluster, namespace, pod) == "Running"  # the premise: killed mid-run
    cluster.provider.release(namespace)
    wait_until(
        lambda: _pod_phase(cluster, namespace, pod) == "Succeeded", timeout=30, message="the pod to finish"
    )
    assert cluster.status(namespace)["currentRun"]["number"] == 1  # nobody recorded it meanwhile
    cluster.operator.start()

    status = cluster.wait_for(
        namespace,
        lambda s: (s.get("lastRun") or {}).get("result") == "succeeded",
        "the result to be recorded",
    )
    assert status["lastRun"]["number"] == 1
    assert status["lastRun"]["records"]["added"] == 3
    assert status["runs"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert _pod_creations(cluster, namespace) == 1
    assert [p["metadata"]["name"] for p in cluster.pods(namespace)] == [pod]


def test_operator_restarted_while_the_pod_runs_adopts_the_run(cluster: OperatorCluster) -> None:
    cluster.provider.hold("adopted")
    namespace = cluster.setup("adopted", schedule={"every": "1h"})
    running = cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    pod = running["currentRun"]["pod"]
    cluster.provider.wait_held(namespace)

    cluster.operator.kill()
    cluster.operator.start()
    cluster.operator.wait_ready(timeout=40)
    # The premise: the restarted operator found the pod still running (the records are held).
    assert _pod_phase(cluster, namespace, pod) == "Running"
    assert cluster.status(namespace)["currentRun"] == running["currentRun"]
    cluster.provider.release(namespace)

    status = cluster.wait_for(
        namespace,
        lambda s: (s.get("lastRun") or {}).get("result") == "succeeded",
        "the result to be recorded",
    )
    assert status["lastRun"]["number"] == 1
    assert status["runs"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert _pod_creations(cluster, namespace) == 1
    assert [p["metadata"]["name"] for p in cluster.pods(namespace)] == [pod]


def test_operator_killed_between_the_pod_and_the_status_write_adopts_the_pod_and_records_the_run(
    cluster: OperatorCluster,
) -> None:
    """Pods come first (issue 18): a run's pod is created, then its status written, then its Event
    posted. A crash after the pod and before the rest leaves a job whose status knows no run and a pod
    that exists: the restarted operator decides the same run, meets 409 on the create and adopts it."""
    cluster.provider.hold("early-pod")
    namespace = cluster.setup("early-pod", schedule={"every": "1h"})
    cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    cluster.provider.wait_held(namespace)
    cluster.wait_for_events(namespace, "Started")
    writes = [
        (record.verb, record.resource, record.subresource)
        for record in cluster.operator_requests(namespace)
        if record.verb in WRITES and record.resource in ("pods", "destinationjobs", "events")
    ]
    # (Before the pod, a status Pending may have been written while the Authorization was checked.)
    assert writes[writes.index(("create", "pods", "")) :] == [
        ("create", "pods", ""),  # the pod first,
        ("patch", "destinationjobs", "status"),  # then the status (Running),
        ("create", "events", ""),  # then the Started Event
    ]

    cluster.operator.kill()
    # Back to the moment after the pod creation: no status written, no Event posted.
    jobs = f"/apis/destinations.dev/v1/namespaces/{namespace}/destinationjobs"
    cleared = cluster.api.patch(f"{jobs}/export/status", {"status": None})
    assert cleared.status_code == 200, cleared.text
    assert cluster.status(namespace) == {}
    for event in cluster.events(namespace):
        deleted = cluster.api.delete(f"/api/v1/namespaces/{namespace}/events/{event['metadata']['name']}")
        assert deleted.status_code == 200, deleted.text
    assert _pod_phase(cluster, namespace, "export-run-1") == "Running"  # the premise: the pod runs
    cluster.operator.start()

    running = cluster.wait_for(namespace, lambda s: s.get("currentRun"), "the adopted run in flight")
    assert running["currentRun"]["number"] == 1
    assert running["currentRun"]["pod"] == "export-run-1"
    cluster.provider.release(namespace)
    status = cluster.wait_for(
        namespace,
        lambda s: (s.get("lastRun") or {}).get("result") == "succeeded",
        "the result to be recorded",
    )
    assert status["runs"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert [entry["event"] for entry in status["history"]] == ["Started", "Synced"]
    assert sorted(cluster.wait_for_events(namespace, "Started", "Synced")) == ["Started", "Synced"]
    creations = [
        record.code
        for record in cluster.operator_requests(namespace)
        if record.verb == "create" and record.resource == "pods"
    ]
    assert creations == [201, 409]  # created once; the restarted operator's create met it
    assert [p["metadata"]["name"] for p in cluster.pods(namespace)] == ["export-run-1"]


WRITES = frozenset({"create", "update", "patch", "delete"})
