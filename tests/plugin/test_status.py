"""`kubectl destinations status`: the summary text, its data form, and lists, from known statuses.

The summary test renders a fixed job at a fixed time and compares every line with the text a user should
see; the cluster tests write the job's status through the status subresource (as the operator would) and
read the plugin's output back.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pexpect
import pytest

from destinations.plugin.main import Session
from destinations.plugin.output import make_console
from destinations.plugin.status import render, summarize
from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi
from tests.plugin.invoke import invoke, make_job

JOB: dict[str, Any] = {
    "metadata": {
        "name": "vip-export",
        "namespace": "marketing",
        "creationTimestamp": "2026-05-01T08:00:00Z",
        "annotations": {
            "destinations.dev/created-by": "alice@example.com",
            "destinations.dev/pause-reason": "audience rebuild",
        },
    },
    "spec": {
        "displayName": "VIP customers to the webhook",
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "hook"},
        "config": {
            "url": "https://hooks.example.com/in",
            "headers": {"Authorization": "Bearer abc", "X-Team": "crm"},
        },
        "source": {"warehouse": {"connectionSecretRef": {"name": "warehouse", "key": "dsn"}, "table": "vip"}},
        "paused": True,
    },
    "status": {
        "phase": "Running",
        "reason": "PauseRequested",
        "message": "run 7 in pod vip-export-run-7 finishes, then the job pauses",
        "phaseSince": "2026-05-02T11:59:30Z",
        "consecutiveErrors": 1,
        "errorsSince": "2026-05-02T10:00:00Z",
        "currentRun": {"number": 7, "pod": "vip-export-run-7", "startedAt": "2026-05-02T11:58:00Z"},
        "lastRun": {
            "number": 6,
            "result": "failed",
            "startedAt": "2026-05-02T10:00:00Z",
            "finishedAt": "2026-05-02T10:00:42Z",
            "records": {"read": 120, "added": 100, "updated": 15, "omitted": 5},
            "message": "HTTP 500 from the webhook",
            "rejections": [
                {"key": "bob@example", "reason": "invalid email"},
                {"key": "eve@example.com", "reason": "blocked"},
            ],
        },
        "runs": {"total": 6, "succeeded": 5, "failed": 1},
        "lastSuccessfulTime": "2026-05-02T06:00:40Z",
        "lastFailureTime": "2026-05-02T10:00:42Z",
        "lastUpdated": "2026-05-01T09:00:00Z",
        "nextRunAt": "2026-05-02T12:05:00Z",
        "lastDryRun": {"requestedAt": "2026-05-02T09:00:00Z", "records": {"added": 3, "removed": 0}},
        "history": [
            {"time": "2026-05-02T06:00:40Z", "event": "Synced", "run": 5, "message": "run 5 synced"},
            {
                "time": "2026-05-02T10:00:42Z",
                "event": "Error",
                "run": 6,
                "message": "run 6 failed: HTTP 500 from the webhook; retrying in 1m",
            },
        ],
    },
}


EXPECTED_SUMMARY = """\
Name:             marketing/vip-export
Display name:     VIP customers to the webhook
Description:      -
Status:           Running (PauseRequested): run 7 in pod vip-export-run-7 finishes, then the job pauses
Since:            2026-05-02T11:59:30Z (30s ago)
Pause reason:     audience rebuild
Provider:         webhook (Webhook)
Type:             export
Mode:             upsert
Authorization:    hook Healthy: credentials accepted
Created:          2026-05-01T08:00:00Z (1d4h ago)
Created by:       alice@example.com
Last updated:     2026-05-01T09:00:00Z (1d3h ago)
Schedule:         every 1h (provider default)
Next run:         2026-05-02T12:05:00Z (in 5m)
Runs:             6 total, 5 succeeded, 1 failed
Errors in a row:  1 since 2026-05-02T10:00:00Z (2h ago)
Last success:     2026-05-02T06:00:40Z (5h59m ago)
Last failure:     2026-05-02T10:00:42Z (1h59m ago)
Current run:      7 in pod vip-export-run-7, started 2026-05-02T11:58:00Z (2m ago)
Last run:         6 failed
  Started:        2026-05-02T10:00:00Z (2h ago)
  Finished:       2026-05-02T10:00:42Z (1h59m ago) (took 42.0s)
  Records:        read 120, added 100, updated 15, removed 0, omitted 5, failed 0
  Message:        HTTP 500 from the webhook
  Rejections:     2
    bob@example: invalid email
    eve@example.com: blocked
Last dry run:
  requestedAt: '2026-05-02T09:00:00Z'
  records:
    added: 3
    removed: 0
History (last 2 of 2, oldest first):
  TIME                   EVENT    RUN   MESSAGE
  2026-05-02T06:00:40Z   Synced   5     run 5 synced
  2026-05-02T10:00:42Z   Error    6     run 6 failed: HTTP 500 from the webhook; retrying in 1m
