"""Contract tests of the `mailchimp` provider against a local server speaking Marketing API 3.0.

- Batch subscribe or unsubscribe (`POST /lists/{list_id}`, `members` ≤ 500, `update_existing`,
  answer with `new_members`, `updated_members`, `errors`, `total_created`, `total_updated`):
  https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/
- List members (`GET /lists/{list_id}/members`, `count` ≤ 1000 and `offset`, `total_items`):
  https://mailchimp.com/developer/marketing/api/list-members/list-members-info/
- Ping (`GET /ping`, `health_status`): https://mailchimp.com/developer/marketing/api/ping/
- Update list member (`PATCH /lists/{list_id}/members/{subscriber_hash}`: an existing member only, 404
  "Resource Not Found" for an address that is not one) and Get list info (`GET /lists/{list_id}`):
  https://mailchimp.com/developer/marketing/api/list-members/update-list-member/ and
  https://mailchimp.com/developer/marketing/api/lists/get-list-info/
- Get member info (`GET /lists/{list_id}/members/{subscriber_hash}`, `fields` picks the fields; any
  member whatever its status, 404 for an address that is not on the list):
  https://mailchimp.com/developer/marketing/api/list-members/get-member-info/ and "Check subscription
  status" in https://developer.mailchimp.com/documentation/mailchimp/guides/manage-subscribers-with-the-mailchimp-api/
- Authentication (basic auth with any user name and the API key; data center from the key's suffix)
  and the limit of 10 simultaneous connections:
  https://mailchimp.com/developer/marketing/docs/fundamentals/
- Errors are problem documents (`title`, `detail`, `status`):
  https://mailchimp.com/developer/marketing/docs/errors/
"""

from __future__ import annotations

import base64
import copy
import hashlib
import threading
from typing import Any

import pytest

from destinations.api.models import AuthMethod, JobType, SyncMode
from destinations.providers._http import HttpClientFactory
from destinations.providers.base import Credentials, Record, SyncContext
from destinations.providers.errors import (
    AuthenticationFailed,
    ConfigurationError,
    MalformedResponse,
    ProviderError,
)
from destinations.providers.mailchimp import api_root, provider
from tests.providers.conftest import batches_of, make_context, run
from tests.providers.servers import FakeServer, Request, Response

API_KEY = "0123456789abcdef-us6"


def basic_password(request: Request) -> str | None:
    """Mailchimp accepts any user name with the API key as the password."""
    scheme, _, encoded = (request.header("authorization") or "").partition(" ")
    if scheme != "Basic":
        return None
    return base64.b64decode(encoded).decode().partition(":")[2]


