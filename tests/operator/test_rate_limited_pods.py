"""What users see of a rate-limited run's pod (issue 13, item 8; docs/lifecycle.md#rate-limited-runs).

A rate limit is not an error (DESIGN.md §3): the sync container exits 0, so the pod is `Succeeded`
and `kubectl get pods` shows `Completed`, while the job is Sleeping with reason RateLimited and the
pod's termination message says `rate_limited`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.sandbox import Kubectl
from tests.operator.harness import OperatorCluster


def test_a_rate_limited_runs_pod_shows_completed_not_error(
    cluster: OperatorCluster, kubectl_binary: Path, tmp_path: Path
) -> None:
    namespace = "limited-pod"
    cluster.provider.behaviours[namespace].mode = "ratelimit"
    cluster.setup(namespace, schedule={"every": "1h"})
    status = cluster.wait_for(
        namespace, lambda s: (s.get("lastRun") or {}).get("result") == "rate_limited", "a rate-limited run"
    )
    assert (status["phase"], status["reason"]) == ("Sleeping", "RateLimited")
    pod_name = status["lastRun"].get("pod") or f"export-run-{status['lastRun']['number']}"

    kubectl = Kubectl(kubectl_binary, cluster.sandbox.kubeconfig_path, tmp_path / "kube-cache")
    table = kubectl("get", "pods", "-n", namespace, "--no-headers").stdout
    row = next(line.split() for line in table.splitlines() if line.startswith(pod_name + " "))
    assert row[2] == "Completed", table  # NAME READY STATUS RESTARTS AGE

    pod = json.loads(kubectl("get", "pod", pod_name, "-n", namespace, "-o", "json").stdout)
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert json.loads(terminated["message"])["result"] == "rate_limited"
