"""`facebook`: Meta Custom Audiences, per the Marketing API.

https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/ —
identifiers are normalised and SHA-256 hashed before upload, at most 10,000 users per request.

- Add: `POST /{api_version}/{audience_id}/users` with `{"payload": {"schema": [...], "data": [[...]]},
  "session": {...}}`; remove (mirror mode): `DELETE` on the same path with the same body.
- Auth: `oauth2` only: the Secret's `accessToken` (a system-user token with `ads_management`), sent as
  `Authorization: Bearer`.
- Answers: `num_received` and `num_invalid_entries`; invalid entries are counted as omitted.
- Throttling comes back in the JSON `error.code` (4, 17, 32, 613, 80000-80014), usually with HTTP 400,
  per https://developers.facebook.com/docs/marketing-api/overview/rate-limiting/ : the run ends
  `rate_limited`, coming back after the `X-Business-Use-Case-Usage` header's
  `estimated_time_to_regain_access` (minutes) when given, else after `THROTTLE_DEFAULT_WAIT_SECONDS`.
- Error 190 (invalid or expired token) and permission errors (10, 200-299) fail the run as
  authentication failures.
- Base address `https://graph.facebook.com`, replaced by the Authorization's `endpoint`.
- Credential check: `GET /{DEFAULT_API_VERSION}/me`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, field_validator

from destinations.api.models import AuthMethod, JobType, Schedule, SyncMode
from destinations.providers._checks import access_token, require_keys, run_check
from destinations.providers._http import ProviderHttpClient, probe
from destinations.providers._records import json_object, text_field
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Provider,
    ProviderConfig,
    Record,
    RecordBatches,
    SyncContext,
)
from destinations.providers.errors import (
    AuthenticationFailed,
    MalformedResponse,
    ProviderError,
    RateLimited,
)
from destinations.providers.identities import PHONE_REGIONS, normalize_email, normalize_phone

GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
MAX_USERS_PER_REQUEST = 10_000
NO_REFRESH = "Meta issues no refresh tokens; put a system user's access token (ads_management) in accessToken"
THROTTLING_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
AUTHENTICATION_CODES = frozenset({102, 190, 10, *range(200, 300)})
#: Meta blocks a throttled ad account for 60 to 300 seconds (rate-limiting page); wait the longer.
THROTTLE_DEFAULT_WAIT_SECONDS = 300.0

IdentifierKey = Literal[
    "EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY", "GEN", "DOBY", "EXTERN_ID"
]


class FacebookExportConfig(ProviderConfig):
    """Add the source's records to a Custom Audience (and remove departed ones in mirror mode)."""

    audience_id: str = Field(pattern=r"^[0-9]+$")
    """The Custom Audience ID."""
    identifiers: dict[IdentifierKey, str] = Field(default={"EMAIL": "email"}, min_length=1)
    """Meta schema key → record field, e.g. `EMAIL: email`, `PHONE: phone`, `FN: first_name`."""
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    """Graph API version."""
    batch_size: int = Field(default=10_000, ge=1, le=10_000)
    """Users per request (Meta's maximum is 10,000)."""
    default_phone_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2 country (`GB`, `US`) of phone numbers written without a country code, such as
    `020 7946 0958`; without it, numbers lacking `+` must start with their country code."""

    @field_validator("default_phone_region")
    @classmethod
    def _known_region(cls, region: str | None) -> str | None:
        if region is not None and region not in PHONE_REGIONS:
            raise ValueError(
                f"{region!r} is not a region with known phone numbering; use an ISO 3166-1 alpha-2 "
                "code such as GB, US or DE"
            )
        return region


CONFIG_MODELS: dict[JobType, type[ProviderConfig]] = {JobType.EXPORT: FacebookExportConfig}
AUTH_METHODS = (AuthMethod.OAUTH2,)
DEFAULT_SCHEDULE = Schedule(every="24h")  # type: ignore[arg-type]
MIN_INTERVAL = timedelta(hours=1)


# ------------------------------------------------------------------------------------ normalisation


def _letters(value: str) -> str:
    """Lower case, punctuation, symbols and spaces removed; letters of any script kept (UTF-8)."""
    return "".join(ch for ch in value.lower() if unicodedata.category(ch)[0] in ("L", "N"))


def normalize(key: str, value: str, default_phone_region: str | None = None) -> str | None:
    """Meta's normalisation of one identifier before hashing; None when nothing usable is left.

    Per "Hashing and Normalizing Data" in the Custom Audiences guide: trim and lower-case everything;
    phone numbers as digits with the country code and without the national trunk prefix
    (`+44 (0)20 7946-0958` → `442079460958`, `(650)555-1212` in the US → `16505551212`, the
    Business SDK's example), read with `default_phone_region` when written without a country code;
    names, cities and states without punctuation or spaces; US ZIP codes' first five digits;
    countries as ISO 3166-1 alpha-2; gender `f` or `m`; birth year four digits.
    """
    text = value.strip().lower()
    if not text:
        return None
    if key == "EMAIL":
        return normalize_email(text)
    if key == "PHONE":
        e164 = normalize_phone(text, default_phone_region)
        return e164.removeprefix("+") if e164 else None
    if key in ("FN", "LN", "CT", "ST"):
        return _letters(text) or None
    if key == "ZIP":
        compact = re.sub(r"\s+", "", text)
        us = re.fullmatch(r"([0-9]{5})-?[0-9]{4}", compact)
        return us.group(1) if us else compact or None
    if key == "COUNTRY":
        letters = _letters(text)
        return letters if len(letters) == 2 else None
    if key == "GEN":
        return text[0] if text[0] in ("f", "m") else None
    if key == "DOBY":
        return text if re.fullmatch(r"[0-9]{4}", text) else None
    return text  # EXTERN_ID: sent as given


def hash_identifier(key: str, value: str, default_phone_region: str | None = None) -> str | None:
    """The value Meta expects in `data`: SHA-256 hex of the normalised value (EXTERN_ID is not hashed)."""
    normalized = normalize(key, value, default_phone_region)
    if normalized is None:
        return None
    if key == "EXTERN_ID":
        return normalized
    return hashlib.sha256(normalized.encode()).hexdigest()


def user_row(
    identifiers: Mapping[IdentifierKey, str], record: Record, default_phone_region: str | None = None
) -> list[str] | None:
    """One row of `data` in schema order (empty strings for missing values); None if all are missing."""
    row = []
    for key, field_name in identifiers.items():
        raw = text_field(record, field_name)
        row.append((hash_identifier(key, raw, default_phone_region) if raw is not None else None) or "")
    return row if any(row) else None


# ----------------------------------------------------------------------------------------- errors


def graph_error(response: httpx.Response) -> dict[str, Any]:
    """The Graph API's `error` object, or an empty dict."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def describe_graph_error(response: httpx.Response) -> str:
    error = graph_error(response)
    if not error:
        return " ".join(response.text.split())[:200]
    return (
        f"{error.get('message', 'error')} (code {error.get('code')}, subcode {error.get('error_subcode')})"[
            :300
        ]
    )


def _regain_access_seconds(response: httpx.Response) -> float | None:
    """`estimated_time_to_regain_access` (minutes) of the X-Business-Use-Case-Usage header, in seconds."""
    header = response.headers.get("X-Business-Use-Case-Usage")
    if not header:
        return None
    try:
        usage = json.loads(header)
    except ValueError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    known = [float(m) for m in minutes if isinstance(m, int | float)]
    return max(known) * 60 if known and max(known) > 0 else None


def raise_for_graph_error(response: httpx.Response) -> None:
    """Turn an error answer into the matching `SyncError`."""
    if response.is_success:
        return
    error = graph_error(response)
    code = error.get("code")
    detail = describe_graph_error(response)
    if code in THROTTLING_CODES:
        wait = _regain_access_seconds(response) or THROTTLE_DEFAULT_WAIT_SECONDS
        raise RateLimited(f"Meta throttled the upload: {detail}", wait)
    if code in AUTHENTICATION_CODES:
        raise AuthenticationFailed(
            f"Meta refused the access token: {detail}; renew the token in the Authorization's Secret "
            "(it needs the ads_management permission)"
        )
    if code == 100:
        raise ProviderError(
            f"Meta refused the request: {detail}; check config.audienceId and config.identifiers"
        )
    raise ProviderError(f"Meta answered HTTP {response.status_code}: {detail}")


# --------------------------------------------------------------------------------------- provider


class FacebookProvider(Provider):
    """Meta Custom Audiences: add hashed customer identifiers, and remove them in mirror mode."""

    key: ClassVar[str] = "facebook"
    display_name: ClassVar[str] = "Facebook (Meta) Custom Audiences"
    description: ClassVar[str] = "Export customers to a Meta Custom Audience, hashed as Meta requires."
    documentation_url: ClassVar[str] = (
        "https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/"
    )
    auth_methods: ClassVar[tuple[AuthMethod, ...]] = AUTH_METHODS
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]] = CONFIG_MODELS
    default_schedule: ClassVar[Schedule] = DEFAULT_SCHEDULE
    min_interval = MIN_INTERVAL
    modes: ClassVar[tuple[SyncMode, ...]] = (SyncMode.UPSERT, SyncMode.MIRROR)
    """No insert or update: Meta matches hashed identifiers and never says whether a user was in the
    audience before, so neither "create only" nor "update only" can be honoured."""

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        def check() -> str:
            require_keys(credentials)
            token = access_token(credentials, NO_REFRESH)
            base = (credentials.endpoint or GRAPH_URL).rstrip("/")
            response = probe(
                "GET",
                f"{base}/{DEFAULT_API_VERSION}/me",
                name="Meta",
                headers={"Authorization": f"Bearer {token}"},
            )
            raise_for_graph_error(response)
            body = json_object(response, "Meta")
            return f"Meta accepted the access token (user {body.get('name') or body.get('id') or 'unknown'})"

        return run_check(check)

    def identity_fields(self, config: ProviderConfig) -> tuple[str, ...]:
        assert isinstance(config, FacebookExportConfig)
        return tuple(config.identifiers.values())

    def member_identities(self, config: ProviderConfig, record: Record) -> frozenset[str]:
        """Each identifier as Meta matches it: `KEY:` and the hash of its normalised value.

        Meta matches a user on any of the row's identifiers, so a member shares its identity with
        every row that carries one of the same hashes (the same email in another case, the same phone
        number written another way).
        """
        assert isinstance(config, FacebookExportConfig)
        identities = set()
        for key, field_name in config.identifiers.items():
            raw = text_field(record, field_name)
            hashed = hash_identifier(key, raw, config.default_phone_region) if raw is not None else None
            if hashed:
                identities.add(f"{key}:{hashed}")
        return frozenset(identities)

    def _client(self, context: SyncContext) -> ProviderHttpClient:
        return context.http(
            name="Meta",
            base_url=(context.credentials.endpoint or GRAPH_URL).rstrip("/"),
            headers={"Authorization": f"Bearer {access_token(context.credentials, NO_REFRESH)}"},
            timeout=120.0,
            max_connections=1,
            describe_error=describe_graph_error,
        )

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        await self._upload(context, batches, method="POST")

    async def remove(self, context: SyncContext, batches: RecordBatches) -> None:
        await self._upload(context, batches, method="DELETE")

    async def _upload(self, context: SyncContext, batches: RecordBatches, *, method: str) -> None:
        """Uploads run one after the other in one session, as Meta's session bookkeeping expects."""
        config = context.config
        assert isinstance(config, FacebookExportConfig)
        path = f"/{config.api_version}/{config.audience_id}/users"
        schema = list(config.identifiers)
        session_id = random.randint(1, 2**53)
        sequence = 0
        async with self._client(context) as client:
            async for rows, last in _with_last_flag(self._rows(context, config, batches)):
                sequence += 1
                body = {
                    "payload": {"schema": schema, "data": rows},
                    "session": {"session_id": session_id, "batch_seq": sequence, "last_batch_flag": last},
                }
                response = await client.request(method, path, json=body)
                raise_for_graph_error(response)
                answer = json_object(response, "Meta")
                received = answer.get("num_received")
                invalid = answer.get("num_invalid_entries", 0)
                if not isinstance(received, int) or not isinstance(invalid, int):
                    raise MalformedResponse("Meta's answer lacks num_received or num_invalid_entries")
                accepted = max(0, received - invalid)
                if method == "DELETE":
                    context.counts.removed += accepted
                else:
                    context.counts.added += accepted
                if invalid:
                    samples = answer.get("invalid_entry_samples")
                    reason = f"Meta found {invalid} invalid entries in batch {sequence}"
                    if isinstance(samples, dict) and samples:
                        reason += f" (e.g. {next(iter(samples.values()))})"
                    context.counts.omit(invalid, reason)
                context.log("batch_sent", users=len(rows), accepted=accepted, invalid=invalid, method=method)

    async def _rows(
        self, context: SyncContext, config: FacebookExportConfig, batches: RecordBatches
    ) -> AsyncIterator[list[list[str]]]:
        chunk: list[list[str]] = []
        async for batch in batches:
            for record in batch:
                row = user_row(config.identifiers, record, config.default_phone_region)
                if row is None:  # invalid: never sent (Meta's own refusals are counted as omitted)
                    context.counts.discard(
                        1, f"a record has none of the fields {sorted(config.identifiers.values())}"
                    )
                    continue
                chunk.append(row)
                if len(chunk) == config.batch_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk


async def _with_last_flag(
    items: AsyncIterator[list[list[str]]],
) -> AsyncIterator[tuple[list[list[str]], bool]]:
    """Each item with whether it is the last: one item of lookahead."""
    previous: list[list[str]] | None = None
    async for item in items:
        if previous is not None:
            yield previous, False
        previous = item
    if previous is not None:
        yield previous, True


provider = FacebookProvider()
