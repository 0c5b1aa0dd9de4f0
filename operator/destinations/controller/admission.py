"""Admission webhooks (DESIGN.md §6): refuse bad objects at `kubectl apply`, stamp who created a job, and
keep Authorizations that jobs still need from being deleted.

Four webhooks, named and routed as in `manifests/components/webhooks` and the Helm chart (`/<id>`):

- `validate-destinationjob` (CREATE, UPDATE): every check of `destinations validate`, plus the ones that
  need the cluster: the referenced Authorization exists in the job's namespace, is of the job's provider,
  and uses a method that provider accepts. Warnings for jobs that will work but are likely mistakes
  (a schedule more frequent than the provider's rate limits allow, an Unhealthy Authorization).
  `metadata.annotations["destinations.dev/created-by"]` cannot change after creation.
- `validate-authorization` (CREATE, UPDATE): every offline check; changing the provider while jobs
  reference the Authorization is refused; a missing Secret or key is a warning (it may come next).
- `validate-authorization-delete` (DELETE): refused while a Pending, Running, Sleeping or Paused job
  references the Authorization, naming them. The operator's finalizer is the backstop without webhooks.
- `mutate-destinationjob` (CREATE): stamps `destinations.dev/created-by` with the request's user.

The decisions are pure functions of the AdmissionReview request and a few facts read from the cluster
(`ClusterFacts`), so they are tested without a server. The kopf handlers only read those facts and
carry the verdict out. Updates that leave `spec` alone (annotations such as run-now, finalizers, the
operator's own writes) and objects being deleted are never refused for their spec: an object that was
stored while webhooks were off must still be annotatable, finalizable and deletable.

None of the webhooks writes anything, so dry-run requests are safe (`sideEffects: None`).

Serving: `configure_admission` sets kopf's webhook server up for `--webhooks managed` (a self-signed
CA and certificate made at start-up, whose CA the operator patches into the `caBundle` of the existing
configurations named by `--webhook-configuration`, and keeps there) or `--webhooks external` (tls.crt
and tls.key from `--webhook-cert-dir`, e.g. mounted from cert-manager; its CA injector fills caBundle).
kopf's own managed mode is not used: it rewrites the configurations with `url:` entries pointing at the
pod's address, which kube-apiserver usually cannot reach; the shipped configurations use the Service.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import kopf
from croniter import croniter

from destinations.api.durations import format_duration, parse_duration
from destinations.api.models import AuthMethod, AuthorizationSpec
from destinations.certificates import make_serving_certificate
from destinations.controller.health import credentials_or_problem, parse_authorization
from destinations.controller.kube import GROUP, VERSION, KubeClient, KubeError, core_path, custom_path
from destinations.controller.observing import CREATED_BY_ANNOTATION
from destinations.controller.settings import OperatorSettings, WebhookMode
from destinations.controller.usage import ACTIVE_PHASES
from destinations.providers.base import CredentialCheck, Provider
from destinations.validate import (
    Problem,
    display_value,
    validate_job_authorization,
    validate_manifest,
)

logger = logging.getLogger("destinations.operator.admission")

Json = dict[str, Any]

VALIDATE_JOB = "validate-destinationjob"
VALIDATE_AUTHORIZATION = "validate-authorization"
VALIDATE_AUTHORIZATION_DELETE = "validate-authorization-delete"
MUTATE_JOB = "mutate-destinationjob"
WEBHOOK_IDS = (VALIDATE_JOB, VALIDATE_AUTHORIZATION, VALIDATE_AUTHORIZATION_DELETE, MUTATE_JOB)
#: HTTP code of a refusal: kubectl shows the message; 403 is what controller-runtime webhooks send.
REFUSAL_CODE = 403
_ACTIVE = frozenset(phase.value for phase in ACTIVE_PHASES)
_CREATED_BY_PATH = "metadata.annotations[" + repr(CREATED_BY_ANNOTATION).replace("'", '"') + "]"
#: Cron schedules are sampled this many runs ahead, from a fixed instant, to find their shortest gap.
_CRON_SAMPLES = 200
_CRON_REFERENCE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
CA_BUNDLE_CHECK_SECONDS = 30.0


# ----------------------------------------------------------------------------------- the pure core


@dataclass(frozen=True)
class ClusterFacts:
    """What the checks need to know about the cluster, read before deciding."""

    authorizations: Sequence[Mapping[str, Any]] | None = None
    """The Authorizations of the object's namespace; None when they could not be read."""
    jobs: Sequence[Mapping[str, Any]] | None = None
    """The DestinationJobs of the object's namespace; None when they could not be read."""
    secret: Mapping[str, Any] | None = None
    """The Secret an Authorization names (None when it does not exist or was not read)."""
    secret_read: bool = False
    unreadable: str | None = None
    """Why the facts could not be read: the checks that need them are skipped with a warning."""


