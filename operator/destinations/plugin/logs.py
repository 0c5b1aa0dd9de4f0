"""`kubectl destinations logs JOB [--run N] [--follow]`: what happened in one run.

Prints the run's entries of the job's history (`status.history`, kept by the operator), then the log
of the run's sync pod (`<job>-run-<N>`), each of the worker's JSON lines rendered as
`time  level  event  key=value…`. The default run is the one in flight, else the last one. Finished
pods beyond the job's `spec.history` limits are deleted by the operator: for such a run the command
says the pod was pruned and shows what the history kept. `--follow` streams the log of a run in flight
until its pod ends, waiting for the pod to start first.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text

from destinations.lifecycle.actions import sync_pod_name
from destinations.plugin.errors import PluginError, UsageError
from destinations.plugin.kube import RUN_LABEL
from destinations.plugin.output import STYLES

if TYPE_CHECKING:
    from destinations.plugin.main import Session

Json = dict[str, Any]
#: Fields every worker line carries (bound at start); the header already names them.
IDENTITY_FIELDS = ("time", "level", "event", "job", "run")
LEVEL_STYLES = {"error": "bold red", "warning": "yellow"}
#: How long --follow waits for a pod still being scheduled or pulling its image.
START_TIMEOUT = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the DestinationJob")
    parser.add_argument("--run", type=int, metavar="N", help="the run number (default: current, else last)")
    parser.add_argument("-f", "--follow", action="store_true", help="stream the log until the pod ends")
    parser.add_argument("--raw", action="store_true", help="print the worker's JSON lines as they are")


def render_line(line: str) -> Text:
    """One worker log line for people: `21:40:01.123Z  info   started  provider=webhook type=export`.

    Lines that are not the worker's JSON (a crash's traceback) are returned unchanged.
    """
    try:
        entry = json.loads(line)
    except ValueError:
        return Text(line)
    if not isinstance(entry, dict) or "event" not in entry:
        return Text(line)
    level = str(entry.get("level", "info"))
    text = Text(f"{entry.get('time', '')}  ")
    text.append(level.ljust(7), style=LEVEL_STYLES.get(level, ""))
    text.append(str(entry["event"]), style="bold")
    for key, value in entry.items():
        if key in IDENTITY_FIELDS:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        text.append(f"  {key}={shown}")
    return text


def _print_lines(session: Session, lines: Iterable[str], raw: bool) -> None:
    for line in lines:
        if not line.strip():
            continue
        session.console.print(Text(line) if raw else render_line(line))


def _pick_run(job: Json, requested: int | None) -> int:
    """`--run N` when it names a run that happened; else the run in flight, else the last one."""
    status = job.get("status") or {}
    name = (job.get("metadata") or {}).get("name")
    latest = max(int((status.get(source) or {}).get("number") or 0) for source in ("currentRun", "lastRun"))
    if latest == 0:
        raise PluginError(f'job "{name}" has not run yet; `kubectl destinations run {name}` starts a run')
    if requested is None:
        return latest
    if not 1 <= requested <= latest:
        raise UsageError(f'--run {requested}: job "{name}" has had runs 1 to {latest}')
    return requested


def _history(session: Session, job: Json, number: int) -> None:
    entries = [
        entry for entry in (job.get("status") or {}).get("history") or [] if entry.get("run") == number
    ]
    if not entries:
        session.console.print(f"History of run {number}: no entries (the history keeps the last 20).")
        return
    session.console.print(f"History of run {number}:")
    for entry in entries:
        line = Text(f"  {entry.get('time', '-')}  ")
        event = str(entry.get("event", "-"))
        line.append(
            event.ljust(9), style=STYLES.get({"Synced": "succeeded", "Error": "failed"}.get(event, ""), "")
        )
        line.append(str(entry.get("message") or ""))
        session.console.print(line)


def _find_pod(session: Session, job: Json, number: int) -> Json | None:
    """The run's pod: by the deterministic name, else by labels (pods made by older naming rules)."""
    kube = session.kube()
    name = str((job.get("metadata") or {}).get("name"))
    current = (job.get("status") or {}).get("currentRun") or {}
    pod_name = current.get("pod") if current.get("number") == number else sync_pod_name(name, number)
    pod = kube.get_pod(str(pod_name), "read the run's pod")
    if pod is not None:
        return pod
    for candidate in kube.list_job_pods(name, "find the run's pod"):
        if ((candidate.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL) == str(number):
            return candidate
    return None


def _started(pod: Json) -> bool:
    """Whether the sync container has started (or ended): only then does the kubelet have a log."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        state = container.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    job = kube.get_job(args.job, "read the job's history")
    number = _pick_run(job, args.run)
    _history(session, job, number)
    pod = _find_pod(session, job, number)
    spec_history = (job.get("spec") or {}).get("history") or {}
    if pod is None:
        session.console.print(
            f"The pod of run {number} ({sync_pod_name(args.job, number)}) was pruned: the operator keeps the "
            f"pods of the last {spec_history.get('succeeded', 3)} succeeded and "
            f"{spec_history.get('failed', 3)} failed runs (spec.history), so only the history above remains."
        )
        return 0
    pod_name = str(pod["metadata"]["name"])
    session.console.print(f"Log of pod {pod_name}:")
    if args.follow:
        deadline = time.monotonic() + START_TIMEOUT
        while not _started(pod):
            if time.monotonic() > deadline:
                raise PluginError(f"pod {pod_name} did not start within {START_TIMEOUT:.0f}s")
            time.sleep(0.5)
            refreshed = kube.get_pod(pod_name, "wait for the run's pod to start")
            if refreshed is None:
                raise PluginError(f"pod {pod_name} was deleted before it started")
            pod = refreshed
        _print_lines(session, kube.follow_pod_log(pod_name, "follow the run's log"), args.raw)
        return 0
    if not _started(pod):
        session.console.print(f"  (pod {pod_name} has not started yet; --follow waits for it)")
        return 0
    _print_lines(session, kube.pod_log(pod_name, "read the run's log").splitlines(), args.raw)
    return 0
