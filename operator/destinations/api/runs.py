"""The contract between a sync pod and the operator: what the pod is given and what it reports.

The operator renders the pod (destinations.controller.pods); the worker (destinations.worker) reads the
job from the environment and the credentials from a read-only Secret volume, and writes its result to
the container's termination message, which the operator reads before it ever deletes the pod.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from destinations.api.models import (
    MAX_REJECTION_SAMPLES,
    DryRunPreview,
    RecordCounts,
    Rejection,
    RunResult,
    StatusModel,
)

#: The environment variable carrying the job description (JSON of `RunRequest`); never credentials.
JOB_ENVIRONMENT_VARIABLE = "DESTINATIONS_JOB"
#: Where the Authorization's Secret is mounted, read-only.
CREDENTIALS_DIR = "/var/run/destinations/credentials"
#: Secrets referenced by data endpoints (warehouse connection strings, URL headers): one directory each.
SECRETS_DIR = "/var/run/destinations/secrets"
#: File endpoints' volumes: `<DATA_DIR>/source` and `<DATA_DIR>/sink`.
DATA_DIR = "/var/run/destinations/data"
#: A writable scratch directory (an emptyDir): the root filesystem is read-only.
SCRATCH_DIR = "/tmp"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
#: Kubernetes truncates termination messages at 4096 bytes; the worker keeps under this.
TERMINATION_MESSAGE_LIMIT = 4000

#: Annotation on a DestinationJob confirming that the run it names may remove more members than
#: `spec.mirror.maxRemovePercent`: its value is the number of a run the guard refused.
CONFIRM_REMOVAL_ANNOTATION = "destinations.dev/confirm-removal"

EXIT_CODES: dict[RunResult, int] = {
    RunResult.SUCCEEDED: 0,
    RunResult.FAILED: 1,
    # A rate limit is not an error (DESIGN.md §3): the container ends successfully, so the pod is
    # `Succeeded` and `kubectl get pods` shows `Completed`, never `Error`. The termination message
    # carries the result; docs/lifecycle.md#rate-limited-runs.
    RunResult.RATE_LIMITED: 0,
}


class RunRequest(StatusModel):
    """What the worker is asked to do: one run of one job."""

    namespace: str
    name: str
    uid: str = ""
    run: int = Field(ge=1)
    spec: dict[str, Any]
    """The DestinationJob spec as applied (provider, type, config, source, sink, mode)."""
    auth_method: str
    """The Authorization's method; its Secret's keys are files in CREDENTIALS_DIR."""
    endpoint: str | None = None
    """The Authorization's endpoint override, if any."""
    confirmed_removal_run: int | None = None
    """The job's `destinations.dev/confirm-removal` annotation: a run whose mass removal the user
    confirmed (mirror mode)."""
    dry_run: bool = False
    """Compute what the run would do (`RunReport.preview`) and write nothing to the provider or the
    bookkeeping (a provider may still read, e.g. Salesforce's lookup in insert and update mode)."""
    dry_run_requested_at: str | None = None
    """A dry run's `destinations.dev/dry-run-requested-at` value: what its sealed rotated credentials
    are bound to (`sealing_id`)."""

    @property
    def sealing_id(self) -> str:
        """What `RunReport.rotated_credentials` is sealed to (destinations.providers.rotation): the run,
        `namespace/name#run`, or for a dry run the request it answers (`dry_run_sealing_id`), so a
        report opens only for the run or dry run that wrote it."""
        if self.dry_run:
            return dry_run_sealing_id(self.namespace, self.name, self.dry_run_requested_at or "")
        return f"{self.namespace}/{self.name}#{self.run}"


def dry_run_sealing_id(namespace: str, name: str, requested_at: str) -> str:
    """`namespace/name#dry-run=<requested-at>`: a dry run's sealing id. Dry-run pods carry the number
    of the job's next run, so they are bound to their request value instead, never to a run's id."""
    return f"{namespace}/{name}#dry-run={requested_at}"


class RunReport(StatusModel):
    """The worker's result, written as JSON to the termination message; the exit code agrees."""

    result: RunResult
    records: RecordCounts = RecordCounts()
    message: str = ""
    retry_after_seconds: float | None = None
    """For `rate_limited`: when the provider allows the next call."""
    rejections: list[Rejection] | None = Field(default=None, max_length=MAX_REJECTION_SAMPLES)
    preview: DryRunPreview | None = None
    """A dry run's findings."""
    """Up to 10 records the provider refused: key and reason (the provider's code and message)."""
    rotated_credentials: str | None = None
    """Secret keys the provider rotated during the run (an OAuth2 refreshToken), sealed so that only a
    reader of the Authorization's Secret can open them; the operator writes them back into the Secret
    (destinations.providers.rotation)."""
