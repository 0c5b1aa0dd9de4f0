"""`destinations worker`: run one sync, the entrypoint of every sync pod.

The operator passes the mount paths as arguments (defaults from destinations.api.runs) because the
sandbox's local kubelet relocates absolute mount paths when it runs pods as processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from destinations.api.models import RecordCounts, RunResult
from destinations.api.runs import (
    CREDENTIALS_DIR,
    DATA_DIR,
    JOB_ENVIRONMENT_VARIABLE,
    SECRETS_DIR,
    TERMINATION_MESSAGE_PATH,
    RunReport,
    RunRequest,
)
from destinations.redaction import spec_credentials
from destinations.worker.log import JsonLog, ScrubbedStream, Scrubber
from destinations.worker.mounts import Mounts, read_secret_dir
from destinations.worker.report import exit_code, write_report
from destinations.worker.run import DEFAULT_BATCH_SIZE, RunSettings, execute


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--job-env",
        default=JOB_ENVIRONMENT_VARIABLE,
        metavar="NAME",
        help="environment variable holding the run request JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--credentials-dir",
        type=Path,
        default=Path(CREDENTIALS_DIR),
        help="the Authorization's Secret, one file per key (default: %(default)s)",
    )
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=Path(SECRETS_DIR),
        help="endpoint Secrets, one directory per Secret (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(DATA_DIR),
        help="file volumes, as source/ and sink/ (default: %(default)s)",
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=Path(TERMINATION_MESSAGE_PATH),
        help="where the result JSON is written (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="records read from the source per batch (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    mounts = Mounts(
        credentials_dir=args.credentials_dir, secrets_dir=args.secrets_dir, data_dir=args.data_dir
    )
    scrubber = Scrubber(_all_secret_values(mounts))
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(sys.stdout, scrubber), ScrubbedStream(sys.stderr, scrubber)
    try:
        log = JsonLog(scrubber)
        report = _execute(args, mounts, log, scrubber)
        report = report.model_copy(update={"message": scrubber(report.message)})
        try:
            write_report(report, args.termination_log)
        except OSError as error:
            log.error("termination_log_unwritable", path=str(args.termination_log), message=str(error))
        log("finished", result=report.result.value, exit_code=exit_code(report))
        return exit_code(report)
    finally:
        sys.stdout, sys.stderr = streams


def _execute(args: argparse.Namespace, mounts: Mounts, log: JsonLog, scrubber: Scrubber) -> RunReport:
    raw = os.environ.get(args.job_env)
    if not raw:
        return _failed(f"environment variable {args.job_env} with the run request is not set")
    try:
        request = RunRequest.model_validate_json(raw)
    except ValidationError as error:
        return _failed(f"the run request in {args.job_env} is invalid: {error.errors()[0]['msg']}")
    scrubber.add(spec_credentials(request.spec))  # passwords in URLs, header values in the config
    log.bind(job=f"{request.namespace}/{request.name}", run=request.run)
    settings = RunSettings(mounts=mounts, batch_size=max(1, args.batch_size))
    return asyncio.run(execute(request, settings, log))


def _failed(message: str) -> RunReport:
    return RunReport(result=RunResult.FAILED, records=RecordCounts(), message=message)


def _all_secret_values(mounts: Mounts) -> list[str]:
    values = list(read_secret_dir(mounts.credentials_dir).values())
    if mounts.secrets_dir.is_dir():
        for directory in mounts.secrets_dir.iterdir():
            if directory.is_dir() and not directory.name.startswith("."):
                values.extend(read_secret_dir(directory).values())
    return values
