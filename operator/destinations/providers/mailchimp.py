"""`mailchimp`: audience (list) members, per the Mailchimp Marketing API 3.0.

https://mailchimp.com/developer/marketing/api/list-members/ and the batch endpoint
`POST /lists/{list_id}` ("Batch subscribe or unsubscribe", at most 500 members per call).

- API root: `https://<dc>.api.mailchimp.com/3.0`, the data center being the API key's suffix
  (`…-us6`); for OAuth2 tokens it comes from `https://login.mailchimp.com/oauth2/metadata`. The
  Authorization's `endpoint` replaces the whole root (include `/3.0`).
- Auth: `apiKey` → HTTP basic auth with any user name and the key; `oauth2` → `Authorization: Bearer`.
- Limits: at most 10 simultaneous connections per account; 500 members per batch call.
- Export: members are sent with `update_existing: true`; the answer's `new_members` count as added,
  `updated_members` as updated, its per-member `errors` as omitted. Mirror mode unsubscribes members
  that left the source (status `unsubscribed`; Mailchimp keeps their history).
- Import: `GET /lists/{list_id}/members` paged with `count`/`offset`.
- Credential check: `GET /ping`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule
from destinations.providers._checks import require_keys, run_check
from destinations.providers._concurrency import for_each_concurrently
from destinations.providers._http import ProviderHttpClient, probe
from destinations.providers._records import json_object, rebatch, text_field
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Provider,
    ProviderConfig,
    Record,
    RecordBatches,
    SyncContext,
)
from destinations.providers.errors import ConfigurationError, MalformedResponse, ProviderError

MAX_MEMBERS_PER_BATCH = 500
MAX_CONNECTIONS = 10
METADATA_URL = "https://login.mailchimp.com/oauth2/metadata"


class MailchimpExportConfig(ProviderConfig):
    """Subscribe or update audience members from the source's records."""

    list_id: str = Field(min_length=1, pattern=r"^[a-zA-Z0-9]+$")
    """The audience (list) ID, shown in Audience → Settings → Audience name and defaults."""
    email_field: str = "email"
    """The record field holding the email address."""
    merge_fields: dict[str, str] = {}
    """Mailchimp merge tag → record field, e.g. `FNAME: first_name`."""
    status_if_new: Literal["subscribed", "pending", "transactional"] = "subscribed"
    """Status given to members not yet in the audience (`pending` sends a confirmation email)."""
    tags: list[str] = []
    """Tags added to every exported member."""


class MailchimpImportConfig(ProviderConfig):
    """Read audience members into the sink."""

    list_id: str = Field(min_length=1, pattern=r"^[a-zA-Z0-9]+$")
    """The audience (list) ID."""
    status: Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] | None = None
    """Only members with this status; all members when omitted."""
    page_size: int = Field(default=1000, ge=1, le=1000)
    """Members per page (Mailchimp's maximum is 1000)."""


CONFIG_MODELS: dict[JobType, type[ProviderConfig]] = {
    JobType.EXPORT: MailchimpExportConfig,
    JobType.IMPORT: MailchimpImportConfig,
}
AUTH_METHODS = (AuthMethod.API_KEY, AuthMethod.OAUTH2)
DEFAULT_SCHEDULE = Schedule(every="6h")  # type: ignore[arg-type]


