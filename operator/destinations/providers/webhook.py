"""`webhook`: POST batches of records to any HTTP endpoint, or enrich records through a lookup URL.

Signing follows the Standard Webhooks specification (https://www.standardwebhooks.com/) when the
Authorization's Secret holds a `signingSecret` (`whsec_` + base64): every request carries `webhook-id`,
`webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. Each batch
is one message: every retry of it carries the same `webhook-id` (receivers deduplicate on it), with
the timestamp and signature of the attempt.

Authentication by method: `none`; `oauth2` sends `Authorization: Bearer <token>`, the Secret's
`accessToken`, or one obtained from its `refreshToken`, `clientId` and `clientSecret` at `tokenUrl`
(refreshed before expiry and on a 401, see docs/providers.md#oauth2-tokens); `basic` sends
HTTP basic auth; `apiKey` sends the key in the configured header (`X-API-Key` by default).

Credential check: a webhook has no account to ask, and its address lives in each job's config. With
the Authorization's `endpoint` set, the check sends a GET there with the credentials and is unhealthy
only if nothing answers or the answer is 401/403; without it, the check verifies that the Secret holds
the keys the method needs and that a `signingSecret`, if present, is well formed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers._checks import require_keys, run_check
from destinations.providers._concurrency import for_each_concurrently
from destinations.providers._http import ProviderHttpClient, probe
from destinations.providers._oauth import RotatedCredentials, TokenHttp, TokenSource, token_source
from destinations.providers._records import dig, dumps, rebatch
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Provider,
    ProviderConfig,
    Record,
    RecordBatches,
    SyncContext,
)
from destinations.providers.errors import ConfigurationError, ProviderError

SIGNING_SECRET_KEY = "signingSecret"
SIGNING_SECRET_PREFIX = "whsec_"
#: Answers meaning "these records are wrong", not "the endpoint is wrong": the batch is omitted.
REJECTING_STATUSES = frozenset({400, 409, 413, 422})


class WebhookExportConfig(ProviderConfig):
    """Each batch of records is POSTed as `{"records": [...]}`."""

    url: str = Field(pattern=r"^https?://\S+$")
    """The endpoint receiving the batches."""
    batch_size: int = Field(default=100, ge=1, le=10_000)
    """Records per request."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Requests in flight at once."""
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")
    """The header carrying the key when the Authorization's method is `apiKey`."""
    headers: dict[str, str] = {}
    """Extra, non-secret request headers."""
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    """Per-request timeout."""


class WebhookEnrichmentConfig(ProviderConfig):
    """One lookup per record: the response's fields are merged into the record written to the sink."""

    url: str = Field(pattern=r"^https?://\S+$")
    """Lookup address; `{field}` placeholders are filled from the record, e.g. `https://api/x?email={email}`."""
    method: Literal["GET", "POST"] = "GET"
    """GET with the placeholders filled, or POST with the record as the JSON body."""
    mapping: dict[str, str] = {}
    """Target field → dotted path in the JSON response (e.g. `company: data.company.name`);
    empty: merge the whole response object into the record."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Lookups in flight at once."""
    api_key_header: str = Field(default="X-API-Key", pattern=r"^[A-Za-z0-9-]+$")
    """The header carrying the key when the Authorization's method is `apiKey`."""
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    """Per-request timeout."""


CONFIG_MODELS: dict[JobType, type[ProviderConfig]] = {
    JobType.EXPORT: WebhookExportConfig,
    JobType.ENRICHMENT: WebhookEnrichmentConfig,
}
AUTH_METHODS = (AuthMethod.NONE, AuthMethod.API_KEY, AuthMethod.BASIC, AuthMethod.OAUTH2)
DEFAULT_SCHEDULE = Schedule(every="1h")  # type: ignore[arg-type]


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after the `whsec_` prefix."""
    encoded = secret.strip().removeprefix(SIGNING_SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"the Secret's {SIGNING_SECRET_KEY} must be '{SIGNING_SECRET_PREFIX}' followed by base64"
        ) from None


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one request."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{digest}",
    }


REAUTHORIZE = (
    "obtain a new refresh token from the endpoint's authorization server and put it in the Secret's "
    "refreshToken key"
)


def _tokens(credentials: Credentials, rotated: RotatedCredentials | None) -> TokenSource | None:
    """The bearer token source of an `oauth2` Authorization (None for other methods)."""
    if credentials.method != AuthMethod.OAUTH2:
        return None
    if (credentials.get("refreshToken") or "").strip() and not (credentials.get("tokenUrl") or "").strip():
        raise ConfigurationError(
            "the Secret has a refreshToken but no tokenUrl; a webhook has no default token endpoint"
        )
    return token_source(credentials, default_token_url="", reauthorize=REAUTHORIZE, on_rotation=rotated)


async def _first_token(tokens: TokenSource) -> str:
    """A token for the synchronous credential check."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        return (await tokens.token(TokenHttp(client, "webhook"))).value


def _authentication(
    credentials: Credentials, api_key_header: str
) -> tuple[dict[str, str], httpx.Auth | None]:
    method = credentials.method
    if method == AuthMethod.OAUTH2:
        return {}, None  # the bearer token comes from `_tokens`
    if method == AuthMethod.BASIC:
        return {}, httpx.BasicAuth(credentials.get("username") or "", credentials.get("password") or "")
    if method == AuthMethod.API_KEY:
        return {api_key_header: credentials.get("apiKey") or ""}, None
    return {}, None


def _fill_placeholders(template: str, record: Record) -> str:
    """Fill `{field}` placeholders, URL-quoted; KeyError names a missing field."""
    fields = {key: quote(str(value), safe="") for key, value in record.items() if value is not None}
    return template.format_map(_Strict(fields))


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


