"""The operator under API faults: 500s, 409s, latency and dropped watches aimed at its own requests.

This module has its own sandbox and operator (the `cluster` fixture is per module); the faults are
injected into the operator's requests only (`user=`), so the test's own reads stay exact.
"""

from __future__ import annotations

import pytest

from tests.operator.harness import OPERATOR_USER, OperatorCluster

# API faults are injected by the emulator; a real API server offers no such switch.
pytestmark = pytest.mark.embedded_only

FAULTS = f"error=0.1,conflict=0.1,latency=20ms@0.2,drop-watch=0.05,seed=11,user={OPERATOR_USER}"


def test_runs_under_api_faults_are_each_recorded_once_and_never_doubled(cluster: OperatorCluster) -> None:
    cluster.sandbox.set_faults(FAULTS)
    namespace = cluster.setup("faulty", schedule={"every": "1s"}, history={"succeeded": 2, "failed": 2})

    # Six runs of an every-1s job take ~10 s here; the bound is far below the one-minute recheck a job
    # falls back on when it misses its Authorization turning Healthy (which a fault once caused).
    cluster.wait_for(namespace, lambda s: s.get("runs", {}).get("total", 0) >= 6, "six runs", timeout=50)
    # Pausing lets the run in flight finish; then nothing moves and the counts can be compared exactly.
    cluster.patch_job(namespace, {"spec": {"paused": True}})
    status = cluster.wait_for_phase(namespace, "Paused", timeout=90)
    cluster.sandbox.set_faults(None)

    creations = sum(
        1
        for record in cluster.operator_requests(namespace)
        if record.verb == "create" and record.resource == "pods" and record.code < 300
    )
    injected = [record for record in cluster.operator_requests() if record.code in (409, 500)]
    assert injected, "the faults reached the operator"
    # An API error is never the run's fault: every run succeeded, each was recorded exactly once, and
    # each got exactly one pod (deterministic names; a repeated create is adopted, not doubled).
    runs = status["runs"]
    assert (runs["failed"], status["consecutiveErrors"]) == (0, 0), status["message"]
    assert runs["succeeded"] == status["lastRun"]["number"] == runs["total"] == creations
