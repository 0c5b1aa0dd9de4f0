"""The rendered chart and kustomizations install with the real `kubectl apply` on the sandbox API server.

Each test applies what a user would apply (client-side `kubectl apply` with `--validate=strict`, so the
server checks fields), then checks the objects the API server now holds. Kinds the sandbox cannot know
without third-party CRDs (cert-manager, prometheus-operator) are covered by the rendering tests only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.sandbox import Kubectl
from tests.fixtures.tools import EXAMPLE_JOBS
from tests.shipping.rendering import (
    MANIFESTS,
    NAMESPACE,
    REPO_ROOT,
    Manifest,
    helm_template_command,
    kustomize,
    run,
)


def apply(kubectl: Kubectl, manifests: list[Manifest]) -> str:
    stream = yaml.safe_dump_all(manifests, sort_keys=False)
    return kubectl("apply", "--validate=strict", "-f", "-", stdin=stream).stdout


def render_chart_with_crds(helm: Path, values: dict[str, Any], tmp_path: Path) -> list[Manifest]:
    command = helm_template_command(helm, values, tmp_path / "values.json", "--include-crds")
    return [document for document in yaml.safe_load_all(run(command).stdout) if document]


def install_chart(kubectl: Kubectl, manifests: list[Manifest]) -> None:
    """What `helm install` does: the namespace (--create-namespace), CRDs, objects, then hooks."""
    kubectl("create", "namespace", NAMESPACE)
    hooks = [m for m in manifests if "helm.sh/hook" in m["metadata"].get("annotations", {})]
    crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    regular = [m for m in manifests if m not in hooks and m not in crds]
    for batch in (crds, regular, hooks):
        if batch:
            apply(kubectl, batch)


def held(kubectl: Kubectl, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    where = ["-n", namespace] if namespace else []
    found: dict[str, Any] = json.loads(kubectl("get", kind, name, *where, "-o", "json").stdout)
    return found


def test_kustomize_base_applies_to_the_sandbox(kubectl: Kubectl, kubectl_binary: Path) -> None:
    output = apply(kubectl, kustomize(kubectl_binary, MANIFESTS))
    assert "deployment.apps/destinations-operator created" in output
    deployment = held(kubectl, "deployment", "destinations-operator", NAMESPACE)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "destinations-operator"


def test_kustomize_base_reapplies_without_changes(kubectl: Kubectl, kubectl_binary: Path) -> None:
    manifests = kustomize(kubectl_binary, MANIFESTS)
    apply(kubectl, manifests)
    second = apply(kubectl, manifests)
    assert [line for line in second.splitlines() if not line.endswith("unchanged")] == []


def test_kustomize_with_webhooks_applies_to_the_sandbox(kubectl: Kubectl, kubectl_binary: Path) -> None:
    apply(kubectl, kustomize(kubectl_binary, MANIFESTS / "overlays" / "webhooks"))
    validating = held(kubectl, "validatingwebhookconfiguration", "destinations-operator")
    assert len(validating["webhooks"]) == 3
    assert held(kubectl, "mutatingwebhookconfiguration", "destinations-operator")["webhooks"][0]["name"] == (
        "mutate-destinationjob.destinations.dev"
    )


def test_chart_defaults_install_on_the_sandbox(kubectl: Kubectl, helm_binary: Path, tmp_path: Path) -> None:
    install_chart(kubectl, render_chart_with_crds(helm_binary, {}, tmp_path))
    assert (
        held(kubectl, "clusterrolebinding", "destinations-operator")["subjects"][0]["namespace"] == NAMESPACE
    )
    assert held(kubectl, "deployment", "destinations-operator", NAMESPACE)["spec"]["replicas"] == 1


def test_chart_watching_namespaces_installs_on_the_sandbox(
    kubectl: Kubectl, helm_binary: Path, tmp_path: Path
) -> None:
    for namespace in ("marketing", "analytics"):
        kubectl("create", "namespace", namespace)
    values = {"watchNamespaces": ["marketing", "analytics"]}
    install_chart(kubectl, render_chart_with_crds(helm_binary, values, tmp_path))
    for namespace in ("marketing", "analytics"):
        assert held(kubectl, "rolebinding", "destinations-operator", namespace)["roleRef"]["kind"] == "Role"


def test_chart_with_managed_webhooks_installs_on_the_sandbox(
    kubectl: Kubectl, helm_binary: Path, tmp_path: Path
) -> None:
    install_chart(kubectl, render_chart_with_crds(helm_binary, {"webhooks": {"enabled": True}}, tmp_path))
    service = held(kubectl, "service", "destinations-operator-webhook", NAMESPACE)
    assert service["spec"]["ports"][0]["port"] == 443
    assert len(held(kubectl, "validatingwebhookconfiguration", "destinations-operator")["webhooks"]) == 3


def test_chart_with_two_replicas_installs_its_peering_on_the_sandbox(
    kubectl: Kubectl, helm_binary: Path, tmp_path: Path
) -> None:
    install_chart(kubectl, render_chart_with_crds(helm_binary, {"replicaCount": 2}, tmp_path))
    assert held(kubectl, "clusterkopfpeering", "destinations-operator")["kind"] == "ClusterKopfPeering"


def test_examples_apply_once_the_chart_is_installed(
    kubectl: Kubectl, helm_binary: Path, tmp_path: Path
) -> None:
    install_chart(kubectl, render_chart_with_crds(helm_binary, {}, tmp_path))
    kubectl("create", "namespace", "marketing")
    examples = REPO_ROOT / "examples"
    kubectl(
        "apply",
        "--validate=strict",
        "-n",
        "marketing",
        "-f",
        str(examples / "authorizations"),
        "-f",
        str(examples / "jobs"),
    )
    jobs = json.loads(kubectl("get", "destinationjobs", "-n", "marketing", "-o", "json").stdout)["items"]
    assert sorted(job["metadata"]["name"] for job in jobs) == list(EXAMPLE_JOBS)
