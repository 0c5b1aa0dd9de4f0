"""Running `kubectl destinations` in the test process, capturing what it prints; jobs with a given status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from destinations.plugin.main import main
from tests.fixtures.sandbox import SandboxApi


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def fields(self) -> dict[str, str]:
        """The `Label:  value` lines of a status summary, label → value (the first occurrence of a label)."""
        found: dict[str, str] = {}
        for line in self.out.splitlines():
            label, separator, value = line.partition(":")
            label = label.strip()
            if separator and label and label not in found:
                found[label] = value.strip()
        return found


def invoke(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *args: str) -> Result:
    """`kubectl destinations --kubeconfig KUBECONFIG ARGS…` in-process (no colour: output is captured)."""
    capsys.readouterr()
    code = main(["--kubeconfig", str(kubeconfig), *args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def make_job(sandbox_api: SandboxApi, namespace: str, status: dict[str, Any]) -> None:
    """A namespace and a webhook export job whose status is `status`, written through /status."""
    response = sandbox_api.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    assert response.status_code == 201, response.text
    jobs = f"/apis/destinations.dev/v1/namespaces/{namespace}/destinationjobs"
    manifest = {
        "apiVersion": "destinations.dev/v1",
        "kind": "DestinationJob",
        "metadata": {"name": "export"},
        "spec": {
            "provider": "webhook",
            "type": "export",
            "authorizationRef": {"name": "hook"},
            "config": {"url": "https://hooks.example.com/in"},
            "source": {"url": {"url": "https://data.example.com/users.jsonl"}},
            "schedule": {"cron": "0 6 * * *", "timezone": "Europe/Paris"},
        },
    }
    assert sandbox_api.post(jobs, manifest).status_code == 201
    response = sandbox_api.patch(f"{jobs}/export/status", {"status": status})
    assert response.status_code == 200, response.text