Configuration:
  config:
    url: https://hooks.example.com/in
    headers:
      Authorization: '***'
      X-Team: crm
  source:
    warehouse:
      connectionSecretRef:
        name: warehouse
        key: dsn
      table: vip
"""


def test_the_summary_shows_every_field_a_job_screen_shows() -> None:
    out = io.StringIO()
    session = Session(argparse.Namespace(), make_console(True, out), make_console(True, io.StringIO()))
    authorization = {"status": {"health": "Healthy", "message": "credentials accepted"}}
    render(session, summarize(JOB, authorization), now=datetime(2026, 5, 2, 12, 0, 0, tzinfo=UTC))
    assert out.getvalue() == EXPECTED_SUMMARY


def test_credential_looking_config_values_are_masked_and_references_kept() -> None:
    summary = summarize(JOB, None)
    assert summary["configuration"]["config"]["headers"] == {"Authorization": "***", "X-Team": "crm"}
    assert summary["configuration"]["source"]["warehouse"]["connectionSecretRef"] == {
        "name": "warehouse",
        "key": "dsn",
    }


def test_status_of_a_job_whose_authorization_is_missing_says_so(
    sandbox: Sandbox, sandbox_api: SandboxApi, capsys: pytest.CaptureFixture[str]
) -> None:
    make_job(
        sandbox_api,
        "team",
        {"phase": "Pending", "reason": "AuthorizationNotReady", "message": 'Authorization "hook" not found'},
    )
    result = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "status", "export")
    assert result.code == 0, result.err
    fields = result.fields()
    assert fields["Status"] == 'Pending (AuthorizationNotReady): Authorization "hook" not found'
    assert fields["Authorization"] == 'hook Missing: Authorization "hook" does not exist'
    assert fields["Schedule"] == "cron 0 6 * * * (Europe/Paris)"
    assert fields["Next run"] == "-"
    assert fields["Last run"] == "none yet"
    assert fields["History"] == "none yet"


def test_status_output_json_is_the_summary_as_data(
    sandbox: Sandbox, sandbox_api: SandboxApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status = {
        "phase": "Sleeping",
        "reason": "Scheduled",
        "nextRunAt": "2026-05-03T04:00:00Z",
        "runs": {"total": 2, "succeeded": 2, "failed": 0},
        "lastRun": {
            "number": 2,
            "result": "succeeded",
            "startedAt": "2026-05-02T04:00:00Z",
            "finishedAt": "2026-05-02T04:00:09Z",
            "records": {"read": 10, "added": 4, "updated": 6, "removed": 0, "omitted": 0, "failed": 0},
            "message": "read 10, added 4, updated 6",
        },
    }
    make_job(sandbox_api, "team", status)
    result = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "status", "export", "-o", "json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["status"] == {"phase": "Sleeping", "reason": "Scheduled", "message": None, "since": None}
    assert summary["lastRun"]["records"] == {
        "read": 10, "added": 4, "updated": 6, "removed": 0, "omitted": 0, "failed": 0,
    }  # fmt: skip
    assert summary["schedule"] == {"cron": "0 6 * * *", "timezone": "Europe/Paris"}
    assert summary["authorization"] == {
        "name": "hook",
        "health": "Missing",
        "message": 'Authorization "hook" does not exist',
    }
    listing = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "status")
    row = listing.out.splitlines()[1]
    assert row.split()[:5] == ["export", "hook", "webhook", "export", "Sleeping"]
    assert (
        "2026-05-03T04:00:00Z   2 succeeded   read=10 added=4 updated=6 removed=0 omitted=0 failed=0" in row
    )


def test_status_in_an_empty_namespace_says_there_are_no_jobs(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, sandbox.kubeconfig_path, "-n", "default", "status")
    assert result.code == 0
    assert result.err == 'No DestinationJobs found in namespace "default".\n'


def test_colour_only_in_a_terminal_and_never_with_no_color(
    sandbox: Sandbox, sandbox_api: SandboxApi, capsys: pytest.CaptureFixture[str]
) -> None:
    make_job(sandbox_api, "team", {"phase": "Failed", "reason": "FailingTooLong", "message": "gave up"})
    plugin = str(Path(sys.executable).parent / "kubectl-destinations")
    command = ["--kubeconfig", str(sandbox.kubeconfig_path), "-n", "team", "status", "export"]
    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    coloured = pexpect.run(plugin, args=command, env={**environment, "TERM": "xterm"}, encoding="utf-8")
    assert re.search(r"Status:\s+\x1b\[1;31mFailed\x1b\[0m \(FailingTooLong\): gave up", coloured)
    plain = pexpect.run(
        plugin, args=[*command, "--no-color"], env={**environment, "TERM": "xterm"}, encoding="utf-8"
    )
    assert "\x1b[" not in plain
    assert "Status:           Failed (FailingTooLong): gave up" in plain.replace("\r\n", "\n")
    piped = invoke(capsys, sandbox.kubeconfig_path, "-n", "team", "status", "export")
    assert "\x1b[" not in piped.out
