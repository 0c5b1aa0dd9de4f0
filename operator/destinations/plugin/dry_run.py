"""`kubectl destinations dry-run JOB [--wait]`: compute what a run would do, writing nothing.

Sets the annotation `destinations.dev/dry-run-requested-at` to a new value. An operator that supports
dry runs reads the source, works out what a run would add, update and remove, and writes the result to
`status.lastDryRun` (echoing the request value in `status.lastDryRun.requestedAt`) without touching the
phase, the backoff or the counters. With `--wait` the command waits for that result and prints it (exit 1
when its `result` is `failed`); an
operator without dry-run support leaves the status unchanged, and the command says so when `--timeout`
runs out (the annotation stays, so a later operator acts on it).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from destinations.api.durations import format_duration
from destinations.plugin.errors import TimedOut
from destinations.plugin.output import dump
from destinations.plugin.waiting import add_wait_arguments, follow, request_value, timeout_of

if TYPE_CHECKING:
    from destinations.plugin.main import Session

DRY_RUN_ANNOTATION = "destinations.dev/dry-run-requested-at"


def handled(job: dict[str, Any], value: str) -> bool:
    """Whether the status shows the dry run for request `value`."""
    status = job.get("status") or {}
    last = status.get("lastDryRun") or {}
    return value in (last.get("requestedAt"), status.get("lastHandledDryRunRequestAt"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the DestinationJob")
    add_wait_arguments(parser, "5m")


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    timeout = timeout_of(args)
    kube.get_job(args.job, "request a dry run")
    value = request_value()
    kube.patch_job(args.job, {"metadata": {"annotations": {DRY_RUN_ANNOTATION: value}}}, "request a dry run")
    session.console.print(
        f"Dry run requested for {kube.namespace}/{args.job} ({DRY_RUN_ANNOTATION}={value})."
    )
    if not args.wait:
        return 0
    try:
        job = follow(session, args.job, lambda current: handled(current, value), timeout, "no dry run")
    except TimedOut:
        raise TimedOut(
            f"the operator did not handle the dry-run request {value} within {format_duration(timeout)}: "
            "status.lastDryRun did not report it. The operator may predate dry runs "
            f"({DRY_RUN_ANNOTATION}); the annotation stays set, so an operator that supports them will "
            "act on it."
        ) from None
    last = (job.get("status") or {}).get("lastDryRun") or {}
    session.console.print("Last dry run:")
    for line in dump(last, "yaml").splitlines():
        session.console.print(f"  {line}")
    return 1 if last.get("result") == "failed" else 0