class Audience:
    """A Mailchimp audience as the Marketing API documents it.

    - Members are known by the MD5 of the lower-cased address (the subscriber hash).
    - Batch subscribe creates new members with the `status` sent; with `update_existing: false` an
      existing member is an `ERROR_CONTACT_EXISTS` error, with `true` its status *is changed* to the
      one sent, except that unsubscribed, cleaned and compliance-state members cannot be subscribed
      again ("is in a compliance state … and cannot be subscribed").
    - "Add or update list member" (PUT …/members/{subscriber_hash}) applies `status_if_new` to new
      members only and changes an existing member's status only when `status` is sent.
    - Permanently deleted ("forgotten") addresses cannot be re-imported by either call.
    """

    def __init__(
        self,
        existing: set[str] | dict[str, str] | None = None,
        *,
        compliance: set[str] = frozenset(),  # type: ignore[assignment]
        forgotten: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        statuses = existing if isinstance(existing, dict) else dict.fromkeys(existing or (), "subscribed")
        self.members: dict[str, str] = {email.lower(): status for email, status in statuses.items()}
        """Lower-cased address → subscription status."""
        self.merge_fields: dict[str, dict[str, Any]] = {email: {} for email in self.members}
        self.tags: dict[str, set[str]] = {email: set() for email in self.members}
        self.compliance = {email.lower() for email in compliance}
        self.forgotten = {email.lower() for email in forgotten}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        if basic_password(request) != API_KEY:
            return Response(
                401, {"title": "API Key Invalid", "detail": "Your API key may be invalid", "status": 401}
            )
        if request.path == "/3.0/ping":
            return Response(200, {"health_status": "Everything's Chimpy!"})
        if request.method == "POST" and request.path == "/3.0/lists/abc123":
            return self._batch(request.json())
        if request.method == "GET" and request.path == "/3.0/lists/abc123":
            return Response(200, {"id": "abc123"})
        if request.method == "GET" and request.path == "/3.0/lists/abc123/members":
            return self._page(int(request.query["count"]), int(request.query["offset"]))
        parts = request.path.split("/")
        if parts[:5] == ["", "3.0", "lists", "abc123", "members"] and len(parts) >= 6:
            if request.method == "GET" and len(parts) == 6:
                return self._get(parts[5], request.query.get("fields"))
            if request.method == "PUT" and len(parts) == 6:
                return self._put(parts[5], request.json())
            if request.method == "PATCH" and len(parts) == 6:
                return self._patch(parts[5], request.json())
            if request.method == "POST" and parts[6:] == ["tags"]:
                return self._tag(parts[5], request.json())
        return problem(404, "Resource Not Found", "The requested resource could not be found.")

    def _batch(self, body: dict[str, Any]) -> Response:
        if len(body["members"]) > 500:
            return problem(400, "Invalid Resource", "too many members")
        new, updated, errors = [], [], []
        for member in body["members"]:
            email = member["email_address"]
            key = email.strip().lower()

            def error(code: str, text: str, email: str = email) -> None:
                errors.append({"email_address": email, "error": text, "error_code": code})

            with self._lock:
                if "@" not in email:
                    error(
                        "ERROR_GENERIC", f"{email} looks fake or invalid, please enter a real email address."
                    )
                elif key in self.forgotten:
                    error("ERROR_GENERIC", f"{email} was permanently deleted and cannot be re-imported.")
                elif key not in self.members:
                    self.members[key] = member["status"]
                    self.merge_fields[key] = dict(member.get("merge_fields", {}))
                    self.tags[key] = set(member.get("tags", []))
                    new.append({"email_address": email, "status": member["status"]})
                elif body.get("update_existing") is not True:
                    error(
                        "ERROR_CONTACT_EXISTS",
                        f"{email} is already a list member. Use PUT to insert or update list members.",
                    )
                elif not self._may_change(key, member["status"]):
                    error("ERROR_GENERIC", COMPLIANCE.format(email=email))
                else:
                    self.members[key] = member["status"]
                    self.merge_fields[key].update(member.get("merge_fields", {}))
                    updated.append({"email_address": email, "status": member["status"]})
        return Response(
            200,
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
            },
        )

    def _may_change(self, key: str, status: str) -> bool:
        """Nobody can be subscribed again once unsubscribed, cleaned or under compliance review."""
        current = self.members[key]
        if status == current:
            return True
        if key in self.compliance:
            return False
        return not (status in ("subscribed", "pending") and current in ("unsubscribed", "cleaned"))

    def _put(self, subscriber_hash: str, body: dict[str, Any]) -> Response:
        email = body["email_address"]
        key = email.strip().lower()
        if hashlib.md5(key.encode()).hexdigest() != subscriber_hash:
            return problem(400, "Invalid Resource", "The email address does not match the subscriber hash.")
        with self._lock:
            if key in self.forgotten:
                return problem(400, "Forgotten Email Not Subscribed", COMPLIANCE.format(email=email))
            if key not in self.members:
                status = body.get("status") or body.get("status_if_new")
                if status is None:
                    return problem(400, "Invalid Resource", "status_if_new is required for new members")
                self.members[key] = status
                self.merge_fields[key] = {}
                self.tags[key] = set()
            elif "status" in body:
                if not self._may_change(key, body["status"]):
                    return problem(400, "Member In Compliance State", COMPLIANCE.format(email=email))
                self.members[key] = body["status"]
            self.merge_fields[key].update(body.get("merge_fields", {}))
            return Response(200, {"email_address": email, "status": self.members[key]})

    def _get(self, subscriber_hash: str, fields: str | None) -> Response:
        """Get member info: any member whatever its status; 404 for an address that is not one
        (never added, deleted, or permanently deleted). `fields` picks the fields returned."""
        with self._lock:
            key = next(
                (k for k in self.members if hashlib.md5(k.encode()).hexdigest() == subscriber_hash), None
            )
            if key is None:
                return problem(404, "Resource Not Found", "The requested resource could not be found.")
            member = {"id": subscriber_hash, "email_address": key, "status": self.members[key]}
        if fields:
            member = {name: value for name, value in member.items() if name in fields.split(",")}
        return Response(200, member)

    def _patch(self, subscriber_hash: str, body: dict[str, Any]) -> Response:
        with self._lock:
            key = next(
                (k for k in self.members if hashlib.md5(k.encode()).hexdigest() == subscriber_hash), None
            )
            if key is None:
                return problem(404, "Resource Not Found", "The requested resource could not be found.")
            if "status" in body:
                if not self._may_change(key, body["status"]):
                    return problem(400, "Member In Compliance State", COMPLIANCE.format(email=key))
                self.members[key] = body["status"]
            self.merge_fields[key].update(body.get("merge_fields", {}))
            return Response(200, {"email_address": key, "status": self.members[key]})

    def _tag(self, subscriber_hash: str, body: dict[str, Any]) -> Response:
        with self._lock:
            for key in self.members:
                if hashlib.md5(key.encode()).hexdigest() == subscriber_hash:
                    for tag in body["tags"]:
                        if tag["status"] == "active":
                            self.tags[key].add(tag["name"])
                        else:
                            self.tags[key].discard(tag["name"])
                    return Response(204)
        return problem(404, "Resource Not Found", "The requested resource could not be found.")

    def _page(self, count: int, offset: int) -> Response:
        emails = sorted(self.members)
        page = [
            {
                "id": f"id{i}",
                "email_address": e,
                "status": self.members[e],
                "merge_fields": {"FNAME": e.split("@")[0]},
                "tags": [{"id": 1, "name": "vip"}],
            }
            for i, e in enumerate(emails[offset : offset + count], start=offset)
        ]
        return Response(200, {"members": page, "total_items": len(emails), "list_id": "abc123"})


