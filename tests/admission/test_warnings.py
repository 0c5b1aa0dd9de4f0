"""Likely mistakes are admitted with a warning that kubectl prints (`Warning: …`)."""

from __future__ import annotations

from tests.admission.harness import AdmissionCluster
from tests.fixtures.sandbox import wait_until


def test_a_schedule_more_frequent_than_the_provider_allows_is_admitted_with_a_warning(
    cluster: AdmissionCluster,
) -> None:
    namespace = cluster.namespace("too-often")
    cluster.secret(namespace)
    cluster.apply("alice", namespace, cluster.authorization_manifest("meta", "facebook", "oauth2"))
    job = cluster.job_manifest(
        provider="facebook", authorization="meta", config={"audienceId": "123"}, schedule={"every": "5m"}
    )

    result = cluster.apply("alice", namespace, job)

    assert result.returncode == 0, result.stderr
    assert "Warning: spec.schedule.every: 5m runs more often than provider 'facebook' allows" in result.stderr


def test_an_authorization_whose_secret_is_missing_is_admitted_with_a_warning(
    cluster: AdmissionCluster,
) -> None:
    namespace = cluster.namespace("no-secret")

    result = cluster.apply("alice", namespace, cluster.authorization_manifest())

    assert result.returncode == 0, result.stderr
    assert (
        "Warning: spec.secretRef.name: Secret 'credentials' not found in namespace 'no-secret'"
        in result.stderr
    )


def test_a_job_referencing_an_unhealthy_authorization_is_admitted_with_a_warning(
    cluster: AdmissionCluster,
) -> None:
    namespace = cluster.namespace("unhealthy")
    cluster.apply("alice", namespace, cluster.authorization_manifest())
    wait_until(
        lambda: (
            ((cluster.get("Authorization", namespace, "hook") or {}).get("status") or {}).get("health")
            == "Unhealthy"
        ),
        timeout=30,
        message="the operator to find the Authorization Unhealthy",
    )

    result = cluster.apply("alice", namespace, cluster.job_manifest())

    assert result.returncode == 0, result.stderr
    assert "Warning: spec.authorizationRef.name: Authorization 'hook' is Unhealthy" in result.stderr