@dataclass(frozen=True)
class Verdict:
    """The answer to one admission request."""

    allowed: bool = True
    message: str | None = None
    warnings: tuple[str, ...] = ()
    patch: tuple[Json, ...] = ()
    """JSON-patch operations (mutating webhook only)."""

    @staticmethod
    def refuse(problems: Sequence[Problem | str], warnings: Sequence[str] = ()) -> Verdict:
        return Verdict(False, "; ".join(str(problem) for problem in problems), tuple(warnings))


def _metadata(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    metadata = (obj or {}).get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    annotations = _metadata(obj).get("annotations")
    return annotations if isinstance(annotations, Mapping) else {}


def _name_of_reference(spec: Any, field_name: str) -> str | None:
    reference = spec.get(field_name) if isinstance(spec, Mapping) else None
    name = reference.get("name") if isinstance(reference, Mapping) else None
    return name if isinstance(name, str) else None


def _spec_unchanged_or_deleting(request: Mapping[str, Any]) -> bool:
    """Updates that cannot make the spec worse: never refuse them for what the spec already was."""
    new, old = request.get("object") or {}, request.get("oldObject") or {}
    if request.get("operation") != "UPDATE":
        return False
    return bool(_metadata(new).get("deletionTimestamp")) or new.get("spec") == old.get("spec")


def _catalog(catalog: Mapping[str, Provider] | None) -> Mapping[str, Provider]:
    if catalog is not None:
        return catalog
    from destinations.providers.catalog import load_catalog

    return load_catalog()


def created_by_problems(request: Mapping[str, Any]) -> list[Problem]:
    """The created-by annotation is set once, on CREATE, by the mutating webhook; never changed after."""
    if request.get("operation") != "UPDATE":
        return []
    before = _annotations(request.get("oldObject")).get(CREATED_BY_ANNOTATION)
    after = _annotations(request.get("object")).get(CREATED_BY_ANNOTATION)
    if before == after:
        return []
    if before is None:
        return [
            Problem(
                _CREATED_BY_PATH,
                "is set by the admission webhook when the job is created and cannot be added later",
                display_value(after),
            )
        ]
    change = "removed" if after is None else f"changed to {display_value(after)}"
    return [
        Problem(
            _CREATED_BY_PATH,
            f"records who created the job ({display_value(before)}) and cannot be {change}; "
            "leave it as it is",
        )
    ]


def review_job(
    request: Mapping[str, Any], facts: ClusterFacts, catalog: Mapping[str, Provider] | None = None
) -> Verdict:
    """validate-destinationjob: the offline checks, the cluster checks, the likely-mistake warnings."""
    immutable = created_by_problems(request)
    if _spec_unchanged_or_deleting(request):
        return Verdict.refuse(immutable) if immutable else Verdict()
    job = request.get("object") or {}
    catalog = _catalog(catalog)
    problems = immutable + validate_manifest(job, catalog)
    warnings: list[str] = []
    namespace = str(_metadata(job).get("namespace") or request.get("namespace") or "")
    spec = job.get("spec")
    provider = catalog.get(str(spec.get("provider"))) if isinstance(spec, Mapping) else None
    if not isinstance(spec, Mapping) or provider is None or not _name_of_reference(spec, "authorizationRef"):
        return Verdict.refuse(problems) if problems else Verdict()
    # Every problem at once: the Authorization is checked even when the spec has other problems.
    authorization_problems, authorization_warnings = _authorization_checks(spec, namespace, provider, facts)
    warnings.extend(authorization_warnings)
    if not problems:
        warnings.extend(_schedule_warnings(spec, provider))
    problems = problems + [p for p in authorization_problems if p not in problems]
    if problems:
        return Verdict.refuse(problems, warnings)
    return Verdict(warnings=tuple(warnings))


def _authorization_checks(
    spec: Mapping[str, Any], namespace: str, provider: Provider, facts: ClusterFacts
) -> tuple[list[Problem], list[str]]:
    name = _name_of_reference(spec, "authorizationRef") or ""
    if facts.authorizations is None:
        reason = facts.unreadable or "the Authorizations could not be read"
        return [], [f"spec.authorizationRef.name: not checked against the cluster ({reason})"]
    found = next((a for a in facts.authorizations if _metadata(a).get("name") == name), None)
    if found is None:
        candidates = sorted(
            str(_metadata(a).get("name"))
            for a in facts.authorizations
            if (a.get("spec") or {}).get("provider") == provider.key
        )
        hint = (
            f"Authorizations of provider {provider.key!r} there: {', '.join(candidates)}"
            if candidates
            else f"there is none of provider {provider.key!r} yet; create it first"
        )
        return [
            Problem(
                "spec.authorizationRef.name",
                f"names no Authorization in namespace {namespace!r}; {hint}",
                display_value(name),
            )
        ], []
    authorization_spec = found.get("spec") or {}
    problems = validate_job_authorization(spec, authorization_spec)
    method = authorization_spec.get("method")
    if not problems and method not in {m.value for m in provider.auth_methods}:
        accepted = ", ".join(m.value for m in provider.auth_methods)
        problems.append(
            Problem(
                "spec.authorizationRef.name",
                f"names Authorization {name!r} with method {method!r}, which provider {provider.key!r} "
                f"does not accept; it accepts: {accepted}",
                display_value(name),
            )
        )
    warnings: list[str] = []
    status = found.get("status") or {}
    if _metadata(found).get("deletionTimestamp"):
        warnings.append(f"spec.authorizationRef.name: Authorization {name!r} is being deleted")
    elif status.get("health") == "Unhealthy":
        why = f": {status['message']}" if status.get("message") else ""
        warnings.append(
            f"spec.authorizationRef.name: Authorization {name!r} is Unhealthy{why}; "
            "the job waits in Pending until its credentials work"
        )
    return problems, warnings


def shortest_cron_gap(expression: str, timezone: str | None = None) -> timedelta:
    """The shortest time between two runs of a cron schedule, sampled from a fixed instant."""
    start = _CRON_REFERENCE
    if timezone:
        from zoneinfo import ZoneInfo

        start = start.astimezone(ZoneInfo(timezone))
    runs = croniter(expression, start)
    previous: datetime.datetime = runs.get_next(datetime.datetime)
    shortest: timedelta | None = None
    for _ in range(_CRON_SAMPLES):
        current: datetime.datetime = runs.get_next(datetime.datetime)
        gap = current - previous
        shortest = gap if shortest is None else min(shortest, gap)
        previous = current
    assert shortest is not None
    return shortest


def _schedule_warnings(spec: Mapping[str, Any], provider: Provider) -> list[str]:
    schedule = spec.get("schedule")
    minimum = provider.min_interval
    if not isinstance(schedule, Mapping) or minimum is None:
        return []
    if schedule.get("every") is not None:
        interval = parse_duration(str(schedule["every"]))
        path, shown = "spec.schedule.every", str(schedule["every"])
    elif schedule.get("cron") is not None:
        interval = shortest_cron_gap(str(schedule["cron"]), schedule.get("timezone"))
        path, shown = "spec.schedule.cron", f"{schedule['cron']!r} (runs {format_duration(interval)} apart)"
    else:
        return []
    if interval >= minimum:
        return []
    return [
        f"{path}: {shown} runs more often than provider {provider.key!r} allows without hitting its "
        f"rate limits (every {format_duration(minimum)}); runs will often sleep until the provider allows"
    ]


def review_authorization(
    request: Mapping[str, Any], facts: ClusterFacts, catalog: Mapping[str, Provider] | None = None
) -> Verdict:
    """validate-authorization: the offline checks, provider changes under jobs, Secret warnings."""
    if _spec_unchanged_or_deleting(request):
        return Verdict()
    authorization = request.get("object") or {}
    problems = validate_manifest(authorization, _catalog(catalog))
    if problems:
        return Verdict.refuse(problems)
    metadata = _metadata(authorization)
    namespace = str(metadata.get("namespace") or request.get("namespace") or "")
    spec: Mapping[str, Any] = authorization["spec"]
    warnings: list[str] = []
    old_provider = ((request.get("oldObject") or {}).get("spec") or {}).get("provider")
    if request.get("operation") == "UPDATE" and old_provider != spec.get("provider"):
        users = _jobs_using(facts.jobs or (), str(metadata.get("name")), active_only=False)
        if users:
            return Verdict.refuse(
                [
                    Problem(
                        "spec.provider",
                        f"cannot change from {old_provider!r} while jobs of that provider reference "
                        f"this Authorization ({', '.join(users)}); create a new Authorization instead",
                        display_value(spec.get("provider")),
                    )
                ]
            )
    if facts.secret_read:
        parsed = parse_authorization(spec, namespace)
        if isinstance(parsed, AuthorizationSpec) and parsed.method != AuthMethod.NONE:
            outcome = credentials_or_problem(parsed, facts.secret, namespace)
            if isinstance(outcome, CredentialCheck) and not outcome.healthy:
                warnings.append(
                    f"spec.secretRef.name: {outcome.message}; the Authorization stays Unhealthy until "
                    "that is fixed"
                )
    return Verdict(warnings=tuple(warnings))


def _jobs_using(jobs: Sequence[Mapping[str, Any]], authorization: str, *, active_only: bool) -> list[str]:
    """Names (with phase) of the jobs whose authorizationRef names `authorization`."""
    users: list[str] = []
    for job in jobs:
        metadata = _metadata(job)
        if metadata.get("deletionTimestamp"):
            continue
        if _name_of_reference(job.get("spec"), "authorizationRef") != authorization:
            continue
        phase = str((job.get("status") or {}).get("phase") or "Pending")  # no status yet: Pending
        if active_only and phase not in _ACTIVE:
            continue
        users.append(f"{metadata.get('name')} ({phase})")
    return sorted(users)


def review_authorization_delete(request: Mapping[str, Any], facts: ClusterFacts) -> Verdict:
    """validate-authorization-delete: refused while a Pending, Running, Sleeping or Paused job uses it."""
    old = request.get("oldObject") or {}
    name = str(_metadata(old).get("name") or request.get("name") or "")
    if facts.jobs is None:
        reason = facts.unreadable or "the jobs could not be read"
        return Verdict(
            warnings=(
                f"the jobs using Authorization {name!r} were not checked ({reason}); "
                "the operator's finalizer holds the deletion while they need it",
            )
        )
    users = _jobs_using(facts.jobs, name, active_only=True)
    if not users:
        return Verdict()
    return Verdict.refuse(
        [
            f"Authorization {name!r} is used by {len(users)} Pending, Running, Sleeping or Paused "
            f"job(s): {', '.join(users)}; delete those jobs or point them at another Authorization first"
        ]
    )


def stamp_created_by(request: Mapping[str, Any]) -> Verdict:
    """mutate-destinationjob: on CREATE, set created-by to the requesting user (replacing any value)."""
    if request.get("operation") != "CREATE":
        return Verdict()
    username = str((request.get("userInfo") or {}).get("username") or "")
    if not username:
        return Verdict()
    metadata = _metadata(request.get("object"))
    if _annotations(request.get("object")) and "annotations" in metadata:
        pointer = "/metadata/annotations/" + CREATED_BY_ANNOTATION.replace("~", "~0").replace("/", "~1")
        operation: Json = {"op": "add", "path": pointer, "value": username}
    else:
        operation = {"op": "add", "path": "/metadata/annotations", "value": {CREATED_BY_ANNOTATION: username}}
    return Verdict(patch=(operation,))


def review(
    webhook: str,
    request: Mapping[str, Any],
    facts: ClusterFacts,
    catalog: Mapping[str, Provider] | None = None,
) -> Verdict:
    """The verdict of webhook `webhook` on one AdmissionReview `request` payload."""
    if webhook == VALIDATE_JOB:
        return review_job(request, facts, catalog)
    if webhook == VALIDATE_AUTHORIZATION:
        return review_authorization(request, facts, catalog)
    if webhook == VALIDATE_AUTHORIZATION_DELETE:
        return review_authorization_delete(request, facts)
    if webhook == MUTATE_JOB:
        return stamp_created_by(request)
    raise ValueError(f"unknown webhook {webhook!r}; known: {', '.join(WEBHOOK_IDS)}")


def dict_body(body: Any) -> Json:
    """kopf hands patch functions its raw body: a plain dict typed as a mapping."""
    assert isinstance(body, dict)
    return body


def apply_json_patch(body: Json, operations: Sequence[Json]) -> None:
    """Apply this module's own `add` operations in place (kopf turns the result into the response patch)."""
    for operation in operations:
        if operation.get("op") != "add":
            raise ValueError(f"unsupported patch operation {operation!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(operation["path"]).split("/")[1:]]
        target = body
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = operation["value"]


# ---------------------------------------------------------------------------------- reading facts


class AdmissionReader(KubeClient):
    """The reads the admission checks make, on the operator's credentials."""

    async def list_custom(self, plural: str, namespace: str) -> list[Json]:
        items: list[Json] = (await self._request("GET", custom_path(plural, namespace))).get("items") or []
        return items

    async def get_secret_or_none(self, namespace: str, name: str) -> Json | None:
        try:
            return await self._request("GET", core_path("secrets", namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise


async def gather_facts(webhook: str, request: Mapping[str, Any], reader: AdmissionReader) -> ClusterFacts:
    """Read what `webhook` needs to decide on `request`; a failed read is reported, not raised."""
    obj = request.get("object") or request.get("oldObject") or {}
    namespace = str(_metadata(obj).get("namespace") or request.get("namespace") or "")
    if webhook == MUTATE_JOB or _spec_unchanged_or_deleting(request):
        return ClusterFacts()
    try:
        if webhook == VALIDATE_JOB:
            return ClusterFacts(authorizations=await reader.list_custom("authorizations", namespace))
        if webhook == VALIDATE_AUTHORIZATION_DELETE:
            return ClusterFacts(jobs=await reader.list_custom("destinationjobs", namespace))
        if webhook == VALIDATE_AUTHORIZATION:
            jobs = (
                await reader.list_custom("destinationjobs", namespace)
                if request.get("operation") == "UPDATE"
                else None
            )
            secret_name = _name_of_reference(obj.get("spec"), "secretRef")
            if secret_name is None:
                return ClusterFacts(jobs=jobs)
            secret = await reader.get_secret_or_none(namespace, secret_name)
            return ClusterFacts(jobs=jobs, secret=secret, secret_read=True)
    except KubeError as error:
        logger.warning("admission: could not read the cluster for %s: %s", webhook, error)
        return ClusterFacts(unreadable=f"the API could not be read: HTTP {error.status}")
    return ClusterFacts()


# ------------------------------------------------------------------------------------ kopf handlers


def register_admission_handlers(
    registry: kopf.OperatorRegistry,
    reader: Callable[[], AdmissionReader],
    catalog: Callable[[], Mapping[str, Provider]] | None = None,
) -> None:
    """The four webhooks as kopf admission handlers (ids = paths of the shipped configurations)."""

    async def decide(webhook: str, request: Mapping[str, Any], warnings: list[str]) -> Verdict:
        facts = await gather_facts(webhook, request, reader())
        verdict = review(webhook, request, facts, catalog() if catalog is not None else None)
        warnings.extend(verdict.warnings)
        if not verdict.allowed:
            raise kopf.AdmissionError(verdict.message, code=REFUSAL_CODE)
        return verdict

    def request_of(kwargs: Mapping[str, Any]) -> Json:
        """The AdmissionReview request fields the checks read, from kopf's handler arguments."""
        body, old, new = kwargs.get("body"), kwargs.get("old"), kwargs.get("new")
        return {
            "operation": kwargs.get("operation"),
            "object": dict(new) if new is not None else None,
            "oldObject": dict(old) if old is not None else None,
            "userInfo": dict(kwargs.get("userinfo") or {}),
            "dryRun": bool(kwargs.get("dryrun")),
            "namespace": (body or {}).get("metadata", {}).get("namespace", ""),
        }

    @kopf.on.validate(
        GROUP, VERSION, "destinationjobs", id=VALIDATE_JOB, operations=["CREATE", "UPDATE"], registry=registry
    )
    async def _validate_job(warnings: list[str], **kwargs: Any) -> None:
        await decide(VALIDATE_JOB, request_of(kwargs), warnings)

    @kopf.on.validate(
        GROUP,
        VERSION,
        "authorizations",
        id=VALIDATE_AUTHORIZATION,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )
    async def _validate_authorization(warnings: list[str], **kwargs: Any) -> None:
        await decide(VALIDATE_AUTHORIZATION, request_of(kwargs), warnings)

    @kopf.on.validate(
        GROUP,
        VERSION,
        "authorizations",
        id=VALIDATE_AUTHORIZATION_DELETE,
        operations=["DELETE"],
        registry=registry,
    )
    async def _validate_authorization_delete(warnings: list[str], **kwargs: Any) -> None:
        await decide(VALIDATE_AUTHORIZATION_DELETE, request_of(kwargs), warnings)

    @kopf.on.mutate(
        GROUP, VERSION, "destinationjobs", id=MUTATE_JOB, operations=["CREATE"], registry=registry
    )
    async def _mutate_job(patch: kopf.Patch, warnings: list[str], **kwargs: Any) -> None:
        verdict = await decide(MUTATE_JOB, request_of(kwargs), warnings)
        if verdict.patch:
            operations = list(verdict.patch)
            patch.fns.append(lambda body: apply_json_patch(dict_body(body), operations))


# ------------------------------------------------------------------------------------------ serving


def _dns_names(host: str) -> list[str]:
    """`svc.ns.svc` also answers as `svc.ns`, `svc.ns.svc.cluster.local` (what clients may ask for)."""
    names = [host]
    if host.endswith(".svc"):
        names += [host.removesuffix(".svc"), host + ".cluster.local"]
    return names


CONFIGURATION_KINDS = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")


def ca_bundle_patch(configuration: Mapping[str, Any], ca_bundle: str) -> list[Json]:
    """JSON-patch operations putting `ca_bundle` into every webhook of a configuration that lacks it.

    Each operation is guarded by a `test` of the webhook's name, so a configuration changed meanwhile
    (a Helm upgrade reordering webhooks) fails the patch instead of landing on the wrong webhook.
    """
    operations: list[Json] = []
    for index, webhook in enumerate(configuration.get("webhooks") or []):
        client_config = webhook.get("clientConfig") or {}
        if client_config.get("caBundle") == ca_bundle:
            continue
        operations.append({"op": "test", "path": f"/webhooks/{index}/name", "value": webhook.get("name")})
        operations.append(
            {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": ca_bundle}
        )
    return operations


class CaBundleKeeper(KubeClient):
    """Keeps the operator's CA in the `caBundle` of the named webhook configurations (managed mode)."""

    async def ensure(self, name: str, ca_bundle: str) -> bool:
        """Patch what is missing; True when every webhook of both configurations trusts `ca_bundle`."""
        complete = True
        for plural in CONFIGURATION_KINDS:
            path = f"/apis/admissionregistration.k8s.io/v1/{plural}/{name}"
            try:
                configuration = await self._request("GET", path)
            except KubeError as error:
                if error.status != 404:
                    raise
                complete = False
                continue
            operations = ca_bundle_patch(configuration, ca_bundle)
            if operations:
                await self._request("PATCH", path, operations, "application/json-patch+json")
                logger.info("webhooks: caBundle set in %s %s", plural, name)
        return complete


class ManagedWebhookServer:
    """kopf's WebhookServer with our own certificate, and the caBundle kept in the configurations.

    A kopf admission server is an async iterator of client configs; this one passes them on (kopf's
    managed mode is off, so they are not written anywhere) and keeps the CA in the configurations
    installed by the chart or the kustomize component, re-patching whenever an upgrade blanks it.
    """

    def __init__(
        self,
        server: kopf.WebhookServer,
        ca_bundle: str,
        configuration: str,
        connection: Callable[[], kopf.ConnectionInfo | None],
        interval: float = CA_BUNDLE_CHECK_SECONDS,
    ) -> None:
        self.server = server
        self.ca_bundle = ca_bundle
        self.configuration = configuration
        self.connection = connection
        self.interval = interval

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        keeper = asyncio.create_task(self._keep_ca_bundle(), name="webhook caBundle")
        try:
            async with self.server as server:
                async for client_config in server(fn):
                    yield client_config
        finally:
            keeper.cancel()

    async def _keep_ca_bundle(self) -> None:
        client: CaBundleKeeper | None = None
        try:
            while True:
                info = self.connection()
                if info is not None and client is None:
                    client = CaBundleKeeper(info)
                complete = False
                if client is not None:
                    try:
                        complete = await client.ensure(self.configuration, self.ca_bundle)
                    except KubeError as error:
                        logger.warning("webhooks: could not set the caBundle: %s", error)
                await asyncio.sleep(self.interval if complete else min(self.interval, 1.0))
        finally:
            if client is not None:
                await client.close()


@dataclass
class AdmissionSetup:
    """What `configure_admission` made: the reader's lifecycle and, in managed mode, the CA."""

    connection: Callable[[], kopf.ConnectionInfo | None]
    ca_pem: bytes | None = None
    _reader: AdmissionReader | None = field(default=None, repr=False)

    def reader(self) -> AdmissionReader:
        if self._reader is None:
            info = self.connection()
            if info is None:
                raise kopf.TemporaryError("the operator has not logged in yet", delay=1)
            self._reader = AdmissionReader(info, timeout=5)
        return self._reader

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None


def configure_admission(
    settings: kopf.OperatorSettings,
    registry: kopf.OperatorRegistry,
    operator_settings: OperatorSettings,
    connection: Callable[[], kopf.ConnectionInfo | None],
) -> AdmissionSetup:
    """Register the admission handlers and the webhook server for `--webhooks managed|external`."""
    mode = operator_settings.webhooks
    if mode is WebhookMode.OFF:
        raise ValueError("configure_admission needs --webhooks managed or external")
    setup = AdmissionSetup(connection)
    register_admission_handlers(registry, setup.reader)

    @kopf.on.cleanup(registry=registry)
    async def _close_admission_reader(**_: Any) -> None:
        await setup.close()

    port = operator_settings.webhook_port
    settings.admission.managed = None  # we keep the shipped configurations; see the module docstring
    if mode is WebhookMode.EXTERNAL:
        directory = Path(operator_settings.webhook_cert_dir or "/etc/destinations/webhook")
        ca_file = directory / "ca.crt"
        settings.admission.server = kopf.WebhookServer(
            port=port,
            certfile=directory / "tls.crt",
            pkeyfile=directory / "tls.key",
            cafile=ca_file if ca_file.exists() else None,
        )
        return setup
    host = operator_settings.webhook_host or "localhost"
    certificate = make_serving_certificate([*_dns_names(host), "localhost", "127.0.0.1"])
    directory = Path(tempfile.mkdtemp(prefix="destinations-webhook-"))
    cert_file, key_file, ca_file = certificate.write(directory)
    setup.ca_pem = certificate.ca_pem
    server = kopf.WebhookServer(port=port, host=host, certfile=cert_file, pkeyfile=key_file, cafile=ca_file)
    settings.admission.server = ManagedWebhookServer(
        server,
        base64.b64encode(certificate.ca_pem).decode(),
        operator_settings.webhook_configuration,
        connection,
    )
    return setup