def describe_problem(response: httpx.Response) -> str:
    """Mailchimp errors are RFC 7807 problem documents: `title` and `detail` say what went wrong."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if isinstance(body, dict):
        return f"{body.get('title', '')}: {body.get('detail', '')}".strip(": ")[:200]
    return str(body)[:200]


def _authentication(credentials: Credentials) -> tuple[dict[str, str], httpx.Auth | None]:
    if credentials.method == AuthMethod.OAUTH2:
        return {"Authorization": f"Bearer {credentials.get('accessToken') or ''}"}, None
    return {}, httpx.BasicAuth("destinations", credentials.get("apiKey") or "")


def api_root(credentials: Credentials, *, transport: httpx.BaseTransport | None = None) -> str:
    """The Marketing API root for these credentials (see the module docstring)."""
    if credentials.endpoint:
        return credentials.endpoint.rstrip("/")
    if credentials.method == AuthMethod.OAUTH2:
        token = credentials.get("accessToken") or ""
        response = probe(
            "GET",
            METADATA_URL,
            name="mailchimp",
            headers={"Authorization": f"OAuth {token}"},
            transport=transport,
        )
        endpoint = response.json().get("api_endpoint") if response.is_success else None
        if not isinstance(endpoint, str):
            raise ProviderError("Mailchimp's OAuth metadata did not name the account's API endpoint")
        return endpoint.rstrip("/") + "/3.0"
    key = credentials.get("apiKey") or ""
    _, dash, data_center = key.rpartition("-")
    if not dash or not data_center.isalnum():
        raise ConfigurationError(
            "the Mailchimp apiKey has no data-center suffix such as '-us6'; copy the whole key, "
            "or set the Authorization's endpoint"
        )
    return f"https://{data_center}.api.mailchimp.com/3.0"


class MailchimpProvider(Provider):
    """Mailchimp audience members: batch subscribe/update (and unsubscribe in mirror mode), and import."""

    key: ClassVar[str] = "mailchimp"
    display_name: ClassVar[str] = "Mailchimp"
    description: ClassVar[str] = "Export contacts to a Mailchimp audience, or import its members."
    documentation_url: ClassVar[str] = "https://mailchimp.com/developer/marketing/api/list-members/"
    auth_methods: ClassVar[tuple[AuthMethod, ...]] = AUTH_METHODS
    config_models: ClassVar[Mapping[JobType, type[ProviderConfig]]] = CONFIG_MODELS
    default_schedule: ClassVar[Schedule] = DEFAULT_SCHEDULE
    supports_mirror: ClassVar[bool] = True

    def check_credentials(self, credentials: Credentials) -> CredentialCheck:
        def check() -> str:
            require_keys(credentials)
            headers, auth = _authentication(credentials)
            response = probe(
                "GET", f"{api_root(credentials)}/ping", name="Mailchimp", headers=headers, auth=auth
            )
            if not response.is_success:
                raise ProviderError(
                    f"Mailchimp answered HTTP {response.status_code} to /ping: {describe_problem(response)}"
                )
            status = json_object(response, "Mailchimp").get("health_status", "ok")
            return f"Mailchimp accepted the credentials ({status})"

        return run_check(check)

    def identity_fields(self, config: ProviderConfig) -> tuple[str, ...]:
        assert isinstance(config, MailchimpExportConfig)
        return (config.email_field,)

    def _client(self, context: SyncContext) -> ProviderHttpClient:
        headers, auth = _authentication(context.credentials)
        return context.http(
            name="Mailchimp",
            base_url=api_root(context.credentials),
            headers=headers,
            auth=auth,
            max_connections=MAX_CONNECTIONS,
            describe_error=describe_problem,
        )

    async def export(self, context: SyncContext, batches: RecordBatches) -> None:
        config = context.config
        assert isinstance(config, MailchimpExportConfig)

        def member(record: Record) -> dict[str, Any] | None:
            email = text_field(record, config.email_field)
            if email is None:
                return None
            fields = {
                tag: record[name] for tag, name in config.merge_fields.items() if record.get(name) is not None
            }
            result: dict[str, Any] = {"email_address": email, "status": config.status_if_new}
            if fields:
                result["merge_fields"] = fields
            if config.tags:
                result["tags"] = list(config.tags)
            return result

        await self._send(context, config.list_id, batches, member, removing=False)

    async def remove(self, context: SyncContext, batches: RecordBatches) -> None:
        config = context.config
        assert isinstance(config, MailchimpExportConfig)

        def member(record: Record) -> dict[str, Any] | None:
            email = text_field(record, config.email_field)
            return None if email is None else {"email_address": email, "status": "unsubscribed"}

        await self._send(context, config.list_id, batches, member, removing=True)

    async def _send(
        self,
        context: SyncContext,
        list_id: str,
        batches: RecordBatches,
        to_member: Any,
        *,
        removing: bool,
    ) -> None:
        counts = context.counts
        async with self._client(context) as client:

            async def send(members: list[dict[str, Any]]) -> None:
                response = await client.request(
                    "POST", f"/lists/{list_id}", json={"members": members, "update_existing": True}
                )
                if response.status_code == 404:
                    raise ProviderError(f"Mailchimp has no audience {list_id!r}: check config.listId")
                if not response.is_success:
                    raise ProviderError(
                        f"Mailchimp refused the batch (HTTP {response.status_code}): "
                        f"{describe_problem(response)}"
                    )
                body = json_object(response, "Mailchimp")
                created, updated, errors = _batch_outcome(body)
                if removing:
                    counts.removed += created + updated
                else:
                    counts.added += created
                    counts.updated += updated
                for error in errors:
                    counts.omit(1, f"{error.get('email_address', '?')}: {error.get('error', 'rejected')}")
                context.log(
                    "batch_sent", members=len(members), created=created, updated=updated, errors=len(errors)
                )

            async def members() -> AsyncIterator[list[dict[str, Any]]]:
                async for batch in batches:
                    converted = []
                    for record in batch:
                        member = to_member(record)
                        if member is None:
                            counts.omit(1, "a record has no email address")
                        else:
                            converted.append(member)
                    yield converted

            await for_each_concurrently(rebatch(members(), MAX_MEMBERS_PER_BATCH), MAX_CONNECTIONS, send)

    async def import_records(self, context: SyncContext) -> RecordBatches:
        config = context.config
        assert isinstance(config, MailchimpImportConfig)
        params: dict[str, str | int] = {"count": config.page_size}
        if config.status is not None:
            params["status"] = config.status
        offset = 0
        async with self._client(context) as client:
            while True:
                response = await client.request(
                    "GET", f"/lists/{config.list_id}/members", params={**params, "offset": offset}
                )
                if response.status_code == 404:
                    raise ProviderError(f"Mailchimp has no audience {config.list_id!r}: check config.listId")
                if not response.is_success:
                    raise ProviderError(
                        f"Mailchimp answered HTTP {response.status_code}: {describe_problem(response)}"
                    )
                body = json_object(response, "Mailchimp")
                members = body.get("members")
                if not isinstance(members, list):
                    raise MalformedResponse("Mailchimp's member list has no 'members' array")
                if members:
                    yield [_member_record(member) for member in members if isinstance(member, dict)]
                offset += len(members)
                total = body.get("total_items")
                if len(members) < config.page_size or (isinstance(total, int) and offset >= total):
                    return


def _batch_outcome(body: dict[str, Any]) -> tuple[int, int, list[dict[str, Any]]]:
    new_members = body.get("new_members")
    updated_members = body.get("updated_members")
    errors = body.get("errors", [])
    if (
        not isinstance(new_members, list)
        or not isinstance(updated_members, list)
        or not isinstance(errors, list)
    ):
        raise MalformedResponse("Mailchimp's batch answer lacks new_members, updated_members or errors")
    created = body.get("total_created", len(new_members))
    updated = body.get("total_updated", len(updated_members))
    return (
        created if isinstance(created, int) else len(new_members),
        updated if isinstance(updated, int) else len(updated_members),
        [error for error in errors if isinstance(error, dict)],
    )


def _member_record(member: dict[str, Any]) -> Record:
    """A flat record: identity and status, merge fields by tag, tag names."""
    merge_fields = member.get("merge_fields")
    tags = member.get("tags")
    record: Record = {
        "id": member.get("id"),
        "email": member.get("email_address"),
        "status": member.get("status"),
        "last_changed": member.get("last_changed"),
    }
    if isinstance(merge_fields, dict):
        record.update({str(tag): value for tag, value in merge_fields.items() if tag not in record})
    record["tags"] = (
        [tag.get("name") for tag in tags if isinstance(tag, dict)] if isinstance(tags, list) else []
    )
    return record


provider = MailchimpProvider()
