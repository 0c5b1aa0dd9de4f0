"""The run's result: the termination message (JSON under 4 KiB) and the matching exit code."""

from __future__ import annotations

from pathlib import Path

from destinations.api.models import RecordCounts, Rejection, RunResult
from destinations.api.runs import EXIT_CODES, TERMINATION_MESSAGE_LIMIT, RunReport
from destinations.providers.base import RecordCounter


def summarize(counts: RecordCounter) -> str:
    """`read 10, added 7, updated 2, omitted 1 (e.g. "x@: invalid")`: the counts a user cares about."""
    parts = [f"read {counts.read}", f"added {counts.added}", f"updated {counts.updated}"]
    if counts.removed:
        parts.append(f"removed {counts.removed}")
    for name, value in (("skipped", counts.skipped), ("invalid", counts.invalid)):
        if value:
            parts.append(f"{name} {value}")
    if counts.retried:
        parts.append(f"retried {counts.retried} (accepted {counts.accepted})")
    if counts.given_up:
        parts.append(f"given up {counts.given_up}")
    for name, value, samples in (
        ("omitted", counts.omitted, counts.omission_samples),
        ("failed", counts.failed, counts.failure_samples),
    ):
        if value:
            parts.append(f"{name} {value}" + (f" (e.g. {'; '.join(samples)})" if samples else ""))
    if counts.unconfirmed:
        parts.append(
            f"unconfirmed {counts.unconfirmed} (neither added nor refused as far as this run knows: "
            f"{'; '.join(counts.unconfirmed_samples)})"
        )
    return ", ".join(parts)


def build_report(
    result: RunResult,
    counts: RecordCounts,
    message: str,
    retry_after_seconds: float | None = None,
    rejections: list[Rejection] | None = None,
) -> RunReport:
    return RunReport(
        result=result,
        records=counts,
        message=message,
        retry_after_seconds=retry_after_seconds,
        rejections=rejections or None,
    )


def encode_report(report: RunReport, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """The report's JSON, its rejection samples then its message shortened until the whole fits in
    `limit` bytes."""
    encoded = report.model_dump_json(by_alias=True, exclude_none=True)
    while len(encoded.encode()) > limit and report.rejections:
        report = report.model_copy(update={"rejections": report.rejections[:-1] or None})
        encoded = report.model_dump_json(by_alias=True, exclude_none=True)
    message = report.message
    while len(encoded.encode()) > limit and message:
        excess = len(encoded.encode()) - limit
        message = message[: max(0, len(message) - excess - 1)].rstrip() + "…"
        if len(message) <= 1:
            message = ""
        encoded = report.model_copy(update={"message": message}).model_dump_json(
            by_alias=True, exclude_none=True
        )
    return encoded


def write_report(report: RunReport, path: Path) -> None:
    """Write the termination message; Kubernetes reads this file when the container ends."""
    path.write_text(encode_report(report), encoding="utf-8")


def exit_code(report: RunReport) -> int:
    return EXIT_CODES[report.result]
