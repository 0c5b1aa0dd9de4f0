"""`google`: Customer Match user lists through Google's Data Manager API.

The Google Ads API takes no new Customer Match adopters since April 2026; the Data Manager API is the
path for new integrations (https://developers.google.com/data-manager/api).

- Add: `POST https://datamanager.googleapis.com/v1/audienceMembers:ingest`; remove (mirror mode):
  `POST /v1/audienceMembers:remove`, with `destinations` (the operating account, an optional login
  account, and the user list as `productDestinationId`), `audienceMembers` (at most 10,000 a request,
  at most 10 identifiers each), `encoding: HEX` and, for ingest, request-level `consent`
  (https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/ingest,
  https://developers.google.com/data-manager/api/limits).
- Identifiers are normalised as "Format user data" says and SHA-256 hashed, hex encoded: email
  lower case without whitespace (gmail.com/googlemail.com without dots and `+suffix` in the local
  part), phone E.164, given and family name lower case; an address also carries `regionCode` and
  `postalCode`, sent unhashed
  (https://developers.google.com/data-manager/api/devguides/concepts/formatting).
- Fast fail: a request with one invalid member fails whole with `INVALID_ARGUMENT` and a `BadRequest`
  detail whose `fieldViolations[].field` names `audience_members[i]`
  (https://developers.google.com/data-manager/api/devguides/concepts/understand-errors). Those members
  are counted as omitted with their reasons and the rest of the batch is sent again.
- Asynchronous processing: an accepted request (`{"requestId": …}`) says only that it passed
  validation; whether its members were processed is told later by
  `GET /v1/requestStatus:retrieve?requestId=…`: per destination `requestStatus` `PROCESSING`,
  `SUCCESS`, `PARTIAL_SUCCESS` or `FAILED`, with `errorInfo.errorCounts[]` (`reason`, `recordCount`),
  counts per reason that name no member
  (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve,
  https://developers.google.com/data-manager/api/devguides/diagnostics, which asks for polling with
  exponential backoff until every destination has a final status). After its requests the run polls
  them (`requestStatusWaitSeconds`, see `confirm_requests`): a `FAILED` request's members are
  rejected under their keys (kept and retried first by the rejected-record bookkeeping); the members
  in error of a `PARTIAL_SUCCESS` are omitted with Google's reasons and counts (Google does not say
  which they are, so no key is kept); requests still processing when the wait ends are reported
  `unconfirmed`, neither added nor refused.
- Quotas: 300 requests a minute per Cloud project, paced by the worker itself; a `RESOURCE_EXHAUSTED`
  (429) answer's `RetryInfo.retryDelay` is honoured, a per-day quota (`quota_limit` ending in
  `PerDayPerProject`) ends the run rate limited until the next Pacific midnight.
- Auth: `oauth2` (a refresh token of an OAuth client with the `datamanager` scope) or
  `serviceAccount` (a service-account key; the account needs access to the Google Ads account).
- Base address replaced by the Authorization's `endpoint`.
- Modes: upsert and mirror only. The API ingests and removes members and keeps nothing a client can
  read back ("There is no persistent data associated with this resource"; its methods are `ingest`,
  `remove` and `removeAll`: https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers),
  and `requestStatus:retrieve` reports counts per request, never which members were already on the
  list. So insert (leave existing members untouched) and update (never add a member) cannot be
  honoured: an ingest of a member already on the list cannot be told from a new one, nor avoided.
- Credential check: obtain a token, then `POST /v1/audienceMembers:ingest` with `validateOnly: true`
  and no members: 401/403 mean the credentials are refused, a 400 means they were accepted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field
from pydantic_core import to_json

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers._checks import require_keys, run_check
from destinations.providers._http import HttpClientFactory, ProviderHttpClient
from destinations.providers._oauth import RotatedCredentials, TokenSource, token_source
from destinations.providers._pacing import RequestPacer
from destinations.providers._records import rebatch, text_field
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Provider,
    ProviderConfig,
    Record,
    RecordBatches,
    RecordCounter,
    SyncContext,
)
from destinations.providers.errors import (
    AuthenticationFailed,
    EndpointUnreachable,
    ProviderError,
    RateLimited,
)
from destinations.providers.identities import normalize_phone

API_URL = "https://datamanager.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/datamanager"
MAX_MEMBERS_PER_REQUEST = 10_000
REQUESTS_PER_MINUTE = 300
STATUS_PATH = "/v1/requestStatus:retrieve"
DEFAULT_STATUS_WAIT_SECONDS = 900.0
"""How long a run waits, at most, for Google to finish processing its requests (15 minutes)."""
MAX_POLL_INTERVAL_SECONDS = 300.0
"""The exponential backoff between two rounds of status polls stops growing at 5 minutes."""
FINAL_STATUSES = frozenset({"SUCCESS", "PARTIAL_SUCCESS", "FAILED"})
JSON_HEADERS = {"Content-Type": "application/json"}
REAUTHORIZE = (
    "run Google's OAuth consent again for the client in clientId (scope "
    "https://www.googleapis.com/auth/datamanager) and put the new refresh token in the Secret's "
    "refreshToken key; for a service account, create a new key and put it in serviceAccountJson"
)
PACIFIC = ZoneInfo("America/Los_Angeles")
_MEMBER_INDEX = re.compile(r"audience_?members\[(\d+)\]", re.IGNORECASE)

AccountType = Literal["GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER", "DISPLAY_VIDEO_PARTNER", "DATA_PARTNER"]
ConsentStatus = Literal["CONSENT_GRANTED", "CONSENT_DENIED"]
IdentifierKey = Literal["email", "phone", "givenName", "familyName", "regionCode", "postalCode"]


class GoogleConsent(ProviderConfig):
    """Consent sent with every member (Data Manager `Consent`; EEA users need both)."""

    ad_user_data: ConsentStatus | None = None
    """Consent to use the user's data for advertising."""
    ad_personalization: ConsentStatus | None = None
    """Consent to personalised advertising."""


