"""The Helm chart: lint-clean, and each value does what the chart's README says."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.shipping.rendering import CHART, Manifest, environment, of_kind, one, run

Render = Callable[..., list[Manifest]]


def operator_container(manifests: list[Manifest]) -> Manifest:
    deployment = one(manifests, "Deployment")
    container: Manifest = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_chart_passes_helm_lint_strict(helm_binary: Path) -> None:
    run([helm_binary, "lint", "--strict", CHART])


def test_chart_readme_lists_every_value() -> None:
    def leaves(values: object, prefix: str = "") -> list[str]:
        if isinstance(values, dict) and values:
            return [leaf for key, value in values.items() for leaf in leaves(value, f"{prefix}{key}.")]
        return [prefix.rstrip(".")]

    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    # Maps meant to be filled in (resources, securityContext…) are documented as a whole.
    documented_whole = ("resources.", "syncPods.resources.", "podSecurityContext.", "securityContext.")
    missing = [
        leaf for leaf in leaves(values) if f"`{leaf}`" not in readme and not leaf.startswith(documented_whole)
    ]
    assert missing == []


def test_defaults_install_one_operator_with_the_recreate_strategy(render_chart: Render) -> None:
    deployment = one(render_chart(), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "DESTINATIONS_PEERING" not in environment(operator_container(render_chart()))


def test_defaults_run_the_operator_command_of_the_app_version_image(render_chart: Render) -> None:
    container = operator_container(render_chart())
    assert container["image"] == "ghcr.io/destinations-dev/destinations:0.1.0"
    assert container["args"] == ["operator"]


def test_defaults_watch_all_namespaces_with_a_cluster_role(render_chart: Render) -> None:
    manifests = render_chart()
    # Declared without a value (the container sees it empty): an explicit "" would be dropped by the
    # API server and show as drift on every apply.
    assert environment(operator_container(manifests))["DESTINATIONS_NAMESPACES"] is None
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(manifests, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "destinations-operator", "namespace": "destinations-system"}
    ]
    assert of_kind(manifests, "Role") == []


def test_defaults_leave_webhooks_off(render_chart: Render) -> None:
    manifests = render_chart()
    assert environment(operator_container(manifests))["DESTINATIONS_WEBHOOKS"] == "off"
    assert of_kind(manifests, "ValidatingWebhookConfiguration") == []
    assert of_kind(manifests, "MutatingWebhookConfiguration") == []


def test_sync_pod_settings_reach_the_operator_environment(render_chart: Render) -> None:
    values = {
        "syncPods": {
            "image": {"repository": "registry.example/sync", "tag": "1.2.3", "pullPolicy": "Always"},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
            "purgeAfter": "30d",
            "maxConcurrentRuns": 20,
        }
    }
    env = environment(operator_container(render_chart(values)))
    assert env["DESTINATIONS_SYNC_IMAGE"] == "registry.example/sync:1.2.3"
    assert env["DESTINATIONS_SYNC_IMAGE_PULL_POLICY"] == "Always"
    assert json.loads(env["DESTINATIONS_SYNC_RESOURCES"]) == values["syncPods"]["resources"]
    assert env["DESTINATIONS_PURGE_AFTER"] == "30d"
    assert env["DESTINATIONS_MAX_CONCURRENT_RUNS"] == "20"


def test_sync_pods_default_to_the_operator_image(render_chart: Render) -> None:
    values = {"image": {"repository": "registry.example/destinations", "tag": "9.9.9"}}
    env = environment(operator_container(render_chart(values)))
    assert env["DESTINATIONS_SYNC_IMAGE"] == "registry.example/destinations:9.9.9"


def test_watch_namespaces_pass_the_list_to_the_operator(render_chart: Render) -> None:
    env = environment(operator_container(render_chart({"watchNamespaces": ["marketing", "analytics"]})))
    assert env["DESTINATIONS_NAMESPACES"] == "marketing,analytics"


def test_watch_namespaces_grant_a_role_and_binding_in_each_namespace(render_chart: Render) -> None:
    manifests = render_chart({"watchNamespaces": ["marketing", "analytics"]})
    assert sorted(role["metadata"]["namespace"] for role in of_kind(manifests, "Role")) == [
        "analytics",
        "marketing",
    ]
    for binding in of_kind(manifests, "RoleBinding"):
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "destinations-operator",
        }
        assert binding["subjects"][0]["namespace"] == "destinations-system"


def test_watch_namespaces_keep_secrets_and_pods_out_of_the_cluster_role(render_chart: Render) -> None:
    cluster_role = one(render_chart({"watchNamespaces": ["marketing"]}), "ClusterRole")
    granted = {resource for rule in cluster_role["rules"] for resource in rule["resources"]}
    assert granted.isdisjoint({"secrets", "pods", "destinationjobs", "authorizations", "events"})
    assert {"namespaces", "customresourcedefinitions"} <= granted


def test_webhooks_in_managed_mode_let_the_operator_serve_and_patch_them(render_chart: Render) -> None:
    manifests = render_chart({"webhooks": {"enabled": True, "certificate": "managed"}})
    env = environment(operator_container(manifests))
    assert env["DESTINATIONS_WEBHOOKS"] == "managed"
    assert env["DESTINATIONS_WEBHOOK_PORT"] == "9443"
    assert env["DESTINATIONS_WEBHOOK_HOST"] == "destinations-operator-webhook.destinations-system.svc"
    assert env["DESTINATIONS_WEBHOOK_CONFIGURATION"] == "destinations-operator"
    service = one(manifests, "Service", "destinations-operator-webhook")
    assert service["spec"]["ports"] == [
        {"name": "webhooks", "port": 443, "targetPort": "webhooks", "protocol": "TCP"}
    ]
    assert of_kind(manifests, "Certificate") == []


def test_webhooks_validate_jobs_and_authorizations_and_mutate_new_jobs(render_chart: Render) -> None:
    manifests = render_chart({"webhooks": {"enabled": True}})
    validating = one(manifests, "ValidatingWebhookConfiguration")["webhooks"]
    mutating = one(manifests, "MutatingWebhookConfiguration")["webhooks"]
    assert {
        (hook["rules"][0]["resources"][0], tuple(hook["rules"][0]["operations"])) for hook in validating
    } == {
        ("destinationjobs", ("CREATE", "UPDATE")),
        ("authorizations", ("CREATE", "UPDATE")),
        ("authorizations", ("DELETE",)),
    }
    assert [(hook["rules"][0]["resources"], hook["rules"][0]["operations"]) for hook in mutating] == [
        (["destinationjobs"], ["CREATE"])
    ]


def test_webhooks_are_set_the_way_production_webhooks_are(render_chart: Render) -> None:
    manifests = render_chart({"webhooks": {"enabled": True}})
    hooks = [
        *one(manifests, "ValidatingWebhookConfiguration")["webhooks"],
        *one(manifests, "MutatingWebhookConfiguration")["webhooks"],
    ]
    for hook in hooks:
        assert hook["failurePolicy"] == "Fail", hook["name"]
        assert hook["sideEffects"] == "None", hook["name"]
        assert hook["timeoutSeconds"] == 10, hook["name"]
        assert hook["admissionReviewVersions"] == ["v1"], hook["name"]
        assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]} in hook[
            "namespaceSelector"
        ]["matchExpressions"], hook["name"]
        assert hook["clientConfig"]["service"]["name"] == "destinations-operator-webhook", hook["name"]


def test_webhook_failure_policy_and_timeout_follow_the_values(render_chart: Render) -> None:
    manifests = render_chart({"webhooks": {"enabled": True, "failurePolicy": "Ignore", "timeoutSeconds": 5}})
    for hook in one(manifests, "ValidatingWebhookConfiguration")["webhooks"]:
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 5)


def test_webhooks_with_cert_manager_get_a_certificate_and_ca_injection(render_chart: Render) -> None:
    manifests = render_chart({"webhooks": {"enabled": True, "certificate": "certManager"}})
    certificate = one(manifests, "Certificate")
    assert certificate["spec"]["dnsNames"][0] == "destinations-operator-webhook.destinations-system.svc"
    assert certificate["spec"]["issuerRef"]["name"] == one(manifests, "Issuer")["metadata"]["name"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        annotations = one(manifests, kind)["metadata"]["annotations"]
        assert (
            annotations["cert-manager.io/inject-ca-from"]
            == "destinations-system/destinations-operator-webhook"
        )


def test_webhooks_with_cert_manager_mount_the_certificate_for_the_operator(render_chart: Render) -> None:
    manifests = render_chart({"webhooks": {"enabled": True, "certificate": "certManager"}})
    container = operator_container(manifests)
    env = environment(container)
    assert env["DESTINATIONS_WEBHOOKS"] == "external"
    mount = next(
        m for m in container["volumeMounts"] if m["mountPath"] == env["DESTINATIONS_WEBHOOK_CERT_DIR"]
    )
    assert mount["readOnly"] is True
    volumes = one(manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
    secret = next(volume for volume in volumes if volume["name"] == mount["name"])["secret"]
    assert secret["secretName"] == one(manifests, "Certificate")["spec"]["secretName"]


def test_metrics_service_exposes_the_metrics_port(render_chart: Render) -> None:
    manifests = render_chart({"metrics": {"port": 9191}})
    service = one(manifests, "Service", "destinations-operator-metrics")
    assert service["spec"]["ports"][0]["port"] == 9191
    assert environment(operator_container(manifests))["DESTINATIONS_METRICS_PORT"] == "9191"


def test_metrics_off_renders_no_service(render_chart: Render) -> None:
    assert of_kind(render_chart({"metrics": {"enabled": False}}), "Service") == []


def test_service_monitor_scrapes_the_metrics_service(render_chart: Render) -> None:
    manifests = render_chart(
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
    )
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service", "destinations-operator-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_two_replicas_turn_kopf_peering_on_and_roll_one_at_a_time(render_chart: Render) -> None:
    manifests = render_chart({"replicaCount": 2})
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert environment(operator_container(manifests))["DESTINATIONS_PEERING"] == "destinations-operator"


def test_two_replicas_create_the_cluster_peering_after_its_crd(render_chart: Render) -> None:
    manifests = render_chart({"replicaCount": 2})
    assert one(manifests, "CustomResourceDefinition", "clusterkopfpeerings.kopf.dev")
    peering = one(manifests, "ClusterKopfPeering", "destinations-operator")
    assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"


def test_two_replicas_watching_namespaces_peer_in_each_namespace(render_chart: Render) -> None:
    manifests = render_chart({"replicaCount": 2, "watchNamespaces": ["marketing", "analytics"]})
    assert sorted(p["metadata"]["namespace"] for p in of_kind(manifests, "KopfPeering")) == [
        "analytics",
        "marketing",
    ]
    assert of_kind(manifests, "ClusterKopfPeering") == []


def test_peering_crds_can_be_left_to_another_kopf_operator(render_chart: Render) -> None:
    manifests = render_chart({"replicaCount": 2, "peering": {"createCRDs": False}})
    assert [crd["metadata"]["name"] for crd in of_kind(manifests, "CustomResourceDefinition")] == []


def test_extra_env_is_appended_to_the_operator_environment(render_chart: Render) -> None:
    manifests = render_chart({"extraEnv": [{"name": "DESTINATIONS_VERBOSE", "value": "1"}]})
    assert environment(operator_container(manifests))["DESTINATIONS_VERBOSE"] == "1"


def test_scheduling_values_reach_the_pod(render_chart: Render) -> None:
    values = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {}},
        "imagePullSecrets": [{"name": "regcred"}],
        "priorityClassName": "system-cluster-critical",
    }
    spec = one(render_chart(values), "Deployment")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == values["nodeSelector"]
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]
    assert spec["imagePullSecrets"] == values["imagePullSecrets"]
    assert spec["priorityClassName"] == "system-cluster-critical"


def test_an_existing_service_account_is_used_and_not_created(render_chart: Render) -> None:
    manifests = render_chart({"serviceAccount": {"create": False, "name": "operator"}})
    assert of_kind(manifests, "ServiceAccount") == []
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "operator"
    assert one(manifests, "ClusterRoleBinding")["subjects"][0]["name"] == "operator"


def test_service_account_annotations_are_set(render_chart: Render) -> None:
    annotations = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/destinations"}
    manifests = render_chart({"serviceAccount": {"annotations": annotations}})
    assert one(manifests, "ServiceAccount")["metadata"]["annotations"] == annotations
