"""Prometheus metrics on `/metrics`: what an SRE graphs and alerts on.

Jobs by phase and job runners by state (gauges, computed at scrape time from the jobs the operator
holds), runs by provider, type and result, run durations, and records by operation. A registry of our
own keeps the default process collectors out of tests that start several operators in one process.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from destinations.api.models import LastRun, Phase

RUN_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
RECORD_OPERATIONS = ("read", "added", "updated", "removed", "omitted", "failed")


class _PhaseCollector(Collector):
    def __init__(self, phases: Callable[[], Iterable[str | None]]) -> None:
        self._phases = phases

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = Tally(phase or "Unknown" for phase in self._phases())
        family = GaugeMetricFamily(
            "destinations_jobs", "DestinationJobs the operator manages, by phase", labels=["phase"]
        )
        for phase in [*(p.value for p in Phase), "Unknown"]:
            family.add_metric([phase], counts.get(phase, 0))
        yield family


class _RunnerCollector(Collector):
    def __init__(self, runners: Callable[[], tuple[int, int]]) -> None:
        self._runners = runners

    def collect(self) -> Iterable[GaugeMetricFamily]:
        idle, busy = self._runners()
        family = GaugeMetricFamily(
            "destinations_job_runners",
            "Job runners by state: idle ones wait for their wake-up time or an event, busy ones decide "
            "or act; all idle after a restart means the operator has settled",
            labels=["state"],
        )
        family.add_metric(["idle"], idle)
        family.add_metric(["busy"], busy)
        yield family


class Metrics:
    def __init__(
        self,
        phases: Callable[[], Iterable[str | None]],
        runners: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_PhaseCollector(phases))
        self.registry.register(_RunnerCollector(runners))
        self.runs = Counter(
            "destinations_runs",
            "Finished sync runs by provider, job type and result",
            ["provider", "type", "result"],
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "destinations_run_duration_seconds",
            "Duration of finished sync runs",
            ["provider", "type"],
            buckets=RUN_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.records = Counter(
            "destinations_records",
            "Records handled by finished runs, by operation",
            ["provider", "type", "operation"],
            registry=self.registry,
        )

    def run_finished(self, provider: str, job_type: str, run: LastRun, duration_seconds: float) -> None:
        self.runs.labels(provider, job_type, run.result.value).inc()
        self.run_duration.labels(provider, job_type).observe(max(0.0, duration_seconds))
        counts: Mapping[str, int] = run.records.model_dump()
        for operation in RECORD_OPERATIONS:
            if counts.get(operation):
                self.records.labels(provider, job_type, operation).inc(counts[operation])

    def serve(self, port: int) -> int:
        """Serve /metrics on `port` (0: any free port) in a background thread; return the port."""
        server, _ = start_http_server(port, registry=self.registry)
        return int(server.server_port)
