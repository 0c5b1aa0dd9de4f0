"""Deleting a namespace takes everything in it: jobs mid-run, their pods, an Authorization in use.

The namespace controller deletes the namespace's objects; the operator must let go of what it holds
(the Authorization's finalizer, the job's run) so the namespace finishes terminating, and no sync pod
is left behind. Reference: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
"""

from __future__ import annotations

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import OperatorCluster


def test_deleting_a_namespace_mid_run_removes_jobs_pods_and_authorizations(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("doomed", source_query={"delay": 30})
    cluster.wait_for(namespace, lambda s: s.get("currentRun"), "a run in flight")
    assert len(cluster.pods(namespace)) == 1

    assert cluster.api.delete(f"/api/v1/namespaces/{namespace}").status_code == 200

    wait_until(
        lambda: cluster.api.get(f"/api/v1/namespaces/{namespace}").status_code == 404,
        timeout=90,
        message=f"namespace {namespace} to finish terminating",
    )
    leftovers = [
        pod["metadata"]["name"]
        for pod in cluster.api.get("/api/v1/pods").json()["items"]
        if pod["metadata"]["namespace"] == namespace
    ]
    assert leftovers == []
    assert "Traceback" not in cluster.operator.log