COMPLIANCE = (
    "{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be "
    "subscribed."
)


def problem(status: int, title: str, detail: str) -> Response:
    """Mailchimp's errors are problem documents: https://mailchimp.com/developer/marketing/docs/errors/"""
    return Response(status, {"title": title, "detail": detail, "status": status})


def context(
    server: FakeServer,
    http: HttpClientFactory,
    job_type: JobType = JobType.EXPORT,
    mode: SyncMode = SyncMode.UPSERT,
    **config: Any,
) -> SyncContext:
    return make_context(
        provider,
        job_type,
        {"listId": "abc123", **config},
        method=AuthMethod.API_KEY,
        values={"apiKey": API_KEY},
        endpoint=f"{server.url}/3.0",
        http=http,
        mode=mode,
    )


def records(count: int) -> list[Record]:
    return [{"email": f"m{i:05}@example.com", "first_name": f"F{i}"} for i in range(count)]


def test_members_go_in_batches_of_at_most_500_without_update_existing(http: HttpClientFactory) -> None:
    audience = Audience()
    with FakeServer(audience) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of(records(1200), 300)))
    sizes = sorted(len(r.json()["members"]) for r in server.requests)
    assert sizes == [200, 500, 500]
    assert all(r.json()["update_existing"] is False for r in server.requests)
    assert ctx.counts.added == 1200


def test_existing_members_count_as_updated(http: HttpClientFactory) -> None:
    with FakeServer(Audience(existing={"m00000@example.com"})) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of(records(3))))
    assert (ctx.counts.added, ctx.counts.updated) == (2, 1)