class GoogleExportConfig(ProviderConfig):
    """Add the source's records to a Customer Match user list (and remove departed ones in mirror mode)."""

    operating_account_id: str = Field(pattern=r"^[0-9]+$")
    """The account that owns the user list, digits only (a Google Ads customer ID without dashes)."""
    operating_account_type: AccountType = "GOOGLE_ADS"
    """The product of the operating account."""
    login_account_id: str | None = Field(default=None, pattern=r"^[0-9]+$")
    """The manager account the credentials log in through, when not the operating account itself."""
    login_account_type: AccountType = "GOOGLE_ADS"
    """The product of the login account."""
    user_list_id: str = Field(pattern=r"^[0-9]+$")
    """The Customer Match user list (the destination's `productDestinationId`)."""
    identifiers: dict[IdentifierKey, str] = Field(default={"email": "email"}, min_length=1)
    """Identifier → record field, e.g. `email: email`, `phone: phone`; `givenName`, `familyName`,
    `regionCode` and `postalCode` together make an address identifier."""
    default_phone_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2 region for phone numbers written without `+country code`, e.g. `GB`."""
    consent: GoogleConsent | None = None
    """Consent sent with every ingested member: `adUserData` and `adPersonalization`, each
    `CONSENT_GRANTED` or `CONSENT_DENIED` (EEA users need both granted)."""
    batch_size: int = Field(default=MAX_MEMBERS_PER_REQUEST, ge=1, le=MAX_MEMBERS_PER_REQUEST)
    """Members per request (the Data Manager API's maximum is 10,000)."""
    requests_per_minute: int = Field(default=REQUESTS_PER_MINUTE, ge=1, le=REQUESTS_PER_MINUTE)
    """The worker's own pace, shared by its ingest, remove and status requests; the Cloud project's
    quota is 300 a minute for all its callers."""
    request_status_wait_seconds: float = Field(default=DEFAULT_STATUS_WAIT_SECONDS, ge=0, le=6 * 3600)
    """How long the run waits, at most, for Google to report how it processed the run's requests
    (`requestStatus:retrieve`); requests still processing then are reported `unconfirmed`. `0`: do not
    ask (every member sent is then unconfirmed)."""
    request_status_first_poll_seconds: float = Field(default=30.0, gt=0, le=MAX_POLL_INTERVAL_SECONDS)
    """The pause before the second round of status polls (the first follows the last request at once);
    it doubles each round, up to 5 minutes."""


CONFIG_MODELS: dict[JobType, type[ProviderConfig]] = {JobType.EXPORT: GoogleExportConfig}
AUTH_METHODS = (AuthMethod.OAUTH2, AuthMethod.SERVICE_ACCOUNT)
DEFAULT_SCHEDULE = Schedule(every="24h")  # type: ignore[arg-type]
MIN_INTERVAL = dt.timedelta(hours=6)


# ------------------------------------------------------------------------------------ normalisation


def normalize_google_email(value: str) -> str | None:
    """Lower case, no whitespace; gmail.com/googlemail.com local parts without dots and `+suffix`.

    None when it cannot be an address (no `@`, or nothing before or after it).
    """
    email = "".join(value.split()).lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return None
    if domain == "gmail.com" or domain == "googlemail.com":
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
        return f"{local}@{domain}"
    return email


def normalize_name(value: str) -> str | None:
    text = " ".join(value.split()).lower()
    return text or None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


IdentifierBuilder = Callable[[Record], list[dict[str, Any]]]


def identifier_builder(config: GoogleExportConfig) -> IdentifierBuilder:
    """A function from a record to its `userIdentifiers`, normalised and hashed (empty: none usable).

    Built once per run: the per-record work is the normalisation and hashing only.
    """
    fields = config.identifiers
    email_field, phone_field = fields.get("email"), fields.get("phone")
    region_default = config.default_phone_region
    address_fields = tuple(fields.get(key) for key in ("givenName", "familyName", "regionCode", "postalCode"))
    with_address = all(address_fields)

    def build(record: Record) -> list[dict[str, Any]]:
        identifiers: list[dict[str, Any]] = []
        if email_field is not None and (raw := record.get(email_field)) is not None:
            email = normalize_google_email(str(raw))
            if email:
                identifiers.append({"emailAddress": hashlib.sha256(email.encode()).hexdigest()})
        if phone_field is not None and (raw := record.get(phone_field)) is not None and str(raw).strip():
            phone = normalize_phone(str(raw), region_default)
            if phone:
                identifiers.append({"phoneNumber": sha256_hex(phone)})
        if with_address:
            given_raw, family_raw, region_raw, postal_raw = (
                text_field(record, f or "") for f in address_fields
            )
            given = normalize_name(given_raw or "")
            family = normalize_name(family_raw or "")
            region = (region_raw or "").upper()
            if given and family and postal_raw and re.fullmatch(r"[A-Z]{2}", region):
                identifiers.append(
                    {
                        "address": {
                            "givenName": sha256_hex(given),
                            "familyName": sha256_hex(family),
                            "regionCode": region,
                            "postalCode": " ".join(postal_raw.split()),
                        }
                    }
                )
        return identifiers

    return build


def user_identifiers(config: GoogleExportConfig, record: Record) -> list[dict[str, Any]]:
    """The member's `userIdentifiers`, normalised and hashed; empty when it has none usable."""
    return identifier_builder(config)(record)


# ----------------------------------------------------------------------------------------- errors


def google_error(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of a google.rpc.Status answer, or an empty dict."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    details = error.get("details")
    return [
        detail
        for detail in (details if isinstance(details, list) else [])
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(kind)
    ]


def describe_google_error(response: httpx.Response) -> str:
    error = google_error(response)
    if not error:
        return " ".join(response.text.split())[:200]
    reasons = [str(d.get("reason")) for d in _details(error, "google.rpc.ErrorInfo") if d.get("reason")]
    text = f"{error.get('status', 'error')}: {error.get('message', '')}"
    if reasons:
        text += f" ({', '.join(reasons)})"
    return " ".join(text.split())[:300]


def retry_delay(response: httpx.Response) -> float | None:
    """`RetryInfo.retryDelay` (a Duration such as `"30s"` or `"1.5s"`) in seconds."""
    for detail in _details(google_error(response), "google.rpc.RetryInfo"):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def seconds_until_pacific_midnight(now: dt.datetime) -> float:
    """Google's daily quotas reset at midnight Pacific time."""
    local = now.astimezone(PACIFIC)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=PACIFIC)
    return max(60.0, (midnight - local).total_seconds())


def inspect(response: httpx.Response) -> None:
    """A daily quota ends the run rate limited until it resets; a minute's quota is retried."""
    if response.status_code != 429:
        return
    for detail in _details(google_error(response), "google.rpc.ErrorInfo"):
        metadata = detail.get("metadata")
        limit = metadata.get("quota_limit") if isinstance(metadata, dict) else None
        if isinstance(limit, str) and "PerDay" in limit:
            raise RateLimited(
                f"Google's daily Data Manager API quota is spent ({limit}); it resets at midnight "
                "Pacific time",
                seconds_until_pacific_midnight(dt.datetime.now(dt.UTC)),
            )


def member_violations(response: httpx.Response) -> dict[int, str]:
    """Audience member index → reason, from a fast-fail `BadRequest`; empty when none names a member."""
    violations: dict[int, str] = {}
    for detail in _details(google_error(response), "google.rpc.BadRequest"):
        for violation in detail.get("fieldViolations") or []:
            if not isinstance(violation, dict):
                continue
            match = _MEMBER_INDEX.search(str(violation.get("field", "")))
            if match is None:
                return {}  # a request-level problem: no member to blame
            reason = violation.get("reason") or violation.get("description") or "invalid"
            violations.setdefault(int(match.group(1)), str(reason))
    return violations


def raise_for_google_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    detail = describe_google_error(response)
    if response.status_code == 404:
        raise ProviderError(
            f"Google found no such destination ({detail}); check config.operatingAccountId and "
            "config.userListId"
        )
    raise ProviderError(f"Google's Data Manager API answered HTTP {response.status_code}: {detail}")


# -------------------------------------------------------------------------------- request statuses


@dataclass
class SentRequest:
    """An accepted ingest or remove request, until Google reports how it processed it."""

    request_id: str
    members: int
    removing: bool
    keys: list[str | None]
    """The record keys of its members (ingests only: refusals while removing are omitted, not kept)."""


@dataclass(frozen=True)
class ProcessingOutcome:
    """What `requestStatus:retrieve` said about one request, over all its destinations.

    `status` is `PROCESSING` while any destination has no final status (`SUCCESS`, `PARTIAL_SUCCESS`,
    `FAILED`; `REQUEST_STATUS_UNKNOWN` is not final), `SUCCESS` or `FAILED` when every destination
    says so, `PARTIAL_SUCCESS` otherwise. `errors`: `ProcessingErrorReason` → records in error, from
    `errorInfo.errorCounts[]` (`recordCount` is an int64, so JSON text); Google documents it as "may
    not be populated in all cases".
    """

    status: str
    errors: Mapping[str, int]


def processing_outcome(body: Any) -> ProcessingOutcome:
    """Read a `RetrieveRequestStatusResponse`
    (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve)."""
    entries = body.get("requestStatusPerDestination") if isinstance(body, dict) else None
    statuses: list[str] = []
    errors: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        statuses.append(str(entry.get("requestStatus") or "REQUEST_STATUS_UNKNOWN"))
        error_info = entry.get("errorInfo")
        counts = error_info.get("errorCounts") if isinstance(error_info, dict) else None
        for count in counts if isinstance(counts, list) else []:
            if not isinstance(count, dict):
                continue
            reason = str(count.get("reason") or "PROCESSING_ERROR_REASON_UNSPECIFIED")
            try:
                records = int(count.get("recordCount") or 0)
            except (TypeError, ValueError):
                records = 0
            errors[reason] = errors.get(reason, 0) + max(0, records)
    if not statuses or any(status not in FINAL_STATUSES for status in statuses):
        return ProcessingOutcome("PROCESSING", errors)
    if all(status == "SUCCESS" for status in statuses):
        return ProcessingOutcome("SUCCESS", errors)
    if all(status == "FAILED" for status in statuses):
        return ProcessingOutcome("FAILED", errors)
    return ProcessingOutcome("PARTIAL_SUCCESS", errors)


def _reasons(errors: Mapping[str, int]) -> str:
    """`DENIED_CONSENT (2), INVALID_FORMAT (1)`: Google's `ProcessingErrorReason` names without their
    common `PROCESSING_ERROR_REASON_` prefix, with their record counts."""
    return (
        ", ".join(
            f"{reason.removeprefix('PROCESSING_ERROR_REASON_')} ({count})"
            for reason, count in sorted(errors.items())
        )
        or "no reason given"
    )


def _uncount(counts: RecordCounter, request: SentRequest, members: int) -> None:
    """Take members counted as added (or removed) when their request was accepted back out."""
    if request.removing:
        counts.removed -= members
    else:
        counts.added -= members


def settle_request(context: SyncContext, request: SentRequest, outcome: ProcessingOutcome) -> None:
    """Count what Google's final status says about one request's members.

    `FAILED` ("processing failed for all records"): each member is refused, under its record's key
    for ingests (the rejected-record bookkeeping keeps and retries them), omitted for removals.
    `PARTIAL_SUCCESS`: the error counts' records are omitted with Google's reasons; Google names no
    member, so no key is kept. Without error counts the run cannot tell how many failed: the request's
    members are unconfirmed. Reasons carry Google's enum names and the request id, never record values.
    """
    counts = context.counts
    if outcome.status == "SUCCESS":
        return
    reasons = _reasons(outcome.errors)
    if outcome.status == "FAILED":
        _uncount(counts, request, request.members)
        reason = f"Google could not process request {request.request_id} (FAILED): {reasons}"
        if request.removing:
            counts.omit(request.members, reason)
        else:
            for key in request.keys:
                counts.reject_key(key, reason)
        return
    failed = min(sum(outcome.errors.values()), request.members)
    if failed == 0:
        _uncount(counts, request, request.members)
        counts.leave_unconfirmed(
            request.members,
            f"Google processed request {request.request_id} only in part (PARTIAL_SUCCESS) and gave no "
            "error counts",
            request.keys,
        )
        return
    _uncount(counts, request, failed)
    counts.omit(
        failed,
        f"Google could not process {failed} of {request.members} members of request "
        f"{request.request_id} (PARTIAL_SUCCESS, naming none: none kept for retry): {reasons}",
    )


async def confirm_requests(
    client: ProviderHttpClient, pacer: RequestPacer, sent: list[SentRequest], context: SyncContext
) -> None:
    """Poll `requestStatus:retrieve` for the run's accepted requests until each has a final status or
    the wait (`config.requestStatusWaitSeconds`) is spent, and count what the statuses say.

    Google's diagnostics guide (https://developers.google.com/data-manager/api/devguides/diagnostics)
    asks for polling with exponential backoff until every destination is final. A first round follows
    the run's last request at once (a long run's early requests are often done by then); then rounds
    after `requestStatusFirstPollSeconds`, doubling up to 5 minutes, the last one when the wait ends.
    Each poll goes through the run's `RequestPacer`: the 300 requests a minute are shared with ingest
    (https://developers.google.com/data-manager/api/limits). The wait counts the pauses between
    rounds. Requests still processing then, or when a poll fails (an error answer, a spent quota), are
    `unconfirmed` with what the run knows; a poll never fails the run, except credentials refused.
    """
    config = context.config
    assert isinstance(config, GoogleExportConfig)
    outstanding = list(sent)
    budget = config.request_status_wait_seconds
    pause = config.request_status_first_poll_seconds
    waited = 0.0
    problem = (
        None
        if budget > 0
        else "the run did not ask Google how it processed them (config.requestStatusWaitSeconds is 0)"
    )
    if problem is None:
        context.log("checking_requests", requests=len(outstanding), wait_seconds=budget)
    while outstanding and problem is None:
        still: list[SentRequest] = []
        for index, request in enumerate(outstanding):
            await pacer.wait()
            try:
                response = await client.request("GET", STATUS_PATH, params={"requestId": request.request_id})
            except (ProviderError, EndpointUnreachable, RateLimited) as error:
                problem = f"asking Google for the status of request {request.request_id} failed: {error}"
            else:
                if not response.is_success:
                    problem = (
                        f"Google answered HTTP {response.status_code} for the status of request "
                        f"{request.request_id}: {describe_google_error(response)}"
                    )
                else:
                    try:
                        answer = response.json()
                    except ValueError:
                        problem = f"Google's status of request {request.request_id} is not JSON"
            if problem is not None:
                still.extend(outstanding[index:])
                break
            outcome = processing_outcome(answer)
            if outcome.status == "PROCESSING":
                still.append(request)
                continue
            settle_request(context, request, outcome)
            context.log(
                "request_processed",
                request_id=request.request_id,
                status=outcome.status,
                members=request.members,
                errors=dict(outcome.errors),
            )
        outstanding = still
        if not outstanding or problem is not None or waited >= budget:
            break
        delay = min(pause, budget - waited)
        await context.http.sleep(delay)
        waited += delay
        pause = min(pause * 2, MAX_POLL_INTERVAL_SECONDS)
    if not outstanding:
        return
    members = sum(request.members for request in outstanding)
    ids = ", ".join(request.request_id for request in outstanding[:3]) + (
        ", …" if len(outstanding) > 3 else ""
    )
    reason = f"{len(outstanding)} of {len(sent)} requests ({members} members; {ids}): " + (
        problem
        or f"Google was still processing them when the run stopped waiting after {waited:.0f}s "
        "(config.requestStatusWaitSeconds); they may yet be added or refused"
    )
    for request in outstanding:
        _uncount(context.counts, request, request.members)
    context.counts.leave_unconfirmed(
        members, reason, (key for request in outstanding for key in request.keys)
    )
    context.log("requests_unconfirmed", requests=len(outstanding), members=members, reason=reason)


# --------------------------------------------------------------------------------------- provider


class GoogleProvider(Provider):
    """Google Customer Match user lists via the Data Manager API: ingest, and remove in mirror mode."""

    key: ClassVar[str] = "google"
    display_name: ClassVar[str] = "Google Customer Match (Data Manager API)"
    description: ClassVar[str] = (
        "Export customers to a Google Customer Match user list, hashed as Google requires."
    )
    documentation_url: ClassVar[str] = (
        "https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers"
    )
    auth_methods: ClassVar[tuple[AuthMethod, ...]] = AUTH_METHODS
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]] = CONFIG_MODELS
    default_schedule: ClassVar[Schedule] = DEFAULT_SCHEDULE
    min_interval = MIN_INTERVAL
    supports_mirror: ClassVar[bool] = True
    modes_note: ClassVar[str | None] = (
        "No insert or update: the Data Manager API ingests and removes members but cannot be asked who "
        "is on a list (<https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers>: "
        "no persistent data, methods ingest, remove, removeAll), so a run cannot leave existing members "
        "untouched or add nobody new."
    )

    def tokens(
        self, credentials: Credentials, on_rotation: Callable[[str, str], None] | None = None
    ) -> TokenSource:
        return token_source(
            credentials,
            default_token_url=TOKEN_URL,
            scopes=(SCOPE,),
            reauthorize=REAUTHORIZE,
            on_rotation=on_rotation,
        )

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        rotated = RotatedCredentials()

        async def check() -> str:
            require_keys(credentials)
            tokens = self.tokens(credentials, rotated)
            async with self._client(HttpClientFactory(), credentials, tokens) as client:
                response = await client.request(
                    "POST",
                    "/v1/audienceMembers:ingest",
                    json={"destinations": [], "audienceMembers": [], "validateOnly": True},
                )
            if response.status_code >= 500:
                raise ProviderError(
                    f"Google's Data Manager API answered HTTP {response.status_code}: "
                    f"{describe_google_error(response)}"
                )
            return "Google accepted the credentials (a validate-only call to the Data Manager API)"

        return dataclasses.replace(run_check(lambda: asyncio.run(check())), rotated=dict(rotated.values))

    def identity_fields(self, config: ProviderConfig) -> tuple[str, ...]:
        assert isinstance(config, GoogleExportConfig)
        return tuple(dict.fromkeys(config.identifiers.values()))

    def member_identities(self, config: ProviderConfig, record: Record) -> frozenset[str]:
        """Google matches on the hashed identifiers, so two spellings of one email are one member."""
        assert isinstance(config, GoogleExportConfig)
        identities = set()
        for identifier in user_identifiers(config, record):
            for kind, value in identifier.items():
                identities.add(
                    f"{kind}:{value}" if isinstance(value, str) else f"{kind}:{sorted(value.items())}"
                )
        return frozenset(identities)

    def _client(self, http: Any, credentials: Credentials, tokens: TokenSource) -> ProviderHttpClient:
        return http(  # type: ignore[no-any-return]
            name="Google",
            base_url=(credentials.endpoint or API_URL).rstrip("/"),
            timeout=120.0,
            max_connections=4,
            describe_error=describe_google_error,
            token=tokens,
            inspect=inspect,
            retry_delay=retry_delay,
        )

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        await self._send(context, batches, removing=False)

    async def remove(self, context: SyncContext, batches: RecordBatches) -> None:
        await self._send(context, batches, removing=True)

    def _body(
        self, config: GoogleExportConfig, members: list[dict[str, Any]], removing: bool
    ) -> dict[str, Any]:
        destination: dict[str, Any] = {
            "operatingAccount": {
                "accountType": config.operating_account_type,
                "accountId": config.operating_account_id,
            },
            "productDestinationId": config.user_list_id,
        }
        if config.login_account_id:
            destination["loginAccount"] = {
                "accountType": config.login_account_type,
                "accountId": config.login_account_id,
            }
        body: dict[str, Any] = {"destinations": [destination], "audienceMembers": members, "encoding": "HEX"}
        consent = config.consent.model_dump(by_alias=True, exclude_none=True) if config.consent else None
        if consent and not removing:
            body["consent"] = consent
        return body

    async def _send(self, context: SyncContext, batches: RecordBatches, *, removing: bool) -> None:
        config = context.config
        assert isinstance(config, GoogleExportConfig)
        counts = context.counts
        path = "/v1/audienceMembers:remove" if removing else "/v1/audienceMembers:ingest"
        pacer = RequestPacer(config.requests_per_minute, 60.0, sleep=context.http.sleep)

        no_identifier = f"a record has no usable identifier in {sorted(set(config.identifiers.values()))}"

        build = identifier_builder(config)

        async def members() -> AsyncIterator[list[tuple[dict[str, Any], Record]]]:
            """Each member with its record; records without a usable identifier are invalid."""
            async for batch in batches:
                converted = []
                for record in batch:
                    identifiers = build(record)
                    if not identifiers:
                        counts.discard(1, no_identifier)
                    else:
                        converted.append(({"userData": {"userIdentifiers": identifiers}}, record))
                yield converted

        sent: list[SentRequest] = []
        record_key = counts.record_key
        async with self._client(
            context.http, context.credentials, self.tokens(context.credentials, context.rotated)
        ) as client:
            async for chunk in rebatch(members(), config.batch_size):
                pending = chunk
                # Fast fail: drop the members Google names and send the rest again, a bounded number of times.
                for _ in range(3):
                    await pacer.wait()
                    body = self._body(config, [member for member, _ in pending], removing)
                    # pydantic-core's encoder: about three times faster than httpx's json= for 10,000 members.
                    response = await client.request("POST", path, content=to_json(body), headers=JSON_HEADERS)
                    if response.status_code == 400 and (violations := member_violations(response)):
                        for index, reason in sorted(violations.items()):
                            refusal = f"Google refused audience member {index + 1} of a batch: {reason}"
                            if removing:
                                counts.omit(1, refusal)
                            else:  # kept under the record's key and retried first next run
                                counts.reject(pending[index][1], refusal)
                        pending = [m for i, m in enumerate(pending) if i not in violations]
                        context.log("members_refused", refused=len(violations), resending=len(pending))
                        if pending:
                            continue
                        break
                    if response.status_code in (401, 403):  # pragma: no cover - mapped by the client
                        raise AuthenticationFailed(describe_google_error(response))
                    raise_for_google_error(response)
                    if removing:
                        counts.removed += len(pending)
                    else:
                        counts.added += len(pending)
                    answer = response.json() if response.content else None
                    request_id = answer.get("requestId") if isinstance(answer, dict) else None
                    context.log("batch_sent", members=len(pending), removing=removing, request_id=request_id)
                    keys = [] if removing else [record_key(record) for _, record in pending]
                    if isinstance(request_id, str) and request_id:
                        sent.append(SentRequest(request_id, len(pending), removing, keys))
                    else:  # nothing to ask about: accepted, never confirmed
                        _uncount(counts, SentRequest("", len(pending), removing, keys), len(pending))
                        counts.leave_unconfirmed(
                            len(pending), "Google accepted a request without a requestId to ask about", keys
                        )
                    break
                else:
                    raise ProviderError(
                        "Google kept refusing members of one batch after three rounds of dropping them"
                    )
            if sent:
                await confirm_requests(client, pacer, sent, context)


provider = GoogleProvider()
