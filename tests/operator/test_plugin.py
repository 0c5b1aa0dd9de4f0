"""`kubectl destinations` against the running operator: status, run, pause, resume, dry-run, logs, report.

Each test gets its own namespace in the module's cluster (sandbox + operator + fake provider) and drives
the plugin in-process with the admin kubeconfig; what it changed is read back through the HTTP API.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import pytest

from destinations.sandbox import ADMIN_USER, RequestRecord
from tests.fixtures.sandbox import wait_until
from tests.operator.harness import AUTHORIZATIONS, CANARY, JOBS, OperatorCluster
from tests.plugin.invoke import Result, invoke

pytestmark = pytest.mark.integration


def plugin(
    capsys: pytest.CaptureFixture[str], cluster: OperatorCluster, namespace: str, *args: str
) -> Result:
    return invoke(capsys, cluster.sandbox.kubeconfig_path, "-n", namespace, *args)


def synced_once(cluster: OperatorCluster, namespace: str, **spec: object) -> dict[str, object]:
    cluster.setup(namespace, schedule={"every": "1h"}, **spec)
    return cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("number") == 1, "run 1")


def test_status_shows_the_job_summary_field_by_field(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-status"
    status = synced_once(cluster, namespace, description="Weekly push of test users")
    result = plugin(capsys, cluster, namespace, "status", "export")
    assert result.code == 0, result.err
    fields = result.fields()
    assert fields["Name"] == "plugin-status/export"
    assert fields["Display name"] == "Export of test users"
    assert fields["Description"] == "Weekly push of test users"
    assert (
        fields["Status"]
        == f"Sleeping (Scheduled): last run 1 succeeded; next run due at {status['nextRunAt']}"
    )
    assert fields["Provider"] == "webhook (Webhook)"
    assert fields["Type"] == "export"
    assert fields["Mode"] == "upsert"
    assert fields["Authorization"].startswith("hook Healthy")
    assert fields["Schedule"] == "every 1h"
    assert re.fullmatch(rf"{status['nextRunAt']} \(in 5\dm\)", fields["Next run"])  # an hour after run 1
    assert fields["Runs"] == "1 total, 1 succeeded, 0 failed"
    assert fields["Errors in a row"] == "0"
    assert fields["Last run"] == "1 succeeded"
    assert fields["Records"] == "read 3, added 3, updated 0, removed 0, omitted 0, failed 0"
    assert fields["Rejections"] == "none"
    assert fields["url"] == f"http://127.0.0.1:{cluster.provider.port}/hook/plugin-status"
    history = result.out.split("History (last 2 of 2, oldest first):\n", 1)[1]
    assert "   Started   1     first run started in pod export-run-1" in history
    assert "   Synced    1     run 1 synced: 3 read, 3 added" in history


def test_status_without_a_job_lists_the_jobs_with_their_last_run(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-list"
    synced_once(cluster, namespace)
    listing = plugin(capsys, cluster, namespace, "status")
    header, row = listing.out.splitlines()
    assert header.split() == [
        "NAME", "AUTHORIZATION", "PROVIDER", "TYPE", "STATUS", "AGE", "LAST-SYNC", "NEXT-RUN", "LAST-RUN",
        "RECORDS", "MESSAGE",
    ]  # fmt: skip
    assert row.split()[:5] == ["export", "hook", "webhook", "export", "Sleeping"]
    assert "1 succeeded   read=3 added=3 updated=0 removed=0 omitted=0 failed=0" in row
    everywhere = plugin(capsys, cluster, namespace, "status", "-A")
    assert everywhere.out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == ["plugin-list", "export"] for line in everywhere.out.splitlines())


def test_run_with_wait_follows_the_run_and_prints_its_outcome(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-run"
    synced_once(cluster, namespace)
    result = plugin(capsys, cluster, namespace, "run", "export", "--wait", "--timeout", "60s")
    assert result.code == 0, result.out + result.err
    requested = result.out.splitlines()[0]
    value = requested.split("destinations.dev/requested-at=", 1)[1].rstrip(").")
    assert cluster.status(namespace)["lastHandledRequestAt"] == value
    assert result.out.splitlines()[-1] == (
        "Run 2 succeeded: read 3, added 3, updated 0, removed 0, omitted 0, failed 0. "
        "read 3, added 3, updated 0"
    )


def test_run_with_wait_exits_1_when_the_run_fails(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-run-fails"
    synced_once(cluster, namespace)
    cluster.provider.behaviours[namespace].mode = "fail"
    result = plugin(capsys, cluster, namespace, "run", "export", "--wait", "--timeout", "60s")
    assert result.code == 1
    assert result.out.splitlines()[-1].startswith("Run 2 failed: read 3, added 0")


def test_pause_with_a_reason_waits_for_paused_and_resume_waits_for_the_schedule(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-pause"
    synced_once(cluster, namespace)
    paused = plugin(capsys, cluster, namespace, "pause", "export", "--reason", "holiday freeze", "--wait")
    assert paused.code == 0, paused.err
    assert paused.out.splitlines()[0] == (
        "Pause requested for plugin-pause/export (holiday freeze): spec.paused is true."
    )
    assert paused.out.splitlines()[-1] == "plugin-pause/export is Paused."
    job = cluster.get_job(namespace)
    assert job is not None
    assert job["spec"]["paused"] is True
    assert job["metadata"]["annotations"]["destinations.dev/pause-reason"] == "holiday freeze"
    assert cluster.status(namespace)["phase"] == "Paused"
    assert plugin(capsys, cluster, namespace, "status", "export").fields()["Pause reason"] == "holiday freeze"

    resumed = plugin(capsys, cluster, namespace, "resume", "export", "--wait")
    assert resumed.code == 0, resumed.err
    assert resumed.out.splitlines()[-1].startswith("plugin-pause/export is Sleeping; next run ")
    job = cluster.get_job(namespace)
    assert job is not None
    assert job["spec"]["paused"] is False
    assert "destinations.dev/pause-reason" not in (job["metadata"].get("annotations") or {})


def test_pausing_a_running_job_waits_for_the_run_in_flight(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-pause-running"
    synced_once(cluster, namespace)
    cluster.provider.behaviours[namespace].delay = 4.0  # long enough to see PauseRequested under load
    cluster.run_now(namespace)
    cluster.wait_for(namespace, lambda s: s.get("phase") == "Running", "run 2 in flight")
    result = plugin(capsys, cluster, namespace, "pause", "export", "--wait", "--timeout", "60s")
    assert result.code == 0, result.err
    assert "Run 2 is in flight; it finishes, then the job pauses." in result.out
    assert "  Running (PauseRequested): run 2 in pod export-run-2 finishes, then the job pauses" in result.out
    status = cluster.status(namespace)
    assert (status["phase"], status["lastRun"]["number"], status["lastRun"]["result"]) == (
        "Paused",
        2,
        "succeeded",
    )


def test_dry_run_with_wait_prints_the_result_or_says_the_operator_did_not_handle_it(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-dry-run"
    synced_once(cluster, namespace)
    result = plugin(capsys, cluster, namespace, "dry-run", "export", "--wait", "--timeout", "10s")
    value = result.out.splitlines()[0].split("dry-run-requested-at=", 1)[1].rstrip(").")
    job = cluster.get_job(namespace)
    assert job is not None
    assert job["metadata"]["annotations"]["destinations.dev/dry-run-requested-at"] == value
    if result.code == 0:
        # An operator with dry-run support answered in time: its result is printed.
        assert job["status"]["lastDryRun"]["requestedAt"] == value
        assert f"  requestedAt: '{value}'" in result.out
    else:
        assert result.code == 1
        assert result.err.startswith(
            f"error: the operator did not handle the dry-run request {value} within 10s: "
            "status.lastDryRun did not report it."
        )
    assert cluster.status(namespace)["runs"]["total"] == 1


def test_logs_render_the_worker_log_and_say_when_a_pod_was_pruned(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-logs"
    synced_once(cluster, namespace, history={"succeeded": 1, "failed": 1})
    cluster.run_now(namespace)
    cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("number") == 2, "run 2")
    wait_until(lambda: len(cluster.pods(namespace)) == 1, message="run 1's pod pruned")

    pruned = plugin(capsys, cluster, namespace, "logs", "export", "--run", "1")
    assert pruned.code == 0, pruned.err
    lines = pruned.out.splitlines()
    assert lines[0] == "History of run 1:"
    assert lines[1].endswith("Started  first run started in pod export-run-1")
    assert "Synced   run 1 synced: 3 read, 3 added" in lines[2]
    assert lines[3] == (
        "The pod of run 1 (export-run-1) was pruned: the operator keeps the pods of the last 1 succeeded and "
        "1 failed runs (spec.history), so only the history above remains."
    )

    latest = plugin(capsys, cluster, namespace, "logs", "export")
    assert latest.code == 0, latest.err
    assert "Log of pod export-run-2:" in latest.out
    log_lines = latest.out.split("Log of pod export-run-2:\n", 1)[1].splitlines()
    assert [line.split()[1:3] for line in log_lines] == [
        ["info", "started"],
        ["info", "batch_sent"],
        ["info", "succeeded"],
        ["info", "finished"],
    ]
    assert log_lines[0].endswith("started  provider=webhook  type=export  mode=upsert")
    assert log_lines[-1].endswith("finished  result=succeeded  exit_code=0")


def test_logs_follow_streams_a_run_in_flight_until_its_pod_ends(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = "plugin-follow"
    synced_once(cluster, namespace)
    cluster.provider.behaviours[namespace].delay = 2.0
    cluster.run_now(namespace)
    cluster.wait_for(namespace, lambda s: (s.get("currentRun") or {}).get("number") == 2, "run 2 in flight")
    result = plugin(capsys, cluster, namespace, "logs", "export", "--follow")
    assert result.code == 0, result.err
    assert "Log of pod export-run-2:" in result.out
    assert result.out.rstrip().endswith("finished  result=succeeded  exit_code=0")


def test_report_is_a_zip_without_the_secret_even_where_a_user_pasted_it(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    namespace = "plugin-report"
    synced_once(cluster, namespace)
    # A careless user pasted the key into the Authorization's description and a job annotation.
    response = cluster.api.patch(
        f"{AUTHORIZATIONS.format(namespace=namespace)}/hook", {"spec": {"description": f"key is {CANARY}"}}
    )
    assert response.status_code == 200, response.text
    response = cluster.api.patch(
        f"{JOBS.format(namespace=namespace)}/export", {"metadata": {"annotations": {"note": CANARY}}}
    )
    assert response.status_code == 200, response.text
    target = tmp_path / "report.zip"
    result = plugin(capsys, cluster, namespace, "report", "export", "-f", str(target))
    assert result.code == 0, result.err
    raw = target.read_bytes()
    assert CANARY.encode() not in raw
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        contents = {name: archive.read(name).decode() for name in archive.namelist()}
    assert set(contents) == {
        "README.txt",
        "authorization.yaml",
        "events.yaml",
        "job.yaml",
        "pods/export-run-1.log",
        "pods/export-run-1.yaml",
        "secrets.yaml",
        "versions.yaml",
    }
    assert not [name for name, text in contents.items() if CANARY in text]
    assert "description: key is ***" in contents["authorization.yaml"]
    assert "note: '***'" in contents["job.yaml"]
    assert "- name: credentials\n  type: Opaque\n  keys:\n  - apiKey\n" in contents["secrets.yaml"]
    assert "finished" in contents["pods/export-run-1.log"]
    assert "reason: Synced" in contents["events.yaml"]
    assert "apiServer: v1." in contents["versions.yaml"]
    assert "Left out" not in contents["README.txt"]


def documented_permissions() -> dict[str, tuple[set[str], set[str]]]:
    """docs/kubectl-plugin.md's permission table: command → (needed, used when allowed), `verb resource`."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "kubectl-plugin.md").read_text(encoding="utf-8")
    table: dict[str, tuple[set[str], set[str]]] = {}
    for line in docs.split("## Permissions", 1)[1].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            needed, optional = (
                {f"{v} {r}" for v, r in re.findall(r"`(\w+) ([a-z/]+)`", c)} for c in cells[1:]
            )
            table[cells[0].strip("`")] = (needed, optional)
    return table