def test_existing_members_keep_their_subscription_status(http: HttpClientFactory) -> None:
    """Add or update list member: `status_if_new` "is only used if the member is new"; batch subscribe's
    `update_existing` would change existing members' status, so it is never sent for an export.
    https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/
    """
    audience = Audience(
        {
            "sub@example.com": "subscribed",
            "unsub@example.com": "unsubscribed",
            "pend@example.com": "pending",
            "clean@example.com": "cleaned",
            "trans@example.com": "transactional",
            "review@example.com": "unsubscribed",
        },
        compliance={"review@example.com"},
        forgotten={"erased@example.com"},
    )
    people = ["sub", "unsub", "pend", "clean", "trans", "review", "erased", "new"]
    with FakeServer(audience) as server:
        ctx = context(server, http, mergeFields={"FNAME": "first_name"}, statusIfNew="subscribed")
        run(
            provider.export(
                ctx, batches_of([{"email": f"{p}@example.com", "first_name": p.title()} for p in people])
            )
        )
    assert audience.members == {
        "sub@example.com": "subscribed",
        "unsub@example.com": "unsubscribed",
        "pend@example.com": "pending",
        "clean@example.com": "cleaned",
        "trans@example.com": "transactional",
        "review@example.com": "unsubscribed",
        "new@example.com": "subscribed",
    }
    assert audience.merge_fields["unsub@example.com"] == {"FNAME": "Unsub"}
    assert (ctx.counts.added, ctx.counts.updated, ctx.counts.omitted) == (1, 6, 1)
    assert (
        "erased@example.com: ERROR_GENERIC: erased@example.com was permanently deleted"
        in (ctx.counts.omission_samples[0])
    )
    puts = [r for r in server.requests if r.method == "PUT"]
    assert all("status" not in r.json() and r.json()["status_if_new"] == "subscribed" for r in puts)
    assert len(puts) == 6


def test_an_existing_member_is_found_whatever_the_case_of_the_address(http: HttpClientFactory) -> None:
    audience = Audience({"jane.doe@example.com": "unsubscribed"})
    with FakeServer(audience) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of([{"email": " Jane.Doe@Example.com "}])))
    assert audience.members == {"jane.doe@example.com": "unsubscribed"}
    assert (ctx.counts.added, ctx.counts.updated) == (0, 1)
    (put,) = [r for r in server.requests if r.method == "PUT"]
    assert put.path == "/3.0/lists/abc123/members/" + hashlib.md5(b"jane.doe@example.com").hexdigest()


def test_existing_members_get_the_tags_through_the_tags_endpoint(http: HttpClientFactory) -> None:
    audience = Audience({"old@example.com": "pending"})
    with FakeServer(audience) as server:
        run(provider.export(context(server, http, tags=["crm"]), batches_of([{"email": "old@example.com"}])))
    assert audience.tags["old@example.com"] == {"crm"}
    assert audience.members["old@example.com"] == "pending"


def test_pending_as_status_if_new_does_not_touch_subscribed_members(http: HttpClientFactory) -> None:
    audience = Audience({"sub@example.com": "subscribed"})
    with FakeServer(audience) as server:
        run(
            provider.export(
                context(server, http, statusIfNew="pending"),
                batches_of([{"email": "sub@example.com"}, {"email": "fresh@example.com"}]),
            )
        )
    assert audience.members == {"sub@example.com": "subscribed", "fresh@example.com": "pending"}


def test_member_identity_is_the_trimmed_lower_cased_address() -> None:
    config = provider.parse_config(JobType.EXPORT, {"listId": "abc123", "emailField": "mail"})
    assert provider.member_identities(config, {"mail": " Jane.Doe@Example.COM "}) == {
        "email:jane.doe@example.com"
    }
    assert provider.member_identities(config, {"mail": "no address"}) == frozenset()
    assert provider.member_identities(config, {"other": "x@example.com"}) == frozenset()


def test_merge_fields_tags_and_status_are_sent(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        run(
            provider.export(
                context(
                    server, http, mergeFields={"FNAME": "first_name"}, tags=["crm"], statusIfNew="pending"
                ),
                batches_of(records(1)),
            )
        )
    (member,) = server.requests[0].json()["members"]
    assert member == {
        "email_address": "m00000@example.com",
        "status": "pending",
        "merge_fields": {"FNAME": "F0"},
        "tags": ["crm"],
    }


def test_per_member_errors_are_omitted_with_sample_reasons(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of([*records(2), {"email": "not-an-email"}])))
    assert (ctx.counts.added, ctx.counts.omitted) == (2, 1)
    assert "looks fake or invalid" in ctx.counts.omission_samples[0]


def test_records_without_email_are_invalid_and_never_sent(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of([{"name": "no email"}, *records(1)])))
    assert (ctx.counts.added, ctx.counts.omitted, ctx.counts.invalid) == (1, 0, 1)
    assert [m["email_address"] for m in server.requests[0].json()["members"]] == ["m00000@example.com"]


