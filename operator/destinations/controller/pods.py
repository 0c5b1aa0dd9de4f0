"""Sync pods: render the pod of one run, and read its result back.

The pod is the only place credentials meet the worker, so the rules here are strict: the Authorization's
Secret arrives as a read-only volume (never env values, never in the pod spec), the container runs as
non-root with a read-only root filesystem and no privilege escalation, and the job's description (no
secrets in it) travels in one environment variable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from destinations import API_VERSION
from destinations.api.models import DestinationJobSpec, RecordCounts, RunResult
from destinations.api.runs import (
    CREDENTIALS_DIR,
    DATA_DIR,
    EXIT_CODES,
    JOB_ENVIRONMENT_VARIABLE,
    SCRATCH_DIR,
    SECRETS_DIR,
    TERMINATION_MESSAGE_PATH,
    RunReport,
    RunRequest,
)
from destinations.redaction import redact_credentials

_VOLUME_NAME_LIMIT = 63
JOB_LABEL = "destinations.dev/job"
RUN_LABEL = "destinations.dev/run"
#: Marks a dry run's pod (instead of RUN_LABEL); the pod's annotation DRY_RUN_ANNOTATION names the request.
DRY_RUN_LABEL = "destinations.dev/dry-run"
#: A new value on a job asks for a dry run; the operator echoes it in `status.lastDryRun.requestedAt`.
DRY_RUN_ANNOTATION = "destinations.dev/dry-run-requested-at"
CONTAINER_NAME = "sync"
NON_ROOT_USER = 65532
#: Group-readable so the non-root user (via fsGroup) can read the keys; nobody can write them.
SECRET_FILE_MODE = 0o440
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


@dataclass(frozen=True)
class JobIdentity:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class AuthorizationInfo:
    """What a sync pod needs of the job's Authorization: never the credentials themselves."""

    method: str
    secret_name: str | None
    endpoint: str | None = None


def render_sync_pod(
    job: JobIdentity,
    spec: DestinationJobSpec,
    run: int,
    pod_name: str,
    authorization: AuthorizationInfo,
    *,
    image: str,
    image_pull_policy: str = "IfNotPresent",
    default_resources: Mapping[str, Mapping[str, str]] | None = None,
    confirmed_removal_run: int | None = None,
    dry_run_requested_at: str | None = None,
) -> dict[str, Any]:
    """The Pod manifest of run `run` of the job.

    Resources: the job's podTemplate.resources, else the operator's `default_resources`, else
    DEFAULT_RESOURCES. `confirmed_removal_run`: the job's `destinations.dev/confirm-removal`
    annotation, passed to the worker's mass-removal guard. `dry_run_requested_at`: the pod is the
    dry run answering this `destinations.dev/dry-run-requested-at` value (label `destinations.dev/dry-run`
    instead of a run label, the value in the pod's annotation of that name; the worker writes nothing).
    """
    overrides = spec.pod_template
    request = RunRequest(
        namespace=job.namespace,
        name=job.name,
        uid=job.uid,
        run=run,
        spec=spec.to_manifest(),
        auth_method=authorization.method,
        endpoint=authorization.endpoint,
        confirmed_removal_run=confirmed_removal_run,
        dry_run=dry_run_requested_at is not None,
        dry_run_requested_at=dry_run_requested_at,
    )
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": SCRATCH_DIR}]
    if authorization.secret_name is not None:
        volumes.append(_secret_volume("credentials", authorization.secret_name))
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
    for secret_name in sorted(_endpoint_secret_names(spec)):
        volume_name = secret_volume_name(secret_name)
        volumes.append(_secret_volume(volume_name, secret_name))
        mounts.append({"name": volume_name, "mountPath": f"{SECRETS_DIR}/{secret_name}", "readOnly": True})
    for role, endpoint in (("source", spec.source), ("sink", spec.sink)):
        if endpoint is None or endpoint.file is None:
            continue
        file_volume = endpoint.file.volume
        volume: dict[str, Any] = {"name": f"data-{role}"}
        if file_volume.persistent_volume_claim is not None:
            volume["persistentVolumeClaim"] = {
                "claimName": file_volume.persistent_volume_claim,
                "readOnly": role == "source",
            }
        elif file_volume.config_map is not None:
            volume["configMap"] = {"name": file_volume.config_map}
        else:
            volume["hostPath"] = {"path": file_volume.host_path, "type": "Directory"}
        volumes.append(volume)
        mounts.append(
            {"name": f"data-{role}", "mountPath": f"{DATA_DIR}/{role}", "readOnly": role == "source"}
        )

    labels = dict(overrides.labels) if overrides else {}
    labels.update(
        {
            JOB_LABEL: job.name[:63],
            RUN_LABEL: str(run),
            "app.kubernetes.io/name": "destinations-sync",
            "app.kubernetes.io/managed-by": "destinations-operator",
        }
    )
    annotations = dict(overrides.annotations) if overrides else {}
    if dry_run_requested_at is not None:
        del labels[RUN_LABEL]  # not a run: the lifecycle never sees it
        labels[DRY_RUN_LABEL] = "true"
        annotations[DRY_RUN_ANNOTATION] = dry_run_requested_at
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "command": ["destinations", "worker"],
        "args": [
            "--credentials-dir",
            CREDENTIALS_DIR,
            "--secrets-dir",
            SECRETS_DIR,
            "--data-dir",
            DATA_DIR,
            "--termination-log",
            TERMINATION_MESSAGE_PATH,
        ],
        "env": [
            {
                "name": JOB_ENVIRONMENT_VARIABLE,
                "value": request.model_dump_json(by_alias=True, exclude_none=True),
            },
            {"name": "HOME", "value": SCRATCH_DIR},
            {"name": "TMPDIR", "value": SCRATCH_DIR},
        ],
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "resources": (
            overrides.resources.model_dump(by_alias=True)
            if overrides and overrides.resources
            else {
                section: dict(values) for section, values in (default_resources or DEFAULT_RESOURCES).items()
            }
        ),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": max(1, int(spec.run_timeout.total_seconds())),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_USER,
            "runAsGroup": NON_ROOT_USER,
            "fsGroup": NON_ROOT_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if overrides is not None:
        if overrides.node_selector:
            pod_spec["nodeSelector"] = dict(overrides.node_selector)
        if overrides.tolerations:
            pod_spec["tolerations"] = [
                t.model_dump(by_alias=True, exclude_none=True) for t in overrides.tolerations
            ]
        if overrides.affinity is not None and overrides.affinity.to_pod():
            pod_spec["affinity"] = overrides.affinity.to_pod()
        if overrides.service_account_name:
            pod_spec["serviceAccountName"] = overrides.service_account_name
        if overrides.image_pull_secrets:
            pod_spec["imagePullSecrets"] = [{"name": ref.name} for ref in overrides.image_pull_secrets]
        if overrides.priority_class_name:
            pod_spec["priorityClassName"] = overrides.priority_class_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": job.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "DestinationJob",
                    "name": job.name,
                    "uid": job.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }


