"""A dry run whose pod ends while the operator is down is recorded after the restart, once, and its pod
is deleted; no second dry-run pod is made. Own module: the `cluster` fixture is per module and this
test kills the operator."""

from __future__ import annotations

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import OperatorCluster


def _dry_run_pods(cluster: OperatorCluster, namespace: str) -> list[dict[str, object]]:
    return [
        pod
        for pod in cluster.pods(namespace)
        if (pod["metadata"].get("labels") or {}).get("destinations.dev/dry-run") == "true"
    ]


def _pod_creations(cluster: OperatorCluster, namespace: str) -> int:
    return sum(
        1
        for record in cluster.operator_requests(namespace)
        if record.verb == "create" and record.resource == "pods" and record.code < 300
    )


def test_a_dry_run_that_ended_while_the_operator_was_down_is_recorded_after_the_restart(
    cluster: OperatorCluster,
) -> None:
    namespace = cluster.setup("dry-restart", schedule={"every": "1h"})
    first = cluster.wait_for(
        namespace, lambda s: (s.get("lastRun") or {}).get("result") == "succeeded", "run 1"
    )
    cluster.provider.hold(namespace)
    cluster.patch_job(
        namespace, {"metadata": {"annotations": {"destinations.dev/dry-run-requested-at": "d1"}}}
    )
    cluster.provider.wait_held(namespace)  # the dry run's pod is reading the source

    cluster.operator.kill()
    cluster.provider.release(namespace)
    wait_until(
        lambda: (
            [(p["metadata"]["name"], p["status"].get("phase")) for p in _dry_run_pods(cluster, namespace)]
            == [("export-dry-run-8b53639f", "Succeeded")]
        ),  # sha256sum of "d1", first 8
        timeout=30,
        message="the dry run's pod to finish",
    )
    assert "lastDryRun" not in cluster.status(namespace)  # the premise: nobody recorded it yet
    cluster.operator.start()

    status = cluster.wait_for(
        namespace, lambda s: (s.get("lastDryRun") or {}).get("requestedAt") == "d1", "d1"
    )
    assert status["lastDryRun"]["records"] == {"read": 3, "skipped": 0, "sent": 3}
    assert status["runs"] == first["runs"] and status["lastRun"] == first["lastRun"]
    wait_until(
        lambda: _dry_run_pods(cluster, namespace) == [], timeout=20, message="the dry run's pod deleted"
    )
    assert _pod_creations(cluster, namespace) == 2  # run 1 and the dry run, none after the restart
