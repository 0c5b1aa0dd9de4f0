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
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from destinations.api.models import (
    DEFAULT_MAX_REMOVE_PERCENT,
    AuthMethod,
    DestinationJobSpec,
    DryRunPreview,
    JobType,
    RunResult,
    SyncMode,
)
from destinations.api.runs import CONFIRM_REMOVAL_ANNOTATION, RunReport, RunRequest
from destinations.providers._http import HttpClientFactory
from destinations.providers._oauth import RotatedCredentials
from destinations.providers.base import Provider, RecordBatches, RecordCounter, SyncContext
from destinations.providers.catalog import ProviderNotFound, get_provider
from destinations.providers.errors import ConfigurationError, RateLimited, RemovalRefused, SyncError
from destinations.providers.rotation import SealError, seal
from destinations.worker.log import JsonLog, ProgressTicker
from destinations.worker.mounts import Mounts, read_secret_dir
from destinations.worker.report import build_report, summarize
from destinations.worker.sources import open_source

if TYPE_CHECKING:
    from destinations.worker.membership import Membership, Removal
    from destinations.worker.rejections import Rejections

# The warehouse's modules (membership, rejections, sinks, dry runs) are imported where a run needs them:
# they import psycopg, which cost a run from a file or a URL a fifth of its process's start-up.

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class RunSettings:
    mounts: Mounts
    batch_size: int = DEFAULT_BATCH_SIZE
    http: HttpClientFactory = field(default_factory=HttpClientFactory)
    progress_interval: float = 5.0


async def execute(request: RunRequest, settings: RunSettings, log: JsonLog) -> RunReport:
    """Run the request and return its report; never raises for anything a run can run into.

    Whatever the result, an OAuth2 refresh token the provider rotated during the run travels in the
    report, sealed for the operator (destinations.providers.rotation), which stores it in the Secret.
    """
    rotated = RotatedCredentials()
    report = await _execute(request, settings, log, rotated)
    if rotated.values:
        sealed = _seal(rotated, settings.mounts, request, log)
        if sealed is not None:
            report = report.model_copy(update={"rotated_credentials": sealed})
    return report


def _seal(rotated: RotatedCredentials, mounts: Mounts, request: RunRequest, log: JsonLog) -> str | None:
    secret = read_secret_dir(mounts.credentials_dir)
    try:
        sealed = seal(
            rotated.values,
            replaces=secret.get("refreshToken", ""),
            client_secret=secret.get("clientSecret", ""),
            run_id=request.sealing_id,
        )
    except SealError as error:
        log.error("rotated_credentials_lost", keys=sorted(rotated.values), message=str(error))
        return None
    log("credentials_rotated", keys=sorted(rotated.values))
    return sealed


async def _execute(
    request: RunRequest, settings: RunSettings, log: JsonLog, rotated: RotatedCredentials
) -> RunReport:
    counts = RecordCounter()
    started = time.monotonic()
    try:
        dry_run = await _run(request, settings, log, counts, rotated)
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
        return build_report(
            RunResult.FAILED,
            counts.snapshot(),
            f"{error} (so far: {summarize(counts)})",
            rejections=counts.rejection_samples(),
        )
    except Exception as error:  # a bug: still report, so the operator can show something
        log.error("crashed", error=type(error).__name__, message=str(error)[:500])
        return build_report(
            RunResult.FAILED, counts.snapshot(), f"internal error {type(error).__name__}: {str(error)[:300]}"
        )
    log("succeeded", seconds=round(time.monotonic() - started, 3), **counts.snapshot().model_dump())
    if dry_run is not None:
        preview, message = dry_run
        return RunReport(
            result=RunResult.SUCCEEDED, records=counts.snapshot(), message=message, preview=preview
        )
    return build_report(
        RunResult.SUCCEEDED, counts.snapshot(), summarize(counts), rejections=counts.rejection_samples()
    )


