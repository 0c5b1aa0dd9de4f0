"""Fixtures of the admission tests: one sandbox plus operator (webhooks managed) per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admission.harness import AdmissionCluster, admission_cluster

CORPUS_NAMESPACE = "corpus"


def prepare_corpus_namespace(cluster: AdmissionCluster) -> None:
    """Objects the corpus refers to, stored before the webhooks exist (as if made while they were off)."""
    namespace = cluster.namespace(CORPUS_NAMESPACE)
    cluster.secret(namespace)
    for name, provider, method in (
        ("hook", "webhook", "apiKey"),
        ("mail", "mailchimp", "apiKey"),
        (
            "legacy-facebook",
            "facebook",
            "apiKey",
        ),  # a method facebook refuses: only possible without webhooks
    ):
        manifest = cluster.authorization_manifest(name, provider, method)
        manifest["metadata"]["namespace"] = namespace
        cluster.sandbox.apply(manifest)
    job = cluster.job_manifest("uses-hook")
    job["metadata"]["namespace"] = namespace
    cluster.sandbox.apply(job)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, kubectl_binary: Path, control_plane: str
) -> Iterator[AdmissionCluster]:
    """The operator serving the shipped webhook configurations (failurePolicy Fail), ready to answer."""
    for running in admission_cluster(
        tmp_path_factory.mktemp("admission"), kubectl_binary, control_plane=control_plane
    ):
        running.start()
        prepare_corpus_namespace(running)
        running.install_webhooks()
        running.wait_for_ca_bundle()
        running.wait_until_serving()
        yield running
