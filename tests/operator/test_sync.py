"""A job's runs end to end: the operator, the sandbox kubelet running the real worker, a local endpoint."""

from __future__ import annotations

from tests.operator.harness import OperatorCluster


def test_happy_path_delivers_records_and_sleeps_until_the_next_run(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("happy")

    status = cluster.wait_for(
        namespace, lambda s: (s.get("lastRun") or {}).get("result") == "succeeded", "a run"
    )

    assert len(cluster.provider.received[namespace]) >= 3
    assert status["lastRun"]["records"]["added"] + status["lastRun"]["records"]["updated"] >= 3 or (
        status["lastRun"]["records"]["read"] == 3
    )
    sleeping = cluster.wait_for_phase(namespace, "Sleeping")
    assert sleeping["nextRunAt"]
    assert "Synced" in cluster.event_reasons(namespace)