async def _run(
    request: RunRequest,
    settings: RunSettings,
    log: JsonLog,
    counts: RecordCounter,
    rotated: RotatedCredentials,
) -> tuple[DryRunPreview, str] | None:
    """Carry the run out; a dry run returns its preview and summary instead."""
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
    if request.dry_run:
        return await _dry_run(request, spec, provider, config, settings, log, counts, rotated)
    context = _sync_context(request, spec, config, settings, log, counts, rotated)
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
    return None


def _sync_context(
    request: RunRequest,
    spec: DestinationJobSpec,
    config: Any,
    settings: RunSettings,
    log: JsonLog,
    counts: RecordCounter,
    rotated: RotatedCredentials,
) -> SyncContext:
    """What the provider's code gets: the config, the mounted credentials, the run's counts."""
    try:
        method = AuthMethod(request.auth_method)
    except ValueError:
        raise ConfigurationError(f"unknown authorization method {request.auth_method!r}") from None
    return SyncContext(
        job_type=spec.type,
        config=config,
        credentials=settings.mounts.credentials(method, request.endpoint),
        mode=spec.mode,
        http=settings.http,
        counts=counts,
        log=log,
        run_id=request.sealing_id,
        rotated=rotated,
    )


async def _dry_run(
    request: RunRequest,
    spec: DestinationJobSpec,
    provider: Provider,
    config: Any,
    settings: RunSettings,
    log: JsonLog,
    counts: RecordCounter,
    rotated: RotatedCredentials,
) -> tuple[DryRunPreview, str]:
    """Read the source and say what an export would do (destinations.worker.dry_run); never writes to
    the provider or the bookkeeping. Only in the modes of `provider.dry_run_lookup_modes` does it ask
    the provider, read-only, which records it has (with the run's credentials; a token the refresh
    rotates is handed back sealed, as a run's)."""
    if spec.type != JobType.EXPORT or spec.source is None:
        raise ConfigurationError(f"dry runs apply to export jobs; this is an {spec.type.value} job")
    if spec.mode not in provider.modes:
        raise ConfigurationError(
            f"spec.mode {spec.mode.value!r} is not supported by provider {provider.key!r}; it supports: "
            f"{', '.join(mode.value for mode in provider.modes)}"
        )
    log("dry_run_started", provider=spec.provider, mode=spec.mode.value)
    source = _progress(
        open_source(
            spec.source, settings.mounts, counts, batch_size=settings.batch_size, policy=settings.http.policy
        ),
        counts,
        log,
        settings,
    )
    warehouse = spec.source.warehouse
    conninfo = (
        settings.mounts.secret_key(warehouse.connection_secret_ref.name, warehouse.connection_secret_ref.key)
        if warehouse is not None
        else None
    )
    from destinations.worker.dry_run import preview as dry_run_preview

    lookup = (
        _sync_context(request, spec, config, settings, log, counts, rotated)
        if spec.mode in provider.dry_run_lookup_modes
        else None
    )
    result, message = await dry_run_preview(
        spec,
        provider,
        config,
        source,
        conninfo=conninfo,
        namespace=request.namespace,
        job=request.name,
        lookup=lookup,
    )
    log("dry_run_finished", **result.records.model_dump(exclude_none=True))
    return result, message


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
    if spec.mode not in provider.modes:
        raise ConfigurationError(
            f"spec.mode {spec.mode.value!r} is not supported by provider {provider.key!r}; it supports: "
            f"{', '.join(mode.value for mode in provider.modes)}"
        )
    warehouse = spec.source.warehouse
    if warehouse is not None:
        from destinations.worker.rejections import Rejections, key_function

        counts.record_key = key_function(warehouse.key)
    rejections = None
    if warehouse is not None and spec.retry_rejected:
        ref = warehouse.connection_secret_ref
        rejections = Rejections(
            settings.mounts.secret_key(ref.name, ref.key),
            warehouse,
            namespace=request.namespace,
            job=request.name,
            run=request.run,
            max_attempts=spec.retry_rejected_attempts,
        )
        await rejections.open()
        source = _retried_first(rejections, source, settings, log)
    try:
        await _send(request, spec, provider, context, settings, log, source)
        if rejections is not None:
            settlement = await rejections.settle(counts.rejected, counts.unconfirmed_keys)
            counts.retried, counts.accepted, counts.given_up = (
                settlement.retried,
                settlement.accepted,
                settlement.given_up,
            )
    finally:
        if rejections is not None:
            await rejections.close()