def test_a_refused_member_is_kept_under_its_key_with_code_and_message_and_no_other_value(
    http: HttpClientFactory,
) -> None:
    with FakeServer(Audience(forgotten={"gone@example.com"})) as server:
        ctx = context(server, http, mergeFields={"FNAME": "first_name"})
        run(provider.export(ctx, batches_of([{"email": "gone@example.com", "first_name": "Gwendolyn"}])))
    assert ctx.counts.rejected == {
        "gone@example.com": "ERROR_GENERIC: gone@example.com was permanently deleted and cannot be "
        "re-imported."
    }
    assert ctx.counts.omitted == 1


def test_insert_mode_creates_new_members_and_leaves_existing_ones_untouched(http: HttpClientFactory) -> None:
    audience = Audience({"m00000@example.com": "unsubscribed"})
    audience.merge_fields["m00000@example.com"] = {"FNAME": "Old"}
    with FakeServer(audience) as server:
        ctx = context(server, http, mode=SyncMode.INSERT, mergeFields={"FNAME": "first_name"}, tags=["crm"])
        run(provider.export(ctx, batches_of(records(3))))
    assert (ctx.counts.added, ctx.counts.updated, ctx.counts.skipped) == (2, 0, 1)
    assert audience.merge_fields["m00000@example.com"] == {"FNAME": "Old"}
    assert audience.tags["m00000@example.com"] == set()
    assert audience.members["m00001@example.com"] == "subscribed"
    assert [r.method for r in server.requests] == ["POST"]


def test_update_mode_updates_existing_members_and_creates_nobody(http: HttpClientFactory) -> None:
    audience = Audience({"m00000@example.com": "unsubscribed", "m00002@example.com": "subscribed"})
    with FakeServer(audience) as server:
        ctx = context(server, http, mode=SyncMode.UPDATE, mergeFields={"FNAME": "first_name"})
        run(provider.export(ctx, batches_of(records(3))))
    assert (ctx.counts.added, ctx.counts.updated, ctx.counts.skipped) == (0, 2, 1)
    assert audience.members == {"m00000@example.com": "unsubscribed", "m00002@example.com": "subscribed"}
    assert audience.merge_fields["m00000@example.com"] == {"FNAME": "F0"}
    patches = [r for r in server.requests if r.method == "PATCH"]
    assert len(patches) == 3 and all(
        "status" not in r.json() and "status_if_new" not in r.json() for r in patches
    )
    assert not [r for r in server.requests if r.method in ("POST", "PUT")]


