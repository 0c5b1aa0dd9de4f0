"""`salesforce`: export by upsert, import by SOQL and enrichment by lookup (REST and Bulk API 2.0).

- Auth: `oauth2`. The worker refreshes the access token with the Secret's `refreshToken`, `clientId`
  and `clientSecret` at `tokenUrl` (default `https://login.salesforce.com/services/oauth2/token`; use
  `https://test.salesforce.com/...` for sandboxes or the org's My Domain). The API host is the token
  response's `instance_url`; the Authorization's `endpoint` replaces it. Salesforce answers refreshes
  without `expires_in`, so a token is used until a 401 (`INVALID_SESSION_ID`), then refreshed once.
  With refresh token rotation on, each refresh returns a new refresh token and invalidates the old
  one; see `destinations.providers._oauth` for how it is kept
  (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm).
- Export (upsert by an external-ID field): runs up to `bulkThreshold` records go through sObject
  Collections, `PATCH /services/data/vXX.X/composite/sobjects/{object}/{externalIdField}` with at most
  200 records and `allOrNone: false`; each result's `success`, `created` and `errors` count as added,
  updated or omitted (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm).
  Larger runs go through Bulk API 2.0 ingest jobs of at most `bulkJobRecords` records each: create
  (`POST /jobs/ingest`, operation `upsert`), upload CSV (`PUT /jobs/ingest/{id}/batches`), close
  (`PATCH` state `UploadComplete`), poll until `JobComplete`, then read `successfulResults`
  (`sf__Created`), `failedResults` (`sf__Error`) and `unprocessedrecords`
  (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/bulk_api_2_0.htm).
- Mirror mode never deletes: records that left the source are upserted with `config.removal.field`
  set to `config.removal.value` (e.g. `Synced_To_Ads__c: false`), so history and related records stay.
- Insert and update modes go through sObject Collections whatever the run's size (`bulkThreshold`
  applies to upsert and mirror), 200 records a request at most, each request holding an external ID
  once (a later record with the same ID goes into the next request, so insert creates the first and
  skips the rest, and update applies them in source order). Before each request one SOQL query, `GET
  /query?q=SELECT Id, {externalIdField} FROM {sobject} WHERE {externalIdField} IN (…)` (split so that
  each URL stays under MAX_QUERY_URL_BYTES; `nextRecordsUrl` followed), finds which external IDs exist
  and their record Ids, compared as `externalIdCaseSensitive` says. Insert creates the others with
  `POST /composite/sobjects` and counts existing ones as skipped, untouched
  (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm);
  update sends the matched ones by record Id with `PATCH /composite/sobjects` and counts unknown ones
  as skipped (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm).
  An external ID shared by several records is not updated (a rejection `DUPLICATE_EXTERNAL_ID`, as an
  upsert by that ID would be refused); per-record errors (`DUPLICATE_VALUE`, `REQUIRED_FIELD_MISSING`,
  `INVALID_EMAIL_ADDRESS`, `ENTITY_IS_DELETED` when a record went between the query and the update…)
  are rejections under the source record's key, as in upsert. A record created by someone else between
  the query and the create is refused `DUPLICATE_VALUE` when the field is Unique; without Unique,
  Salesforce would create a second record, so give insert jobs a Unique external-ID field. Cost: two
  API requests per 200 records (the query and the write), more when long IDs split the query.
- Dry runs of insert and update jobs (`foresee`) run the same lookups, and nothing else: insert would
  add the records whose external ID no record has (a repeat later in the source is skipped, as the run's
  lookup would find the record it created) and skip the others; update would update those exactly one
  record has, skip unknown ones and refuse (`rejected`) an ID several records share. What Salesforce
  would refuse record by record (a required field, a bad email) only the write can tell.
- Import: a SOQL query run as a Bulk API 2.0 query job (`POST /jobs/query`, poll, then
  `GET /jobs/query/{id}/results` paged by `Sforce-Locator` until it is `null`)
  (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm).
- Enrichment: `GET /services/data/vXX.X/query?q=SELECT … WHERE {matchField} IN (…)` for a batch of
  keys, `nextRecordsUrl` followed (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm).
- Limits: `REQUEST_LIMIT_EXCEEDED` (HTTP 403) ends the run rate limited, and so does an
  `Sforce-Limit-Info: api-usage=used/limit` at or above `maxApiUsagePercent` of the org's daily
  allocation, before the next call (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm,
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
- Credential check: a token, then `GET /services/data/vXX.X/limits` (reports the daily allocation left).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, model_validator

from destinations.api.models import AuthMethod, JobType, Schedule, SyncMode
from destinations.providers._checks import require_keys, run_check
from destinations.providers._http import HttpClientFactory, ProviderHttpClient
from destinations.providers._keys import KeyStore
from destinations.providers._oauth import RotatedCredentials, token_source
from destinations.providers._records import dig, json_object, rebatch
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Foreseen,
    Outcome,
    Provider,
    ProviderConfig,
    Record,
    RecordBatches,
    SyncContext,
)
from destinations.providers.errors import (
    ConfigurationError,
    MalformedResponse,
    ProviderError,
    RateLimited,
)

TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
DEFAULT_API_VERSION = "v62.0"
MAX_COLLECTION_RECORDS = 200
#: Lookup URLs (`GET /query?q=…`) stay under this many bytes: half of the 16,384 bytes Salesforce allows
#: a request's URI and headers together (a longer URI is answered 414), leaving room for the headers
#: (https://help.salesforce.com/s/articleView?id=000386264&type=1). SOQL itself allows 100,000
#: characters (https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_soslsoql.htm),
#: so the URL is the tighter bound.
MAX_QUERY_URL_BYTES = 8_000
#: REQUEST_LIMIT_EXCEEDED: the 24-hour allocation is rolling; come back in an hour.
LIMIT_WAIT_SECONDS = 3600.0
REAUTHORIZE = (
    "authorize the connected app again (OAuth web server flow with the refresh_token scope) and put the "
    "new refresh token in the Secret's refreshToken key"
)
FINISHED_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
_FIELD_PATH = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$"
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")

ApiVersion = Field(default=DEFAULT_API_VERSION, pattern=r"^v[0-9]+\.[0-9]$")


class SalesforceRemoval(ProviderConfig):
    """What mirror mode does to a record that left the source: set one field (never a delete)."""

    field: str = Field(pattern=_NAME)
    """The Salesforce field to set, e.g. `Synced_To_Ads__c`."""
    value: str | bool | int | None = None
    """The value to set it to; null clears it."""


class SalesforceExportConfig(ProviderConfig):
    """Upsert the source's records into an sObject by an external-ID field."""

    sobject: str = Field(pattern=_NAME)
    """The object, e.g. `Contact`, `Lead` or `Customer__c`."""
    external_id_field: str = Field(pattern=_NAME)
    """The external-ID field records are matched on, e.g. `Email` or `Warehouse_Id__c`."""
    fields: dict[str, str] = Field(min_length=1)
    """Record field → Salesforce field; one must map to `externalIdField`."""
    external_id_case_sensitive: bool = False
    """Whether the external ID is a case-sensitive unique field (mirror bookkeeping compares as it does)."""
    bulk_threshold: int = Field(default=2_000, ge=0)
    """Runs with more records than this use Bulk API 2.0 instead of sObject Collections."""
    bulk_job_records: int = Field(default=100_000, ge=1, le=10_000_000)
    """Records per Bulk API 2.0 ingest job (one CSV upload each; Salesforce allows 100 MB of CSV)."""
    removal: SalesforceRemoval | None = None
    """Mirror mode: `{field, value}`, the field set on a record that left the source (e.g.
    `{field: Synced_To_Ads__c, value: false}`; a null value clears it); mirror mode needs it."""
    max_api_usage_percent: int = Field(default=90, ge=1, le=100)
    """Stop (rate limited) once the org has used this share of its daily API allocation."""
    poll_seconds: float = Field(default=5.0, gt=0, le=300)
    """How often a Bulk API job is polled."""
    api_version: str = ApiVersion
    """REST API version."""

    @model_validator(mode="after")
    def _external_id_mapped(self) -> SalesforceExportConfig:
        if self.external_id_field not in self.fields.values():
            raise ValueError(
                f"fields must map a record field to the externalIdField {self.external_id_field!r}, "
                f"e.g. {{email: {self.external_id_field}}}"
            )
        return self


