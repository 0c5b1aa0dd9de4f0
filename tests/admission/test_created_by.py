"""`destinations.dev/created-by` is stamped from the kubeconfig's user on CREATE and never changes."""

from __future__ import annotations

from tests.admission.harness import AdmissionCluster

CREATED_BY = "destinations.dev/created-by"


def _created_by(cluster: AdmissionCluster, namespace: str, name: str = "export") -> str | None:
    job = cluster.get("DestinationJob", namespace, name) or {}
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    return annotations.get(CREATED_BY)


def _namespace_with_authorization(cluster: AdmissionCluster, name: str) -> str:
    namespace = cluster.namespace(name)
    cluster.secret(namespace)
    result = cluster.apply("admin", namespace, cluster.authorization_manifest())
    assert result.returncode == 0, result.stderr
    return namespace


def test_create_stamps_the_kubeconfig_user(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_authorization(cluster, "stamp")

    result = cluster.apply("alice", namespace, cluster.job_manifest())

    assert result.returncode == 0, result.stderr
    assert _created_by(cluster, namespace) == "alice"


def test_a_created_by_written_in_the_manifest_is_replaced_by_the_real_user(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_authorization(cluster, "forged")
    manifest = cluster.job_manifest()
    manifest["metadata"]["annotations"] = {CREATED_BY: "alice"}

    result = cluster.apply("bob", namespace, manifest)

    assert result.returncode == 0, result.stderr
    assert _created_by(cluster, namespace) == "bob"


def test_created_by_cannot_be_changed(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_authorization(cluster, "change")
    cluster.apply("alice", namespace, cluster.job_manifest())

    result = cluster.kubectl(
        "bob", "annotate", "dj", "export", f"{CREATED_BY}=bob", "--overwrite", namespace=namespace
    )

    assert result.returncode != 0
    assert 'records who created the job ("alice") and cannot be changed to "bob"' in result.stderr
    assert _created_by(cluster, namespace) == "alice"


def test_created_by_cannot_be_removed(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_authorization(cluster, "remove")
    cluster.apply("alice", namespace, cluster.job_manifest())

    result = cluster.kubectl("alice", "annotate", "dj", "export", f"{CREATED_BY}-", namespace=namespace)

    assert result.returncode != 0
    assert "cannot be removed" in result.stderr
    assert _created_by(cluster, namespace) == "alice"


def test_other_annotations_and_spec_changes_keep_working(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_authorization(cluster, "others")
    cluster.apply("alice", namespace, cluster.job_manifest())

    run_now = cluster.kubectl(
        "bob", "annotate", "dj", "export", "destinations.dev/requested-at=now", namespace=namespace
    )
    edit = cluster.apply("bob", namespace, cluster.job_manifest(displayName="Renamed by bob"))

    assert run_now.returncode == 0, run_now.stderr
    assert edit.returncode == 0, edit.stderr
    assert _created_by(cluster, namespace) == "alice"


def test_a_server_side_dry_run_shows_the_stamp_and_stores_nothing(cluster: AdmissionCluster) -> None:
    namespace = _namespace_with_authorization(cluster, "dry-run")

    result = cluster.apply(
        "alice", namespace, cluster.job_manifest(), extra=("--dry-run=server", "-o", "yaml")
    )

    assert result.returncode == 0, result.stderr
    assert f"{CREATED_BY}: alice" in result.stdout
    assert cluster.get("DestinationJob", namespace, "export") is None