def test_update_mode_on_an_unknown_audience_fails_before_sending_anyone(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server, pytest.raises(ProviderError, match="no audience 'nope'"):
        run(
            provider.export(
                context(server, http, mode=SyncMode.UPDATE, listId="nope"), batches_of(records(2))
            )
        )
    assert [r.method for r in server.requests] == ["GET"]


def test_mailchimp_declares_all_four_modes() -> None:
    assert [m.value for m in provider.modes] == ["upsert", "mirror", "insert", "update"]
    assert provider.supports_mirror


def test_at_most_ten_batches_are_in_flight(http: HttpClientFactory) -> None:
    audience = Audience()
    open_requests = most_open = 0
    lock = threading.Lock()
    ten_waiting = threading.Event()
    original = audience._batch

    def held_batch(body: dict[str, Any]) -> Response:
        nonlocal open_requests, most_open
        with lock:
            open_requests += 1
            most_open = max(most_open, open_requests)
            if open_requests >= 10:
                ten_waiting.set()
        ten_waiting.wait(5)  # hold the first requests until ten are open at once
        try:
            return original(body)
        finally:
            with lock:
                open_requests -= 1

    audience._batch = held_batch  # type: ignore[method-assign]
    with FakeServer(audience) as server:
        run(provider.export(context(server, http), batches_of(records(500 * 15), 500)))
    assert most_open == 10


def test_mirror_removal_unsubscribes_members(http: HttpClientFactory) -> None:
    audience = Audience(existing={"gone@example.com"})
    with FakeServer(audience) as server:
        ctx = context(server, http, mode=SyncMode.MIRROR)
        run(provider.remove(ctx, batches_of([{"email": "gone@example.com"}])))
    assert audience.members["gone@example.com"] == "unsubscribed"
    assert ctx.counts.removed == 1


def test_import_pages_through_members_with_count_and_offset(http: HttpClientFactory) -> None:
    audience = Audience(existing={f"x{i}@example.com" for i in range(25)})
    with FakeServer(audience) as server:
        ctx = context(server, http, JobType.IMPORT, pageSize=10)

        async def collect() -> list[list[Record]]:
            return [batch async for batch in provider.import_records(ctx)]

        pages = run(collect())
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [r.query["offset"] for r in server.requests] == ["0", "10", "20"]
    assert pages[0][0] == {
        "id": "id0",
        "email": "x0@example.com",
        "status": "subscribed",
        "last_changed": None,
        "FNAME": "x0",
        "tags": ["vip"],
    }


def test_unknown_audience_fails_with_the_list_id(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server, pytest.raises(ProviderError, match="nope"):
        run(provider.export(context(server, http, listId="nope"), batches_of(records(1))))


def test_wrong_api_key_is_an_authentication_failure(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = make_context(
            provider,
            JobType.EXPORT,
            {"listId": "abc123"},
            method=AuthMethod.API_KEY,
            values={"apiKey": "wrong-us6"},
            endpoint=f"{server.url}/3.0",
            http=http,
        )
        with pytest.raises(AuthenticationFailed, match="API Key Invalid"):
            run(provider.export(ctx, batches_of(records(1))))


def test_malformed_batch_answer_fails_the_run(http: HttpClientFactory) -> None:
    with (
        FakeServer(lambda request: Response(200, {"unexpected": True})) as server,
        pytest.raises(MalformedResponse),
    ):
        run(provider.export(context(server, http), batches_of(records(1))))


def test_api_root_comes_from_the_key_suffix() -> None:
    assert (
        api_root(Credentials(AuthMethod.API_KEY, {"apiKey": API_KEY})) == "https://us6.api.mailchimp.com/3.0"
    )


def test_a_key_without_data_center_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="us6"):
        api_root(Credentials(AuthMethod.API_KEY, {"apiKey": "nodatacenter"}))


def test_credential_check_pings() -> None:
    with FakeServer(Audience()) as server:
        good = provider.check_credentials(
            Credentials(AuthMethod.API_KEY, {"apiKey": API_KEY}, f"{server.url}/3.0")
        )
        bad = provider.check_credentials(
            Credentials(AuthMethod.API_KEY, {"apiKey": "x-us6"}, f"{server.url}/3.0")
        )
    assert good.healthy and "Chimpy" in good.message
    assert not bad.healthy and "401" in bad.message


# ------------------------------------------------------------------------- dry runs (foresee)
# A dry run of an insert or update job checks the audience and reads each distinct address once with
# "Get member info" (404 = not on the list, per "Check subscription status" in
# https://developer.mailchimp.com/documentation/mailchimp/guides/manage-subscribers-with-the-mailchimp-api/),
# sends nothing else, and says record by record what the run would do; then the run does exactly that.


async def foreseen(batches: Any) -> list[tuple[str | None, str]]:
    return [(item.record.get("email"), item.outcome) async for batch in batches for item in batch]


def member_path(email: str) -> str:
    return "/3.0/lists/abc123/members/" + hashlib.md5(email.encode()).hexdigest()


def test_an_insert_dry_run_only_reads_members_and_foresees_what_the_run_then_does(
    http: HttpClientFactory,
) -> None:
    audience = Audience({"old@example.com": "unsubscribed", "kept@example.com": "subscribed"})
    source = [
        {"email": "new1@example.com", "first_name": "A"},
        {"email": " Old@Example.com ", "first_name": "B"},
        {"email": "new1@example.com", "first_name": "C"},
        {"first_name": "No email"},
        {"email": "NEW1@example.com", "first_name": "D"},
        {"email": "new2@example.com", "first_name": "E"},
        {"email": "kept@example.com", "first_name": "F"},
    ]
    with FakeServer(audience) as server:
        ctx = context(server, http, mode=SyncMode.INSERT, mergeFields={"FNAME": "first_name"}, tags=["crm"])
        preview = run(foreseen(provider.foresee(ctx, batches_of(source, 3))))
        requests = list(server.requests)
        sync = context(server, http, mode=SyncMode.INSERT)
        run(provider.export(sync, batches_of(source, 3)))

    assert preview == [
        ("new1@example.com", "added"),
        (" Old@Example.com ", "skipped"),  # a member, whatever the case and spaces of the address
        ("new1@example.com", "skipped"),  # the run would create it first, then find it
        (None, "skipped"),
        ("NEW1@example.com", "skipped"),  # a repeat in a later batch: not even looked up again
        ("new2@example.com", "added"),
        ("kept@example.com", "skipped"),
    ]
    assert requests[0].path == "/3.0/lists/abc123"
    assert sorted(r.path for r in requests[1:]) == sorted(
        member_path(email)
        for email in ("new1@example.com", "old@example.com", "new2@example.com", "kept@example.com")
    )
    assert {r.method for r in requests} == {"GET"}
    assert all(r.query == {"fields": "status"} for r in requests[1:])
    # the run afterwards: what the dry run foresaw (records without an email are invalid there)
    assert (sync.counts.added, sync.counts.skipped, sync.counts.invalid) == (2, 4, 1)


def test_an_update_dry_run_foresees_members_updated_and_others_skipped_without_changing_them(
    http: HttpClientFactory,
) -> None:
    audience = Audience({"a@example.com": "unsubscribed", "b@example.com": "pending"})
    source = [
        {"email": "A@Example.com", "first_name": "New"},
        {"email": "c@example.com", "first_name": "New"},
        {"email": "b@example.com", "first_name": "New"},
        {"email": "a@example.com", "first_name": "Again"},
        {"first_name": "No email"},
    ]
    with FakeServer(audience) as server:
        ctx = context(server, http, mode=SyncMode.UPDATE, mergeFields={"FNAME": "first_name"}, tags=["crm"])
        preview = run(foreseen(provider.foresee(ctx, batches_of(source))))
        requests = list(server.requests)
        untouched = copy.deepcopy((audience.members, audience.merge_fields, audience.tags))
        sync = context(server, http, mode=SyncMode.UPDATE, mergeFields={"FNAME": "first_name"})
        run(provider.export(sync, batches_of(source)))

    assert preview == [
        ("A@Example.com", "updated"),
        ("c@example.com", "skipped"),
        ("b@example.com", "updated"),
        ("a@example.com", "updated"),  # the run changes it twice
        (None, "skipped"),
    ]
    assert [r.method for r in requests] == ["GET"] * 4  # the audience, then a, c and b once each
    assert sorted(r.path for r in requests[1:]) == sorted(
        member_path(email) for email in ("a@example.com", "b@example.com", "c@example.com")
    )
    assert untouched == (
        {"a@example.com": "unsubscribed", "b@example.com": "pending"},
        {"a@example.com": {}, "b@example.com": {}},
        {"a@example.com": set(), "b@example.com": set()},
    )
    assert (sync.counts.updated, sync.counts.skipped, sync.counts.invalid) == (3, 1, 1)


def test_a_dry_run_on_an_unknown_audience_fails_before_looking_anyone_up(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server, pytest.raises(ProviderError, match="no audience 'nope'"):
        ctx = context(server, http, mode=SyncMode.INSERT, listId="nope")
        run(foreseen(provider.foresee(ctx, batches_of(records(3)))))
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/3.0/lists/nope")]


def test_a_dry_run_reads_at_most_ten_members_at_once(http: HttpClientFactory) -> None:
    """Mailchimp allows 10 simultaneous connections per account:
    https://mailchimp.com/developer/marketing/docs/fundamentals/"""
    audience = Audience()
    open_requests = most_open = 0
    lock = threading.Lock()
    ten_waiting = threading.Event()
    original = audience._get

    def held_get(subscriber_hash: str, fields: str | None) -> Response:
        nonlocal open_requests, most_open
        with lock:
            open_requests += 1
            most_open = max(most_open, open_requests)
            if open_requests >= 10:
                ten_waiting.set()
        if not ten_waiting.wait(2):  # hold the first lookups until ten are open at once
            ten_waiting.set()
        try:
            return original(subscriber_hash, fields)
        finally:
            with lock:
                open_requests -= 1

    audience._get = held_get  # type: ignore[method-assign]
    with FakeServer(audience) as server:
        preview = run(
            foreseen(provider.foresee(context(server, http, mode=SyncMode.UPDATE), batches_of(records(40))))
        )
    assert most_open == 10
    assert [outcome for _, outcome in preview] == ["skipped"] * 40