class SalesforceImportConfig(ProviderConfig):
    """Run a SOQL query as a Bulk API 2.0 query job and write its rows to the sink."""

    query: str = Field(min_length=8, pattern=r"(?is)^\s*select\s.+\sfrom\s")
    """The SOQL query, e.g. `SELECT Id, Email, FirstName FROM Contact WHERE IsDeleted = false`."""
    page_size: int = Field(default=50_000, ge=1, le=500_000)
    """Rows per results page (`maxRecords`)."""
    poll_seconds: float = Field(default=5.0, gt=0, le=300)
    """How often the query job is polled."""
    max_api_usage_percent: int = Field(default=90, ge=1, le=100)
    """Stop (rate limited) once the org has used this share of its daily API allocation."""
    api_version: str = ApiVersion
    """REST API version."""


class SalesforceEnrichmentConfig(ProviderConfig):
    """Look records up by a key with SOQL and merge chosen Salesforce fields into them."""

    sobject: str = Field(pattern=_NAME)
    """The object to look in, e.g. `Contact`."""
    match_field: str = Field(pattern=_NAME)
    """The Salesforce field matched against the record's key, e.g. `Email`."""
    key_field: str = Field(min_length=1)
    """The record field holding the key, e.g. `email`."""
    fields: dict[str, str] = Field(min_length=1)
    """Salesforce field (relationship paths allowed, e.g. `Account.Name`) → record field to set."""
    case_insensitive: bool = True
    """Match keys ignoring case (SOQL text comparisons do)."""
    batch_size: int = Field(default=100, ge=1, le=200)
    """Keys per SOQL query (the query must stay under Salesforce's URI length)."""
    max_api_usage_percent: int = Field(default=90, ge=1, le=100)
    """Stop (rate limited) once the org has used this share of its daily API allocation."""
    api_version: str = ApiVersion
    """REST API version."""

    @model_validator(mode="after")
    def _field_paths(self) -> SalesforceEnrichmentConfig:
        bad = [name for name in self.fields if not re.match(_FIELD_PATH, name)]
        if bad:
            raise ValueError(
                f"fields keys must be Salesforce field names or paths like Account.Name, not {bad}"
            )
        return self


