"""`kubectl destinations logs`: which run, what a pruned pod looks like, and how worker lines read.

Jobs here get their status through the status subresource, as the operator writes it, with no pods:
every run's pod is gone, as after the operator pruned them.
"""

from __future__ import annotations

import pytest

from destinations.plugin.logs import render_line
from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi
from tests.plugin.invoke import invoke, make_job

STATUS = {
    "phase": "Sleeping",
    "lastRun": {"number": 2, "result": "failed", "finishedAt": "2026-05-02T10:00:42Z", "message": "HTTP 500"},
    "history": [
        {"time": "2026-05-02T06:00:00Z", "event": "Started", "run": 1, "message": "first run started"},
        {"time": "2026-05-02T10:00:42Z", "event": "Error", "run": 2, "message": "run 2 failed: HTTP 500"},
    ],
}


def test_a_run_whose_pod_is_gone_shows_its_history_and_says_the_pod_was_pruned(
    sandbox: Sandbox, sandbox_api: SandboxApi, capsys: pytest.CaptureFixture[str]
) -> None:
    make_job(sandbox_api, "team", STATUS)
    result = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "logs", "export")
    assert result.code == 0, result.err
    assert result.out == (
        "History of run 2:\n"
        "  2026-05-02T10:00:42Z  Error    run 2 failed: HTTP 500\n"
        "The pod of run 2 (export-run-2) was pruned: the operator keeps the pods of the last 3 succeeded and "
        "3 failed runs (spec.history), so only the history above remains.\n"
    )


def test_a_run_that_never_happened_is_refused_with_the_runs_there_were(
    sandbox: Sandbox, sandbox_api: SandboxApi, capsys: pytest.CaptureFixture[str]
) -> None:
    make_job(sandbox_api, "team", STATUS)
    result = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "logs", "export", "--run", "5")
    assert (result.code, result.err) == (2, 'error: --run 5: job "export" has had runs 1 to 2\n')


def test_a_job_that_never_ran_has_no_logs_yet(
    sandbox: Sandbox, sandbox_api: SandboxApi, capsys: pytest.CaptureFixture[str]
) -> None:
    make_job(sandbox_api, "team", {"phase": "Pending"})
    result = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "logs", "export")
    assert (result.code, result.err) == (
        1,
        'error: job "export" has not run yet; `kubectl destinations run export` starts a run\n',
    )


def test_worker_json_lines_read_as_time_level_event_and_fields() -> None:
    line = (
        '{"time": "2026-05-02T10:00:01.250Z", "level": "error", "event": "failed", '
        '"job": "team/export", "run": 2, "message": "HTTP 500", "retry": {"after": 60}}'
    )
    assert render_line(line).plain == (
        '2026-05-02T10:00:01.250Z  error  failed  message=HTTP 500  retry={"after": 60}'
    )
    assert render_line("Traceback (most recent call last):").plain == "Traceback (most recent call last):"
