"""The global cap on concurrent runs: a due run waits for a free slot, saying so, then runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.operator.harness import OperatorCluster, operator_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, control_plane: str) -> Iterator[OperatorCluster]:
    yield from operator_cluster(
        tmp_path_factory.mktemp("capped"), "--max-concurrent-runs", "1", control_plane=control_plane
    )


def _succeeded(status: dict[str, Any]) -> bool:
    return (status.get("lastRun") or {}).get("result") == "succeeded"


def test_a_due_run_is_queued_while_the_cap_is_reached_then_runs(cluster: OperatorCluster) -> None:
    namespace = cluster.setup("capped", source_query={"delay": 3}, schedule={"every": "1h"})
    cluster.wait_for(namespace, lambda s: s.get("currentRun"), "the first job's run")

    cluster.job(namespace, "second", schedule={"every": "1h"})

    queued = cluster.wait_for(
        namespace, lambda s: s.get("reason") == "QueuedForCapacity", "the second job to queue", name="second"
    )
    assert "limit of concurrent runs" in queued["message"]
    cluster.wait_for(namespace, _succeeded, "the second job's run", name="second", timeout=40)
    assert _succeeded(cluster.status(namespace))
    names = sorted(pod["metadata"]["name"] for pod in cluster.pods(namespace))
    assert names == ["export-run-1", "second-run-1"]
