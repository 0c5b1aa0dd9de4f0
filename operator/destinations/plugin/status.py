"""`kubectl destinations status [JOB]`: a job's summary at a glance, or the namespace's jobs.

With JOB, the summary follows the product's job screen: status and why, provider, type, name and
description, Authorization and its health, created, created by, last updated, the schedule and next
run, the last run with its counts and rejections, the recent history, and the configuration (which
holds Secret *references* only; values of keys that look like credentials are masked anyway).
Without JOB, one line per job like `kubectl get dj -o wide`, plus the last run's result and counts.

The summary is built once as a dict (`summarize`): `-o yaml|json` prints it, the text view renders it.
Fields a newer operator adds (`lastDryRun`, `lastSuccessfulTime`, `lastRun.rejections`) are shown when
present.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text

from destinations.plugin.errors import NotFound, PermissionDenied
from destinations.plugin.output import STYLES, age, counts, dump, parse_time, relative, styled, table
from destinations.providers.catalog import load_catalog

if TYPE_CHECKING:
    from destinations.plugin.main import Session

Json = dict[str, Any]
CREATED_BY_ANNOTATION = "destinations.dev/created-by"
PAUSE_REASON_ANNOTATION = "destinations.dev/pause-reason"
#: Keys whose values are masked (a header such as `Authorization` or `X-API-Key` in a webhook's config);
#: matched at the end of the key, so references such as `headersSecretRef` stay readable.
SENSITIVE_KEY = re.compile(
    r"(password|passwd|secret|token|api[-_]?key|authorization|credentials?|private[-_]?key)$", re.IGNORECASE
)
MASK = "***"
LABEL_WIDTH = 18
HISTORY_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", nargs="?", metavar="JOB", help="the DestinationJob; omit to list the jobs")
    parser.add_argument(
        "-o", "--output", choices=("text", "yaml", "json"), default="text", help="text, yaml or json"
    )


def run(args: argparse.Namespace, session: Session) -> int:
    kube = session.kube()
    if args.job is None:
        jobs = kube.list_jobs("list the jobs")
        if args.output != "text":
            session.console.file.write(dump([summarize(job, None) for job in jobs], args.output))
        else:
            render_list(session, jobs, kube.target.all_namespaces)
        return 0
    job = kube.get_job(args.job, "show the job's status")
    authorization = _authorization(session, job)
    summary = summarize(job, authorization)
    if args.output != "text":
        session.console.file.write(dump(summary, args.output))
    else:
        render(session, summary)
    return 0


def _authorization(session: Session, job: Json) -> Json:
    """The job's Authorization, or a stand-in whose health says why it could not be read."""
    name = ((job.get("spec") or {}).get("authorizationRef") or {}).get("name")
    if not name:
        return {"status": {"health": "Unknown", "message": "the job names no authorizationRef"}}
    try:
        return session.kube().get_authorization(name, "show the Authorization's health")
    except NotFound:
        return {"status": {"health": "Missing", "message": f'Authorization "{name}" does not exist'}}
    except PermissionDenied as error:
        return {
            "status": {
                "health": "Unknown",
                "message": f"cannot read it: you may not {error.verb} {error.resource}",
            }
        }


# ------------------------------------------------------------------------------------------ summary


def mask(value: Any) -> Any:
    """`value` with every credential-looking key's value replaced by `***`."""
    if isinstance(value, Mapping):
        return {key: MASK if SENSITIVE_KEY.search(str(key)) else mask(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item) for item in value]
    return value


def _schedule(spec: Mapping[str, Any]) -> Json:
    schedule = spec.get("schedule")
    if schedule:
        return dict(schedule)
    provider = load_catalog().get(str(spec.get("provider")))
    if provider is None:
        return {}
    return {**provider.default_schedule.to_manifest(), "default": True}


def describe(schedule: Mapping[str, Any]) -> str:
    """`every 1h`, `cron 0 6 * * * (Europe/Paris)`, `once`; `(provider default)` when not set."""
    if not schedule:
        return "-"
    text = (
        f"every {schedule['every']}"
        if "every" in schedule
        else f"cron {schedule['cron']}" + (f" ({schedule['timezone']})" if schedule.get("timezone") else "")
        if "cron" in schedule
        else "once"
    )
    return text + (" (provider default)" if schedule.get("default") else "")


