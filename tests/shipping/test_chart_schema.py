"""values.schema.json refuses bad values at `helm template`/`helm install`, naming the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.shipping.rendering import helm_template_command, run


def refusal(helm: Path, values: dict[str, Any], tmp_path: Path) -> str:
    result = run(helm_template_command(helm, values, tmp_path / "values.json"), check=False)
    assert result.returncode != 0, "the chart accepted a bad value"
    return result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        ({"replicaCount": 0}, "/replicaCount"),
        (
            {"webhooks": {"certificate": "foo"}},
            "at '/webhooks/certificate': value must be one of 'managed', 'certManager'",
        ),
        ({"webhooks": {"failurePolicy": "Sometimes"}}, "/webhooks/failurePolicy"),
        ({"webhooks": {"timeoutSeconds": 60}}, "/webhooks/timeoutSeconds"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"watchNamespaces": "marketing"}, "/watchNamespaces"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
        ({"syncPods": {"purgeAfter": "ninety days"}}, "/syncPods/purgeAfter"),
        ({"syncPods": {"maxConcurrentRuns": -1}}, "/syncPods/maxConcurrentRuns"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
    ],
    ids=[
        "replicas-not-a-number",
        "replicas-zero",
        "unknown-certificate-mode",
        "unknown-failure-policy",
        "timeout-over-30s",
        "unknown-pull-policy",
        "namespaces-not-a-list",
        "namespace-not-a-dns-label",
        "purge-after-not-a-duration",
        "negative-concurrency-cap",
        "port-out-of-range",
    ],
)
def test_schema_refuses_a_bad_value_naming_it(
    helm_binary: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    assert message in refusal(helm_binary, values, tmp_path)


def test_schema_refuses_a_misspelt_value(helm_binary: Path, tmp_path: Path) -> None:
    assert "additional properties 'replicas' not allowed" in refusal(helm_binary, {"replicas": 2}, tmp_path)


def test_schema_accepts_never_as_purge_period(helm_binary: Path, tmp_path: Path) -> None:
    run(helm_template_command(helm_binary, {"syncPods": {"purgeAfter": "never"}}, tmp_path / "values.json"))
