"""When the webhooks cannot be reached: `failurePolicy: Fail` refuses, `Ignore` admits, and the operator's
own checks still mark a bad job Stalled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admission.harness import SERVICE_NAME, SERVICE_NAMESPACE, AdmissionCluster, admission_cluster
from tests.fixtures.sandbox import wait_until
from tests.operator.harness import free_port


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kubectl_binary: Path, control_plane: str
) -> Iterator[AdmissionCluster]:
    for running in admission_cluster(
        tmp_path_factory.mktemp("failure-policy"), kubectl_binary, control_plane=control_plane
    ):
        running.start()
        yield running


def _webhooks_down(cluster: AdmissionCluster) -> None:
    """The Service points at a port nobody listens on: every call fails to connect."""
    cluster.sandbox.set_webhook_service(SERVICE_NAMESPACE, SERVICE_NAME, f"127.0.0.1:{free_port()}")


def _namespace(cluster: AdmissionCluster, name: str) -> str:
    """A namespace with a Secret and an Authorization, made while the webhooks answer."""
    cluster.sandbox.set_webhook_service(SERVICE_NAMESPACE, SERVICE_NAME, f"127.0.0.1:{cluster.webhook_port}")
    cluster.wait_for_ca_bundle()
    namespace = cluster.namespace(name)
    cluster.secret(namespace)
    cluster.sandbox.apply(
        {**cluster.authorization_manifest(), "metadata": {"name": "hook", "namespace": name}}
    )
    return namespace


def test_webhooks_down_with_failure_policy_fail_refuses(cluster: AdmissionCluster) -> None:
    cluster.install_webhooks("Fail")
    namespace = _namespace(cluster, "fail")
    _webhooks_down(cluster)

    result = cluster.apply("alice", namespace, cluster.job_manifest())

    assert result.returncode != 0
    assert 'failed calling webhook "mutate-destinationjob.destinations.dev"' in result.stderr
    assert cluster.get("DestinationJob", namespace, "export") is None


def test_webhooks_down_with_failure_policy_ignore_admits_and_the_operator_marks_the_job_stalled(
    cluster: AdmissionCluster,
) -> None:
    cluster.install_webhooks("Ignore")
    namespace = _namespace(cluster, "ignore")
    _webhooks_down(cluster)
    bad = cluster.job_manifest(config={"batchSize": 10})  # no url

    result = cluster.apply("alice", namespace, bad)

    assert result.returncode == 0, result.stderr

    def stalled() -> dict[str, str] | None:
        status = (cluster.get("DestinationJob", namespace, "export") or {}).get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        condition = conditions.get("Stalled")
        return condition if condition and condition["status"] == "True" else None

    condition = wait_until(stalled, timeout=30, message="the operator to mark the job Stalled")
    assert "spec.config.url: is required" in condition["message"]
