"""The run report and the worker's command line, without providers."""

from __future__ import annotations

import json
import os
import subprocess

from destinations.api.models import RecordCounts, RunResult
from destinations.api.runs import TERMINATION_MESSAGE_LIMIT, RunReport
from destinations.providers.base import RecordCounter
from destinations.worker.log import Scrubber
from destinations.worker.report import encode_report, summarize
from tests.worker.conftest import WORKER, WorkerPod


def test_a_long_message_is_shortened_to_fit_the_termination_message() -> None:
    report = RunReport(result=RunResult.FAILED, records=RecordCounts(read=5), message="x" * 10_000)
    encoded = encode_report(report)
    assert len(encoded.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert json.loads(encoded)["records"]["read"] == 5


def test_the_summary_names_counts_and_sample_reasons() -> None:
    counts = RecordCounter(read=3, added=2)
    counts.omit(1, "bad@: invalid")
    assert summarize(counts) == "read 3, added 2, updated 0, omitted 1 (e.g. bad@: invalid)"


def test_the_scrubber_hides_every_secret_value() -> None:
    scrub = Scrubber(["s3cr3t-token", "ab"])
    assert scrub("Bearer s3cr3t-token, ab") == "Bearer ***, ab"


def test_a_missing_run_request_fails_with_exit_code_1(pod: WorkerPod) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DESTINATIONS_JOB"}
    process = subprocess.run([*WORKER, *pod.arguments()], env=env, capture_output=True, text=True, timeout=60)
    report = json.loads((pod.root / "termination-log").read_text())
    assert process.returncode == 1
    assert "DESTINATIONS_JOB" in report["message"]


def test_the_job_variable_name_is_configurable(pod: WorkerPod) -> None:
    env = {**os.environ, "OTHER_JOB": pod.request({"provider": "nope", "type": "export"})}
    subprocess.run(
        [*WORKER, *pod.arguments(), "--job-env", "OTHER_JOB"], env=env, capture_output=True, timeout=60
    )
    report = json.loads((pod.root / "termination-log").read_text())
    assert "invalid" in report["message"]


def test_an_unknown_provider_fails_naming_the_catalog(pod: WorkerPod) -> None:
    spec = {
        "provider": "nope",
        "type": "export",
        "authorizationRef": {"name": "a"},
        "source": {"file": {"path": "x.jsonl", "volume": {"hostPath": "/x"}}},
    }
    done = pod.run(spec)
    assert done.exit_code == 1
    assert "unknown provider 'nope'" in done.report["message"] and "webhook" in done.report["message"]


def test_config_not_matching_the_schema_fails_naming_the_field(pod: WorkerPod) -> None:
    spec = {
        "provider": "webhook",
        "type": "export",
        "authorizationRef": {"name": "a"},
        "config": {},
        "source": {"file": {"path": "x.jsonl", "volume": {"hostPath": "/x"}}},
    }
    done = pod.run(spec)
    assert done.exit_code == 1 and "url" in done.report["message"]
