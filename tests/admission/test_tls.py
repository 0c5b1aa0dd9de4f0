"""TLS: `--webhooks external` serves a certificate provided by the installer (cert-manager's Secret
mounted as a directory), and a caller that does not trust it never gets an answer."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from destinations.certificates import make_serving_certificate
from tests.admission.harness import SERVICE_HOST, AdmissionCluster, admission_cluster, webhook_configurations


@pytest.fixture(scope="module")
def certificate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("webhook-certificate")
    make_serving_certificate([SERVICE_HOST]).write(directory)
    return directory


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kubectl_binary: Path, certificate_dir: Path, control_plane: str
) -> Iterator[AdmissionCluster]:
    for running in admission_cluster(
        tmp_path_factory.mktemp("external"),
        kubectl_binary,
        "--webhooks", "external", "--webhook-cert-dir", str(certificate_dir),
        control_plane=control_plane,
    ):  # fmt: skip
        running.start()
        running.namespace("tls")
        yield running


def _install_with_ca(cluster: AdmissionCluster, ca_pem: bytes) -> None:
    """What cert-manager's CA injector does: the CA into every webhook's caBundle."""
    for configuration in webhook_configurations():
        for webhook in configuration["webhooks"]:
            webhook["clientConfig"]["caBundle"] = base64.b64encode(ca_pem).decode()
        cluster.sandbox.apply(configuration)


def test_external_mode_serves_the_provided_certificate(
    cluster: AdmissionCluster, certificate_dir: Path
) -> None:
    _install_with_ca(cluster, (certificate_dir / "ca.crt").read_bytes())

    cluster.wait_until_serving()
    result = cluster.apply("alice", "tls", cluster.job_manifest(authorization="ghost"))

    assert "names no Authorization in namespace 'tls'" in result.stderr


def test_a_webhook_whose_certificate_is_not_trusted_is_a_failed_call(cluster: AdmissionCluster) -> None:
    _install_with_ca(cluster, make_serving_certificate([SERVICE_HOST]).ca_pem)  # another CA

    result = cluster.apply("alice", "tls", cluster.job_manifest())

    assert result.returncode != 0
    assert 'failed calling webhook "mutate-destinationjob.destinations.dev"' in result.stderr
    assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" in result.stderr
