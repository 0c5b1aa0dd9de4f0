"""`kubectl destinations run JOB [--wait]`: run a job now.

Sets the annotation `destinations.dev/requested-at` to a new value; the operator starts a run at once
(a Failed job is resumed first) and echoes the value into `status.lastHandledRequestAt`. On a Paused or
Completed job the request is acknowledged but starts nothing; on a Running job the run in flight is the
one followed. With `--wait` the command follows the job until that run has finished and prints its
result and record counts; it exits 0 when the run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rich.text import Text

from destinations.plugin.output import counts, styled
from destinations.plugin.waiting import add_wait_arguments, follow, request_value, timeout_of

if TYPE_CHECKING:
    from destinations.plugin.main import Session

REQUESTED_AT_ANNOTATION = "destinations.dev/requested-at"
#: Phases in which a run-now request is acknowledged but starts nothing.
NOT_RUNNABLE = ("Paused", "Completed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the DestinationJob")
    add_wait_arguments(parser, "10m")


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    timeout = timeout_of(args)
    job = kube.get_job(args.job, "run the job")
    baseline = int(((job.get("status") or {}).get("lastRun") or {}).get("number") or 0)
    value = request_value()
    kube.patch_job(args.job, {"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: value}}}, "run the job")
    session.console.print(
        f"Run requested for {kube.namespace}/{args.job} ({REQUESTED_AT_ANNOTATION}={value})."
    )
    if not args.wait:
        return 0
    acknowledged = follow(
        session,
        args.job,
        lambda current: (current.get("status") or {}).get("lastHandledRequestAt") == value,
        timeout,
        f"the operator did not acknowledge the request {value}",
    )
    phase = (acknowledged.get("status") or {}).get("phase")
    if phase in NOT_RUNNABLE:
        session.console.print(
            f"The operator acknowledged the request, but the job is {phase}: nothing runs"
            + (" until it is resumed (kubectl destinations resume)." if phase == "Paused" else ".")
        )
        return 1

    def finished(current: dict[str, Any]) -> bool:
        last = (current.get("status") or {}).get("lastRun") or {}
        return int(last.get("number") or 0) > baseline

    done = follow(session, args.job, finished, timeout, "the requested run did not finish")
    last = (done.get("status") or {}).get("lastRun") or {}
    line = Text(f"Run {last.get('number')} ")
    line.append(styled(str(last.get("result"))))
    line.append(f": {counts(last.get('records'))}")
    if last.get("message"):
        line.append(f". {last['message']}")
    session.console.print(line)
    return 0 if last.get("result") == "succeeded" else 1
