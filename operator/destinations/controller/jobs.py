"""The DestinationJob controller: one runner task per job, carrying out the lifecycle core's decisions.

Each job gets a `JobRunner`: a small asyncio task that sleeps until the core's `WakeAt` time or until
something happens to the job (a spec change, a run-now request, its pod finishing, its Authorization
turning Healthy, a run slot freeing up). Each wake-up is one call of `decide`; the runner then creates
the pod, writes the status (only when it changed, and only the fields that changed), posts the Events,
prunes pods and purges the job, in that order. A sleeping job therefore costs one idle task and makes
no API call at all.

The runner's in-memory status is the truth between writes: the operator is the only writer of
`.status`, so the echoes of its own patches carry nothing new. After a restart the status is read back
from the object, and a run in flight is adopted: its pod is read (never created twice: pod names are
deterministic and a create that meets 409 adopts the existing pod); a pod that is gone is a lost run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from destinations.api.models import AuthorizationSpec, Condition, DestinationJobStatus, Phase, Schedule
from destinations.controller import dry_runs
from destinations.controller.capacity import RunSlots
from destinations.controller.kube import KubeClient, KubeError
from destinations.controller.metrics import Metrics
from destinations.controller.observing import (
    JobView,
    PodSummary,
    finished_pods,
    job_view,
    observations_for_change,
    parse_spec,
    run_observation,
    summarize_pod,
)
from destinations.controller.patches import merge_patch
from destinations.controller.pods import JOB_LABEL, AuthorizationInfo, JobIdentity, render_sync_pod
from destinations.controller.settings import OperatorSettings
from destinations.controller.usage import ACTIVE_PHASES, AuthorizationUsage
from destinations.lifecycle import (
    CreatePod,
    Decision,
    DeleteJob,
    DeletePod,
    EventType,
    InvalidSpec,
    JobObserved,
    Observation,
    PostEvent,
    Reason,
    RunFinished,
    RunLost,
    RunNowRequested,
    RunTimedOut,
    TimerFired,
    decide,
    format_time,
    parse_time,
)
from destinations.providers.catalog import load_catalog
from destinations.redaction import redact_credentials

logger = logging.getLogger("destinations.operator.jobs")

PLURAL = "destinationjobs"
JobKey = tuple[str, str]
_RUN_OBSERVATIONS = (RunFinished, RunLost, RunTimedOut)
_FALLBACK_SCHEDULE = Schedule(every=timedelta(hours=1))
#: A wake-up a hair late is harmless; one a hair early would just loop once more.
_TIMER_SLACK_SECONDS = 0.05
_WRITE_RETRY_SECONDS = (1, 2, 5, 10, 30)
#: API answers worth another try: unreachable (0), throttled, and the server's transient errors.
_TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
#: Pauses before a step that raised is tried again: a transient cause heals, a bug does not spin.
_FAILURE_RETRY_SECONDS = (5, 15, 60, 300)
#: Pods first: the other writes wait until no pod creation started for this long (`pods_created`),
POD_QUIET_SECONDS = 0.2
#: but never longer than this: a burst of 1,000 jobs takes 15-50 s to its last pod on 2 busy cores, and a
#: status lagging its pod by half a minute during a mass start is the price (issue 18).
POD_FIRST_LIMIT_SECONDS = 30.0
#: `status.reason`, Ready reason and Event reason of a job whose handling raised.
OPERATOR_ERROR = "OperatorError"
__all__ = ["ACTIVE_PHASES", "AuthorizationLookup", "JobController", "JobRunner"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _compact(status: Mapping[str, Any]) -> str:
    return json.dumps(status, separators=(",", ":"), ensure_ascii=False)


def _dump(status: DestinationJobStatus) -> dict[str, Any]:
    """The status as written to the API: JSON values, camelCase names, no nulls."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _parse_status(text: str) -> DestinationJobStatus:
    """The persisted status; an unreadable one (edited by hand) starts afresh rather than crash."""
    try:  # loads, then validate: twice as fast as model_validate_json with the models' `before` hooks
        return DestinationJobStatus.model_validate(json.loads(text))
    except ValueError:
        return DestinationJobStatus()


class KnownAuthorization(Protocol):
    """What a job reads of its Authorization."""

    @property
    def spec(self) -> Mapping[str, Any]: ...

    @property
    def parsed(self) -> AuthorizationSpec | None: ...


class AuthorizationLookup(Protocol):
    """What the job controller asks of the Authorization controller (which it does not import)."""

    def get(self, namespace: str, name: str) -> KnownAuthorization | None: ...

    def not_ready_message(self, namespace: str, name: str) -> str | None: ...

    async def store_rotated(self, namespace: str, name: str, run_id: str, sealed: str) -> None: ...


