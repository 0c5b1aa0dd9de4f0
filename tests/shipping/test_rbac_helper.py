"""tests/fixtures/rbac.py answers "is this request allowed?" the way the RBAC authorizer does."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fixtures.rbac import OperatorRbac, allowed


@dataclass(frozen=True)
class Request:
    verb: str
    api_group: str
    resource: str
    subresource: str = ""
    name: str = ""
    user: str = "system:serviceaccount:destinations-system:destinations-operator"


def test_operator_may_create_sync_pods(operator_rbac: OperatorRbac) -> None:
    assert operator_rbac.allowed("create", "", "pods")


def test_operator_may_patch_job_status(operator_rbac: OperatorRbac) -> None:
    assert operator_rbac.allowed("patch", "destinations.dev", "destinationjobs", "status")


def test_operator_may_neither_read_pod_logs_nor_exec_into_pods(operator_rbac: OperatorRbac) -> None:
    assert not operator_rbac.allowed("get", "", "pods", "log")
    assert not operator_rbac.allowed("create", "", "pods", "exec")


def test_operator_may_not_write_secrets(operator_rbac: OperatorRbac) -> None:
    assert operator_rbac.allowed("watch", "", "secrets")
    assert not operator_rbac.allowed("update", "", "secrets")


def test_a_resource_grant_does_not_cover_its_subresources(operator_rbac: OperatorRbac) -> None:
    assert operator_rbac.allowed("delete", "", "pods")
    assert not operator_rbac.allowed("delete", "", "pods", "log")


def test_the_api_group_must_match(operator_rbac: OperatorRbac) -> None:
    assert not operator_rbac.allowed("create", "apps", "pods")


def test_module_level_allowed_reads_the_manifests() -> None:
    assert allowed("list", "apiextensions.k8s.io", "customresourcedefinitions")


def test_refused_lists_each_disallowed_request_once(operator_rbac: OperatorRbac) -> None:
    requests = [
        Request("create", "", "pods"),
        Request("delete", "", "secrets", name="credentials"),
        Request("delete", "", "secrets", name="credentials"),
    ]
    assert operator_rbac.refused(requests) == ["delete core/secrets credentials"]


def test_refused_checks_only_the_named_user(operator_rbac: OperatorRbac) -> None:
    requests = [Request("delete", "", "secrets", user="sandbox-admin")]
    assert operator_rbac.refused(requests, user=Request.user) == []


def test_unused_lists_the_grants_no_request_exercised(operator_rbac: OperatorRbac) -> None:
    everything_but_pod_deletion = [
        Request(verb, group, *resource.split("/"))
        for group, resource, verb in operator_rbac.grants()
        if (group, resource, verb) != ("", "pods", "delete")
    ]
    assert operator_rbac.unused(everything_but_pod_deletion) == ["delete core/pods"]
