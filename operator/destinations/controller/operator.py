"""The operator as an object: its controllers, its API client, and `run()` under kopf.

`destinations operator` builds one from the command line; tests and demos can run one in their own
event loop or thread:

    operator = Operator(OperatorSettings(namespaces=("demo",), metrics_port=0, liveness_port=0))
    await operator.run(stop_flag=stop)        # KUBECONFIG, or the in-cluster service account
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any

import kopf

from destinations.controller.admission import configure_admission
from destinations.controller.authorizations import AuthorizationController
from destinations.controller.handlers import build_registry, configure
from destinations.controller.job_metrics import JobMetricsCollector, authorization_samples_of, samples_of
from destinations.controller.jobs import JobController, utc_now
from destinations.controller.kube import KubeClient
from destinations.controller.metrics import Metrics
from destinations.controller.priming import Priming
from destinations.controller.settings import OperatorSettings, WebhookMode, describe

logger = logging.getLogger("destinations.operator")

StopFlag = asyncio.Event | threading.Event | asyncio.Future[Any]


class Operator:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.connection: kopf.ConnectionInfo | None = None
        self._kube: KubeClient | None = None
        self.metrics = Metrics(lambda: self.jobs.phases(), lambda: self.jobs.runner_states())
        self.jobs = JobController(settings, self._client, self.metrics, clock=utc_now)
        self.authorizations = AuthorizationController(
            self.jobs.usage, self._client, clock=utc_now, tell_jobs=self.jobs.authorization_changed
        )
        self.jobs.authorizations = self.authorizations
        self.priming = Priming(self.jobs, self.authorizations, self._client, settings.namespaces)
        self.metrics.registry.register(
            JobMetricsCollector(
                lambda: samples_of(self.jobs),
                lambda: authorization_samples_of(self.authorizations),
                per_job=settings.per_job_metrics,
                crossed=self.jobs.crossings,
            )
        )
        self.metrics_port: int | None = None

    def _client(self) -> KubeClient:
        """The API client, made on first use from the credentials kopf logged in with."""
        if self._kube is None:
            if self.connection is None:
                raise RuntimeError("the operator has not logged in to the cluster yet")
            self._kube = KubeClient(self.connection)
        return self._kube

    async def run(self, *, stop_flag: StopFlag | None = None, ready_flag: StopFlag | None = None) -> None:
        """Run until `stop_flag` is set (or forever): watch, decide, act."""
        settings = self.settings
        logger.info("destinations operator: %s", describe(settings))
        # Port 0 picks a free port (tests run several operators side by side); the log says which.
        self.metrics_port = self.metrics.serve(settings.metrics_port)
        logger.info("metrics on http://0.0.0.0:%d/metrics", self.metrics_port)
        kopf_settings = kopf.OperatorSettings()
        configure(kopf_settings)
        liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
        registry = build_registry(self)
        if settings.webhooks is not WebhookMode.OFF:  # admission webhooks: see controller/admission.py
            configure_admission(kopf_settings, registry, settings, lambda: self.connection)
        try:
            await kopf.operator(
                registry=registry,
                settings=kopf_settings,
                clusterwide=not settings.namespaces,
                namespaces=list(settings.namespaces),
                standalone=settings.peering is None,
                peering_name=settings.peering,
                # Peers of equal priority all pause (kopf's rule); a random one lets exactly one replica lead.
                priority=random.randint(1, 1_000_000) if settings.peering else None,
                liveness_endpoint=liveness,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
        finally:
            # kopf runs no cleanup handler when stopped (or failed) during its startup handlers, such as
            # the start-up list waiting for an API server: close what the operator opened all the same.
            await self.close()

    async def close(self) -> None:
        """Stop the runners and tasks and close the API client; again is harmless (kopf's cleanup
        handler, then `run`'s end)."""
        await self.priming.close()
        await self.jobs.close()
        await self.authorizations.close()
        if self._kube is not None:
            await self._kube.close()
            self._kube = None
