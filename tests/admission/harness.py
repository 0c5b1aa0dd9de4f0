"""The admission tests' cluster: a sandbox with the shipped webhook configurations, the real operator
serving them (`--webhooks managed`), and real kubectl as ordinary users.

The sandbox sends the configurations' Service (`destinations-system/destinations-operator-webhook`) to
the operator's local webhook port and checks the TLS name the way kube-apiserver does; the operator
patches its CA into `caBundle`, so the whole path (TLS, AdmissionReview, patches, refusals) is real.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from destinations.sandbox import Sandbox
from tests.fixtures.sandbox import SandboxApi, wait_until
from tests.operator.harness import OPERATOR_USER, OperatorProcess, free_port, operator_kubeconfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGURATIONS = REPO_ROOT / "manifests" / "components" / "webhooks" / "webhook-configurations.yaml"
SERVICE_NAMESPACE, SERVICE_NAME = "destinations-system", "destinations-operator-webhook"
SERVICE_HOST = f"{SERVICE_NAME}.{SERVICE_NAMESPACE}.svc"
USERS = {"alice": "alice-token", "bob": "bob-token"}
WEBHOOK_CONFIGURATION_KINDS = (
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
)


def webhook_configurations() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(CONFIGURATIONS.read_text(encoding="utf-8")) if d]


class AdmissionCluster:
    """A sandbox, the operator serving its webhooks, and kubectl per user."""

    def __init__(
        self, workdir: Path, kubectl_binary: Path, *operator_args: str, control_plane: str = "embedded"
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.kubectl_binary = kubectl_binary
        users = dict(USERS) if control_plane == "real" else {**USERS, OPERATOR_USER: "operator-token"}
        self.sandbox = Sandbox(
            kubeconfig_path=workdir / "kubeconfig",
            workdir=workdir / "sandbox",
            kubelet=False,
            users=users,
            # The emulator lets every user do everything; on a real API server the test users are
            # cluster administrators, so what refuses their requests is admission, not RBAC.
            user_groups={user: ("system:masters",) for user in USERS},
            control_plane=control_plane,
        ).start()
        self.api = SandboxApi(self.sandbox)
        self.webhook_port = free_port()
        self.sandbox.set_webhook_service(SERVICE_NAMESPACE, SERVICE_NAME, f"127.0.0.1:{self.webhook_port}")
        kubeconfig = operator_kubeconfig(self.sandbox, self.api, workdir / "operator-kubeconfig")
        self.operator = OperatorProcess(
            kubeconfig,
            workdir / "operator.log",
            (
                "--webhook-port", str(self.webhook_port),
                "--webhook-host", SERVICE_HOST,
                *(operator_args or ("--webhooks", "managed")),
            ),
        )  # fmt: skip

    def start(self) -> AdmissionCluster:
        self.operator.start()
        return self

    def install_webhooks(self, failure_policy: str = "Fail") -> None:
        """Apply the shipped configurations with `failure_policy`, keeping a caBundle already patched in."""
        for configuration in webhook_configurations():
            existing = self.sandbox.get(
                configuration["apiVersion"], configuration["kind"], "destinations-operator"
            )
            bundles = {
                w["name"]: w["clientConfig"].get("caBundle") for w in (existing or {}).get("webhooks", [])
            }
            for webhook in configuration["webhooks"]:
                webhook["failurePolicy"] = failure_policy
                if bundles.get(webhook["name"]):
                    webhook["clientConfig"]["caBundle"] = bundles[webhook["name"]]
            self.sandbox.apply(configuration)

    def wait_for_ca_bundle(self) -> None:
        def patched() -> bool:
            for api_version, kind in WEBHOOK_CONFIGURATION_KINDS:
                configuration = self.sandbox.get(api_version, kind, "destinations-operator") or {}
                if not all(w["clientConfig"].get("caBundle") for w in configuration.get("webhooks", [])):
                    return False
            return True

        try:
            wait_until(patched, timeout=30, message="the operator to patch caBundle")
        except AssertionError:
            raise AssertionError(f"no caBundle; operator log:\n{self.operator.log[-3000:]}") from None

    def wait_until_serving(self) -> None:
        """Until a dry-run create is answered by the webhooks (kopf serves once it has scanned the API)."""
        probe = self.job_manifest("serving-probe", authorization="ghost")

        def answered() -> bool:
            result = self.kubectl(
                "alice", "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(probe)
            )
            return "denied the request" in result.stderr

        # The operator's start (imports, kopf's API scan) is not what these tests check: a loaded CI
        # machine took over 30 s for it.
        wait_until(answered, timeout=90, message="the webhooks to answer")

    def close(self) -> None:
        self.operator.stop()
        self.api.close()
        self.sandbox.stop()

    # --- helpers tests speak in ----------------------------------------------------------------

    def kubectl(
        self, user: str, *args: str, stdin: str | None = None, namespace: str = "default"
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as `user` ("admin" for the sandbox admin); never raises on failure."""
        if user == "admin":
            kubeconfig = self.sandbox.kubeconfig_path
        else:
            kubeconfig = self.workdir / f"kubeconfig-{user}"
            if not kubeconfig.exists():
                self.sandbox.kubeconfig_for(user, kubeconfig)
        cache = self.workdir / f"kube-cache-{user}"
        environment = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(cache)}
        return subprocess.run(
            [str(self.kubectl_binary), "--cache-dir", str(cache), "-n", namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
        )

    def namespace(self, name: str) -> str:
        self.sandbox.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name

    def secret(self, namespace: str, name: str = "credentials") -> None:
        self.sandbox.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": {"apiKey": "a2V5"},
            }
        )

    def authorization_manifest(
        self, name: str = "hook", provider: str = "webhook", method: str = "apiKey"
    ) -> dict[str, Any]:
        return {
            "apiVersion": "destinations.dev/v1",
            "kind": "Authorization",
            "metadata": {"name": name},
            "spec": {"provider": provider, "method": method, "secretRef": {"name": "credentials"}},
        }

    def job_manifest(self, name: str = "export", authorization: str = "hook", **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "destinations.dev/v1",
            "kind": "DestinationJob",
            "metadata": {"name": name},
            "spec": {
                "provider": "webhook",
                "type": "export",
                "authorizationRef": {"name": authorization},
                "config": {"url": "https://example.com/hook"},
                "source": {"url": {"url": "https://example.com/records.jsonl"}},
                "schedule": {"every": "1h"},
                **spec,
            },
        }

    def apply(
        self, user: str, namespace: str, *manifests: dict[str, Any], extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        documents = yaml.safe_dump_all(list(manifests))
        return self.kubectl(user, "apply", *extra, "-f", "-", stdin=documents, namespace=namespace)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.sandbox.get("destinations.dev/v1", kind, name, namespace)


def admission_cluster(
    workdir: Path, kubectl_binary: Path, *operator_args: str, control_plane: str = "embedded"
) -> Iterator[AdmissionCluster]:
    cluster = AdmissionCluster(workdir, kubectl_binary, *operator_args, control_plane=control_plane)
    try:
        yield cluster
    finally:
        cluster.close()
