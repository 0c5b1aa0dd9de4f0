"""`kubectl destinations pause JOB [--reason TEXT] [--wait]`: pause a job.

Sets `spec.paused: true` (the declarative switch a GitOps repository can hold too) and the annotation
`destinations.dev/pause-reason` to TEXT, or removes a previous reason when none is given. A Running job
finishes its run in flight, then pauses. With `--wait` the command follows the job until it is Paused.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from destinations.plugin.waiting import add_wait_arguments, follow, timeout_of

if TYPE_CHECKING:
    from destinations.plugin.main import Session

PAUSE_REASON_ANNOTATION = "destinations.dev/pause-reason"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the DestinationJob")
    parser.add_argument("--reason", help="why the job is paused; shown with the Paused status and event")
    add_wait_arguments(parser, "10m")


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    timeout = timeout_of(args)
    job = kube.get_job(args.job, "pause the job")
    status = job.get("status") or {}
    kube.patch_job(
        args.job,
        {"spec": {"paused": True}, "metadata": {"annotations": {PAUSE_REASON_ANNOTATION: args.reason}}},
        "pause the job",
    )
    reason = f" ({args.reason})" if args.reason else ""
    session.console.print(f"Pause requested for {kube.namespace}/{args.job}{reason}: spec.paused is true.")
    current = status.get("currentRun")
    if current:
        session.console.print(f"Run {current.get('number')} is in flight; it finishes, then the job pauses.")
    if not args.wait:
        return 0
    follow(
        session,
        args.job,
        lambda latest: (latest.get("status") or {}).get("phase") == "Paused",
        timeout,
        "the job did not pause",
    )
    session.console.print(f"{kube.namespace}/{args.job} is Paused.")
    return 0
