"""`kubectl destinations providers`, found by the real kubectl on PATH as a plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin.invoke import invoke


def test_kubectl_finds_the_plugin_on_path_and_lists_the_catalog(kubectl_binary: Path, tmp_path: Path) -> None:
    # https://kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/: `kubectl foo` runs `kubectl-foo`.
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(tmp_path / "none"),
    }
    result = subprocess.run(
        [str(kubectl_binary), "destinations", "providers"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["PROVIDER", "NAME", "JOB", "TYPES"]
    webhook = next(line for line in lines if line.startswith("webhook "))
    assert webhook.split() == [
        "webhook",
        "Webhook",
        "export,enrichment",
        "none,apiKey,basic,oauth2",
        "upsert",
        "every",
        "1h",
    ]


def test_providers_as_json_carry_modes_and_config_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = invoke(capsys, tmp_path / "none", "providers", "-o", "json")
    assert result.code == 0
    entries = {entry["key"]: entry for entry in json.loads(result.out)}
    assert entries["mailchimp"]["modes"] == ["upsert", "mirror", "insert", "update"]
    assert entries["salesforce"]["modes"] == ["upsert", "mirror", "insert", "update"]
    assert entries["google"]["modes"] == ["upsert", "mirror"]
    assert entries["webhook"]["authMethods"] == ["none", "apiKey", "basic", "oauth2"]
    assert entries["webhook"]["defaultSchedule"] == {"every": "1h"}
    assert entries["webhook"]["config"]["export"]["required"] == ["url"]