class WebhookProvider(Provider):
    """POST batches of records to any HTTP endpoint, or enrich records through a lookup URL."""

    key: ClassVar[str] = "webhook"
    display_name: ClassVar[str] = "Webhook"
    description: ClassVar[str] = (
        "Send records to any HTTP endpoint as JSON batches (optionally signed per Standard Webhooks), "
        "or enrich records through a lookup URL."
    )
    documentation_url: ClassVar[str] = "https://www.standardwebhooks.com/"
    auth_methods: ClassVar[tuple[AuthMethod, ...]] = AUTH_METHODS
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]] = CONFIG_MODELS
    default_schedule: ClassVar[Schedule] = DEFAULT_SCHEDULE

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        def check() -> str:
            require_keys(credentials)
            secret = credentials.get(SIGNING_SECRET_KEY)
            if secret is not None:
                signing_key(secret)
            if credentials.endpoint is None:
                return "the Secret holds the keys the method needs; the address is checked by each run"
            headers, auth = _authentication(credentials, "X-API-Key")
            tokens = _tokens(credentials, rotated)
            if tokens is not None:
                token = asyncio.run(_first_token(tokens))
                headers = {**headers, "Authorization": f"Bearer {token}"}
            response = probe("GET", credentials.endpoint, name="webhook", headers=headers, auth=auth)
            return f"the endpoint answered HTTP {response.status_code} and accepted the credentials"

        rotated = RotatedCredentials()
        return dataclasses.replace(run_check(check), rotated=dict(rotated.values))

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        config = context.config
        assert isinstance(config, WebhookExportConfig)
        headers, auth = _authentication(context.credentials, config.api_key_header)
        headers = {**config.headers, **headers, "Content-Type": "application/json"}
        secret = context.credentials.get(SIGNING_SECRET_KEY)
        key = signing_key(secret) if secret else None

        def signer(message_id: str) -> Callable[[bytes], dict[str, str]]:
            """Signs each attempt of one message: the same id, a fresh timestamp and signature.

            Standard Webhooks (spec/standard-webhooks.md, "Webhook headers"): the id "is unique
            across all messages, but will be the same when the same webhook is being resent (e.g. due
            to a previous failure)", so receivers can deduplicate; the timestamp is checked against
            the receiver's clock, so a retry carries the time it is sent.
            """

            def sign_attempt(body: bytes) -> dict[str, str]:
                assert key is not None
                return sign(key, message_id, int(time.time()), body)

            return sign_attempt

        async with context.http(
            name="webhook",
            headers=headers,
            auth=auth,
            timeout=config.timeout_seconds,
            max_connections=config.concurrency,
            token=_tokens(context.credentials, context.rotated),
        ) as client:

            async def send(batch: list[Record]) -> None:
                body = dumps({"records": batch})
                message_id = f"msg_{uuid.uuid4().hex}"
                response = await client.request(
                    "POST", config.url, content=body, sign=signer(message_id) if key is not None else None
                )
                if response.is_success:
                    context.counts.added += len(batch)
                elif response.status_code in REJECTING_STATUSES:
                    # Each record of the refused batch is a rejection: kept under its key and retried
                    # first next run when the source is a warehouse (docs/concepts.md#rejected-records).
                    reason = f"a batch of {len(batch)} was refused: {' '.join(response.text.split())[:120]}"
                    for record in batch:
                        context.counts.reject(record, reason, code=f"HTTP {response.status_code}")
                else:
                    raise ProviderError(
                        f"the webhook answered HTTP {response.status_code} to POST "
                        f"{httpx.URL(config.url).host}; "
                        "check the job's config.url"
                    )
                context.log("batch_sent", records=len(batch), status=response.status_code)

            await for_each_concurrently(rebatch(batches, config.batch_size), config.concurrency, send)

    async def enrich(self, context: SyncContext, batches: RecordBatches) -> RecordBatches:
        config = context.config
        assert isinstance(config, WebhookEnrichmentConfig)
        headers, auth = _authentication(context.credentials, config.api_key_header)
        slots = asyncio.Semaphore(config.concurrency)
        async with context.http(
            name="webhook",
            headers=headers,
            auth=auth,
            timeout=config.timeout_seconds,
            max_connections=config.concurrency,
            token=_tokens(context.credentials, context.rotated),
        ) as client:
            async for batch in batches:
                results = await asyncio.gather(
                    *(self._lookup(client, config, record, slots) for record in batch)
                )
                enriched: list[Record] = []
                for result in results:
                    if isinstance(result, str):
                        context.counts.omit(1, result)
                    else:
                        enriched.append(result)
                yield enriched

    async def _lookup(
        self,
        client: ProviderHttpClient,
        config: WebhookEnrichmentConfig,
        record: Record,
        slots: asyncio.Semaphore,
    ) -> Record | str:
        """The enriched record, or the reason it is omitted."""
        try:
            url = _fill_placeholders(config.url, record)
        except KeyError as missing:
            return f"the record has no {missing.args[0]!r} field for the lookup URL"
        async with slots:
            if config.method == "POST":
                response = await client.request(
                    "POST", url, content=dumps(record), headers={"Content-Type": "application/json"}
                )
            else:
                response = await client.request("GET", url)
        if response.status_code == 404:
            return "the lookup found nothing (HTTP 404)"
        if not response.is_success:
            return f"the lookup answered HTTP {response.status_code}"
        try:
            found: Any = response.json()
        except ValueError:
            return "the lookup answered with a body that is not JSON"
        if not isinstance(found, dict):
            return "the lookup answered with JSON that is not an object"
        if not config.mapping:
            return {**record, **found}
        return {**record, **{target: dig(found, path) for target, path in config.mapping.items()}}


provider = WebhookProvider()
