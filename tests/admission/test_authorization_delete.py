"""An Authorization that a Pending, Running, Sleeping or Paused job references cannot be deleted."""

from __future__ import annotations

from tests.admission.harness import AdmissionCluster
from tests.fixtures.sandbox import wait_until


def _namespace_with_jobs(cluster: AdmissionCluster, name: str, *jobs: str) -> str:
    namespace = cluster.namespace(name)
    cluster.secret(namespace)
    manifests = [cluster.authorization_manifest(), *(cluster.job_manifest(job) for job in jobs)]
    result = cluster.apply("alice", namespace, *manifests)
    assert result.returncode == 0, result.stderr
    return namespace


def test_an_authorization_in_use_cannot_be_deleted_and_the_refusal_names_the_jobs(
    cluster: AdmissionCluster,
) -> None:
    namespace = _namespace_with_jobs(cluster, "in-use", "nightly", "hourly")

    result = cluster.kubectl("alice", "delete", "dauth", "hook", "--wait=false", namespace=namespace)

    assert result.returncode != 0
    assert 'admission webhook "validate-authorization-delete.destinations.dev" denied' in result.stderr
    assert "is used by 2 Pending, Running, Sleeping or Paused job(s): hourly" in result.stderr
    assert "nightly" in result.stderr
    assert cluster.get("Authorization", namespace, "hook") is not None


def test_an_authorization_can_be_deleted_once_its_jobs_are_gone(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_jobs(cluster, "jobs-gone", "nightly")
    removed = cluster.kubectl("alice", "delete", "dj", "nightly", namespace=namespace)
    assert removed.returncode == 0, removed.stderr

    result = cluster.kubectl("alice", "delete", "dauth", "hook", "--wait=false", namespace=namespace)

    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: cluster.get("Authorization", namespace, "hook") is None,
        timeout=20,
        message="the Authorization to go",
    )


def test_a_dry_run_delete_is_judged_the_same_and_deletes_nothing(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_jobs(cluster, "dry-delete", "nightly")

    refused = cluster.kubectl("alice", "delete", "dauth", "hook", "--dry-run=server", namespace=namespace)

    assert refused.returncode != 0
    assert "nightly (" in refused.stderr
    assert cluster.get("Authorization", namespace, "hook") is not None