CONFIG_MODELS: dict[JobType, type[ProviderConfig]] = {
    JobType.EXPORT: SalesforceExportConfig,
    JobType.IMPORT: SalesforceImportConfig,
    JobType.ENRICHMENT: SalesforceEnrichmentConfig,
}
AUTH_METHODS = (AuthMethod.OAUTH2,)
DEFAULT_SCHEDULE = Schedule(every="6h")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- errors


def salesforce_errors(response: httpx.Response) -> list[dict[str, Any]]:
    """Salesforce's error list (`[{"errorCode", "message", "fields"}]`), or an empty list."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return (
        [item for item in body if isinstance(item, dict) and "errorCode" in item]
        if isinstance(body, list)
        else []
    )


def describe_salesforce_error(response: httpx.Response) -> str:
    errors = salesforce_errors(response)
    if not errors:
        return " ".join(response.text.split())[:200]
    return "; ".join(f"{e.get('errorCode')}: {e.get('message', '')}" for e in errors[:3])[:300]


class ApiUsage:
    """The org's daily API allocation as `Sforce-Limit-Info` reports it; raises before it runs out."""

    def __init__(self, max_percent: int) -> None:
        self.max_percent = max_percent
        self.used: int | None = None
        self.limit: int | None = None

    def observe(self, response: httpx.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.used, self.limit = int(match.group(1)), int(match.group(2))
        if response.status_code >= 400 and any(
            e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED" for e in salesforce_errors(response)
        ):
            raise RateLimited(
                f"Salesforce refused the call: the org's API request limit is exceeded "
                f"({describe_salesforce_error(response)})",
                LIMIT_WAIT_SECONDS,
            )

    def check(self) -> None:
        if self.used is None or not self.limit:
            return
        if self.used * 100 >= self.max_percent * self.limit:
            raise RateLimited(
                f"the org has used {self.used} of its {self.limit} daily API requests, at or above "
                f"config.maxApiUsagePercent ({self.max_percent}%)",
                LIMIT_WAIT_SECONDS,
            )


async def _query(
    client: ProviderHttpClient, api: str, soql: str, usage: ApiUsage, what: str, config_hint: str
) -> AsyncIterator[dict[str, Any]]:
    """The records a SOQL query answers, every page of them (`nextRecordsUrl` followed).

    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm;
    errors as `_raise_for` (`what` names the query in them, `config_hint` says what to check).
    """
    url: str | None = f"{api}/query"
    params: dict[str, str] | None = {"q": soql}
    while url is not None:
        usage.check()
        response = await client.request("GET", url, params=params)
        _raise_for(response, what, config_hint)
        body = json_object(response, "Salesforce")
        for match in body.get("records") or []:
            if isinstance(match, dict):
                yield match
        next_url = body.get("nextRecordsUrl")
        url = f"{api.split('/services/data/')[0]}{next_url}" if isinstance(next_url, str) else None
        params = None


def _raise_for(response: httpx.Response, what: str, config_hint: str = "") -> None:
    if response.is_success:
        return
    hint = f"; {config_hint}" if config_hint else ""
    detail = describe_salesforce_error(response)
    raise ProviderError(f"Salesforce refused {what} (HTTP {response.status_code}): {detail}{hint}")


def soql_literal(value: str) -> str:
    """A SOQL string literal with backslashes and single quotes escaped (SOQL's escape sequences)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_in_batches(head: str, keys: Sequence[str], url_prefix: str, limit: int) -> Iterator[list[str]]:
    """`keys` split so that `url_prefix` + the URL-encoded `head` + `'k1','k2')` stays within `limit`
    bytes, each key's length counted percent-encoded as the worst case (every reserved character
    escaped; httpx escapes no more). A key too long for any query is refused as a configuration error."""
    fixed = len(url_prefix) + len(quote(head + ")", safe=""))
    separator = len(quote(",", safe=""))
    group: list[str] = []
    size = fixed
    for key in keys:
        cost = len(quote(soql_literal(key), safe="")) + (separator if group else 0)
        if group and size + cost > limit:
            yield group
            group, size = [], fixed
            cost -= separator
        if fixed + cost > limit:
            raise ConfigurationError(
                f"an external ID of {len(key)} characters does not fit a lookup query of at most {limit} "
                "bytes; Salesforce external IDs have at most 255"
            )
        group.append(key)
        size += cost
    if group:
        yield group


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_value(row.get(c)) for c in columns])
    return buffer.getvalue().encode()


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A row on its way in insert or update mode: its folded external ID, the Salesforce fields, and the
    source record (whose key a rejection is kept under)."""

    key: str
    row: dict[str, Any]
    record: Record