def summarize(job: Json, authorization: Json | None) -> Json:
    """The job summary as data: what `-o yaml|json` prints and the text view renders."""
    metadata = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    annotations = metadata.get("annotations") or {}
    summary: Json = {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "displayName": spec.get("displayName"),
        "description": spec.get("description"),
        "status": {
            "phase": status.get("phase") or "Unknown",
            "reason": status.get("reason"),
            "message": status.get("message"),
            "since": status.get("phaseSince"),
        },
        "provider": spec.get("provider"),
        "type": spec.get("type"),
        "mode": spec.get("mode", "upsert"),
        "authorization": {"name": (spec.get("authorizationRef") or {}).get("name")},
        "created": metadata.get("creationTimestamp"),
        "createdBy": status.get("createdBy") or annotations.get(CREATED_BY_ANNOTATION),
        "lastUpdated": status.get("lastUpdated"),
        "schedule": _schedule(spec),
        "nextRunAt": status.get("nextRunAt"),
        "paused": bool(spec.get("paused")),
        "runs": status.get("runs") or {"total": 0, "succeeded": 0, "failed": 0},
        "consecutiveErrors": status.get("consecutiveErrors", 0),
        "errorsSince": status.get("errorsSince"),
        "lastSuccessfulTime": status.get("lastSuccessfulTime"),
        "lastFailureTime": status.get("lastFailureTime"),
        "currentRun": status.get("currentRun"),
        "lastRun": status.get("lastRun"),
        "lastDryRun": status.get("lastDryRun"),
        "history": status.get("history") or [],
        "configuration": mask(
            {key: spec[key] for key in ("config", "source", "sink") if spec.get(key) is not None}
        ),
    }
    if annotations.get(PAUSE_REASON_ANNOTATION):
        summary["pauseReason"] = annotations[PAUSE_REASON_ANNOTATION]
    if authorization is not None:
        auth_status = authorization.get("status") or {}
        summary["authorization"]["health"] = auth_status.get("health", "Unknown")
        summary["authorization"]["message"] = auth_status.get("message")
    return summary


# ------------------------------------------------------------------------------------------- render


def _line(session: Session, label: str, value: str | Text, indent: int = 0) -> None:
    text = Text(" " * indent + f"{label}:".ljust(LABEL_WIDTH - indent))
    text.append(value if isinstance(value, Text) else Text(value))
    text.rstrip()
    session.console.print(text)


def _took(started: str | None, finished: str | None) -> str:
    begin, end = parse_time(started), parse_time(finished)
    if begin is None or end is None:
        return ""
    return f" (took {(end - begin).total_seconds():.1f}s)"


def render(session: Session, summary: Json, now: datetime | None = None) -> None:
    """The text summary, one `Label:  value` line per field, sections for runs, history and config."""
    now = now or datetime.now(UTC)
    state = summary["status"]
    status_text = styled(state["phase"])
    if state.get("reason"):
        status_text.append(f" ({state['reason']})")
    if state.get("message"):
        status_text.append(f": {state['message']}")
    _line(session, "Name", f"{summary['namespace']}/{summary['name']}")
    _line(session, "Display name", summary.get("displayName") or "-")
    _line(session, "Description", summary.get("description") or "-")
    _line(session, "Status", status_text)
    if state.get("since"):
        _line(session, "Since", relative(state["since"], now))
    if summary.get("pauseReason"):
        _line(session, "Pause reason", summary["pauseReason"])
    provider = load_catalog().get(str(summary.get("provider")))
    provider_text = str(summary.get("provider")) + (f" ({provider.display_name})" if provider else "")
    _line(session, "Provider", provider_text)
    _line(session, "Type", str(summary.get("type")))
    _line(session, "Mode", str(summary.get("mode")))
    authorization = summary["authorization"]
    auth_text = Text(str(authorization.get("name")))
    if "health" in authorization:
        auth_text.append(" ")
        auth_text.append(authorization["health"], style=STYLES.get(authorization["health"], "bold red"))
        if authorization.get("message"):
            auth_text.append(f": {authorization['message']}")
    _line(session, "Authorization", auth_text)
    _line(session, "Created", relative(summary.get("created"), now))
    _line(session, "Created by", summary.get("createdBy") or "-")
    _line(session, "Last updated", relative(summary.get("lastUpdated"), now))
    _line(session, "Schedule", describe(summary["schedule"]))
    _line(session, "Next run", relative(summary.get("nextRunAt"), now) if summary.get("nextRunAt") else "-")
    runs = summary["runs"]
    _line(
        session,
        "Runs",
        f"{runs.get('total', 0)} total, {runs.get('succeeded', 0)} succeeded, {runs.get('failed', 0)} failed",
    )
    errors = f"{summary.get('consecutiveErrors') or 0}"
    if summary.get("errorsSince"):
        errors += f" since {relative(summary['errorsSince'], now)}"
    _line(session, "Errors in a row", errors)
    if summary.get("lastSuccessfulTime"):
        _line(session, "Last success", relative(summary["lastSuccessfulTime"], now))
    if summary.get("lastFailureTime"):
        _line(session, "Last failure", relative(summary["lastFailureTime"], now))
    current = summary.get("currentRun")
    if current:
        _line(
            session,
            "Current run",
            f"{current.get('number')} in pod {current.get('pod')}, "
            f"started {relative(current.get('startedAt'), now)}",
        )
    _render_last_run(session, summary.get("lastRun"), now)
    if summary.get("lastDryRun"):
        session.console.print("Last dry run:")
        for line in dump(summary["lastDryRun"], "yaml").splitlines():
            session.console.print(f"  {line}")
    _render_history(session, summary["history"], now)
    session.console.print("Configuration:")
    for line in dump(summary["configuration"], "yaml").splitlines() if summary["configuration"] else ["{}"]:
        session.console.print(f"  {line}")


