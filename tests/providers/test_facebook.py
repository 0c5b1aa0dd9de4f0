"""Contract tests of the `facebook` provider against a local server speaking the Graph Marketing API.

- Custom Audience users (`POST`/`DELETE /{version}/{audience_id}/users`, `payload.schema`,
  `payload.data`, `session`, at most 10,000 users per request, `num_received`,
  `num_invalid_entries`): https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/
  and https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users/
- Hashing and normalising (trim, lower case, SHA-256 hex; phone digits with country code, no leading
  zeros; names without punctuation; US ZIP five digits; two-letter country; gender f/m):
  https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/#hash
- Throttling codes (4, 17, 32, 613, 80000-80014 in `error.code`) and `X-Business-Use-Case-Usage`
  with `estimated_time_to_regain_access`: https://developers.facebook.com/docs/marketing-api/overview/rate-limiting/
  and https://developers.facebook.com/docs/graph-api/overview/rate-limiting/
- Error objects and code 190 (invalid token): https://developers.facebook.com/docs/graph-api/guides/error-handling/
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from destinations.api.models import AuthMethod, JobType, SyncMode
from destinations.providers._http import HttpClientFactory
from destinations.providers.base import Credentials, Record, SyncContext
from destinations.providers.errors import AuthenticationFailed, MalformedResponse, ProviderError, RateLimited
from destinations.providers.facebook import normalize, provider
from tests.providers.conftest import batches_of, make_context, run
from tests.providers.servers import FakeServer, Request, Response

TOKEN = "EAAB-test-token"
PATH = "/v21.0/123456/users"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Audience:
    def __init__(self, invalid: int = 0) -> None:
        self.invalid = invalid

    def __call__(self, request: Request) -> Response:
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Response(
                400,
                {
                    "error": {
                        "message": "Invalid OAuth access token.",
                        "type": "OAuthException",
                        "code": 190,
                        "fbtrace_id": "x",
                    }
                },
            )
        if request.path == "/v21.0/me":
            return Response(200, {"id": "42", "name": "System User"})
        if request.path != PATH:
            return Response(400, {"error": {"message": "Unsupported request", "code": 100}})
        body = request.json()
        data = body["payload"]["data"]
        if len(data) > 10_000:
            return Response(400, {"error": {"message": "too many users", "code": 100}})
        return Response(
            200,
            {
                "audience_id": "123456",
                "session_id": str(body["session"]["session_id"]),
                "num_received": len(data),
                "num_invalid_entries": self.invalid,
                "invalid_entry_samples": {"abc": "invalid email"} if self.invalid else {},
            },
        )


def context(server: FakeServer, http: HttpClientFactory, token: str = TOKEN, **config: Any) -> SyncContext:
    return make_context(
        provider,
        JobType.EXPORT,
        {"audienceId": "123456", **config},
        method=AuthMethod.OAUTH2,
        values={"accessToken": token},
        endpoint=server.url,
        http=http,
        mode=SyncMode.MIRROR,
    )


def people(count: int) -> list[Record]:
    return [{"email": f"  Person{i}@Example.COM ", "phone": f"+1 (555) 000-{i:04}"} for i in range(count)]


def test_emails_are_trimmed_lowercased_and_sha256_hashed(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        run(provider.export(context(server, http), batches_of(people(1))))
    body = server.requests[0].json()
    assert body["payload"] == {"schema": ["EMAIL"], "data": [[sha("person0@example.com")]]}


def test_several_identifiers_follow_the_schema_order(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        run(
            provider.export(
                context(server, http, identifiers={"EMAIL": "email", "PHONE": "phone"}), batches_of(people(1))
            )
        )
    payload = server.requests[0].json()["payload"]
    assert payload["schema"] == ["EMAIL", "PHONE"]
    assert payload["data"] == [[sha("person0@example.com"), sha("15550000000")]]


@pytest.mark.parametrize(
    ("key", "raw", "normalized"),
    [
        ("PHONE", "+44 (0)20 7946-0958", "4402079460958"),
        ("PHONE", "0033 1 23", "33123"),
        ("FN", " Mary-Ann ", "maryann"),
        ("LN", "O'Brien", "obrien"),
        ("CT", "San Francisco", "sanfrancisco"),
        ("ZIP", "94103-1234", "94103"),
        ("ZIP", "SW1A 1AA", "sw1a1aa"),
        ("COUNTRY", "US", "us"),
        ("GEN", "Female", "f"),
        ("DOBY", "1990", "1990"),
    ],
)
def test_identifiers_are_normalized_as_meta_requires(key: str, raw: str, normalized: str) -> None:
    assert normalize(key, raw) == normalized


def test_uploads_are_split_at_the_configured_batch_size_in_one_session(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http, batchSize=4)
        run(provider.export(ctx, batches_of(people(10), 3)))
    sessions = [r.json()["session"] for r in server.requests]
    assert [len(r.json()["payload"]["data"]) for r in server.requests] == [4, 4, 2]
    assert [s["batch_seq"] for s in sessions] == [1, 2, 3]
    assert [s["last_batch_flag"] for s in sessions] == [False, False, True]
    assert len({s["session_id"] for s in sessions}) == 1
    assert ctx.counts.added == 10


def test_batch_size_cannot_exceed_ten_thousand() -> None:
    with pytest.raises(ValueError, match="10000"):
        provider.parse_config(JobType.EXPORT, {"audienceId": "1", "batchSize": 10_001})


def test_invalid_entries_are_omitted(http: HttpClientFactory) -> None:
    with FakeServer(Audience(invalid=2)) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of(people(5))))
    assert (ctx.counts.added, ctx.counts.omitted) == (3, 2)
    assert "invalid email" in ctx.counts.omission_samples[0]


def test_records_without_identifiers_are_omitted_locally(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of([{"email": "   "}, *people(1)])))
    assert (ctx.counts.added, ctx.counts.omitted) == (1, 1)


def test_removal_uses_delete_on_the_same_path(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http)
        run(provider.remove(ctx, batches_of(people(2))))
    assert [(r.method, r.path) for r in server.requests] == [("DELETE", PATH)]
    assert ctx.counts.removed == 2


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80003])
def test_throttling_codes_end_the_run_rate_limited(http: HttpClientFactory, code: int) -> None:
    throttled = Response(400, {"error": {"message": "User request limit reached", "code": code}})
    with FakeServer(lambda request: throttled) as server, pytest.raises(RateLimited) as raised:
        run(provider.export(context(server, http), batches_of(people(1))))
    assert raised.value.retry_after_seconds > 0


def test_throttling_honours_the_estimated_time_to_regain_access(http: HttpClientFactory) -> None:
    usage = {"act_1": [{"type": "custom_audience", "call_count": 100, "estimated_time_to_regain_access": 12}]}
    throttled = Response(
        400,
        {"error": {"message": "limit", "code": 80003}},
        headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
    )
    with FakeServer(lambda request: throttled) as server, pytest.raises(RateLimited) as raised:
        run(provider.export(context(server, http), batches_of(people(1))))
    assert raised.value.retry_after_seconds == 12 * 60


def test_invalid_token_is_an_authentication_failure(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server, pytest.raises(AuthenticationFailed, match="ads_management"):
        run(provider.export(context(server, http, token="expired"), batches_of(people(1))))


def test_unknown_audience_names_the_config_field(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server, pytest.raises(ProviderError, match="audienceId"):
        run(provider.export(context(server, http, audienceId="999"), batches_of(people(1))))


def test_malformed_answer_fails_the_run(http: HttpClientFactory) -> None:
    with FakeServer(lambda request: Response(200, "<html>")) as server, pytest.raises(MalformedResponse):
        run(provider.export(context(server, http), batches_of(people(1))))


def test_server_errors_are_retried(http: HttpClientFactory) -> None:
    answers = [Response(500, {"error": {"message": "unknown", "code": 1}})]
    audience = Audience()

    def flaky(request: Request) -> Response:
        return answers.pop() if answers else audience(request)

    with FakeServer(flaky) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of(people(1))))
    assert ctx.counts.added == 1 and len(server.requests) == 2


def test_credential_check_asks_who_the_token_belongs_to() -> None:
    with FakeServer(Audience()) as server:
        good = provider.check_credentials(Credentials(AuthMethod.OAUTH2, {"accessToken": TOKEN}, server.url))
        bad = provider.check_credentials(Credentials(AuthMethod.OAUTH2, {"accessToken": "nope"}, server.url))
    assert good.healthy and "System User" in good.message
    assert not bad.healthy and "190" in bad.message
