"""The real kubectl (v1.33) drives the sandbox unchanged: apply (without --validate=false), get with
printer columns and -o wide, describe, events, wait, logs, delete.

Reference: https://kubernetes.io/docs/reference/kubectl/ and the API concepts it relies on,
https://kubernetes.io/docs/reference/using-api/api-concepts/.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from destinations import DEFAULT_IMAGE
from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import Kubectl

from .conftest_helpers import DATA

WIDGET = """
apiVersion: sandbox.test/v1
kind: Widget
metadata: {name: gizmo, namespace: default}
spec: {provider: facebook, size: 2}
"""


def _columns(output: str) -> list[str]:
    return output.splitlines()[0].split()


def test_apply_get_describe_and_delete_a_custom_resource(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(DATA / "widgets.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/widgets.sandbox.test")
    assert "widget.sandbox.test/gizmo created" in kubectl("apply", "-f", "-", stdin=WIDGET).stdout
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=WIDGET).stdout
    output = kubectl("get", "wd").stdout
    assert _columns(output) == ["NAME", "PROVIDER", "SIZE", "READY", "AGE"]
    assert output.splitlines()[1].split()[:3] == ["gizmo", "facebook", "2"]
    assert _columns(kubectl("get", "widgets", "-o", "wide").stdout)[-1] == "MESSAGE"
    assert "gizmo" in kubectl("get", "sandboxtest").stdout
    described = kubectl("describe", "widget", "gizmo").stdout
    assert "Provider:  facebook" in described and "Events:" in described
    assert 'widget.sandbox.test "gizmo" deleted' in kubectl("delete", "widget", "gizmo").stdout
    assert "No resources found" in kubectl("get", "widgets").stderr


def test_apply_refuses_invalid_and_unknown_fields_server_side(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(DATA / "widgets.yaml"))
    invalid = kubectl("apply", "-f", "-", stdin=WIDGET.replace("size: 2", "size: 20"), check=False)
    assert invalid.returncode != 0 and "spec.size" in invalid.stderr and "Invalid" in invalid.stderr
    unknown = kubectl(
        "apply", "-f", "-", stdin=WIDGET.replace("size: 2", "size: 2, colour: red"), check=False
    )
    assert unknown.returncode != 0 and 'unknown field "spec.colour"' in unknown.stderr


def test_wait_for_a_condition_set_through_the_status_subresource(kubectl: Kubectl, sandbox: Sandbox) -> None:
    kubectl("apply", "-f", str(DATA / "widgets.yaml"))
    kubectl("apply", "-f", "-", stdin=WIDGET)
    status = (
        '{"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": "ok"}]}}'
    )
    kubectl("patch", "widget", "gizmo", "--subresource=status", "--type=merge", "-p", status)
    assert "condition met" in kubectl("wait", "--for=condition=Ready", "widget/gizmo", "--timeout=10s").stdout
    assert kubectl("get", "widget", "gizmo").stdout.splitlines()[1].split()[3] == "True"


def test_apply_built_in_kinds_twice_is_unchanged(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot", "namespace": "apps"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "conf", "namespace": "apps"},
            "data": {"a": "1"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": "apps"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": "apps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "apps"}],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": DEFAULT_IMAGE, "env": [{"name": "A", "value": "1"}]}
                        ]
                    },
                },
            },
        },
    ]
    path = tmp_path / "apps.yaml"
    path.write_text(yaml.safe_dump_all(manifest))
    kubectl("apply", "-f", str(path))
    second = kubectl("apply", "-f", str(path)).stdout
    assert second.count("unchanged") == len(manifest), second
    manifest[-1]["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})
    path.write_text(yaml.safe_dump_all(manifest))
    assert "deployment.apps/web configured" in kubectl("apply", "-f", str(path)).stdout
    env = kubectl(
        "get", "deploy", "web", "-n", "apps", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}"
    ).stdout
    assert env == "A B"


def test_create_generators_send_protobuf_the_sandbox_decodes(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "gen")
    kubectl("create", "secret", "generic", "creds", "-n", "gen", "--from-literal=apiKey=abc")
    kubectl("create", "configmap", "conf", "-n", "gen", "--from-literal=a=b")
    assert kubectl("get", "secret", "creds", "-n", "gen", "-o", "jsonpath={.data.apiKey}").stdout == "YWJj"
    assert kubectl("get", "cm", "conf", "-n", "gen", "-o", "jsonpath={.data.a}").stdout == "b"


def test_logs_events_and_pod_columns_for_a_pod_run_by_the_kubelet(kubectl: Kubectl) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": DEFAULT_IMAGE, "command": ["destinations", "--help"]}],
        },
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pod))
    kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/hello", "--timeout=30s")
    assert "usage: destinations" in kubectl("logs", "hello").stdout
    output = kubectl("get", "pods").stdout
    assert _columns(output) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert output.splitlines()[1].split()[:3] == ["hello", "0/1", "Completed"]
    events = kubectl("get", "events").stdout
    assert _columns(events) == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "Started" in events and "pod/hello" in events
    assert "Successfully assigned default/hello" in kubectl("describe", "pod", "hello").stdout
    assert 'pod "hello" deleted' in kubectl("delete", "pod", "hello").stdout


def test_server_side_apply(kubectl: Kubectl) -> None:
    config_map = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: default}\ndata: {a: '1'}\n"
    )
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", "-", stdin=config_map).stdout
    assert (
        "serverside-applied"
        in kubectl("apply", "--server-side", "-f", "-", stdin=config_map.replace("'1'", "'2'")).stdout
    )
    assert kubectl("get", "cm", "ssa", "-o", "jsonpath={.data.a}").stdout == "2"


def test_repository_crds_and_examples_apply(kubectl: Kubectl, repo_root: Path) -> None:
    kubectl("apply", "-f", str(repo_root / "crds"))
    examples = repo_root / "examples"
    namespaces = set()
    for path in examples.rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("metadata", {}).get("namespace"):
                namespaces.add(document["metadata"]["namespace"])
    assert namespaces == {"marketing"}
    kubectl("create", "namespace", "marketing")
    applied = kubectl("apply", "-R", "-f", str(examples)).stdout.splitlines()
    kinds = sorted(line.split("/")[0] for line in applied)
    assert (
        kinds
        == ["authorization.destinations.dev"] * 6 + ["destinationjob.destinations.dev"] * 11 + ["secret"] * 7
    )
    assert all(line.endswith(" created") for line in applied), applied