def secret_volume_name(secret_name: str) -> str:
    """The volume of a data endpoint's Secret: `secret-<name>`, a DNS-1123 label as volume names must be.

    Secret names may hold dots and run to 253 characters; such a name becomes `secret-<name with
    dashes, cut>-<hash of the name>`, so two Secrets never share a volume (`events-api.headers` and
    `events-api-headers` get different ones).
    """
    plain = f"secret-{secret_name}"
    if len(plain) <= _VOLUME_NAME_LIMIT and "." not in plain:
        return plain
    digest = hashlib.sha256(secret_name.encode()).hexdigest()[:8]
    room = _VOLUME_NAME_LIMIT - len(digest) - 1
    return f"{plain.replace('.', '-')[:room].rstrip('-')}-{digest}"


def _secret_volume(name: str, secret_name: str) -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret_name, "defaultMode": SECRET_FILE_MODE}}


def _endpoint_secret_names(spec: DestinationJobSpec) -> set[str]:
    names: set[str] = set()
    for endpoint in (spec.source, spec.sink):
        if endpoint is None:
            continue
        if endpoint.warehouse is not None:
            names.add(endpoint.warehouse.connection_secret_ref.name)
        if endpoint.url is not None and endpoint.url.headers_secret_ref is not None:
            names.add(endpoint.url.headers_secret_ref.name)
    return names


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class PodOutcome:
    """What a sync pod says about its run: finished (with a report) or still in flight."""

    finished: bool
    report: RunReport | None = None


#: Without a report, an exit code says only success or failure (a rate-limited run always reports).
_EXIT_RESULTS = {
    EXIT_CODES[RunResult.SUCCEEDED]: RunResult.SUCCEEDED,
    EXIT_CODES[RunResult.FAILED]: RunResult.FAILED,
}


def read_pod_outcome(pod: dict[str, Any]) -> PodOutcome:
    """Read a run's result from the pod's status, the termination message first.

    Kubernetes keeps the termination message in the container status once the container ends; the
    operator reads it here before it deletes any pod. A pod that failed without a readable message
    (evicted, out of memory, past its deadline) still yields a failed report saying why.
    """
    status = pod.get("status") or {}
    phase = status.get("phase")
    terminated = _terminated_state(status)
    if phase not in ("Succeeded", "Failed") and terminated is None:
        return PodOutcome(finished=False)
    if terminated is not None and terminated.get("message"):
        report = _parse_report(terminated["message"])
        if report is not None:
            return PodOutcome(finished=True, report=report)
    reason = status.get("reason") or (terminated or {}).get("reason") or ""
    message = status.get("message") or ""
    if reason == "DeadlineExceeded":
        return PodOutcome(True, _failed("the run exceeded runTimeout and was stopped"))
    if reason == "Evicted":
        return PodOutcome(True, _failed(f"the sync pod was evicted: {message or 'no reason given'}"))
    exit_code = (terminated or {}).get("exitCode")
    result = _EXIT_RESULTS.get(exit_code, RunResult.FAILED) if isinstance(exit_code, int) else None
    if phase == "Succeeded" or result == RunResult.SUCCEEDED:
        return PodOutcome(
            True, RunReport(result=RunResult.SUCCEEDED, message="the worker reported no counts")
        )
    detail = f"exit code {exit_code}" if exit_code is not None else "no exit code"
    if reason:
        detail = f"{reason}, {detail}"
    return PodOutcome(True, _failed(f"the sync container failed without a report ({detail})"))


def _terminated_state(status: dict[str, Any]) -> dict[str, Any] | None:
    for container in status.get("containerStatuses") or []:
        if container.get("name") == CONTAINER_NAME:
            state = container.get("state") or {}
            terminated = state.get("terminated")
            return terminated if isinstance(terminated, dict) else None
    return None


def _parse_report(message: str) -> RunReport | None:
    """The worker's report; its message is masked again (`redact_credentials`) before the operator
    shows it in status and Events, whatever worker image or provider plug-in wrote it."""
    try:
        report = RunReport.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None
    rejections = [
        rejection.model_copy(
            update={"key": redact_credentials(rejection.key), "reason": redact_credentials(rejection.reason)}
        )
        for rejection in report.rejections or []
    ]
    return report.model_copy(
        update={"message": redact_credentials(report.message), "rejections": rejections or None}
    )


def _failed(message: str) -> RunReport:
    return RunReport(result=RunResult.FAILED, records=RecordCounts(), message=message)
