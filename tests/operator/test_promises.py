"""Promises about the operator as a whole: few API writes, least privilege, secrets never shown."""

from __future__ import annotations

import json
from typing import Any

from destinations.sandbox import RequestRecord
from tests.fixtures.rbac import OperatorRbac
from tests.fixtures.sandbox import wait_until
from tests.operator.harness import CANARY, WRITE_VERBS, OperatorCluster, free_port


def _write(record: RequestRecord) -> str:
    subresource = f"/{record.subresource}" if record.subresource else ""
    return f"{record.verb} {record.resource}{subresource} {record.name}"


def _writes(cluster: OperatorCluster, namespace: str) -> list[RequestRecord]:
    return [record for record in cluster.operator_requests(namespace) if record.verb in WRITE_VERBS]


def _is_pod_creation(record: RequestRecord) -> bool:
    return record.verb == "create" and record.resource == "pods"


def test_steady_state_runs_take_at_most_six_writes_each_and_sleeping_jobs_none(
    cluster: OperatorCluster,
) -> None:
    busy = cluster.setup("busy", schedule={"every": "1s"}, history={"succeeded": 1, "failed": 1})
    idle = cluster.setup("idle", schedule={"every": "1h"})
    cluster.wait_for_phase(idle, "Sleeping")
    cluster.wait_for(busy, lambda s: s.get("runs", {}).get("succeeded", 0) >= 3, "warm-up")
    skipped = len(_writes(cluster, busy))
    idle_before = _writes(cluster, idle)

    cluster.wait_for(busy, lambda s: s["runs"]["total"] >= 8, "more runs")

    # Whole runs only: from one pod creation up to (not including) a later one.
    writes = _writes(cluster, busy)[skipped:]
    creations = [index for index, record in enumerate(writes) if _is_pod_creation(record)]
    window = writes[creations[0] : creations[-1]]
    runs = len(creations) - 1
    assert runs >= 3
    per_run = len(window) / runs
    print(f"\nwrites per run in steady state: {per_run:.2f}: {[_write(r) for r in window]}")
    assert per_run <= 6, f"{per_run:.1f} writes per run: {[_write(r) for r in window]}"
    assert _writes(cluster, idle) == idle_before, "a sleeping job was written to"


def test_every_request_the_operator_made_is_allowed_by_the_cluster_role(
    cluster: OperatorCluster, operator_rbac: OperatorRbac
) -> None:
    namespace = cluster.setup("rbac", schedule={"once": True}, purgeAfter="1s")
    wait_until(lambda: cluster.get_job(namespace) is None, timeout=40, message="the once job to be purged")
    # Deleting the Authorization makes the operator release its finalizer: the last kind of write.
    cluster.api.delete(f"/apis/destinations.dev/v1/namespaces/{namespace}/authorizations/hook")
    wait_until(
        lambda: (
            cluster.api.get(
                f"/apis/destinations.dev/v1/namespaces/{namespace}/authorizations/hook"
            ).status_code
            == 404
        ),
        timeout=20,
        message="the Authorization to be released",
    )

    # Discovery (GET /api, /apis/<group>) is not a resource request: Kubernetes' default
    # system:discovery role grants it to every authenticated user, so the ClusterRole need not.
    requests = [record for record in cluster.operator_requests() if record.resource]

    assert {record.verb for record in requests} >= {"list", "create", "patch", "delete"}
    assert operator_rbac.refused(requests) == []


def test_the_credentials_never_appear_in_events_status_logs_or_pod_specs(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("canary")
    cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("result") == "succeeded", "a run")
    assert any(headers.get("X-API-Key") == CANARY for headers in cluster.provider.headers), "the key was used"

    seen: dict[str, Any] = {
        "events": cluster.api.get("/api/v1/events").json(),
        "jobs": cluster.api.get("/apis/destinations.dev/v1/destinationjobs").json(),
        "authorizations": cluster.api.get("/apis/destinations.dev/v1/authorizations").json(),
        "pods": cluster.api.get("/api/v1/pods").json(),
    }
    for what, objects in seen.items():
        assert CANARY not in json.dumps(objects), f"the secret value appears in {what}"
    assert CANARY not in cluster.operator.log


URL_CANARY = "url-canary-83b1-never-show-me"


def test_a_password_in_a_source_url_never_appears_in_status_events_or_logs(cluster: OperatorCluster) -> None:
    """Issue 13: `https://user:s3cret@host/path` that cannot be reached used to put the password in the
    job's status, its Error Event and the pod log."""
    namespace = cluster.namespace("url-canary")
    cluster.secret(namespace)
    cluster.authorization(namespace)
    url = free_port_url().replace("http://", f"http://reader:{URL_CANARY}@") + "/records"
    cluster.job(namespace, source={"url": {"url": url}}, schedule={"every": "1h"})
    status = cluster.wait_for(
        namespace, lambda s: (s.get("lastRun") or {}).get("result") == "failed", "a failed run"
    )
    cluster.wait_for_events(namespace, "Error")

    assert "from the source http://reader:***@127.0.0.1:" in status["lastRun"]["message"]
    pods = cluster.pods(namespace)
    shown: dict[str, str] = {
        "status": json.dumps(status),
        "events": json.dumps(cluster.events(namespace)),
        "pod statuses (termination messages)": json.dumps([pod.get("status") for pod in pods]),
        "pod logs": "".join(
            cluster.api.get(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/log").text
            for pod in pods
        ),
        "operator log": cluster.operator.log,
    }
    assert pods, "the sync pod is kept for its log"
    for what, text in shown.items():
        assert URL_CANARY not in text, f"the password appears in {what}"


def free_port_url() -> str:
    """An address on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
