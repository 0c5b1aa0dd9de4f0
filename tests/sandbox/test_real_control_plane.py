"""The real control plane: its harness, its audit log as the request log, the kubelet against it, and
the real API server's validation of every pod the operator renders.

Reference: https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/ (flags),
https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/ (audit events), envtest's conventions
(https://book.kubebuilder.io/reference/envtest.html: KUBEBUILDER_ASSETS).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from destinations import DEFAULT_IMAGE
from destinations.api.models import DestinationJobSpec
from destinations.controller.pods import AuthorizationInfo, JobIdentity, render_sync_pod
from destinations.sandbox import ControlPlane, ControlPlaneError, Sandbox, find_binaries
from tests.fixtures.sandbox import Kubectl, SandboxApi, wait_until

pytestmark = pytest.mark.real_only

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_JOBS = sorted((REPO_ROOT / "examples" / "jobs").glob("*.yaml"))
PODS = "/api/v1/namespaces/default/pods"


def _running_with(argument: str) -> str:
    """The processes whose command line holds `argument` (pgrep exits 1 when there is none)."""
    found = subprocess.run(["pgrep", "-af", "--", argument], capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr
    return found.stdout


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_binaries_come_from_kubebuilder_assets_when_it_holds_them(tmp_path: Path) -> None:
    built = find_binaries()
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
        (assets / name).symlink_to(built / name)
    assert find_binaries({"KUBEBUILDER_ASSETS": str(assets)}) == assets.resolve()


def test_missing_binaries_are_an_error_that_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match="KUBEBUILDER_ASSETS"):
        ControlPlane(binaries=tmp_path).start()


def test_the_control_plane_stops_leaving_no_process_port_or_directory(control_plane: str) -> None:
    plane = ControlPlane(users={"someone": "someone-token"}).start()
    port, workdir = plane.port, plane.workdir
    processes = [process.process for process in plane._processes]
    assert workdir is not None and workdir.is_dir() and _port_open(port)
    version = plane._request("GET", "/version")
    assert version is not None and version["gitVersion"] == "v1.36.3"
    plane.stop()
    assert all(process is not None and process.poll() is not None for process in processes)
    assert not _port_open(port)
    assert not workdir.exists()


def test_the_audit_log_is_the_request_log(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    sandbox.reset_request_log()
    sandbox_api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "audited"}})
    sandbox_api.get("/api/v1/namespaces/default/configmaps/audited")
    sandbox_api.get("/api/v1/namespaces/default/configmaps/missing")

    def logged() -> list[tuple[str, str, str, int]]:
        return [
            (record.verb, record.resource, record.name, record.code)
            for record in sandbox.request_log
            if record.resource == "configmaps" and record.user == "sandbox-admin"
        ]

    wait_until(lambda: len(logged()) >= 3, message="three audit records")
    assert logged() == [
        ("create", "configmaps", "", 201),
        ("get", "configmaps", "audited", 200),
        ("get", "configmaps", "missing", 404),
    ]


def test_the_kubelet_registers_a_ready_node_and_serves_logs_through_the_api_server(
    sandbox_api: SandboxApi, kubectl: Kubectl
) -> None:
    node = sandbox_api.get("/api/v1/nodes/sandbox-node").json()
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]} == {"Ready": "True"}
    pod = {
        "metadata": {"name": "talker"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": DEFAULT_IMAGE,
                    "command": ["python", "-c", "print('hello from the pod')"],
                }
            ],
        },
    }
    assert sandbox_api.post(PODS, pod).status_code == 201
    wait_until(
        lambda: sandbox_api.get(f"{PODS}/talker").json().get("status", {}).get("phase") == "Succeeded",
        message="the pod to succeed",
    )
    assert kubectl("logs", "talker").stdout == "hello from the pod\n"


def _example_jobs() -> list[tuple[str, dict[str, Any]]]:
    jobs = []
    for path in EXAMPLE_JOBS:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document and document.get("kind") == "DestinationJob":
                jobs.append((f"{path.stem}/{document['metadata']['name']}", document))
    return jobs


def _dry_run_pod(sandbox_api: SandboxApi, spec: DestinationJobSpec, secret_name: str = "credentials") -> Any:
    pod = render_sync_pod(
        JobIdentity(namespace="default", name="job", uid="8d5a1f2c-4f0e-4b53-9a3e-0c9d7e1b2a44"),
        spec,
        12,
        "job-12",
        AuthorizationInfo(method="apiKey", secret_name=secret_name),
        image=DEFAULT_IMAGE,
    )
    return sandbox_api.post(f"{PODS}?dryRun=All", pod)


def test_every_example_job_renders_a_pod_the_api_server_accepts(sandbox_api: SandboxApi) -> None:
    examples = _example_jobs()
    assert len(examples) >= 7, "the examples are the corpus; they must exist"
    refused = {}
    for name, document in examples:
        response = _dry_run_pod(sandbox_api, DestinationJobSpec.model_validate(document["spec"]))
        if response.status_code != 201:
            refused[name] = response.json().get("message")
    assert refused == {}


def test_pod_template_overrides_render_a_pod_the_api_server_accepts(sandbox_api: SandboxApi) -> None:
    (_, document), *_ = _example_jobs()
    spec = dict(document["spec"])
    spec["podTemplate"] = {
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "sync", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                            ]
                        }
                    ]
                }
            }
        },
        "serviceAccountName": "sync-runner",
        "imagePullSecrets": [{"name": "registry"}],
        "labels": {"team": "growth"},
        "annotations": {"example.com/owner": "growth team"},
        "priorityClassName": "system-cluster-critical",
    }
    response = _dry_run_pod(sandbox_api, DestinationJobSpec.model_validate(spec))
    # The ServiceAccount does not exist, which the ServiceAccount admission plugin checks last.
    assert response.status_code in (201, 403), response.text
    if response.status_code == 403:
        assert 'serviceaccount "sync-runner" not found' in response.json()["message"]


def test_kubectl_version_reports_the_built_server(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.36.3"
    assert version["serverVersion"]["major"] == "1" and version["serverVersion"]["minor"] == "36"


def test_no_component_outlives_the_sandbox(tmp_path: Path, control_plane: str) -> None:
    sandbox = Sandbox(kubeconfig_path=tmp_path / "kubeconfig", control_plane=control_plane).start()
    port = sandbox.port
    sandbox.stop()
    assert not _port_open(port)
    assert _running_with(f"--secure-port {port}") == ""


def test_a_killed_owner_leaves_no_component_behind(control_plane: str) -> None:
    """The components die with the thread that started them, even when it gets no chance to stop them."""
    code = (
        "from destinations.sandbox import ControlPlane; plane = ControlPlane().start(); "
        "print(plane.port, flush=True); import time; time.sleep(600)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    port = int(owner.stdout.readline())
    owner.kill()
    owner.wait(10)
    wait_until(
        lambda: _running_with(f"--secure-port {port}") == "",
        timeout=15,
        message="kube-apiserver to die with its owner",
    )
    # (Its port is not checked: once free, another test's control plane may take it at once.)


WIDGETS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.rewind.example.com"},
    "spec": {
        "group": "rewind.example.com",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def test_rewind_puts_every_object_back_as_it_was_at_the_checkpoint(control_plane: str) -> None:
    """What the test bed does between tests on a worker's shared control plane (docs/testing.md)."""
    plane = ControlPlane().start()
    kept = "/api/v1/namespaces/kept"
    try:
        plane._request("POST", "/api/v1/namespaces", {"metadata": {"name": "kept"}})
        for name in ("changed", "deleted"):
            plane._request("POST", f"{kept}/configmaps", {"metadata": {"name": name}, "data": {"v": "1"}})
        plane.checkpoint()
        # Created since: a namespace with an object in it, and a CRD; changed: a ConfigMap's data and a
        # namespace's labels; deleted: a ConfigMap.
        plane._request("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
        plane._request("POST", "/api/v1/namespaces/team/configmaps", {"metadata": {"name": "c"}, "data": {}})
        plane._request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGETS_CRD)
        plane._request(
            "PUT", f"{kept}/configmaps/changed", {"metadata": {"name": "changed"}, "data": {"v": "2"}}
        )
        plane._request("PUT", kept, {"metadata": {"name": "kept", "labels": {"relabelled": "yes"}}})
        plane._request("DELETE", f"{kept}/configmaps/deleted")
        plane.reset_request_records()
        plane._request("GET", kept)

        plane.rewind()

        assert plane._get("/api/v1/namespaces/team") is None
        assert plane._get("/api/v1/namespaces/team/configmaps/c") is None
        crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.rewind.example.com"
        assert plane._get(crd) is None
        namespace = plane._get(kept)
        assert namespace is not None and "relabelled" not in (namespace["metadata"].get("labels") or {})
        changed = plane._get(f"{kept}/configmaps/changed")
        assert changed is not None and changed["data"] == {"v": "1"}
        assert plane._get(f"{kept}/configmaps/deleted") is not None
        # The request log is the caller's to reset: a rewind keeps what was logged before it.
        assert ("get", "namespaces", "kept") in [
            (r.verb, r.resource, r.name) for r in plane.request_records()
        ]
        # The same names can be used again at once, the CRD's included.
        plane._request("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
        plane._request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGETS_CRD)
    finally:
        plane.stop()


def test_rewind_without_a_checkpoint_is_an_error(control_plane: str) -> None:
    plane = ControlPlane(controller_manager=False).start()
    try:
        with pytest.raises(ControlPlaneError, match=r"rewind\(\) needs a checkpoint\(\) first"):
            plane.rewind()
    finally:
        plane.stop()


def test_the_controller_managers_requests_are_its_own_not_the_admins(
    sandbox: Sandbox, sandbox_api: SandboxApi
) -> None:
    """Tests count the admin's requests (e.g. the plugin's permissions): a controller's must not count."""
    sandbox.reset_request_log()
    sandbox_api.post("/api/v1/namespaces", {"metadata": {"name": "controlled"}})
    wait_until(
        lambda: sandbox_api.get("/api/v1/namespaces/controlled/serviceaccounts/default").status_code == 200,
        message="the namespace's default ServiceAccount",
    )

    def creators() -> set[str]:
        return {
            record.user
            for record in sandbox.request_log
            if record.verb == "create"
            and record.resource == "serviceaccounts"
            and record.namespace == "controlled"
        }

    assert wait_until(creators, message="the ServiceAccount's create in the audit log") == {
        "system:kube-controller-manager"
    }
