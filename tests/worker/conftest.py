"""Run the worker as sync pods do: a `destinations worker` process, env, mounted dirs, termination log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER = [str(REPO_ROOT / ".venv" / "bin" / "destinations"), "worker"]


@dataclass
class Finished:
    exit_code: int
    report: dict[str, Any]
    stdout: str
    stderr: str
    termination_log: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def records(self) -> dict[str, int]:
        return dict(self.report.get("records", {}))


@dataclass
class WorkerPod:
    """The directories a sync pod mounts, under a per-test temporary path."""

    root: Path
    credentials: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sub in ("credentials", "secrets", "data/source", "data/sink"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def source_dir(self) -> Path:
        return self.root / "data" / "source"

    @property
    def sink_dir(self) -> Path:
        return self.root / "data" / "sink"

    def secret(self, name: str, values: dict[str, str]) -> None:
        directory = self.root / "secrets" / name
        directory.mkdir(parents=True, exist_ok=True)
        for key, value in values.items():
            (directory / key).write_text(value)

    def arguments(self) -> list[str]:
        return [
            "--credentials-dir", str(self.root / "credentials"),
            "--secrets-dir", str(self.root / "secrets"),
            "--data-dir", str(self.root / "data"),
            "--termination-log", str(self.root / "termination-log"),
        ]  # fmt: skip

    def request(
        self,
        spec: dict[str, Any],
        *,
        method: str = "none",
        endpoint: str | None = None,
        run: int = 1,
        confirmed_removal_run: int | None = None,
    ) -> str:
        request: dict[str, Any] = {
            "namespace": "team",
            "name": "job-1",
            "uid": "u-1",
            "run": run,
            "spec": spec,
            "authMethod": method,
        }
        if endpoint:
            request["endpoint"] = endpoint
        if confirmed_removal_run is not None:
            request["confirmedRemovalRun"] = confirmed_removal_run
        return json.dumps(request)

    def popen(
        self,
        spec: dict[str, Any],
        *,
        method: str = "none",
        endpoint: str | None = None,
        run: int = 1,
        extra: list[str] | None = None,
        confirmed_removal_run: int | None = None,
        measured: bool = True,
        launcher: list[str] | None = None,
    ) -> subprocess.Popen[str]:
        """The worker as a process. `measured=False`: without coverage's tracer, which `make test`
        otherwise starts in every subprocess (a memory figure must be the worker's own). `launcher`:
        a command line the worker's command is appended to (it runs the worker as its child)."""
        for key, value in self.credentials.items():
            (self.root / "credentials" / key).write_text(value)
        inherited = {
            k: v for k, v in os.environ.items() if measured or not k.startswith(("COVERAGE_", "COV_CORE_"))
        }
        env = {
            **inherited,
            "DESTINATIONS_JOB": self.request(
                spec, method=method, endpoint=endpoint, run=run, confirmed_removal_run=confirmed_removal_run
            ),
        }
        return subprocess.Popen(
            [*(launcher or []), *WORKER, *self.arguments(), *(extra or [])],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def run(self, spec: dict[str, Any], **options: Any) -> Finished:
        process = self.popen(spec, **options)
        stdout, stderr = process.communicate(timeout=120)
        return self.finished(process.returncode, stdout, stderr)

    def finished(self, exit_code: int, stdout: str, stderr: str) -> Finished:
        log = self.root / "termination-log"
        text = log.read_text() if log.exists() else ""
        report = json.loads(text) if text else {}
        if exit_code not in (0, 1) or not report:
            sys.stderr.write(stderr)
        return Finished(exit_code, report, stdout, stderr, text)


@pytest.fixture
def pod(tmp_path: Path) -> WorkerPod:
    return WorkerPod(tmp_path / "pod")


def warehouse(
    secret: str = "warehouse",
    *,
    table: str | None = None,
    query: str | None = None,
    key: list[str] | None = None,
) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"connectionSecretRef": {"name": secret, "key": "dsn"}}
    if table:
        endpoint["table"] = table
    if query:
        endpoint["query"] = query
    if key:
        endpoint["key"] = key
    return {"warehouse": endpoint}


def file_endpoint(path: str, format: str = "jsonl") -> dict[str, Any]:
    return {"file": {"path": path, "format": format, "volume": {"persistentVolumeClaim": "data"}}}


def job(
    provider: str,
    job_type: str,
    config: dict[str, Any],
    *,
    source: dict[str, Any] | None = None,
    sink: dict[str, Any] | None = None,
    mode: str = "upsert",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": provider,
        "type": job_type,
        "authorizationRef": {"name": "auth"},
        "config": config,
        "mode": mode,
    }
    if source:
        spec["source"] = source
    if sink:
        spec["sink"] = sink
    return spec