def _render_last_run(session: Session, last: Json | None, now: datetime) -> None:
    if not last:
        _line(session, "Last run", "none yet")
        return
    result = Text(f"{last.get('number')} ")
    result.append(styled(str(last.get("result"))))
    _line(session, "Last run", result)
    _line(session, "Started", relative(last.get("startedAt"), now), indent=2)
    _line(
        session,
        "Finished",
        relative(last.get("finishedAt"), now) + _took(last.get("startedAt"), last.get("finishedAt")),
        indent=2,
    )
    _line(session, "Records", counts(last.get("records")), indent=2)
    _line(session, "Message", last.get("message") or "-", indent=2)
    rejections = last.get("rejections") or []
    _line(session, "Rejections", str(len(rejections)) if rejections else "none", indent=2)
    for rejection in rejections:
        session.console.print(f"    {rejection.get('key')}: {rejection.get('reason')}")


def _render_history(session: Session, history: list[Json], now: datetime) -> None:
    if not history:
        _line(session, "History", "none yet")
        return
    shown = history[-HISTORY_SHOWN:]
    session.console.print(f"History (last {len(shown)} of {len(history)}, oldest first):")
    rows = [
        (
            f"  {entry.get('time', '-')}",
            str(entry.get("event", "-")),
            str(entry.get("run") or "-"),
            str(entry.get("message") or ""),
        )
        for entry in shown
    ]
    table(session.console, ("  TIME", "EVENT", "RUN", "MESSAGE"), rows)


def render_list(session: Session, jobs: list[Json], all_namespaces: bool) -> None:
    """One row per job: the printer columns of `kubectl get dj -o wide`, then the last run's counts."""
    if not jobs:
        where = "any namespace" if all_namespaces else f'namespace "{session.kube().namespace}"'
        session.errors.print(f"No DestinationJobs found in {where}.")
        return
    header = (("NAMESPACE",) if all_namespaces else ()) + (
        "NAME",
        "AUTHORIZATION",
        "PROVIDER",
        "TYPE",
        "STATUS",
        "AGE",
        "LAST-SYNC",
        "NEXT-RUN",
        "LAST-RUN",
        "RECORDS",
        "MESSAGE",
    )
    rows = []
    for job in jobs:
        metadata, spec, status = job.get("metadata") or {}, job.get("spec") or {}, job.get("status") or {}
        last = status.get("lastRun") or {}
        records = last.get("records") or {}
        row = ((metadata.get("namespace", ""),) if all_namespaces else ()) + (
            metadata.get("name", ""),
            (spec.get("authorizationRef") or {}).get("name", ""),
            spec.get("provider", ""),
            spec.get("type", ""),
            status.get("phase") or "Unknown",
            age(metadata.get("creationTimestamp")),
            age(last.get("finishedAt")) if last.get("finishedAt") else "<none>",
            status.get("nextRunAt") or "<none>",
            f"{last['number']} {last.get('result')}" if last else "<none>",
            " ".join(
                f"{key}={int(records.get(key) or 0)}"
                for key in ("read", "added", "updated", "removed", "omitted", "failed")
            )
            if last
            else "<none>",
            status.get("message") or "",
        )
        rows.append(row)
    table(session.console, header, rows, styled_columns=(header.index("STATUS"),))