def _retried_first(
    rejections: Rejections, source: RecordBatches, settings: RunSettings, log: JsonLog
) -> RecordBatches:
    """The records refused by earlier runs (as the source has them now) first, then the rest."""

    async def chained() -> RecordBatches:
        if rejections.pending:
            log("retrying_rejected", pending=len(rejections.pending))
        async for batch in rejections.retry_batches(settings.batch_size):
            yield batch
        async for batch in rejections.skip_retried(source):
            yield batch

    return chained()


async def _send(
    request: RunRequest,
    spec: DestinationJobSpec,
    provider: Provider,
    context: SyncContext,
    settings: RunSettings,
    log: JsonLog,
    source: RecordBatches,
) -> None:
    """Export the source in the job's mode; mirror mode also removes who left (with the guard)."""
    assert spec.source is not None
    if spec.mode != SyncMode.MIRROR:
        await provider.export(context, source)
        return
    warehouse = spec.source.warehouse
    if warehouse is None:
        raise ConfigurationError(
            "mode mirror needs a warehouse source, which keeps the membership bookkeeping"
        )
    from destinations.worker.membership import Membership

    ref = warehouse.connection_secret_ref
    config = context.config
    membership = Membership(
        settings.mounts.secret_key(ref.name, ref.key),
        namespace=request.namespace,
        job=request.name,
        run=request.run,
        fields=provider.identity_fields(config),
        identify=lambda record: provider.member_identities(config, record),
    )
    await membership.open()
    try:
        await provider.export(context, membership.stage(source))
        removal = await membership.removal()
        limit = spec.mirror.max_remove_percent if spec.mirror else DEFAULT_MAX_REMOVE_PERCENT
        if removal.percent > limit:
            await _confirmed_removal(request, membership, removal, limit)
            log("removal_confirmed", confirmed_run=request.confirmed_removal_run, removals=removal.removals)
        log(
            "removing",
            reason="mirror mode: members that left the source since the last successful run",
            removals=removal.removals,
            members=removal.members,
        )
        await provider.remove(context, membership.removed(settings.batch_size))
        await membership.commit()
    finally:
        await membership.close()


async def _confirmed_removal(
    request: RunRequest, membership: Membership, removal: Removal, limit: float
) -> None:
    """Let a removal beyond the limit through only when the user confirmed a refused run's removals.

    A confirmation names a run the guard refused since the last successful run, and covers up to as
    many removals as that run would have made; anything else is refused (and recorded, so it can be
    confirmed in turn). Raises `RemovalRefused`.
    """
    confirmed = request.confirmed_removal_run
    refusal = await membership.refusal(confirmed) if confirmed is not None else None
    if refusal is not None and removal.removals <= refusal.removals:
        return
    await membership.refuse(removal)
    problem = (
        f"mirror mode would remove {removal.removals} of {removal.members} members "
        f"({_percent(removal.percent)}%), more than spec.mirror.maxRemovePercent ({_percent(limit)}%); "
        "nobody was removed"
    )
    if confirmed is not None and refusal is None:
        problem += (
            f"; {CONFIRM_REMOVAL_ANNOTATION}={confirmed} names no run refused since the last successful one"
        )
    elif refusal is not None:
        problem += f"; run {refusal.run} was confirmed for at most {refusal.removals} removals"
    raise RemovalRefused(
        f"{problem}. If the source is right, confirm with the annotation "
        f"{CONFIRM_REMOVAL_ANNOTATION}={request.run} and run the job again"
    )


def _percent(value: float) -> str:
    """`100`, `12.5`, `33.3`: one decimal at most, none when whole."""
    return f"{value:.1f}".removesuffix(".0")


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
    from destinations.worker.sinks import open_sink

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
