"""Refusals and connection problems become sentences; kubeconfig, --context and -n behave as in kubectl.

A small local server answers like kube-apiserver (the `Status` bodies below are the documented shape of
a refusal, https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind) and records
the paths asked, so the namespace and context rules can be checked without a cluster. The RBAC test runs
the plugin as a ServiceAccount bound to a read-only Role on the real control plane, whose authorizer
enforces RBAC; the embedded emulator authorizes every authenticated caller, so it skips there.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from destinations.plugin.main import selected_command
from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi
from tests.plugin.invoke import invoke

FORBIDDEN_PATCH = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": 'destinationjobs.destinations.dev "export" is forbidden: User "alice" cannot patch resource '
    '"destinationjobs" in API group "destinations.dev" in the namespace "team"',
    "reason": "Forbidden",
    "details": {"name": "export", "group": "destinations.dev", "kind": "destinationjobs"},
    "code": 403,
}
JOB = {
    "apiVersion": "destinations.dev/v1",
    "kind": "DestinationJob",
    "metadata": {"name": "export", "namespace": "team", "generation": 1},
    "spec": {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "hook"},
        "config": {"url": "https://hooks.example.com/in"},
        "source": {"url": {"url": "https://data.example.com/users.jsonl"}},
    },
    "status": {"phase": "Sleeping"},
}


class FakeApiServer:
    """Answers GETs of jobs with JOB (lists with no items), PATCHes and Authorizations with 403; records
    every path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                server.paths.append(f"GET {self.path}")
                if self.path.endswith("/destinationjobs/export"):
                    self._answer(200, JOB)
                elif "/authorizations/" in self.path:
                    self._answer(403, {**FORBIDDEN_PATCH, "message": "authorizations is forbidden"})
                elif self.path.endswith("/destinationjobs"):
                    self._answer(200, {"kind": "DestinationJobList", "items": []})
                else:
                    self._answer(
                        404, {"kind": "Status", "reason": "NotFound", "code": 404, "message": "nope"}
                    )

            def do_PATCH(self) -> None:
                server.paths.append(f"PATCH {self.path}")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(403, FORBIDDEN_PATCH)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def fake_api() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.close()


def kubeconfig(path: Path, server: str, token: str = "alice-token", ca: str | None = None) -> Path:
    """Two contexts on one server: `first` (namespace team, current) and `second` (namespace ops)."""
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = ca
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "alice", "user": {"token": token}}],
        "contexts": [
            {"name": "first", "context": {"cluster": "test", "user": "alice", "namespace": "team"}},
            {"name": "second", "context": {"cluster": "test", "user": "alice", "namespace": "ops"}},
        ],
        "current-context": "first",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_a_refused_write_names_the_verb_the_resource_and_the_user(
    fake_api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, kubeconfig(tmp_path / "config", fake_api.url), "pause", "export")
    assert result.code == 1
    assert result.err == (
        'error: permission denied: user "alice" may not patch destinationjobs.destinations.dev in namespace '
        '"team", which is needed to pause the job. Ask a cluster admin for that permission '
        "(docs/kubectl-plugin.md lists what each command needs); check it with `kubectl auth can-i patch "
        "destinationjobs.destinations.dev -n team`.\n"
    )


def test_namespace_comes_from_the_context_unless_n_or_context_say_otherwise(
    fake_api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = kubeconfig(tmp_path / "config", fake_api.url)
    invoke(capsys, config, "status")
    invoke(capsys, config, "--context", "second", "status")
    invoke(capsys, config, "status", "-n", "sales")
    invoke(capsys, config, "status", "-A")
    assert fake_api.paths == [
        "GET /apis/destinations.dev/v1/namespaces/team/destinationjobs",
        "GET /apis/destinations.dev/v1/namespaces/ops/destinationjobs",
        "GET /apis/destinations.dev/v1/namespaces/sales/destinationjobs",
        "GET /apis/destinations.dev/v1/destinationjobs",
    ]


def test_missing_objects_unknown_contexts_and_unreachable_servers_are_sentences(
    fake_api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = kubeconfig(tmp_path / "config", fake_api.url)
    missing = invoke(capsys, config, "status", "nope")
    assert (missing.code, missing.err) == (1, 'error: destinationjob "nope" not found in namespace "team"\n')
    unknown = invoke(capsys, config, "--context", "third", "status")
    assert (unknown.code, unknown.err) == (
        1,
        f'error: context "third" is not in {config}; its contexts: first, second\n',
    )
    closed = kubeconfig(tmp_path / "closed", "http://127.0.0.1:9")
    unreachable = invoke(capsys, closed, "status")
    assert unreachable.code == 1
    assert unreachable.err.startswith("error: cannot reach the API server at http://127.0.0.1:9: ")


# The embedded emulator authorizes every authenticated caller (a documented difference): only a real
# API server can refuse a request for want of RBAC.
@pytest.mark.real_only
def test_without_rbac_for_patch_pause_says_which_permission_is_missing(
    sandbox: Sandbox,
    sandbox_api: SandboxApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace = "team"
    objects: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        (
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer"}},
        ),
        (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "jobs-viewer"},
                "rules": [
                    {
                        "apiGroups": ["destinations.dev"],
                        "resources": ["destinationjobs"],
                        "verbs": ["get", "list"],
                    }
                ],
            },
        ),
        (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "viewer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jobs-viewer"},
                "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
            },
        ),
        (
            f"/apis/destinations.dev/v1/namespaces/{namespace}/destinationjobs",
            {**JOB, "metadata": {"name": "export"}, "status": None},
        ),
    ]
    for path, body in objects:
        body = {key: value for key, value in body.items() if value is not None}
        response = sandbox_api.post(path, body)
        assert response.status_code == 201, response.text
    response = sandbox_api.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/viewer/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    assert response.status_code == 201, response.text
    ca = base64.b64encode(sandbox.server.ca_pem or b"").decode()
    config = kubeconfig(tmp_path / "viewer", sandbox.url, response.json()["status"]["token"], ca)
    allowed = invoke(capsys, config, "status", "export")
    assert allowed.code == 0, allowed.err
    refused = invoke(capsys, config, "pause", "export")
    assert refused.code == 1
    assert refused.err.startswith(
        'error: permission denied: user "system:serviceaccount:team:viewer" may not patch '
        'destinationjobs.destinations.dev in namespace "team", which is needed to pause the job.'
    )


def test_the_command_is_found_after_options_that_take_values() -> None:
    assert selected_command(["--context", "run", "-n", "pause", "status", "export"]) == "status"
    assert selected_command(["--kubeconfig", "logs", "logs", "run"]) == "logs"
    assert selected_command(["-A", "--no-color"]) is None


def test_status_without_read_access_to_authorizations_still_shows_the_job(
    fake_api: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, kubeconfig(tmp_path / "config", fake_api.url), "status", "export")
    assert result.code == 0, result.err
    assert result.fields()["Authorization"] == (
        "hook Unknown: cannot read it: you may not get authorizations.destinations.dev"
    )
    assert result.fields()["Status"] == "Sleeping"
