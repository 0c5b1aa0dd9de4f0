"""`kubectl destinations resume JOB [--wait]`: resume a paused job.

Sets `spec.paused: false` and removes `destinations.dev/pause-reason`. The job runs at its next due
time, at once when that time has passed while it was paused. With `--wait` the command follows the job
until the operator has seen the change and the job has left Paused, and prints the next run time.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from destinations.plugin.output import relative
from destinations.plugin.pause import PAUSE_REASON_ANNOTATION
from destinations.plugin.waiting import add_wait_arguments, follow, timeout_of

if TYPE_CHECKING:
    from destinations.plugin.main import Session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the DestinationJob")
    add_wait_arguments(parser, "5m")


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    timeout = timeout_of(args)
    kube.get_job(args.job, "resume the job")
    patched = kube.patch_job(
        args.job,
        {"spec": {"paused": False}, "metadata": {"annotations": {PAUSE_REASON_ANNOTATION: None}}},
        "resume the job",
    )
    generation = int((patched.get("metadata") or {}).get("generation") or 0)
    session.console.print(f"Resume requested for {kube.namespace}/{args.job}: spec.paused is false.")
    if not args.wait:
        return 0

    def resumed(job: dict[str, Any]) -> bool:
        status = job.get("status") or {}
        seen = int(status.get("observedGeneration") or 0) >= generation
        return seen and status.get("phase") not in (None, "Paused")

    job = follow(session, args.job, resumed, timeout, "the job did not leave Paused")
    status = job.get("status") or {}
    next_run = f"; next run {relative(status['nextRunAt'])}" if status.get("nextRunAt") else ""
    session.console.print(f"{kube.namespace}/{args.job} is {status.get('phase')}{next_run}.")
    return 0
