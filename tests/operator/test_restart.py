"""A restarted operator adopts the runs in flight: never a second pod for a run, never a lost result.

This module has its own sandbox and operator (the `cluster` fixture is per module): its tests kill it.
"""

from __future__ import annotations

import httpx

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


def _wait_for_the_operator(cluster: OperatorCluster) -> None:
    """Until the (restarted) operator answers its liveness probe: it is up and watching."""

    def answers() -> bool:
        try:
            url = f"http://127.0.0.1:{cluster.operator.liveness_port}/healthz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=40, message="the restarted operator's /healthz")


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
    _wait_for_the_operator(cluster)
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
