"""What the request commands (`run`, `dry-run`, `pause`, `resume`) share: the request value, `--wait`.

A request is a field or an annotation the operator already understands; `--wait` then polls the job
(a `get` every half second: the plugin needs no `watch` permission) until the operator's status shows
the request was handled, printing each phase change on the way, or gives up after `--timeout`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text

from destinations.api.durations import ACCEPTED, format_duration, parse_duration
from destinations.plugin.errors import TimedOut, UsageError
from destinations.plugin.output import styled

if TYPE_CHECKING:
    from destinations.plugin.main import Session

Json = dict[str, Any]
POLL_INTERVAL = 0.5


def request_value(now: datetime | None = None) -> str:
    """A new, unique request value: the current time in RFC 3339 with microseconds."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_wait_arguments(parser: argparse.ArgumentParser, default_timeout: str) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the job until the operator handled it")
    parser.add_argument(
        "--timeout",
        default=default_timeout,
        help=f"how long --wait waits, {ACCEPTED} (default {default_timeout})",
    )


def timeout_of(args: argparse.Namespace) -> timedelta:
    try:
        return parse_duration(args.timeout)
    except ValueError:
        raise UsageError(f"--timeout {args.timeout!r} is not {ACCEPTED}") from None


def describe_phase(status: Json) -> Text:
    text = styled(str(status.get("phase") or "Unknown"))
    if status.get("reason"):
        text.append(f" ({status['reason']})")
    if status.get("message"):
        text.append(f": {status['message']}")
    return text


def follow(
    session: Session,
    name: str,
    handled: Callable[[Json], bool],
    timeout: timedelta,
    what: str,
) -> Json:
    """Poll the job until `handled(job)`; print phase changes; `TimedOut` naming `what` otherwise."""
    kube = session.kube()
    deadline = time.monotonic() + timeout.total_seconds()
    shown = ""
    while True:
        job = kube.get_job(name, "follow the job with --wait")
        status = job.get("status") or {}
        line = Text("  ")
        line.append(describe_phase(status))
        if line.plain != shown:
            shown = line.plain
            session.console.print(line)
        if handled(job):
            return job
        if time.monotonic() >= deadline:
            phase = status.get("phase") or "without status"
            raise TimedOut(f"{what} within {format_duration(timeout)}; the job is {phase}")
        time.sleep(POLL_INTERVAL)
