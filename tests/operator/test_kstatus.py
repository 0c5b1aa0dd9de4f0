"""kstatus reads the operator's objects as Flux, Argo CD and `kubectl wait`-style tools expect.

The objects are the operator's own, in each phase, and the verdict is the real library's
(sigs.k8s.io/cli-utils/pkg/kstatus/status through hack/kstatus): Current when Sleeping, Completed or
Paused; InProgress while Pending or Running; Failed when Failed or Stalled on an invalid spec.
Reference: https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.operator.harness import AUTHORIZATIONS, JOBS, OperatorCluster

FAILING_RETRY = {"initialBackoff": "1s", "maxBackoff": "1s", "failAfter": "3s"}


def kstatus(binary: Path, objects: list[dict[str, Any]]) -> dict[str, str]:
    result = subprocess.run(
        [str(binary)], input=json.dumps(objects), capture_output=True, text=True, timeout=30, check=True
    )
    return {entry["name"]: entry["status"] for entry in json.loads(result.stdout)}


def _get(cluster: OperatorCluster, path: str) -> dict[str, Any]:
    response = cluster.api.get(path)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_jobs_and_authorizations_in_each_phase_read_as_gitops_tools_expect(
    cluster: OperatorCluster, kstatus_binary: Path
) -> None:
    namespace = cluster.namespace("kstatus")
    cluster.secret(namespace)
    cluster.authorization(namespace)
    cluster.provider.behaviours[namespace].mode = "ok"
    cluster.job(namespace, "sleeping", schedule={"every": "1h"})
    cluster.job(namespace, "completed", schedule={"once": True})
    cluster.job(namespace, "paused", paused=True)
    cluster.job(namespace, "running", source_query={"delay": 60})
    cluster.job(namespace, "stalled", provider="nosuch")
    cluster.job(namespace, "pending", authorizationRef={"name": "not-yet"})
    cluster.authorization(namespace, "no-secret", secret="missing-secret")

    failing = cluster.namespace("kstatus-failing")
    cluster.secret(failing)
    cluster.authorization(failing)
    cluster.provider.behaviours[failing].mode = "fail"
    cluster.job(failing, "failed", retry=FAILING_RETRY)

    expected_phases = {
        "sleeping": "Sleeping",
        "completed": "Completed",
        "paused": "Paused",
        "running": "Running",
        "stalled": "Failed",
        "pending": "Pending",
    }
    for name, phase in expected_phases.items():
        cluster.wait_for_phase(namespace, phase, name=name, timeout=60)
    cluster.wait_for_phase(failing, "Failed", name="failed", timeout=60)
    cluster.wait_for(namespace, lambda s: s.get("currentRun"), "the run in flight", name="running")

    jobs = [_get(cluster, f"{JOBS.format(namespace=namespace)}/{name}") for name in expected_phases]
    jobs.append(_get(cluster, f"{JOBS.format(namespace=failing)}/failed"))
    authorizations = [
        _get(cluster, f"{AUTHORIZATIONS.format(namespace=namespace)}/{name}")
        for name in ("hook", "no-secret")
    ]
    assert authorizations[0]["status"]["health"] == "Healthy"
    assert authorizations[1]["status"]["health"] == "Unhealthy"

    assert kstatus(kstatus_binary, jobs) == {
        "sleeping": "Current",
        "completed": "Current",
        "paused": "Current",
        "running": "InProgress",
        "stalled": "Failed",
        "pending": "InProgress",
        "failed": "Failed",
    }
    assert kstatus(kstatus_binary, authorizations) == {"hook": "Current", "no-secret": "InProgress"}
