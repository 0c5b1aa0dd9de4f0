"""Server-side table output, which `kubectl get` prints.

Reference: https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables and
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#additional-printer-columns.
"""

from __future__ import annotations

from tests.fixtures.sandbox import SandboxApi

from .conftest_helpers import WIDGETS, create_widget_crd, widget

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


def test_custom_resources_render_their_printer_columns(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)
    sandbox_api.post(WIDGETS, widget("w", size=4))
    sandbox_api.patch(
        f"{WIDGETS}/w/status",
        {"status": {"message": "fine", "conditions": [{"type": "Ready", "status": "True"}]}},
    )
    table = sandbox_api.get(WIDGETS, headers=TABLE).json()
    assert table["kind"] == "Table"
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [("Name", 0), ("Provider", 0), ("Size", 0), ("Ready", 0), ("Age", 0), ("Message", 1)]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["w", "mailchimp", 4, "True"] and cells[4].endswith("s") and cells[5] == "fine"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_missing_values_are_empty_cells(sandbox_api: SandboxApi) -> None:
    create_widget_crd(sandbox_api)
    sandbox_api.post(WIDGETS, widget("w"))
    cells = sandbox_api.get(f"{WIDGETS}/w", headers=TABLE).json()["rows"][0]["cells"]
    assert cells[3] is None and cells[5] is None


def test_pods_have_the_kubectl_columns(sandbox_api: SandboxApi) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "elsewhere"}]}}
    sandbox_api.post("/api/v1/namespaces/default/pods", pod)
    table = sandbox_api.get("/api/v1/namespaces/default/pods", headers=TABLE).json()
    names = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert names == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][1] == "0/1"


def test_other_built_ins_default_to_name_and_age(sandbox_api: SandboxApi) -> None:
    table = sandbox_api.get("/apis/coordination.k8s.io/v1/namespaces/default/leases", headers=TABLE).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    table = sandbox_api.get("/api/v1/namespaces/default/serviceaccounts", headers=TABLE).json()
    # 1.36 prints no Secrets column for service accounts (the real server's table, no longer kubectl's).
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert [row["cells"][0] for row in table["rows"]] == ["default"]