def _fold(config: SalesforceExportConfig, value: Any) -> str:
    """An external ID as the field compares it: trimmed, and lower case unless case-sensitive."""
    text = str(value).strip()
    return text if config.external_id_case_sensitive else text.lower()


def _update_outcome(records_with_the_id: int) -> Outcome:
    """Update mode: one record has the external ID → updated; none → skipped; several → refused."""
    if records_with_the_id == 0:
        return "skipped"
    return "updated" if records_with_the_id == 1 else "rejected"


def _result_errors(result: Any) -> str:
    """A SaveResult's errors as `STATUS_CODE: message; …` (empty when it has none)."""
    errors = result.get("errors") if isinstance(result, dict) else None
    return "; ".join(
        f"{e.get('statusCode')}: {e.get('message')}" for e in (errors or []) if isinstance(e, dict)
    )


# --------------------------------------------------------------------------------------- provider


class SalesforceProvider(Provider):
    """Salesforce sObjects: upsert by external ID, Bulk API 2.0 for volume, SOQL import and lookups."""

    key: ClassVar[str] = "salesforce"
    display_name: ClassVar[str] = "Salesforce"
    description: ClassVar[str] = (
        "Upsert records into Salesforce objects, import SOQL query results, or enrich records by lookup."
    )
    documentation_url: ClassVar[str] = (
        "https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/bulk_api_2_0.htm"
    )
    auth_methods: ClassVar[tuple[AuthMethod, ...]] = AUTH_METHODS
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]] = CONFIG_MODELS
    default_schedule: ClassVar[Schedule] = DEFAULT_SCHEDULE
    modes: ClassVar[tuple[SyncMode, ...]] = (
        SyncMode.UPSERT,
        SyncMode.MIRROR,
        SyncMode.INSERT,
        SyncMode.UPDATE,
    )
    dry_run_lookup_modes: ClassVar[tuple[SyncMode, ...]] = (SyncMode.INSERT, SyncMode.UPDATE)

    # ------------------------------------------------------------------------------------- plumbing

    def _client(
        self,
        http: HttpClientFactory,
        credentials: Credentials,
        usage: ApiUsage,
        *,
        rotated: RotatedCredentials | None = None,
    ) -> ProviderHttpClient:
        tokens = token_source(
            credentials, default_token_url=TOKEN_URL, reauthorize=REAUTHORIZE, on_rotation=rotated
        )
        return http(
            name="Salesforce",
            timeout=120.0,
            max_connections=4,
            describe_error=describe_salesforce_error,
            token=tokens,
            inspect=usage.observe,
        )

    async def _api(self, client: ProviderHttpClient, credentials: Credentials, version: str) -> str:
        """`{instance}/services/data/{version}`: the instance from the endpoint or the token response."""
        instance = credentials.endpoint
        if not instance:
            instance = (await client.access_token()).instance_url
        if not instance:
            raise ConfigurationError(
                "Salesforce's instance URL is unknown: give the Secret a refreshToken (the token response "
                "names the instance) or set the Authorization's endpoint to https://<MyDomain>.my.salesforce.com"
            )
        return f"{instance.rstrip('/')}/services/data/{version}"

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        rotated = RotatedCredentials()

        async def check() -> str:
            require_keys(credentials)
            usage = ApiUsage(100)
            async with self._client(HttpClientFactory(), credentials, usage, rotated=rotated) as client:
                api = await self._api(client, credentials, DEFAULT_API_VERSION)
                response = await client.request("GET", f"{api}/limits")
            _raise_for(response, "the limits call")
            daily = json_object(response, "Salesforce").get("DailyApiRequests")
            if isinstance(daily, dict) and isinstance(daily.get("Max"), int):
                return (
                    f"Salesforce accepted the credentials ({daily.get('Remaining')} of {daily['Max']} "
                    "daily API requests left)"
                )
            return "Salesforce accepted the credentials"

        return dataclasses.replace(run_check(lambda: asyncio.run(check())), rotated=dict(rotated.values))

    # --------------------------------------------------------------------------------------- export

    def identity_fields(self, config: ProviderConfig) -> tuple[str, ...]:
        assert isinstance(config, SalesforceExportConfig)
        return (self._external_id_source(config),)

    def member_identities(self, config: ProviderConfig, record: Record) -> frozenset[str]:
        """Records are one member when their external IDs match as the field compares them."""
        assert isinstance(config, SalesforceExportConfig)
        value = record.get(self._external_id_source(config))
        if value is None or not str(value).strip():
            return frozenset()
        text = str(value).strip()
        return frozenset(
            {f"{config.external_id_field}:{text if config.external_id_case_sensitive else text.lower()}"}
        )

    @staticmethod
    def _external_id_source(config: SalesforceExportConfig) -> str:
        return next(source for source, target in config.fields.items() if target == config.external_id_field)

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        config = context.config
        assert isinstance(config, SalesforceExportConfig)

        def convert(record: Record) -> dict[str, Any]:
            return {target: record.get(source) for source, target in config.fields.items()}

        if context.mode in (SyncMode.INSERT, SyncMode.UPDATE):
            await self._insert_or_update(context, config, batches, convert)
            return
        await self._upsert(context, config, batches, convert, removing=False)

    async def remove(self, context: SyncContext, batches: RecordBatches) -> None:
        config = context.config
        assert isinstance(config, SalesforceExportConfig)
        removal = config.removal
        if removal is None:
            raise ConfigurationError(
                "mode mirror needs config.removal (the field to set on records that left the source, "
                "e.g. {field: Synced_To_Ads__c, value: false}); Salesforce records are never deleted"
            )
        source = self._external_id_source(config)

        def convert(record: Record) -> dict[str, Any]:
            return {config.external_id_field: record.get(source), removal.field: removal.value}

        await self._upsert(context, config, batches, convert, removing=True)

    # ---------------------------------------------------------------------------- insert and update

    async def _insert_or_update(
        self,
        context: SyncContext,
        config: SalesforceExportConfig,
        batches: RecordBatches,
        convert: Callable[[Record], dict[str, Any]],
    ) -> None:
        """Modes insert and update: look the chunk's external IDs up, then create or update (module doc)."""
        usage = ApiUsage(config.max_api_usage_percent)
        async with self._client(context.http, context.credentials, usage, rotated=context.rotated) as client:
            api = await self._api(client, context.credentials, config.api_version)
            async for chunk in self._distinct_chunks(batches, convert, config, context):
                existing = await self._existing_ids(client, api, config, [item.key for item in chunk], usage)
                if context.mode == SyncMode.INSERT:
                    await self._create_new(client, api, config, chunk, existing, context, usage)
                else:
                    await self._update_known(client, api, config, chunk, existing, context, usage)

    async def foresee(self, context: SyncContext, batches: RecordBatches) -> AsyncIterator[list[Foreseen]]:
        """A dry run of an insert or update job: the run's lookups (`GET /query`, one per 200 records)
        and no other request; each record with what the run would do (module doc). Records with no
        external ID are skipped."""
        config = context.config
        assert isinstance(config, SalesforceExportConfig)
        source = self._external_id_source(config)
        usage = ApiUsage(config.max_api_usage_percent)
        created = KeyStore() if context.mode == SyncMode.INSERT else None
        try:
            async with self._client(
                context.http, context.credentials, usage, rotated=context.rotated
            ) as client:
                api = await self._api(client, context.credentials, config.api_version)
                chunk: list[tuple[str, Record]] = []
                async for batch in batches:
                    without_id: list[Foreseen] = []
                    for record in batch:
                        value = record.get(source)
                        if value is None or not str(value).strip():
                            without_id.append(Foreseen(record, "skipped"))
                            continue
                        chunk.append((_fold(config, value), record))
                        if len(chunk) == MAX_COLLECTION_RECORDS:
                            yield await self._foresee_chunk(client, api, config, chunk, created, usage)
                            chunk = []
                    if without_id:
                        yield without_id
                if chunk:
                    yield await self._foresee_chunk(client, api, config, chunk, created, usage)
        finally:
            if created is not None:
                created.close()

    async def _foresee_chunk(
        self,
        client: ProviderHttpClient,
        api: str,
        config: SalesforceExportConfig,
        chunk: list[tuple[str, Record]],
        created: KeyStore | None,
        usage: ApiUsage,
    ) -> list[Foreseen]:
        """One lookup for the chunk's external IDs; insert when `created` is given, else update."""
        keys = list(dict.fromkeys(key for key, _ in chunk))
        existing = await self._existing_ids(client, api, config, keys, usage)
        if created is None:
            return [Foreseen(record, _update_outcome(len(existing.get(key, [])))) for key, record in chunk]
        taken = existing.keys() | created.among(keys)
        foreseen: list[Foreseen] = []
        for key, record in chunk:
            foreseen.append(Foreseen(record, "skipped" if key in taken else "added"))
            taken.add(key)  # a repeat would find the record the first one created
        created.add([key for key in keys if key not in existing])
        return foreseen

    async def _distinct_chunks(
        self,
        batches: RecordBatches,
        convert: Callable[[Record], dict[str, Any]],
        config: SalesforceExportConfig,
        context: SyncContext,
    ) -> AsyncIterator[list[_Pending]]:
        """Chunks of at most 200 rows, none holding one external ID twice (folded as the field compares)."""
        chunk: list[_Pending] = []
        keys: set[str] = set()
        async for batch in batches:
            for record in batch:
                row = convert(record)
                value = row.get(config.external_id_field)
                if value is None or not str(value).strip():
                    context.counts.discard(
                        1, f"a record has no value for the external ID {config.external_id_field}"
                    )
                    continue
                key = _fold(config, value)
                if key in keys or len(chunk) == MAX_COLLECTION_RECORDS:
                    yield chunk
                    chunk, keys = [], set()
                chunk.append(_Pending(key, row, record))
                keys.add(key)
        if chunk:
            yield chunk

    async def _existing_ids(
        self,
        client: ProviderHttpClient,
        api: str,
        config: SalesforceExportConfig,
        keys: list[str],
        usage: ApiUsage,
    ) -> dict[str, list[str]]:
        """Folded external ID → the Ids of the records that have it, for those of `keys` that exist."""
        field_name = config.external_id_field
        head = f"SELECT Id, {field_name} FROM {config.sobject} WHERE {field_name} IN ("
        found: dict[str, list[str]] = {}
        for group in soql_in_batches(head, keys, f"{api}/query?q=", MAX_QUERY_URL_BYTES):
            soql = head + ",".join(soql_literal(key) for key in group) + ")"
            lookup = ("the lookup of existing records", "check config.sobject and config.externalIdField")
            async for match in _query(client, api, soql, usage, *lookup):
                if isinstance(match.get("Id"), str) and match.get(field_name) is not None:
                    found.setdefault(_fold(config, match[field_name]), []).append(match["Id"])
        return found

    async def _create_new(
        self,
        client: ProviderHttpClient,
        api: str,
        config: SalesforceExportConfig,
        chunk: list[_Pending],
        existing: Mapping[str, list[str]],
        context: SyncContext,
        usage: ApiUsage,
    ) -> None:
        """Insert mode: create the rows whose external ID no record has; the others are skipped."""
        new = [item for item in chunk if item.key not in existing]
        context.counts.skip(len(chunk) - len(new))
        if new:
            records = [{"attributes": {"type": config.sobject}, **item.row} for item in new]
            created = await self._save(client, "POST", api, records, "the create", new, context, usage)
            context.counts.added += created
        context.log("collection_created", records=len(new), skipped=len(chunk) - len(new))

    async def _update_known(
        self,
        client: ProviderHttpClient,
        api: str,
        config: SalesforceExportConfig,
        chunk: list[_Pending],
        existing: Mapping[str, list[str]],
        context: SyncContext,
        usage: ApiUsage,
    ) -> None:
        """Update mode: update the record each external ID names; unknown IDs are skipped, and an ID
        several records share is refused (which of them is meant is not known)."""
        counts = context.counts
        known: list[_Pending] = []
        records: list[dict[str, Any]] = []
        for item in chunk:
            ids = existing.get(item.key, [])
            if not ids:
                counts.skip()
            elif len(ids) > 1:
                counts.reject(
                    item.record,
                    f"{len(ids)} {config.sobject} records have this {config.external_id_field} "
                    f"({', '.join(ids[:3])}); update mode updates a record only when one has it",
                    "DUPLICATE_EXTERNAL_ID",
                )
            else:
                known.append(item)
                records.append({"attributes": {"type": config.sobject}, "id": ids[0], **item.row})
        if records:
            counts.updated += await self._save(
                client, "PATCH", api, records, "the update", known, context, usage
            )
        context.log("collection_updated", records=len(records), skipped=len(chunk) - len(records))

    async def _save(
        self,
        client: ProviderHttpClient,
        method: str,
        api: str,
        records: list[dict[str, Any]],
        what: str,
        items: list[_Pending],
        context: SyncContext,
        usage: ApiUsage,
    ) -> int:
        """Send one sObject Collections create (POST) or update (PATCH) with `allOrNone: false`; records
        Salesforce refuses are rejections with its status codes. Returns how many it saved."""
        usage.check()
        response = await client.request(
            method, f"{api}/composite/sobjects", json={"allOrNone": False, "records": records}
        )
        _raise_for(response, what, "check config.sobject and config.fields")
        results = response.json()
        if not isinstance(results, list) or len(results) != len(records):
            raise MalformedResponse("Salesforce's sObject Collections answer is not one result per record")
        saved = 0
        for item, result in zip(items, results, strict=True):
            if isinstance(result, dict) and result.get("success"):
                saved += 1
            else:
                context.counts.reject(item.record, _result_errors(result) or "refused")
        return saved

    async def _upsert(
        self,
        context: SyncContext,
        config: SalesforceExportConfig,
        batches: RecordBatches,
        convert: Any,
        *,
        removing: bool,
    ) -> None:
        usage = ApiUsage(config.max_api_usage_percent)
        counts = context.counts
        # External ID → source record of the rows in flight, so a refusal is kept under the record's key
        # (retried first next run); refusals while removing are not kept (a retry would add them back).
        sources: dict[str, Record] = {}
        async with self._client(context.http, context.credentials, usage, rotated=context.rotated) as client:
            api = await self._api(client, context.credentials, config.api_version)

            async def rows() -> RecordBatches:
                async for batch in batches:
                    converted = []
                    for record in batch:
                        row = convert(record)
                        key = row.get(config.external_id_field)
                        if key is None or not str(key).strip():  # invalid: never sent
                            counts.discard(
                                1, f"a record has no value for the external ID {config.external_id_field}"
                            )
                        else:
                            converted.append(row)
                            if not removing:
                                sources[str(key)] = record
                    yield converted

            # Look ahead up to the threshold: small runs take sObject Collections, large ones Bulk API 2.0.
            stream = rebatch(rows(), MAX_COLLECTION_RECORDS)
            head: list[list[dict[str, Any]]] = []
            seen = 0
            async for chunk in stream:
                head.append(chunk)
                seen += len(chunk)
                if seen > config.bulk_threshold:
                    break
            if seen <= config.bulk_threshold:
                for chunk in head:
                    await self._collection(
                        client, api, config, chunk, context, usage, removing=removing, sources=sources
                    )
                return

            async def everything() -> AsyncIterator[list[dict[str, Any]]]:
                for chunk in head:
                    yield chunk
                async for chunk in stream:
                    yield chunk

            async for job_rows in rebatch(everything(), config.bulk_job_records):
                await self._bulk_job(
                    client, api, config, job_rows, context, usage, removing=removing, sources=sources
                )

    async def _collection(
        self,
        client: ProviderHttpClient,
        api: str,
        config: SalesforceExportConfig,
        rows: list[dict[str, Any]],
        context: SyncContext,
        usage: ApiUsage,
        *,
        removing: bool,
        sources: dict[str, Record] | None = None,
    ) -> None:
        usage.check()
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": config.sobject}, **row} for row in rows],
        }
        response = await client.request(
            "PATCH", f"{api}/composite/sobjects/{config.sobject}/{config.external_id_field}", json=body
        )
        _raise_for(response, "the upsert", "check config.sobject, config.externalIdField and config.fields")
        results = response.json()
        if not isinstance(results, list) or len(results) != len(rows):
            raise MalformedResponse("Salesforce's sObject Collections answer is not one result per record")
        counts = context.counts
        sources = sources if sources is not None else {}
        for row, result in zip(rows, results, strict=True):
            source = sources.pop(str(row.get(config.external_id_field)), None)
            if isinstance(result, dict) and result.get("success"):
                if removing:
                    counts.removed += 1
                elif result.get("created"):
                    counts.added += 1
                else:
                    counts.updated += 1
                continue
            reason = _result_errors(result)
            if source is not None:
                counts.reject(source, reason or "refused")
            else:
                counts.omit(
                    1,
                    f"{config.external_id_field} {row.get(config.external_id_field)}: {reason or 'refused'}",
                )
        context.log("collection_sent", records=len(rows), removing=removing)

    async def _bulk_job(
        self,
        client: ProviderHttpClient,
        api: str,
        config: SalesforceExportConfig,
        rows: list[dict[str, Any]],
        context: SyncContext,
        usage: ApiUsage,
        *,
        removing: bool,
        sources: dict[str, Record] | None = None,
    ) -> None:
        pending = sources if sources is not None else {}
        job_sources = {
            key: pending.pop(key)
            for key in (str(row.get(config.external_id_field)) for row in rows)
            if key in pending
        }
        columns = list(dict.fromkeys(column for row in rows for column in row))
        usage.check()
        created = await client.request(
            "POST",
            f"{api}/jobs/ingest",
            json={
                "object": config.sobject,
                "externalIdFieldName": config.external_id_field,
                "contentType": "CSV",
                "operation": "upsert",
                "lineEnding": "LF",
            },
        )
        _raise_for(created, "the Bulk API ingest job", "check config.sobject and config.externalIdField")
        job_id = json_object(created, "Salesforce").get("id")
        if not isinstance(job_id, str):
            raise MalformedResponse("Salesforce's ingest job answer has no id")
        job = f"{api}/jobs/ingest/{job_id}"
        uploaded = await client.request(
            "PUT", f"{job}/batches", content=_csv_text(rows, columns), headers={"Content-Type": "text/csv"}
        )
        _raise_for(uploaded, "the CSV upload")
        closed = await client.request("PATCH", job, json={"state": "UploadComplete"})
        _raise_for(closed, "closing the ingest job")
        info = await self._wait_for_job(client, job, config.poll_seconds, context, usage)
        counts = context.counts
        successes = await client.request("GET", f"{job}/successfulResults/")
        _raise_for(successes, "the job's successful results")
        for row in _csv_rows(successes.text):
            if removing:
                counts.removed += 1
            elif row.get("sf__Created", "").lower() == "true":
                counts.added += 1
            else:
                counts.updated += 1
        failures = await client.request("GET", f"{job}/failedResults/")
        _raise_for(failures, "the job's failed results")
        for row in _csv_rows(failures.text):
            source = job_sources.get(str(row.get(config.external_id_field)))
            if source is not None:
                counts.reject(source, str(row.get("sf__Error") or "refused"))
            else:
                counts.omit(
                    1,
                    f"{config.external_id_field} {row.get(config.external_id_field)}: {row.get('sf__Error')}",
                )
        unprocessed = await client.request("GET", f"{job}/unprocessedrecords/")
        _raise_for(unprocessed, "the job's unprocessed records")
        left = _csv_rows(unprocessed.text)
        if left:
            counts.omit(len(left), f"Salesforce did not process {len(left)} records of job {job_id}")
        context.log(
            "bulk_job_done", job=job_id, records=len(rows), state=info.get("state"), removing=removing
        )
        if info.get("state") != "JobComplete":
            raise ProviderError(
                f"Salesforce's ingest job {job_id} ended {info.get('state')}: "
                f"{info.get('errorMessage') or 'no message'}"
            )

    async def _wait_for_job(
        self, client: ProviderHttpClient, job: str, poll_seconds: float, context: SyncContext, usage: ApiUsage
    ) -> dict[str, Any]:
        while True:
            usage.check()
            response = await client.request("GET", job)
            _raise_for(response, "the job status")
            info = json_object(response, "Salesforce")
            if info.get("state") in FINISHED_STATES:
                return info
            await context.http.sleep(poll_seconds)

    # --------------------------------------------------------------------------------------- import

    async def import_records(self, context: SyncContext) -> RecordBatches:
        config = context.config
        assert isinstance(config, SalesforceImportConfig)
        usage = ApiUsage(config.max_api_usage_percent)
        async with self._client(context.http, context.credentials, usage, rotated=context.rotated) as client:
            api = await self._api(client, context.credentials, config.api_version)
            usage.check()
            created = await client.request(
                "POST", f"{api}/jobs/query", json={"operation": "query", "query": config.query}
            )
            _raise_for(created, "the query", "check config.query")
            job_id = json_object(created, "Salesforce").get("id")
            if not isinstance(job_id, str):
                raise MalformedResponse("Salesforce's query job answer has no id")
            job = f"{api}/jobs/query/{job_id}"
            info = await self._wait_for_job(client, job, config.poll_seconds, context, usage)
            if info.get("state") != "JobComplete":
                raise ProviderError(
                    f"Salesforce's query job ended {info.get('state')}: "
                    f"{info.get('errorMessage') or 'no message'}; check config.query"
                )
            locator: str | None = None
            while True:
                usage.check()
                params: dict[str, str | int] = {"maxRecords": config.page_size}
                if locator:
                    params["locator"] = locator
                page = await client.request("GET", f"{job}/results", params=params)
                _raise_for(page, "the query results")
                rows = _csv_rows(page.text)
                if rows:
                    yield [
                        {key: (value if value != "" else None) for key, value in row.items()} for row in rows
                    ]
                locator = page.headers.get("Sforce-Locator")
                if not locator or locator == "null":
                    return

    # ----------------------------------------------------------------------------------- enrichment

    async def enrich(self, context: SyncContext, batches: RecordBatches) -> RecordBatches:
        config = context.config
        assert isinstance(config, SalesforceEnrichmentConfig)
        usage = ApiUsage(config.max_api_usage_percent)
        select = ", ".join(dict.fromkeys([config.match_field, *config.fields]))

        def fold(value: Any) -> str:
            text = str(value).strip()
            return text.lower() if config.case_insensitive else text

        async with self._client(context.http, context.credentials, usage, rotated=context.rotated) as client:
            api = await self._api(client, context.credentials, config.api_version)
            async for batch in rebatch(batches, config.batch_size):
                keys = sorted(
                    {
                        str(r[config.key_field]).strip()
                        for r in batch
                        if r.get(config.key_field) not in (None, "")
                    }
                )
                found: dict[str, dict[str, Any]] = {}
                if keys:
                    soql = (
                        f"SELECT {select} FROM {config.sobject} WHERE {config.match_field} IN "
                        f"({', '.join(soql_literal(k) for k in keys)})"
                    )
                    hint = "check config.sobject, config.matchField and config.fields"
                    async for row in _query(client, api, soql, usage, "the lookup query", hint):
                        if row.get(config.match_field) is not None:
                            found.setdefault(fold(row[config.match_field]), row)
                enriched: list[Record] = []
                for record in batch:
                    key = record.get(config.key_field)
                    match = found.get(fold(key)) if key not in (None, "") else None
                    if match is None:
                        context.counts.omit(
                            1,
                            f"no {config.sobject} with {config.match_field} = {key!r}"
                            if key not in (None, "")
                            else f"a record has no {config.key_field}",
                        )
                        continue
                    enriched.append(
                        {**record, **{target: dig(match, path) for path, target in config.fields.items()}}
                    )
                yield enriched


provider = SalesforceProvider()