class JobController:
    """All jobs the operator watches: routes watch events to runners and holds the shared state."""

    def __init__(
        self,
        settings: OperatorSettings,
        kube: Callable[[], KubeClient],
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self._kube = kube
        self.metrics = metrics
        self.clock = clock
        self.slots = RunSlots(settings.max_concurrent_runs, on_release=self._wake_queued)
        self.authorizations: AuthorizationLookup | None = None
        self.runners: dict[JobKey, JobRunner] = {}
        #: Which jobs use which Authorization (usedBy, the deletion guard); this controller writes it.
        self.usage = AuthorizationUsage()
        #: Runners waiting for a run slot, oldest first: a freed slot wakes the first, not every job.
        self.queued: dict[JobKey, None] = {}
        #: Sync pods by job, as summaries: filled by the start-up list before any runner starts.
        self.pods: dict[JobKey, dict[str, PodSummary]] = {}
        #: Pods first (`pods_created`): creations in flight, and whether the other writes may go.
        self._pod_creations = 0
        self._pods_quiet = asyncio.Event()
        self._pods_quiet.set()
        self._quiet_handle: asyncio.TimerHandle | None = None
        self._limit_handle: asyncio.TimerHandle | None = None

    @property
    def kube(self) -> KubeClient:
        return self._kube()

    # --- watch events ------------------------------------------------------------------------

    def remember_job(self, body: Mapping[str, Any]) -> None:
        """Note what the job references (the usage index): from the start-up list, then each event."""
        metadata = body.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        reference = (body.get("spec") or {}).get("authorizationRef")
        authorization = reference.get("name") if isinstance(reference, Mapping) else None
        runner = self.runners.get((namespace, name))
        if runner is not None and runner.phase is not None:
            phase: Any = runner.phase  # fresher than the echo of our own write
        else:
            phase = (body.get("status") or {}).get("phase")
        self.usage.update(
            namespace,
            name,
            authorization if isinstance(authorization, str) else None,
            phase if isinstance(phase, str) else None,
        )

    def remember_pod(self, body: Mapping[str, Any]) -> PodSummary | None:
        """Keep the pod's summary (its outcome) for the job's runner: from the start-up list, then each
        event. kopf's first event of a listed pod finds the summary of the same `resourceVersion`
        made from the list (its report parsed once, not twice).
        """
        metadata = body.get("metadata") or {}
        version = metadata.get("resourceVersion")
        key = (str(metadata.get("namespace", "")), str((metadata.get("labels") or {}).get(JOB_LABEL)))
        known = self.pods.get(key, {}).get(str(metadata.get("name")))
        if known is not None and version and known.resource_version == version:
            return known
        summary = summarize_pod(body)
        if summary is None:
            return None
        namespace = str((body.get("metadata") or {}).get("namespace", ""))
        self.pods.setdefault((namespace, summary.job), {})[summary.name] = summary
        return summary

    async def forget_listed_job(self, namespace: str, name: str) -> None:
        """A job listed at start-up was deleted before kopf's watch began (controller/priming.py); one
        kopf did deliver has a runner, and its own DELETED event."""
        if (namespace, name) not in self.runners:
            await self._forget((namespace, name))

    def forget_pod(self, namespace: str, job: str, name: str) -> None:
        """The sync pod is gone (its DELETED event, or deleted before kopf's watch began): its runner
        hears of it."""
        summary = self.pods.get((namespace, job), {}).pop(name, None)
        runner = self.runners.get((namespace, job))
        if summary is not None and runner is not None:
            runner.observe_pod(summary, gone=True)

    async def on_job_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        view = job_view(body)
        key = (view.namespace, view.name)
        if event_type == "DELETED" or view.deleting:
            await self._forget(key)
            return
        self.remember_job(body)
        runner = self.runners.get(key)
        if runner is not None and runner.view.uid != view.uid:
            await self._forget(key)  # deleted and created again under the same name
            self.remember_job(body)
            runner = None
        if runner is None:
            # The status is parsed when the runner first needs it, not here (issue 18).
            runner = JobRunner(self, view, None, dict(body.get("status") or {}))
            self.runners[key] = runner
            runner.start()
        else:
            runner.observe_job(view)

    async def on_pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        namespace = str((body.get("metadata") or {}).get("namespace", ""))
        dry_run_job = dry_runs.job_of_dry_run_pod(body)
        if dry_run_job is not None:  # a dry run's pod: never a run of the lifecycle
            dry_runner = self.runners.get((namespace, dry_run_job))
            finished = dry_runs.finished(body) if event_type != "DELETED" else None
            if dry_runner is not None and finished is not None:
                dry_runner.push(finished)
            return
        summary = self.remember_pod(body)
        if summary is None:
            return
        if event_type == "DELETED":
            self.forget_pod(namespace, summary.job, summary.name)
            return
        runner = self.runners.get((namespace, summary.job))
        if runner is not None:
            runner.observe_pod(summary, gone=False)

    def authorization_changed(self, namespace: str, name: str, observation: Observation) -> None:
        """An Authorization's health changed: the jobs using it decide again (a waiting run may start)."""
        for job in self.usage.users(namespace, name):
            runner = self.runners.get((namespace, job))
            if runner is not None:
                runner.push(observation)

    # --- queries -----------------------------------------------------------------------------

    def runner_states(self) -> tuple[int, int]:
        """(idle, busy) runners, for the runners gauge (read from the metrics thread)."""
        runners = list(self.runners.values())
        idle = sum(1 for runner in runners if runner.idle)
        return idle, len(runners) - idle

    def crossings(self) -> Iterator[str]:
        """Each `spec.alerts` threshold each job crosses now (read from the metrics thread)."""
        for runner in list(self.runners.values()):
            yield from runner.crossed

    def phases(self) -> Iterable[str | None]:
        """The phase of every job, for the jobs-by-phase gauge (read from the metrics thread)."""
        for runner in list(self.runners.values()):
            yield runner.phase

    # --- pods first --------------------------------------------------------------------------

    @contextlib.contextmanager
    def creating_pod(self) -> Iterator[None]:
        """Around a pod creation (not its retry pauses): the other writes wait until pod creations
        have paused for `POD_QUIET_SECONDS` (at most `POD_FIRST_LIMIT_SECONDS`)."""
        loop = asyncio.get_running_loop()
        self._pod_creations += 1
        if self._pods_quiet.is_set():
            self._pods_quiet.clear()
            self._limit_handle = loop.call_later(POD_FIRST_LIMIT_SECONDS, self._open_to_writes)
        try:
            yield
        finally:
            self._pod_creations -= 1
            if not self._pod_creations:
                if self._quiet_handle is not None:
                    self._quiet_handle.cancel()
                self._quiet_handle = loop.call_later(POD_QUIET_SECONDS, self._open_to_writes, True)

    def _open_to_writes(self, quiet: bool = False) -> None:
        if quiet and self._pod_creations:
            return  # a creation started meanwhile: its own end schedules the next look
        for handle in (self._quiet_handle, self._limit_handle):
            if handle is not None:
                handle.cancel()
        self._quiet_handle = self._limit_handle = None
        self._pods_quiet.set()

    async def pods_created(self) -> None:
        """Wait until sync pods are no longer being created: pods first, then statuses, Events and
        deletions.

        When many jobs start at once (1,000 applied together, or due at the same minute), each
        run's pod is what starts the work, and the operator's CPU and the API server's are what
        bound how fast the pods come: a status write, its watch echo and an Event for every job
        started, before the next job's pod, made 1,000 jobs reach their first pod at half the rate
        of a bare kopf operator creating pods (issue 18). So the other writes wait until pod
        creations pause (`POD_QUIET_SECONDS`), but never longer than `POD_FIRST_LIMIT_SECONDS`: a
        status lags its job by seconds at most. The order within a job is unchanged (pod, then
        status, then Events) and so is every write; a crash in between is recovered at restart: the
        core decides the same run again, its pod's create meets 409 and the pod is adopted.
        """
        await self._pods_quiet.wait()

    # --- internals ---------------------------------------------------------------------------

    async def _forget(self, key: JobKey) -> None:
        self.usage.forget(*key)
        self.queued.pop(key, None)
        runner = self.runners.pop(key, None)
        if runner is not None:
            await runner.stop(job_deleted=True)
        self.pods.pop(key, None)

    def _note_queued(self, key: JobKey, queued: bool) -> None:
        """After each decision: is the job waiting for a run slot? One that leaves the queue (it took
        a slot, or no longer needs one) lets the next ones try."""
        if queued:
            self.queued.setdefault(key, None)
        elif key in self.queued:
            del self.queued[key]
            self._wake_queued()

    def _wake_queued(self) -> None:
        """Wake as many queued runners as there are free slots, oldest first: O(free), not O(jobs).

        They stay queued until their decision takes a slot, so a wake-up lost to a race costs nothing.
        """
        if not self.slots.limit:
            return
        free = self.slots.limit - self.slots.in_flight
        for key in list(itertools.islice(self.queued, max(0, free))):
            runner = self.runners.get(key)
            if runner is None:
                del self.queued[key]
            else:
                runner.push(TimerFired())

    async def close(self) -> None:
        for runner in list(self.runners.values()):
            await runner.stop(job_deleted=False)
        self.runners.clear()


class JobRunner:
    """One job's loop: wait for an observation or the wake-up time, decide, carry the decision out."""

    def __init__(
        self,
        controller: JobController,
        view: JobView,
        status: DestinationJobStatus | None,
        written: Mapping[str, Any],
    ) -> None:
        """`written` is the status as read from the object; `status` its model, or None to parse
        `written` when it is first needed (after a restart most jobs only go back to sleep)."""
        self.controller = controller
        self.view = view
        self._written = _compact(written)
        """The status as last written (or read), as JSON text: patches are computed against it, and
        a sleeping job keeps only this (issue 18: a fifth of the pydantic model's memory)."""
        self._model: DestinationJobStatus | None = None
        """The status as a model, while the runner works, or while it differs from `_written`."""
        self._unwritten = False
        """`_model` holds something `_written` lacks (a write failed, or a failure is shown)."""
        self.phase: str | None = None
        """The status' phase, kept apart for the gauges and the usage index (no parse to read it)."""
        self.crossed: tuple[str, ...] = ()
        """The `spec.alerts` thresholds the status says are crossed now, for their gauge."""
        self._current_pod: str | None = None
        """The pod of the run in flight, as the status says."""
        if status is not None:
            self.status = status
            self._unwritten = _compact(written) != _compact(_dump(status))
        else:
            self._note_facts(written)
        self._inbox: deque[Observation | dry_runs.DryRunEvent] = deque()
        self._wakeup = asyncio.Event()
        self._wake_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.idle = False
        """Waiting for the wake-up time or an observation, with nothing left to do."""
        self._timer_fired = False
        self._deleted_pods: set[str] = set()
        """Pods this runner asked to delete: never asked twice, never counted as history again."""
        self._failures = 0
        """Steps that raised in a row (see `_step_or_report`)."""
        self._failure_shown = False
        """The written status carries a failure: the next successful step writes the real one."""
        self._retry: Observation | dry_runs.DryRunEvent | None = None
        """The observation whose step raised, delivered again after the pause."""
        self._dry_runs_started: set[str] = set()
        """Dry-run request values this runner started a pod for (never twice)."""

    @property
    def status(self) -> DestinationJobStatus:
        """The job's status, parsed from the last-written JSON text when the runner had let it go."""
        if self._model is None:
            self._model = _parse_status(self._written)
            self._note_model_facts(self._model)  # an unreadable status reads as a fresh one
        return self._model

    @status.setter
    def status(self, status: DestinationJobStatus) -> None:
        self._model = status
        self._unwritten = True
        self._note_model_facts(status)

    def _note_model_facts(self, status: DestinationJobStatus) -> None:
        self.phase = status.phase.value if status.phase is not None else None
        self.crossed = tuple(crossing.threshold for crossing in status.thresholds_exceeded)
        self._current_pod = status.current_run.pod if status.current_run is not None else None

    def status_snapshot(self) -> DestinationJobStatus:
        """The status for another thread (metrics): parsed afresh if need be, never cached."""
        model = self._model
        return model if model is not None else _parse_status(self._written)

    def _note_facts(self, written: Mapping[str, Any]) -> None:
        phase = written.get("phase")
        self.phase = phase if isinstance(phase, str) else None
        crossed = written.get("thresholdsExceeded")
        self.crossed = tuple(
            str(crossing.get("threshold"))
            for crossing in (crossed if isinstance(crossed, list) else ())
            if isinstance(crossing, Mapping)
        )
        current = written.get("currentRun")
        pod = current.get("pod") if isinstance(current, Mapping) else None
        self._current_pod = pod if isinstance(pod, str) else None

    def _let_go_of_the_model(self) -> None:
        """While idle, keep only the written text (the model is parsed again at the next step)."""
        if self.idle and not self._unwritten and not self._inbox:
            self._model = None

    @property
    def key(self) -> JobKey:
        return (self.view.namespace, self.view.name)

    @property
    def label(self) -> str:
        return f"{self.view.namespace}/{self.view.name}"

    def start(self) -> None:
        self.push(JobObserved(created_by=self.view.created_by))
        self._task = asyncio.create_task(self._run(), name=f"job {self.label}")

    def _observe_start(self) -> None:
        """What the job as read says, beyond its being there: pushed by the task, not by `start`, so
        a restarted operator parses each status just before deciding and lets go of it right after,
        not 10,000 statuses at once before the first decision (issue 18). A change seen meanwhile
        may be pushed twice; the core takes a repeated observation as a no-op."""
        for observation in observations_for_change(self.view, self.status):
            self.push(observation)
        self._ask_for_dry_run()

    async def stop(self, *, job_deleted: bool) -> None:
        """Stop the loop; when the job was deleted, its run in flight goes with it (no run left behind)."""
        self._stopped = True
        self._wakeup.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.controller.slots.update(self.key, False)
        current = self._current_pod
        if job_deleted and current is not None:
            try:
                await self.controller.kube.delete_pod(self.view.namespace, current)
            except KubeError as error:
                logger.warning("%s: could not delete pod %s: %s", self.label, current, error)

    def push(self, observation: Observation | dry_runs.DryRunEvent) -> None:
        self._inbox.append(observation)
        self._wakeup.set()

    def observe_job(self, view: JobView) -> None:
        previous, self.view = self.view, view
        if (view.generation, view.requested_at, view.dry_run_requested_at) == (
            previous.generation,
            previous.requested_at,
            previous.dry_run_requested_at,
        ):
            return  # nothing the status answers changed (the echo of our own write, most often)
        for observation in observations_for_change(view, self.status):
            self.push(observation)
        self._ask_for_dry_run()
        self._let_go_of_the_model()  # most events are echoes of our own writes: nothing to do

    def _ask_for_dry_run(self) -> None:
        request = dry_runs.requested(self.view.dry_run_requested_at, self.status)
        if request is not None and request.value not in self._dry_runs_started:
            self.push(request)

    async def _dry_run(self, event: dry_runs.DryRunEvent) -> None:
        """Start a dry run's pod, or record its result (destinations.controller.dry_runs); the lifecycle
        core is not involved, so phase, backoff and counters stay as they are."""
        if isinstance(event, dry_runs.DryRunRequested):
            if dry_runs.requested(event.value, self.status) is None:
                return  # answered meanwhile: its ended pod was seen first (an operator restart)
            if event.value not in self._dry_runs_started:
                self._dry_runs_started.add(event.value)
                await self._start_dry_run(event.value)
            return
        answered = self.status.last_dry_run
        if answered is None or answered.requested_at != event.value:
            sealed, authorizations = event.report.rotated_credentials, self.controller.authorizations
            if sealed and authorizations is not None:
                # Its lookup rotated the OAuth2 refresh token: stored as a run's is, before anything else.
                sealing_id = dry_runs.sealing_id(self.view.namespace, self.view.name, event.value)
                authorization = self.view.authorization_name or ""
                await authorizations.store_rotated(self.view.namespace, authorization, sealing_id, sealed)
            result = dry_runs.last_dry_run(event, self.controller.clock())
            self.status = self.status.model_copy(update={"last_dry_run": result})
            logger.info("%s: dry run %r %s: %s", self.label, event.value, result.result.value, result.message)
            await self._write_status()
        if event.pod_name:
            with contextlib.suppress(KubeError):
                await self.controller.kube.delete_pod(self.view.namespace, event.pod_name)

    async def _start_dry_run(self, value: str) -> None:
        controller = self.controller
        entry = (
            controller.authorizations.get(self.view.namespace, self.view.authorization_name or "")
            if controller.authorizations
            else None
        )
        parsed = parse_spec(
            self.view,
            entry.spec if entry is not None else None,
            default_purge_after=controller.settings.default_purge_after,
        )
        if parsed.spec is None or entry is None or entry.parsed is None:
            problem = parsed.problems or "the job's Authorization could not be read"
            self.push(dry_runs.failed(value, f"the dry run could not start: {problem}"))
            return
        action = CreatePod(self.status.runs.total + 1, dry_runs.dry_run_pod_name(self.view.name, value))
        try:
            pod = self._render_pod(action, parsed.spec, entry.parsed, dry_run_requested_at=value)
            await controller.kube.create_pod(self.view.namespace, pod)
            logger.info("%s: dry run %r started in pod %s", self.label, value, action.pod_name)
        except KubeError as error:
            if error.status != 409:
                self.push(dry_runs.failed(value, f"the dry run's pod could not be created: {error}"))
                return
            # The pod exists (an operator restart): it may have ended already, with no event to come.
            with contextlib.suppress(KubeError):
                ended = dry_runs.finished(await controller.kube.get_pod(self.view.namespace, action.pod_name))
                if ended is not None:
                    self.push(ended)
        except Exception as error:
            logger.exception("%s: dry run pod %s could not be made", self.label, action.pod_name)
            self.push(dry_runs.failed(value, f"the dry run's pod could not be made: {error}"))

    def observe_pod(self, pod: PodSummary, *, gone: bool) -> None:
        if pod.name != self._current_pod:
            return  # only the run in flight's pod has news for the lifecycle
        observation = run_observation(self.status, pod, pod_name=pod.name, gone=gone)
        if observation is not None:
            self.push(observation)
        self._let_go_of_the_model()

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            self._observe_start()
            await self._adopt_or_report()
            while not self._stopped:
                while self._inbox and not self._stopped:
                    await self._step_or_report(self._inbox.popleft())
                if self._stopped:
                    return
                self._wakeup.clear()
                if self._inbox:
                    continue
                timeout = None
                if self._wake_at is not None:
                    timeout = max(0.0, (self._wake_at - self.controller.clock()).total_seconds())
                    timeout += _TIMER_SLACK_SECONDS
                if await self._sleep(timeout):
                    retry, self._retry = self._retry, None
                    self.push(retry or TimerFired())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: the job's loop failed; it restarts with the next watch event", self.label)
            self.controller.runners.pop(self.key, None)

    async def _adopt_or_report(self) -> None:
        """Adopt the run in flight; when that raises (its pod cannot be read), show it and try again."""
        while not self._stopped:
            try:
                await self._adopt_run_in_flight()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._failures += 1
                delay = _FAILURE_RETRY_SECONDS[min(self._failures, len(_FAILURE_RETRY_SECONDS)) - 1]
                logger.exception(
                    "%s: adopting the run in flight failed (failure %d)", self.label, self._failures
                )
                retry_at = self.controller.clock() + timedelta(seconds=delay)
                await self._show_failure(
                    f"the operator failed to read this job's run in flight: {type(error).__name__}: "
                    f"{str(error)[:300]}; it tries again at {format_time(retry_at)}"
                )
                await asyncio.sleep(delay)
                continue
            self._failures = 0
            return

    async def _step_or_report(self, observation: Observation | dry_runs.DryRunEvent) -> None:
        """One step; a step that raises (a bug, or a state nobody foresaw) never leaves the job silent.

        The job shows the failure (status reason `OperatorError`, a message, Ready False, a Warning Event
        `OperatorError`), the step is tried again after a growing pause, and every other job's runner
        carries on. The next step that succeeds writes the job's real status back.
        """
        try:
            await self._step(observation)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failures += 1
            delay = _FAILURE_RETRY_SECONDS[min(self._failures, len(_FAILURE_RETRY_SECONDS)) - 1]
            logger.exception("%s: handling %s failed (failure %d)", self.label, observation, self._failures)
            retry_at = self.controller.clock() + timedelta(seconds=delay)
            message = (
                f"the operator failed to handle this job: {type(error).__name__}: {str(error)[:300]}; "
                f"it tries again at {format_time(retry_at)}"
            )
            self._wake_at = retry_at
            self._retry = observation  # delivered again when the pause ends
            await self._show_failure(message)
            return
        self._failures = 0

    async def _show_failure(self, message: str) -> None:
        """Write the failure into the status (keeping the rest) and post it as a Warning Event."""
        now = format_time(self.controller.clock())
        ready = Condition(
            type="Ready",
            status="False",
            reason=OPERATOR_ERROR,
            message=message,
            last_transition_time=now,
            observed_generation=self.status.observed_generation,
        )
        shown = self.status.model_copy(
            update={
                "phase": self.status.phase or Phase.PENDING,
                "reason": OPERATOR_ERROR,
                "message": message,
                "conditions": [
                    ready,
                    *(condition for condition in self.status.conditions if condition.type != "Ready"),
                ],
            }
        )
        await self._write_status(shown)
        self._failure_shown = True
        if self._failures == 1:  # once per streak: the status keeps the latest message
            await self._post_event(PostEvent(OPERATOR_ERROR, message, EventType.WARNING))

    async def _sleep(self, timeout: float | None) -> bool:
        """Wait for an observation or `timeout` seconds; True when the time ran out first.

        A timer handle, not `asyncio.wait_for`, which wraps the wait in a Task of its own: with
        10,000 sleeping jobs that is 10,000 more tasks held for nothing (issue 18).
        """
        self._timer_fired = False
        handle = None
        if timeout is not None:
            handle = asyncio.get_running_loop().call_later(timeout, self._on_timer)
        self.idle = True
        self._let_go_of_the_model()
        try:
            await self._wakeup.wait()
        finally:
            self.idle = False
            if handle is not None:
                handle.cancel()
        return self._timer_fired and not self._inbox

    def _on_timer(self) -> None:
        self._timer_fired = True
        self._wakeup.set()

    async def _adopt_run_in_flight(self) -> None:
        """After a restart: the run in flight is read from its pod, never started again."""
        current = self.status.current_run
        if current is None:
            return
        pod = self.controller.pods.get(self.key, {}).get(current.pod)
        gone = False
        if pod is None:
            try:
                body = await self.controller.kube.get_pod(self.view.namespace, current.pod)
                pod = summarize_pod(body)
            except KubeError as error:
                if error.status != 404:
                    raise
                gone = True
        if pod is not None or gone:
            observation = run_observation(self.status, pod, pod_name=current.pod, gone=gone)
            if observation is not None:
                logger.info("%s: adopted run %d from pod %s", self.label, current.number, current.pod)
                self.push(observation)

    async def _step(self, observation: Observation | dry_runs.DryRunEvent) -> None:
        if isinstance(observation, (dry_runs.DryRunRequested, dry_runs.DryRunFinished)):
            await self._dry_run(observation)
            return
        controller = self.controller
        settings = controller.settings
        authorizations = controller.authorizations
        authorization_name = self.view.authorization_name or ""
        entry = authorizations.get(self.view.namespace, authorization_name) if authorizations else None
        parsed = parse_spec(
            self.view,
            entry.spec if entry is not None else None,
            default_purge_after=settings.default_purge_after,
        )
        # Run observations and run-now requests pass through: the core finishes the run in flight and
        # echoes the request, keeping the job Stalled with the problems it stored.
        if parsed.spec is None and not isinstance(observation, (*_RUN_OBSERVATIONS, RunNowRequested)):
            observation = InvalidSpec(parsed.problems or "the spec does not validate")
        provider = load_catalog().get(parsed.spec.provider) if parsed.spec is not None else None
        problem = (
            authorizations.not_ready_message(self.view.namespace, authorization_name)
            if authorizations is not None
            else None
        )
        pods = [
            pod for pod in controller.pods.get(self.key, {}).values() if pod.name not in self._deleted_pods
        ]
        before = self.status
        decision = decide(
            parsed.spec,
            before,
            observation,
            controller.clock(),
            job_name=self.view.name,
            generation=self.view.generation,
            default_schedule=provider.default_schedule if provider is not None else _FALLBACK_SCHEDULE,
            authorization_problem=problem,
            capacity_available=controller.slots.available_to(self.key),
            finished_pods=finished_pods(pods),
            pause_reason=redact_credentials(self.view.pause_reason) if self.view.pause_reason else None,
        )
        # Claim or free the run slot before any await: capacity is counted from in-memory state.
        unwritten = self._unwritten or decision.status_changed
        self.status = decision.status
        self._unwritten = unwritten  # an unchanged status is still the one written
        controller.slots.update(self.key, decision.status.current_run is not None)
        controller._note_queued(self.key, decision.status.reason == Reason.QUEUED_FOR_CAPACITY)
        if before.phase != decision.status.phase and decision.status.phase is not None:
            controller.usage.update(
                self.view.namespace, self.view.name, self.view.authorization_name, decision.status.phase.value
            )
        self._wake_at = decision.wake_at
        if isinstance(observation, RunFinished) and authorizations is not None:
            sealed = observation.report.rotated_credentials
            if sealed:
                # The run rotated the OAuth2 refresh token: store it before anything else can need it.
                run_id = f"{self.view.namespace}/{self.view.name}#{observation.run}"
                await authorizations.store_rotated(self.view.namespace, authorization_name, run_id, sealed)
        await self._carry_out(decision, before, parsed.spec)

    async def _carry_out(self, decision: Decision, before: DestinationJobStatus, spec: Any) -> None:
        kube = self.controller.kube
        for action in decision.actions:
            if isinstance(action, CreatePod):
                await self._create_pod(action, spec)
        await self.controller.pods_created()
        if decision.status_changed or self._failure_shown:
            self._failure_shown = False
            await self._write_status()
            if before.phase != decision.status.phase:
                logger.info(
                    "%s: %s (%s): %s",
                    self.label,
                    decision.status.phase,
                    decision.status.reason,
                    decision.status.message,
                )
        self._count_finished_run(before, spec)
        for action in decision.actions:
            if self._stopped:
                return
            if isinstance(action, PostEvent):
                await self._post_event(action)
            elif isinstance(action, DeletePod):
                if action.pod_name in self._deleted_pods:
                    continue
                self._deleted_pods.add(action.pod_name)
                try:
                    await kube.delete_pod(self.view.namespace, action.pod_name)
                except KubeError as error:
                    self._deleted_pods.discard(action.pod_name)
                    logger.warning("%s: pod %s not deleted: %s", self.label, action.pod_name, error)
            elif isinstance(action, DeleteJob):
                logger.info("%s: purged: %s", self.label, action.message)
                try:
                    await kube.delete_object(PLURAL, self.view.namespace, self.view.name, self.view.uid)
                except KubeError as error:
                    if error.status not in (404, 409):
                        logger.warning("%s: not purged: %s", self.label, error)
                        continue
                self._stopped = True

    async def _post_event(self, action: PostEvent) -> None:
        """Post an Event, again after a transient API error; status.history keeps it regardless."""
        for delay in (0, *_WRITE_RETRY_SECONDS[:2]):
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.controller.kube.post_event(
                    self.view.involved_object(), action.reason, action.message, action.type
                )
                return
            except KubeError as error:
                logger.warning("%s: event %s not posted: %s", self.label, action.reason, error)
                if error.status not in _TRANSIENT_STATUSES:
                    return

    async def _create_pod(self, action: CreatePod, spec: Any) -> None:
        """Create the run's pod; 409 means it exists already (a restart): adopt it."""
        controller = self.controller
        namespace = self.view.namespace
        authorizations = controller.authorizations
        entry = authorizations.get(namespace, self.view.authorization_name or "") if authorizations else None
        parsed = entry.parsed if entry is not None else None
        if spec is None or parsed is None:
            self.push(RunLost(action.run, "the job's Authorization could not be read"))
            return
        try:
            pod = self._render_pod(action, spec, parsed)
        except Exception as error:  # a pod that cannot be made is this run's error, not a silent stop
            logger.exception("%s: pod %s could not be rendered", self.label, action.pod_name)
            self.push(RunLost(action.run, f"the sync pod could not be made: {type(error).__name__}: {error}"))
            return
        # A transient API error is not the run's fault: the pod is created again (same name, so never
        # twice) before the run is given up as lost.
        last_error: KubeError | None = None
        for delay in (0, *_WRITE_RETRY_SECONDS):
            if delay:
                await asyncio.sleep(delay)
            if self._stopped:
                return
            with controller.creating_pod():
                failed = await self._create_or_adopt(action, pod)
            if failed is None:
                return
            last_error = failed
            if failed.status == 409:
                continue  # a conflict but no pod: create it again
            if failed.status not in _TRANSIENT_STATUSES:
                break
            logger.warning("%s: pod %s not created yet: %s", self.label, action.pod_name, failed)
        self.push(RunLost(action.run, f"the sync pod could not be created: {last_error}"))

    async def _create_or_adopt(self, action: CreatePod, pod: dict[str, Any]) -> KubeError | None:
        """Create the pod; on 409 adopt the existing one. None when done, else the error."""
        try:
            await self.controller.kube.create_pod(self.view.namespace, pod)
        except KubeError as error:
            if error.status == 409 and await self._adopt_existing_pod(action):
                return None
            return error
        return None

    def _render_pod(
        self, action: CreatePod, spec: Any, parsed: Any, *, dry_run_requested_at: str | None = None
    ) -> dict[str, Any]:
        controller = self.controller
        namespace = self.view.namespace
        return render_sync_pod(
            JobIdentity(namespace, self.view.name, self.view.uid),
            spec,
            action.run,
            action.pod_name,
            AuthorizationInfo(
                parsed.method.value,
                parsed.secret_ref.name if parsed.secret_ref is not None else None,
                parsed.endpoint,
            ),
            image=controller.settings.sync_image,
            image_pull_policy=controller.settings.sync_image_pull_policy,
            default_resources=controller.settings.sync_resources,
            confirmed_removal_run=self.view.confirmed_removal_run,
            dry_run_requested_at=dry_run_requested_at,
        )

    async def _adopt_existing_pod(self, action: CreatePod) -> bool:
        """Adopt the run's existing pod; False when there is none after all (try creating it again)."""
        try:
            body = await self.controller.kube.get_pod(self.view.namespace, action.pod_name)
        except KubeError as error:
            if error.status == 404 or error.status in _TRANSIENT_STATUSES:
                return False
            self.push(RunLost(action.run, f"the sync pod exists but cannot be read: {error}"))
            return True
        owners = (body.get("metadata") or {}).get("ownerReferences") or []
        if not any(owner.get("uid") == self.view.uid for owner in owners):
            self.push(RunLost(action.run, f"pod {action.pod_name} belongs to an earlier job of this name"))
            return True
        logger.info("%s: pod %s already exists; adopting it", self.label, action.pod_name)
        summary = summarize_pod(body)
        if summary is not None:
            self.controller.pods.setdefault(self.key, {})[summary.name] = summary
            self.observe_pod(summary, gone=False)
        return True

    async def _write_status(self, status: DestinationJobStatus | None = None) -> None:
        """Patch only what changed since the last write; retried until it lands or the job is gone.

        `status` defaults to the runner's own; `_show_failure` passes a copy carrying the failure.
        """
        wanted = _dump(status or self.status)
        for attempt, delay in enumerate((0, *_WRITE_RETRY_SECONDS)):
            if delay:
                await asyncio.sleep(delay)
            patch = merge_patch(json.loads(self._written), wanted)
            if not patch:
                self._unwritten = status is not None
                return
            try:
                await self.controller.kube.patch_status(PLURAL, self.view.namespace, self.view.name, patch)
            except KubeError as error:
                if error.status == 404:
                    self._stopped = True
                    return
                logger.warning("%s: status not written (attempt %d): %s", self.label, attempt + 1, error)
                continue
            self._written = _compact(wanted)
            self._unwritten = status is not None  # a shown failure is not the runner's own status
            return

    def _count_finished_run(self, before: DestinationJobStatus, spec: Any) -> None:
        metrics = self.controller.metrics
        last = self.status.last_run
        if metrics is None or last is None or spec is None:
            return
        if before.last_run is not None and before.last_run.number == last.number:
            return
        started = parse_time(last.started_at) if last.started_at else None
        finished = parse_time(last.finished_at)
        duration = (finished - started).total_seconds() if started is not None else 0.0
        metrics.run_finished(spec.provider, spec.type.value, last, duration)
