"""The kopf wiring: which watches feed which controller, and the kopf settings that keep writes minimal.

Only watch-event handlers (`kopf.on.event`) are used, never kopf's change-detection handlers
(`on.create`/`on.update`): those write a last-handled-configuration annotation and their progress into
every object, several writes per change. No index either (`kopf.index`): the operator lists
Authorizations, jobs and sync pods itself at start-up (controller/priming.py), so after a restart every
job decides with its pods and its Authorization already known, without kopf holding every object's
worker until every list is done.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import kopf

from destinations.controller.kube import GROUP, VERSION
from destinations.controller.pods import JOB_LABEL

if TYPE_CHECKING:
    from destinations.controller.operator import Operator


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled" essence: this operator has no change-detection handlers to compare it for.

    kopf builds an object's essence on every watch event (`kopf/_core/reactor/processing.py`,
    `_detect_causes`): a deep copy of the object without its status, then cleared of progress marks.
    Only `on.create`/`on.update`/`on.delete`/`on.resume` handlers and daemons read it; with none
    registered, it was a deep copy of every listed job and pod for nothing (issue 18: a tenth of a
    restarted operator's CPU). An empty essence keeps kopf's diff empty, as it is for event handlers.
    """

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf settings: no Events of its own, no diff base, pods watched by label only, quick reconnects."""
    settings.posting.enabled = False  # the operator posts its own, meaningful Events
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.label_selectors["v1", "pods"] = JOB_LABEL
    settings.watching.reconnect_backoff = 0.5
    settings.watching.server_timeout = 300


def build_registry(operator: Operator) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    jobs = operator.jobs
    authorizations = operator.authorizations
    priming = operator.priming

    @kopf.on.login(registry=registry)
    def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if info is not None:
            operator.connection = info
        return info

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(**_: Any) -> None:
        await operator.close()

    @kopf.on.startup(registry=registry)
    async def _prime(**kwargs: Any) -> None:
        # Before any watch starts; kopf's own login comes later, with its first API call. Without
        # credentials kopf stops the operator ("Ran out of valid credentials"): so does this, rather
        # than have kopf retry the handler every minute for credentials that will not come.
        if operator.connection is None and _login(**kwargs) is None:
            raise kopf.PermanentError(
                "no credentials for the cluster: no in-cluster service account "
                "(/var/run/secrets/kubernetes.io/serviceaccount), "
                "and no kubeconfig (KUBECONFIG or ~/.kube/config)"
            )
        await priming.prime()

    # Watch events.

    @kopf.on.event(GROUP, VERSION, "destinationjobs", registry=registry)
    async def _job_event(event: kopf.RawEvent, **_: Any) -> None:
        priming.confirm("destinationjobs", event["object"])
        await jobs.on_job_event(event["type"], event["object"])

    @kopf.on.event("v1", "pods", labels={JOB_LABEL: kopf.PRESENT}, registry=registry)
    async def _pod_event(event: kopf.RawEvent, **_: Any) -> None:
        priming.confirm("pods", event["object"])
        await jobs.on_pod_event(event["type"], event["object"])

    @kopf.on.event(GROUP, VERSION, "authorizations", registry=registry)
    async def _authorization_event(event: kopf.RawEvent, **_: Any) -> None:
        priming.confirm("authorizations", event["object"])
        await authorizations.on_event(event["type"], event["object"])

    @kopf.on.event("v1", "secrets", registry=registry)
    async def _secret_event(event: kopf.RawEvent, **_: Any) -> None:
        await authorizations.on_secret_event(event["type"], event["object"])

    return registry
