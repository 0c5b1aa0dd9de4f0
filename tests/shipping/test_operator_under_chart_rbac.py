"""`helm install` and `kubectl apply -k` onto the real control plane, then the operator running with
the installed ServiceAccount's token: the real RBAC authorizer enforces the chart's ClusterRole (or,
with `watchNamespaces`, its Roles), so a rule the operator needs and the chart lacks fails here.

Only the real control plane authorizes (the emulator lets every authenticated user do anything).
Reference: https://kubernetes.io/docs/reference/access-authn-authz/rbac/ and
https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from destinations.sandbox import Sandbox, render_kubeconfig
from tests.fixtures.sandbox import Kubectl, SandboxApi, wait_until
from tests.operator.harness import AUTHORIZATIONS, CANARY, JOBS, FakeProvider, OperatorProcess
from tests.shipping.rendering import CHART, MANIFESTS, NAMESPACE, RELEASE

pytestmark = pytest.mark.real_only

SERVICE_ACCOUNT_USER = f"system:serviceaccount:{NAMESPACE}:destinations-operator"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.close()


def _helm(helm_binary: Path, sandbox: Sandbox, tmp_path: Path, *args: str) -> str:
    environment = {
        **os.environ,
        "KUBECONFIG": str(sandbox.kubeconfig_path),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }
    result = subprocess.run(
        [str(helm_binary), *args], capture_output=True, text=True, timeout=180, env=environment
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _service_account_kubeconfig(sandbox: Sandbox, sandbox_api: SandboxApi, path: Path) -> Path:
    response = sandbox_api.post(
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/destinations-operator/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert response.status_code == 201, response.text
    token = response.json()["status"]["token"]
    path.write_text(render_kubeconfig(sandbox.url, SERVICE_ACCOUNT_USER, token, sandbox.server.ca_pem))
    return path


def _run_one_job(
    sandbox: Sandbox,
    sandbox_api: SandboxApi,
    kubectl: Kubectl,
    provider: FakeProvider,
    namespace: str,
    timeout: float = 90,
) -> dict[str, Any]:
    """A webhook export in `namespace`, until its first run has succeeded; its status."""
    kubectl("create", "secret", "generic", "credentials", f"--from-literal=apiKey={CANARY}", "-n", namespace)
    authorization = {
        "apiVersion": "destinations.dev/v1",
        "kind": "Authorization",
        "metadata": {"name": "hook"},
        "spec": {"provider": "webhook", "method": "apiKey", "secretRef": {"name": "credentials"}},
    }
    assert sandbox_api.post(AUTHORIZATIONS.format(namespace=namespace), authorization).status_code == 201
    job = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export"},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": provider.url("hook", namespace)},
            "source": {"url": {"url": provider.url("records", namespace)}},
            "schedule": {"every": "1h"},
        },
    }
    assert sandbox_api.post(JOBS.format(namespace=namespace), job).status_code == 201

    def succeeded() -> dict[str, Any] | None:
        status = sandbox_api.get(f"{JOBS.format(namespace=namespace)}/export").json().get("status") or {}
        return status if (status.get("lastRun") or {}).get("result") == "succeeded" else None

    result: dict[str, Any] = wait_until(succeeded, timeout=timeout, message="a successful run")
    return result


def _refusals(sandbox: Sandbox) -> list[str]:
    return [
        f"{record.verb} {record.resource}/{record.subresource} {record.namespace}/{record.name}"
        for record in sandbox.request_log
        if record.user == SERVICE_ACCOUNT_USER and record.code == 403
    ]


@contextlib.contextmanager
def _operator(
    sandbox: Sandbox, sandbox_api: SandboxApi, tmp_path: Path, *args: str
) -> Iterator[OperatorProcess]:
    """`destinations operator` with a token of the installed ServiceAccount, for the `with` block."""
    kubeconfig = _service_account_kubeconfig(sandbox, sandbox_api, tmp_path / "operator-kubeconfig")
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", args)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


def _take_from_the_cluster_role(sandbox_api: SandboxApi, resource: str, verb: str) -> None:
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles/destinations-operator"
    role = sandbox_api.get(path).json()
    for rule in role["rules"]:
        if resource in rule.get("resources", []):
            rule["verbs"] = [granted for granted in rule["verbs"] if granted != verb]
    role["rules"] = [rule for rule in role["rules"] if rule["verbs"]]
    response = sandbox_api.put(path, role)
    assert response.status_code == 200, response.text


def _expect_sync_pods_refused(
    sandbox: Sandbox,
    sandbox_api: SandboxApi,
    kubectl: Kubectl,
    provider: FakeProvider,
    operator: OperatorProcess,
) -> None:
    with pytest.raises(AssertionError, match="timed out waiting for a successful run"):
        _run_one_job(sandbox, sandbox_api, kubectl, provider, "marketing", timeout=20)
    wait_until(
        lambda: "create pods/ marketing/" in _refusals(sandbox),
        timeout=30,
        message=f"the sync pod to be refused; operator log:\n{operator.log[-3000:]}",
    )


@pytest.mark.parametrize(
    ("values", "watched"),
    [({}, None), ({"watchNamespaces": ["marketing"]}, "marketing")],
    ids=["cluster-role", "namespaced-roles"],
)
def test_the_operator_runs_a_job_with_the_charts_service_account(
    sandbox: Sandbox,
    sandbox_api: SandboxApi,
    kubectl: Kubectl,
    helm_binary: Path,
    provider: FakeProvider,
    tmp_path: Path,
    values: dict[str, Any],
    watched: str | None,
) -> None:
    kubectl("create", "namespace", "marketing")
    sets = [f"--set-json=watchNamespaces={values['watchNamespaces']!r}".replace("'", '"')] if values else []
    install = ("install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", *sets)
    assert "STATUS: deployed" in _helm(helm_binary, sandbox, tmp_path, *install)
    with _operator(
        sandbox, sandbox_api, tmp_path, *(("--namespace", watched) if watched else ())
    ) as operator:
        status = _run_one_job(sandbox, sandbox_api, kubectl, provider, "marketing")
    assert status["phase"] == "Sleeping"
    assert _refusals(sandbox) == [], operator.log[-3000:]


def test_kustomize_base_then_the_operator_with_its_service_account(
    sandbox: Sandbox, sandbox_api: SandboxApi, kubectl: Kubectl, provider: FakeProvider, tmp_path: Path
) -> None:
    kubectl("apply", "-k", str(MANIFESTS))
    kubectl("create", "namespace", "marketing")
    with _operator(sandbox, sandbox_api, tmp_path) as operator:
        status = _run_one_job(sandbox, sandbox_api, kubectl, provider, "marketing")
    assert status["phase"] == "Sleeping"
    assert _refusals(sandbox) == [], operator.log[-3000:]


def test_a_rule_missing_from_the_cluster_role_fails_the_run(
    sandbox: Sandbox, sandbox_api: SandboxApi, kubectl: Kubectl, provider: FakeProvider, tmp_path: Path
) -> None:
    """The check above can fail: without `create pods` the API server refuses the sync pod."""
    kubectl("apply", "-k", str(MANIFESTS))
    _take_from_the_cluster_role(sandbox_api, "pods", "create")
    kubectl("create", "namespace", "marketing")
    with _operator(sandbox, sandbox_api, tmp_path) as operator:
        _expect_sync_pods_refused(sandbox, sandbox_api, kubectl, provider, operator)


@pytest.fixture
def enforcing_sandbox(tmp_path: Path, control_plane: str) -> Iterator[Sandbox]:
    """A real API server with OwnerReferencesPermissionEnforcement on, as OpenShift runs by default."""
    with Sandbox(
        kubeconfig_path=tmp_path / "kubeconfig",
        workdir=tmp_path / "sandbox",
        control_plane=control_plane,
        apiserver_args=("--enable-admission-plugins=OwnerReferencesPermissionEnforcement",),
    ) as running:
        yield running


@pytest.mark.parametrize("grant_finalizers", [True, False], ids=["granted", "without-the-grant"])
def test_sync_pods_owner_references_pass_owner_reference_permission_enforcement(
    enforcing_sandbox: Sandbox,
    kubectl_binary: Path,
    provider: FakeProvider,
    tmp_path: Path,
    grant_finalizers: bool,
) -> None:
    """blockOwnerDeletion needs `update destinationjobs/finalizers`: granted, runs succeed; without it,
    the API server refuses every sync pod."""
    sandbox_api = SandboxApi(enforcing_sandbox)
    kubectl = Kubectl(kubectl_binary, enforcing_sandbox.kubeconfig_path, tmp_path / "kube-cache")
    kubectl("apply", "-k", str(MANIFESTS))
    if not grant_finalizers:
        _take_from_the_cluster_role(sandbox_api, "destinationjobs/finalizers", "update")
    kubectl("create", "namespace", "marketing")
    try:
        with _operator(enforcing_sandbox, sandbox_api, tmp_path) as operator:
            if grant_finalizers:
                status = _run_one_job(enforcing_sandbox, sandbox_api, kubectl, provider, "marketing")
                assert status["phase"] == "Sleeping"
                assert _refusals(enforcing_sandbox) == [], operator.log[-3000:]
            else:
                _expect_sync_pods_refused(enforcing_sandbox, sandbox_api, kubectl, provider, operator)
    finally:
        sandbox_api.close()
