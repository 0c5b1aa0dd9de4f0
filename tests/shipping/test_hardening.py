"""Every rendering of the chart (each switch flipped) and of kustomize runs hardened and least-privilege."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shipping.conftest import VARIANTS
from tests.shipping.rendering import MANIFESTS, Manifest, containers, kustomize, pod_specs, rbac_rules

RENDERINGS = [f"chart:{name}" for name in sorted(VARIANTS)] + ["kustomize:base", "kustomize:webhooks"]


@pytest.fixture(params=RENDERINGS, scope="module")
def rendered(
    request: pytest.FixtureRequest, render_chart: Callable[..., list[Manifest]], kubectl_binary: Path
) -> list[Manifest]:
    source, name = request.param.split(":")
    if source == "chart":
        return render_chart(VARIANTS[name])
    return kustomize(kubectl_binary, MANIFESTS if name == "base" else MANIFESTS / "overlays" / name)


def test_rendering_has_a_workload(rendered: list[Manifest]) -> None:
    assert list(pod_specs(rendered)), "no Deployment rendered"


def test_pods_run_as_a_numeric_non_root_user(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        pod_context = spec.get("securityContext", {})
        for container in containers(spec):
            context = {**pod_context, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, f"{name}/{container['name']}"
            assert isinstance(context.get("runAsUser"), int) and context["runAsUser"] > 0, name


def test_containers_cannot_escalate_privileges(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        for container in containers(spec):
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, f"{name}/{container['name']}"
            assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{container['name']}"
            assert not context.get("privileged", False), f"{name}/{container['name']}"


def test_containers_have_a_read_only_root_filesystem_and_a_writable_tmp(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        empty_dirs = {volume["name"] for volume in spec.get("volumes", []) if "emptyDir" in volume}
        for container in containers(spec):
            assert container.get("securityContext", {}).get("readOnlyRootFilesystem") is True, name
            tmp_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp_mounts and tmp_mounts[0]["name"] in empty_dirs, f"{name}: /tmp is not an emptyDir"


def test_pods_use_the_runtime_default_seccomp_profile(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        assert spec.get("securityContext", {}).get("seccompProfile") == {"type": "RuntimeDefault"}, name


def test_containers_set_resource_requests_and_a_memory_limit(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        for container in containers(spec):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{name}/{container['name']}"
            assert "memory" in resources.get("limits", {}), f"{name}/{container['name']}"


def test_containers_have_startup_liveness_and_readiness_probes_on_healthz(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        for container in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["path"] == "/healthz", f"{name} {probe}"
            # The start-up list of 10,000 jobs and their pods takes ~10 s; 100,000 must not be killed.
            startup = container["startupProbe"]
            assert startup["periodSeconds"] * startup["failureThreshold"] == 300, name


def test_rbac_rules_have_no_wildcards(rendered: list[Manifest]) -> None:
    for role, rule in rbac_rules(rendered):
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in value for value in rule.get(field) or []), f"{role}: {field} {rule[field]}"


def test_rbac_never_grants_escalation_verbs(rendered: list[Manifest]) -> None:
    for role, rule in rbac_rules(rendered):
        assert not {"bind", "escalate", "impersonate"} & set(rule["verbs"]), role


def test_namespaced_objects_land_in_the_operator_namespace(rendered: list[Manifest]) -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ClusterKopfPeering",
    }
    per_watched_namespace = {"Role", "RoleBinding", "KopfPeering"}
    for manifest in rendered:
        if manifest["kind"] in cluster_scoped:
            assert "namespace" not in manifest["metadata"], manifest["metadata"]["name"]
        elif manifest["kind"] not in per_watched_namespace:
            assert manifest["metadata"].get("namespace") == "destinations-system", manifest["kind"]
