"""What the operator knows before its first decision: Authorizations, jobs and sync pods, listed once.

A job decides with its pods and its Authorization known: after a restart, a run in flight is adopted
(not started again), finished pods are counted once, and an Authorization's `usedBy` counts every job
before it is written. kopf can promise that with index handlers (`kopf.index`), but it pays for it with
every object's worker held until every list is done: an operator restarted under 10,000 jobs and their
pods kept ~20,000 of kopf's per-object workers (each with its event, body, patch and loggers) waiting
at once, then released them at once: 3.1x the time and 1.6x the memory of a bare kopf operator
listing the same objects (issue 18).

So the operator lists them itself, in kopf's start-up phase (`kopf.on.startup`: before any watch
starts), a page at a time, keeping only what it keeps anyway (the usage index, pod summaries,
Authorization entries), and registers no index: kopf then hands each object to its handler as it
comes, as it does for a bare operator.

What was listed is provisional until kopf's own watch delivers the same object (`confirm`). An object
deleted between the two lists never comes: once kopf's deliveries have paused for
`SWEEP_QUIET_SECONDS` with some listed object still unconfirmed, one more list settles it (`sweep`):
an unconfirmed object absent from it is forgotten, as if its DELETED event had come. One present in
it is settled only if kopf's watch of its kind (and namespace) has already delivered something, so
has listed before the sweep did: kopf delivers it then, or its DELETED event. Until then (a standby
replica, whose watches kopf's peering keeps paused, or a watch slow to start) it may still be deleted
before kopf lists it, so it stays provisional, and the sweep is repeated after kopf's next
deliveries pause. A failed start-up list is tried again, keeping what the failed try listed
provisional too, so nothing the controllers were told of escapes the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from destinations.controller.kube import KubeClient, KubeError, collection_path
from destinations.controller.pods import JOB_LABEL

if TYPE_CHECKING:
    from destinations.controller.authorizations import AuthorizationController
    from destinations.controller.jobs import JobController

logger = logging.getLogger("destinations.operator")

#: kopf's deliveries of listed objects paused this long with some still unconfirmed: list once more
#: (seconds); also the least time between two such lists.
SWEEP_QUIET_SECONDS = 10.0
#: A list that failed at start-up is tried again after this long (seconds); kopf waits meanwhile.
RETRY_SECONDS = 5.0

Kind = str  # "authorizations", "destinationjobs" or "pods"
Key = tuple[str, str]  # (namespace, name)


def _key(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


class Priming:
    """The start-up list of Authorizations, jobs and sync pods, and the sweep of what never came again.

    `namespaces`: the namespaces watched (empty: every namespace). `kube`: the API client, made once
    the operator has logged in.
    """

    def __init__(
        self,
        jobs: JobController,
        authorizations: AuthorizationController,
        kube: Callable[[], KubeClient],
        namespaces: Iterable[str],
        *,
        quiet_seconds: float = SWEEP_QUIET_SECONDS,
    ) -> None:
        self._jobs = jobs
        self._authorizations = authorizations
        self._kube = kube
        self._namespaces: list[str | None] = list(namespaces) or [None]
        self._quiet_seconds = quiet_seconds
        #: Listed at start-up, not yet delivered by kopf's watches, per kind.
        self.unconfirmed: dict[Kind, set[Key]] = {
            "authorizations": set(),
            "destinationjobs": set(),
            "pods": set(),
        }
        #: The job each listed sync pod belongs to (its `destinations.dev/job` label).
        self._pod_jobs: dict[Key, str] = {}
        #: kopf's watches that have delivered (so listed), as (kind, namespace), while any is unconfirmed;
        #: the namespace is None when kopf watches every namespace with one watch per kind.
        self._watching: set[tuple[Kind, str | None]] = set()
        self._last_confirmed = time.monotonic()
        self._delivered = asyncio.Event()
        self.swept: asyncio.Task[None] | None = None

    # --- start-up ----------------------------------------------------------------------------

    async def prime(self) -> None:
        """List Authorizations, sync pods and jobs (in that order) into the controllers' state.

        Retried until it succeeds (an API server that is not up yet, a 410 on a continue token): no
        job may decide before it is complete. Then starts the sweep's watch (`swept`).
        """
        started = time.monotonic()
        while True:
            try:
                counts = await self._list_all()
                break
            except KubeError as error:
                logger.warning("start-up list failed, trying again in %.0f s: %s", RETRY_SECONDS, error)
                await asyncio.sleep(RETRY_SECONDS)
        logger.info(
            "listed at start-up in %.1f s: %d Authorization(s), %d job(s), %d sync pod(s)",
            time.monotonic() - started,
            counts["authorizations"],
            counts["destinationjobs"],
            counts["pods"],
        )
        self._last_confirmed = time.monotonic()
        self.swept = asyncio.create_task(self._sweep_when_quiet(), name="start-up list sweep")

    async def _list_all(self) -> dict[Kind, int]:
        # What a failed try listed stays unconfirmed (the controllers keep it): the sweep settles it.
        counts: dict[Kind, int] = {}
        for kind, remember in (
            ("authorizations", self._authorizations.remember),
            ("pods", self._jobs.remember_pod),
            ("destinationjobs", self._jobs.remember_job),
        ):
            counts[kind] = 0
            async for body in self._list(kind):
                key = _key(body)
                self.unconfirmed[kind].add(key)
                if kind == "pods":
                    labels = (body.get("metadata") or {}).get("labels") or {}
                    self._pod_jobs[key] = str(labels.get(JOB_LABEL))
                try:
                    remember(body)
                except Exception as error:  # kopf's delivery of it meets the same error, and logs it
                    logger.error(
                        "%s %s/%s could not be read at start-up; kopf's delivery will try again: %s",
                        kind,
                        *key,
                        error,
                    )
                counts[kind] += 1
        return counts

    async def _list(self, kind: Kind) -> Any:
        kube = self._kube()
        params = {"labelSelector": JOB_LABEL} if kind == "pods" else {}
        for namespace in self._namespaces:
            path = collection_path(kind, namespace, core=kind == "pods")
            async for page in kube.list_pages(path, params):
                for body in page:
                    yield body

    # --- kopf's deliveries -------------------------------------------------------------------

    def confirm(self, kind: Kind, body: Mapping[str, Any]) -> None:
        """kopf delivered this object (any event type): it is no longer provisional, and kopf's watch of
        its kind and namespace has listed."""
        if not any(self.unconfirmed.values()):
            return
        key = _key(body)
        self._watching.add(self._watch(kind, key[0]))
        self._delivered.set()
        keys = self.unconfirmed[kind]
        if key in keys:
            keys.discard(key)
            self._last_confirmed = time.monotonic()
            if kind == "pods":
                self._pod_jobs.pop(key, None)

    def _watch(self, kind: Kind, namespace: str) -> tuple[Kind, str | None]:
        """kopf's watch an object comes by: one per kind and namespace listed, or one per kind."""
        return kind, None if self._namespaces == [None] else namespace

    # --- the sweep ---------------------------------------------------------------------------

    async def _sweep_when_quiet(self) -> None:
        while any(self.unconfirmed.values()):
            quiet_for = time.monotonic() - self._last_confirmed
            if quiet_for < self._quiet_seconds:
                await asyncio.sleep(self._quiet_seconds - quiet_for)
                continue
            self._delivered.clear()
            try:
                await self.sweep()
            except Exception as error:  # given up, the provisional objects would never drain
                logger.warning("start-up sweep failed, trying again in %.0f s: %r", RETRY_SECONDS, error)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if any(self.unconfirmed.values()):
                # kopf has not listed them yet (a standby replica lists nothing): again once kopf
                # delivers, at most once a quiet period.
                await self._delivered.wait()
                await asyncio.sleep(self._quiet_seconds)
        self._pod_jobs = {}
        self._watching = set()

    async def sweep(self) -> None:
        """List again; forget each still-unconfirmed object that is no longer there, and settle those
        there whose watch kopf has begun (it delivers them, or their DELETED event)."""
        for kind in ("destinationjobs", "pods", "authorizations"):
            if not self.unconfirmed[kind]:
                continue
            present = {_key(body) async for body in self._list(kind)}
            unconfirmed = self.unconfirmed[kind]
            gone = unconfirmed - present
            self.unconfirmed[kind] = {
                key for key in unconfirmed & present if self._watch(kind, key[0]) not in self._watching
            }
            for namespace, name in sorted(gone):
                logger.info("%s %s/%s was deleted before the watch started: forgotten", kind, namespace, name)
                if kind == "destinationjobs":
                    await self._jobs.forget_listed_job(namespace, name)
                elif kind == "pods":
                    self._jobs.forget_pod(namespace, self._pod_jobs.pop((namespace, name), ""), name)
                else:
                    self._authorizations.forget(namespace, name)

    async def close(self) -> None:
        """Stop the sweep (before the operator closes its API client, which the sweep would reopen)."""
        if self.swept is not None and not self.swept.done():
            self.swept.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.swept
