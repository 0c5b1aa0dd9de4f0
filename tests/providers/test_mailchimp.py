"""Contract tests of the `mailchimp` provider against a local server speaking Marketing API 3.0.

- Batch subscribe or unsubscribe (`POST /lists/{list_id}`, `members` ≤ 500, `update_existing`,
  answer with `new_members`, `updated_members`, `errors`, `total_created`, `total_updated`):
  https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/
- List members (`GET /lists/{list_id}/members`, `count` ≤ 1000 and `offset`, `total_items`):
  https://mailchimp.com/developer/marketing/api/list-members/list-members-info/
- Ping (`GET /ping`, `health_status`): https://mailchimp.com/developer/marketing/api/ping/
- Authentication (basic auth with any user name and the API key; data center from the key's suffix)
  and the limit of 10 simultaneous connections:
  https://mailchimp.com/developer/marketing/docs/fundamentals/
- Errors are problem documents (`title`, `detail`, `status`):
  https://mailchimp.com/developer/marketing/docs/errors/
"""

from __future__ import annotations

import base64
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
    """A Mailchimp audience: batch subscribe/update with per-member errors, members paging."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.members: dict[str, str] = dict.fromkeys(existing or set(), "subscribed")
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self.gate = threading.Barrier(1)

    def __call__(self, request: Request) -> Response:
        if basic_password(request) != API_KEY:
            return Response(
                401, {"title": "API Key Invalid", "detail": "Your API key may be invalid", "status": 401}
            )
        if request.path == "/3.0/ping":
            return Response(200, {"health_status": "Everything's Chimpy!"})
        if request.method == "POST" and request.path == "/3.0/lists/abc123":
            return self._batch(request.json())
        if request.method == "GET" and request.path == "/3.0/lists/abc123/members":
            return self._page(int(request.query["count"]), int(request.query["offset"]))
        return Response(
            404,
            {
                "title": "Resource Not Found",
                "detail": "The requested resource could not be found.",
                "status": 404,
            },
        )

    def _batch(self, body: dict[str, Any]) -> Response:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if len(body["members"]) > 500 or body.get("update_existing") is not True:
                return Response(
                    400, {"title": "Invalid Resource", "detail": "too many members", "status": 400}
                )
            new, updated, errors = [], [], []
            for member in body["members"]:
                email = member["email_address"]
                if "@" not in email:
                    errors.append(
                        {
                            "email_address": email,
                            "error": f"{email} looks fake or invalid",
                            "error_code": "ERROR_CONTACT_EXISTS",
                        }
                    )
                    continue
                with self._lock:
                    (updated if email in self.members else new).append({"email_address": email})
                    self.members[email] = member["status"]
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
        finally:
            with self._lock:
                self.in_flight -= 1

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


def test_members_go_in_batches_of_at_most_500_with_update_existing(http: HttpClientFactory) -> None:
    audience = Audience()
    with FakeServer(audience) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of(records(1200), 300)))
    sizes = sorted(len(r.json()["members"]) for r in server.requests)
    assert sizes == [200, 500, 500]
    assert all(r.json()["update_existing"] is True for r in server.requests)
    assert ctx.counts.added == 1200


def test_existing_members_count_as_updated(http: HttpClientFactory) -> None:
    with FakeServer(Audience(existing={"m00000@example.com"})) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of(records(3))))
    assert (ctx.counts.added, ctx.counts.updated) == (2, 1)


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


def test_records_without_email_are_omitted_locally(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of([{"name": "no email"}, *records(1)])))
    assert (ctx.counts.added, ctx.counts.omitted) == (1, 1)


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
