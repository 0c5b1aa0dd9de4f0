"""The kustomize base and webhooks component render, and agree with crds/ and the Helm chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shipping.rendering import CHART, MANIFESTS, REPO_ROOT, Manifest, environment, of_kind, one

CRD_FILES = sorted(path.name for path in (REPO_ROOT / "crds").glob("*.yaml"))
SYNC_HINT = "run `bash manifests/sync-crds.sh` after regenerating crds/"


def test_kustomize_base_installs_the_operator_without_webhooks(kustomize_base: list[Manifest]) -> None:
    assert sorted({manifest["kind"] for manifest in kustomize_base}) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Namespace",
        "Service",
        "ServiceAccount",
    ]
    container = one(kustomize_base, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert environment(container)["DESTINATIONS_WEBHOOKS"] == "off"


def test_kustomize_base_runs_one_operator_with_the_recreate_strategy(kustomize_base: list[Manifest]) -> None:
    deployment = one(kustomize_base, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_kustomize_base_binds_the_cluster_role_to_the_operator_service_account(
    kustomize_base: list[Manifest],
) -> None:
    binding = one(kustomize_base, "ClusterRoleBinding")
    service_account = one(kustomize_base, "ServiceAccount")
    deployment = one(kustomize_base, "Deployment")
    assert binding["roleRef"]["name"] == one(kustomize_base, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "destinations-operator", "namespace": "destinations-system"}
    ]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == service_account["metadata"]["name"]


def test_kustomize_metrics_service_selects_the_operator_pods(kustomize_base: list[Manifest]) -> None:
    service = one(kustomize_base, "Service", "destinations-operator-metrics")
    pod_labels = one(kustomize_base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_webhooks_component_adds_the_configurations_and_the_service(
    kustomize_base: list[Manifest], kustomize_with_webhooks: list[Manifest]
) -> None:
    added = {(m["kind"], m["metadata"]["name"]) for m in kustomize_with_webhooks} - {
        (m["kind"], m["metadata"]["name"]) for m in kustomize_base
    }
    assert added == {
        ("ValidatingWebhookConfiguration", "destinations-operator"),
        ("MutatingWebhookConfiguration", "destinations-operator"),
        ("Service", "destinations-operator-webhook"),
    }
    webhook_service = one(kustomize_with_webhooks, "Service", "destinations-operator-webhook")
    assert webhook_service["metadata"]["namespace"] == "destinations-system"


def test_webhooks_component_turns_on_managed_webhooks_in_the_operator(
    kustomize_with_webhooks: list[Manifest],
) -> None:
    container = one(kustomize_with_webhooks, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = environment(container)
    assert env["DESTINATIONS_WEBHOOKS"] == "managed"
    assert env["DESTINATIONS_WEBHOOK_HOST"] == "destinations-operator-webhook.destinations-system.svc"
    assert env["DESTINATIONS_WEBHOOK_PORT"] == "9443"
    assert {"name": "webhooks", "containerPort": 9443, "protocol": "TCP"} in container["ports"]


@pytest.mark.parametrize("kind", ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"])
def test_webhooks_component_matches_the_chart_webhooks(
    kind: str, kustomize_with_webhooks: list[Manifest], render_chart: Callable[..., list[Manifest]]
) -> None:
    chart = one(render_chart({"webhooks": {"enabled": True}}), kind)
    assert one(kustomize_with_webhooks, kind)["webhooks"] == chart["webhooks"]


def test_crds_directory_is_not_empty() -> None:
    assert CRD_FILES


@pytest.mark.parametrize(
    "copy_directory", [MANIFESTS / "base" / "crds", CHART / "crds"], ids=["manifests", "chart"]
)
def test_shipped_crds_are_identical_to_crds_directory(copy_directory: Path) -> None:
    assert sorted(path.name for path in copy_directory.glob("*.yaml")) == CRD_FILES, SYNC_HINT
    for name in CRD_FILES:
        original = (REPO_ROOT / "crds" / name).read_bytes()
        assert (copy_directory / name).read_bytes() == original, (
            f"{copy_directory / name} differs; {SYNC_HINT}"
        )


def test_kustomize_base_installs_every_crd(kustomize_base: list[Manifest]) -> None:
    installed = sorted(
        f"{crd['metadata']['name']}.yaml" for crd in of_kind(kustomize_base, "CustomResourceDefinition")
    )
    assert installed == CRD_FILES


def test_chart_cluster_role_rules_equal_the_manifests_rules(
    kustomize_base: list[Manifest], render_chart: Callable[..., list[Manifest]]
) -> None:
    assert one(render_chart(), "ClusterRole")["rules"] == one(kustomize_base, "ClusterRole")["rules"]


def test_chart_namespaced_install_grants_the_same_rules_split_by_scope(
    kustomize_base: list[Manifest], render_chart: Callable[..., list[Manifest]]
) -> None:
    manifests = render_chart({"watchNamespaces": ["marketing"]})
    split = [*one(manifests, "Role")["rules"], *one(manifests, "ClusterRole")["rules"]]

    def grants(rules: list[Manifest]) -> set[tuple[str, str, str]]:
        return {
            (group, resource, verb)
            for rule in rules
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }

    # The namespaced install has no use for the cluster-wide peering: kopf peers per namespace. It
    # lists Namespaces once instead, which an all-namespaces operator never does.
    expected = {
        grant
        for grant in grants(one(kustomize_base, "ClusterRole")["rules"])
        if grant[1] != "clusterkopfpeerings"
    } | {("", "namespaces", "list"), ("", "namespaces", "watch")}
    assert grants(split) == expected
