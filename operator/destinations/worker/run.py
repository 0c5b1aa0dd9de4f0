"""One run of one job: from the request to the report.

The shape of a run by job type:

- export: source → provider.export; in mirror mode the source batches are staged on the way and,
  once the export succeeded, the members that left go to provider.remove;
- import: provider.import_records → sink;
- enrichment: source → provider.enrich → sink.

Every failure a user can act on is a `SyncError` and ends the run `failed` with its message; a
`RateLimited` ends it `rate_limited` with the provider's time to come back. Anything else is a bug:
the run fails with the exception's type and message (never a traceback with local values).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from destinations.api.models import AuthMethod, DestinationJobSpec, JobType, RunResult, SyncMode
from destinations.api.runs import RunReport, RunRequest
from destinations.providers._http import HttpClientFactory
from destinations.providers.base import Provider, RecordBatches, RecordCounter, SyncContext
from destinations.providers.catalog import ProviderNotFound, get_provider
from destinations.providers.errors import ConfigurationError, RateLimited, SyncError
from destinations.worker.log import JsonLog, ProgressTicker
from destinations.worker.membership import Membership
from destinations.worker.mounts import Mounts
from destinations.worker.report import build_report, summarize
from destinations.worker.sinks import open_sink
from destinations.worker.sources import open_source

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class RunSettings:
    mounts: Mounts
    batch_size: int = DEFAULT_BATCH_SIZE
    http: HttpClientFactory = field(default_factory=HttpClientFactory)
    progress_interval: float = 5.0


async def execute(request: RunRequest, settings: RunSettings, log: JsonLog) -> RunReport:
    """Run the request and return its report; never raises for anything a run can run into."""
    counts = RecordCounter()
    started = time.monotonic()
    try:
        await _run(request, settings, log, counts)
    except RateLimited as limited:
        log.warning("rate_limited", retry_after_seconds=limited.retry_after_seconds, message=str(limited))
        return build_report(
            RunResult.RATE_LIMITED,
            counts.snapshot(),
            f"{limited} (so far: {summarize(counts)})",
            retry_after_seconds=limited.retry_after_seconds,
        )
    except SyncError as error:
        log.error("failed", message=str(error))
        return build_report(RunResult.FAILED, counts.snapshot(), f"{error} (so far: {summarize(counts)})")
    except Exception as error:  # a bug: still report, so the operator can show something
        log.error("crashed", error=type(error).__name__, message=str(error)[:500])
        return build_report(
            RunResult.FAILED, counts.snapshot(), f"internal error {type(error).__name__}: {str(error)[:300]}"
        )
    log("succeeded", seconds=round(time.monotonic() - started, 3), **counts.snapshot().model_dump())
    return build_report(RunResult.SUCCEEDED, counts.snapshot(), summarize(counts))


async def _run(request: RunRequest, settings: RunSettings, log: JsonLog, counts: RecordCounter) -> None:
    spec = _parse_spec(request)
    provider = _provider(spec.provider)
    try:
        config = provider.parse_config(spec.type, spec.config)
    except KeyError:
        raise provider._unsupported(spec.type) from None
    except ValidationError as error:
        raise ConfigurationError(
            f"config does not match the {spec.provider} {spec.type.value} schema: "
            f"{_validation_summary(error)}"
        ) from None
    try:
        method = AuthMethod(request.auth_method)
    except ValueError:
        raise ConfigurationError(f"unknown authorization method {request.auth_method!r}") from None
    credentials = settings.mounts.credentials(method, request.endpoint)
    context = SyncContext(
        job_type=spec.type,
        config=config,
        credentials=credentials,
        mode=spec.mode,
        http=settings.http,
        counts=counts,
        log=log,
        run_id=f"{request.namespace}/{request.name}#{request.run}",
    )
    log("started", provider=spec.provider, type=spec.type.value, mode=spec.mode.value)
    if spec.type == JobType.EXPORT:
        await _export(request, spec, provider, context, settings, log)
    elif spec.type == JobType.IMPORT:
        assert spec.sink is not None
        await _into_sink(provider.import_records(context), spec, context, settings, log, count_read=True)
    else:
        assert spec.source is not None
        source = _progress(
            open_source(
                spec.source,
                settings.mounts,
                counts,
                batch_size=settings.batch_size,
                policy=settings.http.policy,
            ),
            counts,
            log,
            settings,
        )
        await _into_sink(provider.enrich(context, source), spec, context, settings, log, count_read=False)


async def _export(
    request: RunRequest,
    spec: DestinationJobSpec,
    provider: Provider,
    context: SyncContext,
    settings: RunSettings,
    log: JsonLog,
) -> None:
    assert spec.source is not None
    counts = context.counts
    source = _progress(
        open_source(
            spec.source, settings.mounts, counts, batch_size=settings.batch_size, policy=settings.http.policy
        ),
        counts,
        log,
        settings,
    )
    if spec.mode != SyncMode.MIRROR:
        await provider.export(context, source)
        return
    if not provider.supports_mirror:
        raise ConfigurationError(f"provider {provider.key!r} cannot remove members; use mode upsert")
    warehouse = spec.source.warehouse
    if warehouse is None:
        raise ConfigurationError(
            "mode mirror needs a warehouse source, which keeps the membership bookkeeping"
        )
    ref = warehouse.connection_secret_ref
    membership = Membership(
        settings.mounts.secret_key(ref.name, ref.key),
        namespace=request.namespace,
        job=request.name,
        run=request.run,
        key=warehouse.key,
        identity=provider.identity_fields(context.config),
    )
    await membership.open()
    try:
        await provider.export(context, membership.stage(source))
        log("removing", reason="mirror mode: members that left the source since the last successful run")
        await provider.remove(context, membership.removed(settings.batch_size))
        await membership.commit()
    finally:
        await membership.close()


async def _into_sink(
    batches: RecordBatches,
    spec: DestinationJobSpec,
    context: SyncContext,
    settings: RunSettings,
    log: JsonLog,
    *,
    count_read: bool,
) -> None:
    assert spec.sink is not None
    sink = open_sink(spec.sink, settings.mounts, context.counts)
    succeeded = False
    await sink.open()
    try:
        async for batch in batches:
            if count_read:
                context.counts.read += len(batch)
            await sink.write(batch)
        succeeded = True
    finally:
        await sink.close(succeeded=succeeded)


async def _progress(
    batches: RecordBatches, counts: RecordCounter, log: JsonLog, settings: RunSettings
) -> RecordBatches:
    ticker = ProgressTicker(settings.progress_interval)
    async for batch in batches:
        yield batch
        if ticker.due():
            log("progress", **counts.snapshot().model_dump())


def _parse_spec(request: RunRequest) -> DestinationJobSpec:
    try:
        return DestinationJobSpec.model_validate(request.spec)
    except ValidationError as error:
        raise ConfigurationError(f"the job's spec is invalid: {_validation_summary(error)}") from None


def _provider(key: str) -> Provider:
    try:
        return get_provider(key)
    except ProviderNotFound as error:
        raise ConfigurationError(str(error)) from None


def _validation_summary(error: ValidationError) -> str:
    def where(location: tuple[Any, ...]) -> str:
        return ".".join(str(part) for part in location) or "(root)"

    return "; ".join(f"{where(e['loc'])}: {e['msg']}" for e in error.errors()[:5])