def settled_admin_requests(cluster: OperatorCluster) -> list[RequestRecord]:
    """The admin's resource requests, once no new one arrived for half a second (the real control
    plane's request log is its audit log, written as requests complete)."""
    previous: list[RequestRecord] | None = None
    while True:
        records = [r for r in cluster.sandbox.request_log if r.user == ADMIN_USER and r.resource]
        if previous is not None and len(records) == len(previous):
            return records
        previous = records
        time.sleep(0.5)


def test_each_command_uses_exactly_the_permissions_the_docs_list(
    cluster: OperatorCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    namespace = "plugin-rbac"
    synced_once(cluster, namespace, history={"succeeded": 1, "failed": 1})
    invocations = [
        ("status", ["status", "export"]),
        ("status", ["status"]),
        ("run", ["run", "export", "--wait"]),
        ("logs", ["logs", "export", "--run", "1"]),
        ("logs", ["logs", "export"]),
        ("dry-run", ["dry-run", "export"]),
        ("pause", ["pause", "export", "--wait"]),
        ("resume", ["resume", "export", "--wait"]),
        ("report", ["report", "export", "-f", str(tmp_path / "report.zip")]),
        ("new", [
            "new", "--provider", "webhook", "--type", "export", "--new-authorization", "hook2",
            "--method", "apiKey", "--credential", "apiKey=k-123", "--set", "url=https://hooks.example.com/in",
            "--source", "{url: {url: https://data.example.com/a.jsonl}}", "--name", "export2", "--apply",
        ]),
        ("providers", ["providers"]),
    ]  # fmt: skip
    used: dict[str, set[str]] = {command: set() for command, _ in invocations}
    for command, args in invocations:
        before = len(settled_admin_requests(cluster))
        result = plugin(capsys, cluster, namespace, *args)
        assert result.code == 0, f"{args}: {result.err}"
        for record in settled_admin_requests(cluster)[before:]:
            target = f"{record.resource}/{record.subresource}" if record.subresource else record.resource
            used[command].add(f"{record.verb} {target}")
    documented = documented_permissions()
    assert set(documented) == set(used)
    for command, permissions in used.items():
        needed, optional = documented[command]
        assert permissions <= needed | optional, (
            f"{command} uses undocumented {permissions - needed - optional}"
        )
        assert needed <= permissions, f"{command}: the docs say it needs {needed - permissions}, never used"
