"""A job the operator cannot handle is never silent, and never stops the other jobs (issue 13, item 1).

This module has its own sandbox and operator (the `cluster` fixture is per module): one test restarts it.
"""

from __future__ import annotations

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import JOBS, OperatorCluster


def _synced_runs(cluster: OperatorCluster, namespace: str) -> int:
    return int((cluster.status(namespace).get("runs") or {}).get("succeeded", 0))


def test_an_every_minute_cron_job_is_scheduled_while_other_jobs_keep_running(
    cluster: OperatorCluster,
) -> None:
    # The literal case: `* * * * *` used to end the job's runner with "has no time after".
    steady = cluster.setup("steady")
    cron = cluster.setup("every-minute", schedule={"cron": "* * * * *"})

    status = cluster.wait_for(cron, lambda s: s.get("nextRunAt"), "the cron job to be scheduled")
    assert status["phase"] == "Pending"
    assert status["reason"] in ("FirstRunScheduled", "WaitingForAuthorization")
    assert status["nextRunAt"].endswith(":00Z")  # the next whole minute
    cluster.wait_for(steady, lambda s: (s.get("runs") or {}).get("succeeded", 0) >= 2, "steady runs")


def test_a_job_whose_handling_raises_shows_the_failure_and_the_others_keep_running(
    cluster: OperatorCluster,
) -> None:
    """A status nobody foresaw (here: a run start time that is not a time, as a hand edit leaves it)
    makes every step of that job raise: the job says so, and the other jobs carry on."""
    healthy = cluster.setup("healthy")
    broken = cluster.setup("broken", schedule={"every": "1h"})
    cluster.wait_for(broken, lambda s: s.get("phase") in ("Running", "Sleeping"), "the first run")

    cluster.operator.stop()
    response = cluster.api.patch(
        f"{JOBS.format(namespace=broken)}/export/status",
        {
            "status": {
                "phase": "Running",
                "currentRun": {"number": 7, "pod": "export-run-7", "startedAt": "not a time"},
            }
        },
    )
    assert response.status_code == 200, response.text
    cluster.operator.start()

    status = cluster.wait_for(broken, lambda s: s.get("reason") == "OperatorError", "the failure shown")
    assert "the operator failed to handle this job: ValueError" in status["message"]
    assert "it tries again at" in status["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "OperatorError")
    cluster.wait_for_events(broken, "OperatorError")
    warnings = [e for e in cluster.events(broken) if e["reason"] == "OperatorError"]
    assert warnings and all(e["type"] == "Warning" for e in warnings)

    before = _synced_runs(cluster, healthy)
    wait_until(lambda: _synced_runs(cluster, healthy) >= before + 2, timeout=30, message="healthy runs")
