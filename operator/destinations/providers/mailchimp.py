"""`mailchimp`: audience (list) members, per the Mailchimp Marketing API 3.0.

https://mailchimp.com/developer/marketing/api/list-members/ and the batch endpoint
`POST /lists/{list_id}` ("Batch subscribe or unsubscribe", at most 500 members per call).

- API root: `https://<dc>.api.mailchimp.com/3.0`, the data center being the API key's suffix
  (`…-us6`); for OAuth2 tokens it comes from `https://login.mailchimp.com/oauth2/metadata`. The
  Authorization's `endpoint` replaces the whole root (include `/3.0`).
- Auth: `apiKey` → HTTP basic auth with any user name and the key; `oauth2` → `Authorization: Bearer`.
- Limits: at most 10 simultaneous connections per account; 500 members per batch call.
- Export never changes an existing member's subscription status (an unsubscribed, cleaned or pending
  contact stays so; no marketer may re-subscribe someone through a sync). Batch subscribe's
  `update_existing: true` *does* change existing members' status, so members go in two steps:
  1. batch subscribe with `update_existing: false`: new members are created with `statusIfNew` and
     count as added; members already in the audience come back as `errors` with `error_code`
     `ERROR_CONTACT_EXISTS`, other errors are omitted with their reason;
  2. each existing member is updated with "Add or update list member"
     (`PUT /lists/{list_id}/members/{subscriber_hash}`) carrying `status_if_new` and the merge fields
     but no `status`, which Mailchimp applies to new members only; tags go through
     `POST …/members/{subscriber_hash}/tags`. They count as updated.
  https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/
- Identity: Mailchimp knows a member by the MD5 of the lower-cased address (the subscriber hash), so
  `Jane.Doe@Example.com` and ` jane.doe@example.com` are one member, in mirror bookkeeping too.
- Mirror mode unsubscribes members that left the source (batch subscribe with status `unsubscribed`
  and `update_existing: true`; Mailchimp keeps their history).
- Insert mode does step 1 only: members already in the audience are skipped (counted), untouched.
- Update mode creates nobody: the audience is checked once (`GET /lists/{list_id}`), then each member
  is changed with "Update list member" (`PATCH /lists/{list_id}/members/{subscriber_hash}`, merge
  fields, then tags); a 404 means the address is not in the audience, which is skipped (counted).
  https://mailchimp.com/developer/marketing/api/list-members/update-list-member/
- Dry runs of insert and update jobs (`foresee`) read each distinct address once with "Get member
  info" (`GET /lists/{list_id}/members/{subscriber_hash}?fields=status`, at most 10 at a time; 404 =
  not in the audience, whatever the member's status otherwise) after the run's audience check, and
  send nothing else: insert would add the addresses the audience lacks (a repeat later in the source
  is skipped: the run's batch would find the member the first one created) and skip the others;
  update would update the members it has and skip the others. Records without an email address are
  skipped. What Mailchimp would refuse member by member (an address it deems fake, a permanently
  deleted one, which reads as 404) only the write can tell. Cost: one request per distinct address,
  where the insert run needs one per 500. Upsert dry runs look nothing up: their split between added
  and updated would cost a request per record.
  https://mailchimp.com/developer/marketing/api/list-members/get-member-info/ and
  https://developer.mailchimp.com/documentation/mailchimp/guides/manage-subscribers-with-the-mailchimp-api/
  ("Check subscription status": a 404 means the address is not on the list); `fields` asks for a
  partial response, as
  https://developer.mailchimp.com/documentation/mailchimp/guides/mailchimp-api-best-practices/ advises
- A member the batch call refuses (`errors[]`) or a per-member call answers 4xx is a rejection with
  Mailchimp's `error_code` (or the HTTP status) and message; a record without an email address is
  invalid (never sent).
- Import: `GET /lists/{list_id}/members` paged with `count`/`offset`.
- Credential check: `GET /ping`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field

from destinations.api.models import AuthMethod, JobType, Schedule, SyncMode
from destinations.providers._checks import access_token, require_keys, run_check
from destinations.providers._concurrency import for_each_concurrently
from destinations.providers._http import ProviderHttpClient, probe
from destinations.providers._keys import KeyStore
from destinations.providers._records import json_object, rebatch, text_field
from destinations.providers.base import (
    CredentialCheck,
    Credentials,
    Foreseen,
    Outcome,
    Provider,
    ProviderConfig,
    Record,
    RecordBatches,
    RecordCounter,
    SyncContext,
)
from destinations.providers.errors import ConfigurationError, MalformedResponse, ProviderError
from destinations.providers.identities import normalize_email

MAX_MEMBERS_PER_BATCH = 500
MAX_CONNECTIONS = 10
METADATA_URL = "https://login.mailchimp.com/oauth2/metadata"
NO_REFRESH = "Mailchimp's OAuth2 access tokens do not expire and it issues no refresh tokens"
#: The batch-subscribe `error_code` of a member already in the audience (not an error for an export).
CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"


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
        return {"Authorization": f"Bearer {access_token(credentials, NO_REFRESH)}"}, None
    return {}, httpx.BasicAuth("destinations", credentials.get("apiKey") or "")


def api_root(credentials: Credentials, *, transport: httpx.BaseTransport | None = None) -> str:
    """The Marketing API root for these credentials (see the module docstring)."""
    if credentials.endpoint:
        return credentials.endpoint.rstrip("/")
    if credentials.method == AuthMethod.OAUTH2:
        token = access_token(credentials, NO_REFRESH)
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
    modes: ClassVar[tuple[SyncMode, ...]] = (
        SyncMode.UPSERT,
        SyncMode.MIRROR,
        SyncMode.INSERT,
        SyncMode.UPDATE,
    )
    dry_run_lookup_modes: ClassVar[tuple[SyncMode, ...]] = (SyncMode.INSERT, SyncMode.UPDATE)

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

    def member_identities(self, config: ProviderConfig, record: Record) -> frozenset[str]:
        """The subscriber hash's input: the trimmed, lower-cased email address."""
        assert isinstance(config, MailchimpExportConfig)
        email = normalize_email(str(record.get(config.email_field) or ""))
        return frozenset() if email is None else frozenset({f"email:{email}"})

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
        """New members get `statusIfNew`; existing members keep their status (module docstring)."""
        config = context.config
        assert isinstance(config, MailchimpExportConfig)
        counts = context.counts
        list_id = config.list_id

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

        async with self._client(context) as client:
            connections = asyncio.Semaphore(MAX_CONNECTIONS)
            mode = context.mode

            async def update_existing(member: dict[str, Any], record: Record) -> None:
                email = member["email_address"]
                path = f"/lists/{list_id}/members/{subscriber_hash(email)}"
                body: dict[str, Any] = {"email_address": email}
                if mode != SyncMode.UPDATE:
                    body["status_if_new"] = config.status_if_new
                if "merge_fields" in member:
                    body["merge_fields"] = member["merge_fields"]
                async with connections:
                    response = await client.request(
                        "PATCH" if mode == SyncMode.UPDATE else "PUT", path, json=body
                    )
                    if response.is_success and config.tags:
                        tags = [{"name": tag, "status": "active"} for tag in config.tags]
                        response = await client.request("POST", f"{path}/tags", json={"tags": tags})
                if response.status_code == 404 and mode == SyncMode.UPDATE:
                    counts.skip()  # the audience exists (checked first): the address is not a member
                elif response.status_code == 404:
                    raise ProviderError(f"Mailchimp has no audience {list_id!r}: check config.listId")
                elif response.is_success:
                    counts.updated += 1
                elif 400 <= response.status_code < 500:
                    counts.reject(record, describe_problem(response), code=f"HTTP {response.status_code}")
                else:
                    raise ProviderError(
                        f"Mailchimp refused to update a member (HTTP {response.status_code}): "
                        f"{describe_problem(response)}"
                    )

            async def send(pairs: list[tuple[dict[str, Any], Record]]) -> None:
                members = [member for member, _ in pairs]
                if mode == SyncMode.UPDATE:
                    await asyncio.gather(*(update_existing(member, record) for member, record in pairs))
                    context.log("batch_sent", members=len(members))
                    return
                async with connections:
                    body = await self._batch(client, list_id, members, update_existing=False)
                created, _, errors = _batch_outcome(body)
                counts.added += created
                sent = {member["email_address"].strip().lower(): (member, record) for member, record in pairs}
                to_update = []
                for error in errors:
                    email = str(error.get("email_address", "?")).strip().lower()
                    if error.get("error_code") == CONTACT_EXISTS and email in sent:
                        to_update.append(sent[email])
                    elif email in sent:
                        counts.reject(
                            sent[email][1], str(error.get("error", "rejected")), code=error.get("error_code")
                        )
                    else:
                        counts.omit(1, f"{email}: {error.get('error', 'rejected')}")
                if mode == SyncMode.INSERT:
                    counts.skip(len(to_update))  # insert mode leaves existing members untouched
                else:
                    await asyncio.gather(*(update_existing(member, record) for member, record in to_update))
                context.log(
                    "batch_sent",
                    members=len(members),
                    created=created,
                    existing=len(to_update),
                    errors=len(errors) - len(to_update),
                )

            if mode == SyncMode.UPDATE:
                await self._audience_exists(client, list_id)
            await for_each_concurrently(
                rebatch(_members(batches, member, counts), MAX_MEMBERS_PER_BATCH), MAX_CONNECTIONS, send
            )

    async def foresee(self, context: SyncContext, batches: RecordBatches) -> AsyncIterator[list[Foreseen]]:
        """A dry run of an insert or update job: the audience check, then "Get member info" once per
        distinct address of each batch (at most 10 at a time), and no other request; each record with
        what the run would do (module docstring). Records without an email address are skipped.
        Raises ProviderError when the audience does not exist or Mailchimp answers an error."""
        config = context.config
        assert isinstance(config, MailchimpExportConfig)
        list_id = config.list_id
        created = KeyStore() if context.mode == SyncMode.INSERT else None
        connections = asyncio.Semaphore(MAX_CONNECTIONS)
        try:
            async with self._client(context) as client:

                async def is_member(hashed: str) -> bool:
                    async with connections:
                        response = await client.request(
                            "GET", f"/lists/{list_id}/members/{hashed}", params={"fields": "status"}
                        )
                    if response.status_code == 404:
                        return False
                    if not response.is_success:
                        raise ProviderError(
                            f"Mailchimp answered HTTP {response.status_code} to a member lookup: "
                            f"{describe_problem(response)}"
                        )
                    return True

                await self._audience_exists(client, list_id)
                async for batch in batches:
                    hashes: list[str | None] = []
                    for record in batch:
                        email = text_field(record, config.email_field)
                        hashes.append(None if email is None else subscriber_hash(email))
                    distinct = list(dict.fromkeys(hashed for hashed in hashes if hashed is not None))
                    known = created.among(distinct) if created is not None else set()
                    to_read = [hashed for hashed in distinct if hashed not in known]
                    answers = await asyncio.gather(*(is_member(hashed) for hashed in to_read))
                    members = {hashed for hashed, member in zip(to_read, answers, strict=True) if member}
                    foreseen = []
                    if created is None:  # update: every occurrence of a member is updated
                        for record, hashed in zip(batch, hashes, strict=True):
                            outcome: Outcome = "updated" if hashed in members else "skipped"
                            foreseen.append(Foreseen(record, outcome))
                    else:  # insert: the first occurrence of an address the audience lacks is added
                        taken = members | known
                        for record, hashed in zip(batch, hashes, strict=True):
                            if hashed is None or hashed in taken:
                                foreseen.append(Foreseen(record, "skipped"))
                            else:
                                foreseen.append(Foreseen(record, "added"))
                                taken.add(hashed)  # a repeat would find the member this one created
                        created.add([hashed for hashed in to_read if hashed not in members])
                    context.log("members_looked_up", records=len(batch), lookups=len(to_read))
                    yield foreseen
        finally:
            if created is not None:
                created.close()

    async def _audience_exists(self, client: ProviderHttpClient, list_id: str) -> None:
        """Update mode and dry runs: a 404 to a member must mean "not a member", so check the audience
        first (`GET /lists/{list_id}`, https://mailchimp.com/developer/marketing/api/lists/get-list-info/)."""
        response = await client.request("GET", f"/lists/{list_id}", params={"fields": "id"})
        if response.status_code == 404:
            raise ProviderError(f"Mailchimp has no audience {list_id!r}: check config.listId")
        if not response.is_success:
            raise ProviderError(
                f"Mailchimp answered HTTP {response.status_code} for audience {list_id!r}: "
                f"{describe_problem(response)}"
            )

    async def remove(self, context: SyncContext, batches: RecordBatches) -> None:
        """Mirror mode: unsubscribe these members (batch subscribe changing existing members' status)."""
        config = context.config
        assert isinstance(config, MailchimpExportConfig)
        counts = context.counts

        def member(record: Record) -> dict[str, Any] | None:
            email = text_field(record, config.email_field)
            return None if email is None else {"email_address": email, "status": "unsubscribed"}

        async with self._client(context) as client:

            async def send(pairs: list[tuple[dict[str, Any], Record]]) -> None:
                members = [member for member, _ in pairs]
                body = await self._batch(client, config.list_id, members, update_existing=True)
                created, updated, errors = _batch_outcome(body)
                counts.removed += created + updated
                for error in errors:
                    counts.omit(1, f"{error.get('email_address', '?')}: {error.get('error', 'rejected')}")
                context.log(
                    "batch_sent", members=len(members), created=created, updated=updated, errors=len(errors)
                )

            await for_each_concurrently(
                rebatch(_members(batches, member, counts), MAX_MEMBERS_PER_BATCH), MAX_CONNECTIONS, send
            )

    async def _batch(
        self,
        client: ProviderHttpClient,
        list_id: str,
        members: list[dict[str, Any]],
        *,
        update_existing: bool,
    ) -> dict[str, Any]:
        """One "batch subscribe or unsubscribe" call; its answer (per-member errors included)."""
        response = await client.request(
            "POST", f"/lists/{list_id}", json={"members": members, "update_existing": update_existing}
        )
        if response.status_code == 404:
            raise ProviderError(f"Mailchimp has no audience {list_id!r}: check config.listId")
        if not response.is_success:
            raise ProviderError(
                f"Mailchimp refused the batch (HTTP {response.status_code}): {describe_problem(response)}"
            )
        return json_object(response, "Mailchimp")

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


async def _members(
    batches: RecordBatches,
    to_member: Callable[[Record], dict[str, Any] | None],
    counts: RecordCounter,
) -> AsyncIterator[list[tuple[dict[str, Any], Record]]]:
    """The records as batch-subscribe members, each with its record; records without an email address
    are invalid (never sent)."""
    async for batch in batches:
        converted = []
        for record in batch:
            member = to_member(record)
            if member is None:
                counts.discard(1, "a record has no email address")
            else:
                converted.append((member, record))
        yield converted


def subscriber_hash(email: str) -> str:
    """Mailchimp's id of a member: the MD5 hex of the lower-cased address.

    https://mailchimp.com/developer/marketing/docs/methods-parameters/#path-parameters
    """
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


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
