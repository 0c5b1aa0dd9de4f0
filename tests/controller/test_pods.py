"""The sync pod of a run: hardened, credentials only as a read-only volume, result read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from destinations.api.models import DestinationJobSpec, RunResult
from destinations.api.runs import (
    CREDENTIALS_DIR,
    EXIT_CODES,
    JOB_ENVIRONMENT_VARIABLE,
    TERMINATION_MESSAGE_PATH,
)
from destinations.controller.pods import (
    JOB_LABEL,
    RUN_LABEL,
    AuthorizationInfo,
    JobIdentity,
    read_pod_outcome,
    render_sync_pod,
)

JOB = JobIdentity(namespace="marketing", name="vip-export", uid="1234-uid")
AUTHORIZATION = AuthorizationInfo(method="apiKey", secret_name="webhook-credentials", endpoint=None)


def job_spec(**overrides: Any) -> DestinationJobSpec:
    manifest: dict[str, Any] = {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "receiver"},
        "config": {"url": "http://receiver.example/records"},
        "source": {
            "warehouse": {"connectionSecretRef": {"name": "warehouse", "key": "dsn"}, "query": "SELECT 1"}
        },
        "runTimeout": "30m",
    }
    manifest.update(overrides)
    return DestinationJobSpec.model_validate(manifest)


def render(spec: DestinationJobSpec | None = None) -> dict[str, Any]:
    return render_sync_pod(JOB, spec or job_spec(), 7, "vip-export-7", AUTHORIZATION, image="example/image:1")


def test_sync_pod_is_owned_by_its_job_and_labelled_with_job_and_run() -> None:
    pod = render()
    (owner,) = pod["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "name": "vip-export",
        "uid": "1234-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert pod["metadata"]["labels"][JOB_LABEL] == "vip-export"
    assert pod["metadata"]["labels"][RUN_LABEL] == "7"


def test_sync_pod_runs_non_root_with_read_only_root_filesystem_and_no_escalation() -> None:
    pod = render()
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_credentials_reach_the_pod_only_as_a_read_only_secret_volume() -> None:
    pod = render()
    (container,) = pod["spec"]["containers"]
    credentials = next(v for v in pod["spec"]["volumes"] if v["name"] == "credentials")
    assert credentials["secret"]["secretName"] == "webhook-credentials"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "credentials")
    assert mount == {"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True}
    assert all("valueFrom" not in env for env in container["env"])


def test_warehouse_connection_secret_is_mounted_read_only() -> None:
    pod = render()
    (container,) = pod["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "secret-warehouse")
    assert mount["readOnly"] is True


def test_job_description_travels_in_one_environment_variable() -> None:
    (container,) = render()["spec"]["containers"]
    job = json.loads(next(e["value"] for e in container["env"] if e["name"] == JOB_ENVIRONMENT_VARIABLE))
    assert (job["namespace"], job["name"], job["run"], job["authMethod"]) == (
        "marketing",
        "vip-export",
        7,
        "apiKey",
    )
    assert job["spec"]["config"] == {"url": "http://receiver.example/records"}


def test_a_confirmed_removal_run_reaches_the_worker_and_is_absent_otherwise() -> None:
    def request(pod: dict[str, Any]) -> dict[str, Any]:
        (container,) = pod["spec"]["containers"]
        return dict(
            json.loads(next(e["value"] for e in container["env"] if e["name"] == JOB_ENVIRONMENT_VARIABLE))
        )

    confirmed = render_sync_pod(
        JOB, job_spec(), 7, "vip-export-7", AUTHORIZATION, image="example/image:1", confirmed_removal_run=6
    )
    assert request(confirmed)["confirmedRemovalRun"] == 6
    assert "confirmedRemovalRun" not in request(render())


def test_run_timeout_becomes_the_active_deadline() -> None:
    assert render()["spec"]["activeDeadlineSeconds"] == 1800


def test_pod_template_overrides_apply_but_operator_labels_win() -> None:
    spec = job_spec(
        podTemplate={
            "labels": {"team": "growth", JOB_LABEL: "spoofed"},
            "nodeSelector": {"pool": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
            "serviceAccountName": "sync",
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "low",
            "annotations": {"note": "x"},
        }
    )
    pod = render(spec)
    assert pod["metadata"]["labels"]["team"] == "growth"
    assert pod["metadata"]["labels"][JOB_LABEL] == "vip-export"
    assert pod["spec"]["nodeSelector"] == {"pool": "batch"}
    assert pod["spec"]["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1"},
        "limits": {"memory": "1Gi"},
    }
    assert pod["spec"]["serviceAccountName"] == "sync"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["spec"]["priorityClassName"] == "low"
    assert pod["metadata"]["annotations"] == {"note": "x"}


def terminated_pod(phase: str, exit_code: int, message: str = "", reason: str = "") -> dict[str, Any]:
    state = {"terminated": {"exitCode": exit_code, "message": message, "reason": reason or "Completed"}}
    return {"status": {"phase": phase, "containerStatuses": [{"name": "sync", "state": state}]}}


def test_running_pod_has_no_outcome_yet() -> None:
    running = {
        "status": {"phase": "Running", "containerStatuses": [{"name": "sync", "state": {"running": {}}}]}
    }
    assert read_pod_outcome(running).finished is False


def test_termination_message_is_the_run_report() -> None:
    message = json.dumps(
        {"result": "succeeded", "records": {"read": 5, "added": 4, "omitted": 1}, "message": "ok"}
    )
    outcome = read_pod_outcome(terminated_pod("Succeeded", 0, message))
    assert outcome.report is not None
    assert outcome.report.result == RunResult.SUCCEEDED
    assert (outcome.report.records.read, outcome.report.records.added) == (5, 4)


def test_a_credential_in_the_reports_message_is_masked_before_it_is_shown() -> None:
    """Whatever worker image or provider plug-in wrote the report, status and Events never show it."""
    message = json.dumps(
        {"result": "failed", "message": "no answer from https://u:pw-7f1a@api.example/x?key=k-3c9b"}
    )
    outcome = read_pod_outcome(terminated_pod("Failed", 1, message))
    assert outcome.report is not None
    assert outcome.report.message == "no answer from https://u:***@api.example/x?key=***"


def test_rate_limited_report_carries_retry_after() -> None:
    message = json.dumps({"result": "rate_limited", "retryAfterSeconds": 120})
    outcome = read_pod_outcome(terminated_pod("Succeeded", 0, message))
    assert outcome.report is not None
    assert outcome.report.result == RunResult.RATE_LIMITED
    assert outcome.report.retry_after_seconds == 120


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Failed", "reason": "DeadlineExceeded"}, "exceeded runTimeout"),
        (
            {"phase": "Failed", "reason": "Evicted", "message": "node out of memory"},
            "evicted: node out of memory",
        ),
    ],
)
def test_pod_failed_without_report_is_an_error_saying_why(status: dict[str, Any], expected: str) -> None:
    outcome = read_pod_outcome({"status": status})
    assert outcome.finished and outcome.report is not None
    assert outcome.report.result == RunResult.FAILED
    assert expected in outcome.report.message


def test_unreadable_termination_message_falls_back_to_the_exit_code() -> None:
    outcome = read_pod_outcome(terminated_pod("Failed", 137, "Killed", reason="OOMKilled"))
    assert outcome.report is not None
    assert outcome.report.result == RunResult.FAILED
    assert "OOMKilled" in outcome.report.message and "137" in outcome.report.message


def test_termination_message_path_is_the_kubernetes_default() -> None:
    assert render()["spec"]["containers"][0]["terminationMessagePath"] == TERMINATION_MESSAGE_PATH


def test_a_rate_limited_run_ends_its_container_successfully() -> None:
    """A rate limit is not an error: exit code 0, so the pod is Succeeded and `kubectl get pods` shows
    Completed; the termination message says rate_limited (docs/lifecycle.md#rate-limited-runs)."""
    assert EXIT_CODES[RunResult.RATE_LIMITED] == 0
    assert EXIT_CODES[RunResult.FAILED] == 1


def test_an_exit_code_without_a_report_is_success_or_failure_never_a_rate_limit() -> None:
    outcome = read_pod_outcome(terminated_pod("Succeeded", 0))
    assert outcome.report is not None and outcome.report.result == RunResult.SUCCEEDED
    outcome = read_pod_outcome(terminated_pod("Failed", 75, reason="Error"))
    assert outcome.report is not None and outcome.report.result == RunResult.FAILED
