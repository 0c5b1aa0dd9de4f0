"""The sandbox's own instruments: the request log and fault injection.

The verbs follow the API server's audit vocabulary, https://kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from destinations.sandbox import Sandbox, SandboxConfig
from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import configmap

# The emulator's own tools (its /sandbox/v1 endpoints and fault injection); on the real control plane
# the request log is the audit log, covered by test_real_control_plane.py.
pytestmark = pytest.mark.embedded_only

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def test_requests_are_logged_with_verb_resource_and_code(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    sandbox.reset_request_log()
    sandbox_api.post(CONFIGMAPS, configmap("c"))
    sandbox_api.get(f"{CONFIGMAPS}/c")
    sandbox_api.get(CONFIGMAPS)
    sandbox_api.patch(f"{CONFIGMAPS}/c", {"data": {"a": "1"}})
    sandbox_api.delete(f"{CONFIGMAPS}/c")
    sandbox_api.get(f"{CONFIGMAPS}/c")
    records = [(r.verb, r.resource, r.namespace, r.name, r.code, r.user) for r in sandbox.request_log]
    assert records == [
        ("create", "configmaps", "default", "", 201, "sandbox-admin"),
        ("get", "configmaps", "default", "c", 200, "sandbox-admin"),
        ("list", "configmaps", "default", "", 200, "sandbox-admin"),
        ("patch", "configmaps", "default", "c", 200, "sandbox-admin"),
        ("delete", "configmaps", "default", "c", 200, "sandbox-admin"),
        ("get", "configmaps", "default", "c", 404, "sandbox-admin"),
    ]


def test_the_request_log_is_served_over_http_and_can_be_cleared(sandbox_api: SandboxApi) -> None:
    sandbox_api.get(CONFIGMAPS)
    items = sandbox_api.get("/sandbox/v1/requests").json()["items"]
    assert {"verb": "list", "resource": "configmaps", "subresource": ""}.items() <= items[-1].items()
    sandbox_api.delete("/sandbox/v1/requests")
    assert sandbox_api.get("/sandbox/v1/requests").json()["items"] == []


def test_the_request_log_can_be_written_as_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with Sandbox(
        SandboxConfig(request_log_path=log, kubelet=False, kubeconfig_path=tmp_path / "kc")
    ) as sandbox:
        api = SandboxApi(sandbox)
        api.get("/api/v1/namespaces/default/pods/missing/status")
        api.close()
    record = json.loads(log.read_text().splitlines()[-1])
    assert (record["verb"], record["resource"], record["subresource"], record["code"]) == (
        "get",
        "pods",
        "status",
        404,
    )


def test_error_faults_answer_500_but_never_on_sandbox_endpoints(
    sandbox: Sandbox, sandbox_api: SandboxApi
) -> None:
    sandbox.set_faults("error=1")
    response = sandbox_api.get(CONFIGMAPS)
    assert response.status_code == 500 and response.json()["reason"] == "InternalError"
    assert sandbox_api.get("/sandbox/v1/requests").status_code == 200
    sandbox.set_faults(None)
    assert sandbox_api.get(CONFIGMAPS).status_code == 200


def test_conflict_faults_hit_writes_only(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    sandbox.set_faults("conflict=1")
    assert sandbox_api.get(CONFIGMAPS).status_code == 200
    assert sandbox_api.post(CONFIGMAPS, configmap("c")).status_code == 409


def test_faults_are_reproducible_with_a_seed(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    outcomes = []
    for _ in range(2):
        sandbox.set_faults("error=0.5,seed=7")
        outcomes.append([sandbox_api.get(CONFIGMAPS).status_code for _ in range(20)])
    assert outcomes[0] == outcomes[1] and 500 in outcomes[0] and 200 in outcomes[0]


def test_dropped_watches_end_the_stream(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    sandbox_api.post(CONFIGMAPS, configmap("c"))
    sandbox.set_faults("drop-watch=1")
    assert list(sandbox_api.watch(CONFIGMAPS, resourceVersion="0")) == []


def test_faults_can_be_set_over_http(sandbox_api: SandboxApi) -> None:
    response = sandbox_api.request("PUT", "/sandbox/v1/faults", content="latency=1ms@0.5,seed=3")
    assert response.json() == {"faults": "latency=1ms@0.5,seed=3"}


def test_faults_can_target_one_caller_and_spare_the_others(sandbox: Sandbox, sandbox_api: SandboxApi) -> None:
    sandbox.set_faults("error=1,user=system:serviceaccount:destinations-system:destinations-operator")
    assert sandbox_api.get(CONFIGMAPS).status_code == 200  # the test's own admin user is spared
    sandbox.set_faults("error=1,user=sandbox-admin")
    assert sandbox_api.get(CONFIGMAPS).status_code == 500
