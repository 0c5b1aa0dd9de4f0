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
from pydantic import ValidationError

from destinations.api.models import AuthMethod, JobType, SyncMode
from destinations.providers._http import HttpClientFactory
from destinations.providers.base import Credentials, Record, SyncContext
from destinations.providers.errors import AuthenticationFailed, MalformedResponse, ProviderError, RateLimited
from destinations.providers.facebook import hash_identifier, normalize, provider
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


@pytest.mark.parametrize(
    ("raw", "region", "normalized"),
    [
        ("+44 (0)20 7946-0958", None, "442079460958"),  # the UK trunk 0 is not part of the number
        ("020 7946 0958", "GB", "442079460958"),
        ("0044 20 7946 0958", None, "442079460958"),  # international call prefix
        ("(650)555-1212", "US", "16505551212"),  # Meta's example (Business SDK, UserData.setPhone)
        ("1(650)555-1212", None, "16505551212"),
        ("+1 650 555 1212", "GB", "16505551212"),  # a country code wins over the default region
        ("01 23 45 67 89", "FR", "33123456789"),
        ("0033 1 23 45 67 89", None, "33123456789"),
        ("030 123456", "DE", "4930123456"),
        ("090-1234-5678", "JP", "819012345678"),
        ("+91 98765 43210", None, "919876543210"),
    ],
)
def test_phone_numbers_are_country_code_and_national_number(
    raw: str, region: str | None, normalized: str
) -> None:
    """ "Phone numbers must include a country code", digits only, no leading zeros (Meta's hashing guide)."""
    assert normalize("PHONE", raw, region) == normalized


@pytest.mark.parametrize("raw", ["0033 1 23", "12", "call me", "+44 20"])
def test_what_cannot_be_a_phone_number_is_left_out(raw: str) -> None:
    assert normalize("PHONE", raw) is None


def test_meta_documented_phone_hash() -> None:
    """Meta's Conversions API parameters page: (650)555-1212 in the US hashes to e323ec62…3176."""
    assert (
        hash_identifier("PHONE", "(650)555-1212", "US")
        == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    )


def test_the_default_phone_region_is_a_config_field(http: HttpClientFactory) -> None:
    with FakeServer(Audience()) as server:
        run(
            provider.export(
                context(server, http, identifiers={"PHONE": "phone"}, defaultPhoneRegion="GB"),
                batches_of([{"phone": "020 7946 0958"}]),
            )
        )
    assert server.requests[0].json()["payload"]["data"] == [[sha("442079460958")]]


def test_an_unknown_default_phone_region_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="'XX' is not a region with known phone numbering"):
        provider.parse_config(JobType.EXPORT, {"audienceId": "1", "defaultPhoneRegion": "XX"})


def test_member_identities_are_the_hashes_meta_matches_on() -> None:
    config = provider.parse_config(
        JobType.EXPORT, {"audienceId": "1", "identifiers": {"EMAIL": "email", "PHONE": "phone"}}
    )
    one_way = {"email": "Jane.Doe@Example.com", "phone": "+44 (0)20 7946-0958"}
    other_way = {"email": " jane.doe@example.com", "phone": "0044 20 7946 0958"}
    expected = {f"EMAIL:{sha('jane.doe@example.com')}", f"PHONE:{sha('442079460958')}"}
    assert provider.member_identities(config, one_way) == expected
    assert provider.member_identities(config, other_way) == expected
    assert provider.member_identities(config, {"email": "", "phone": "n/a"}) == frozenset()


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


def test_records_without_identifiers_are_invalid_apart_from_those_meta_refuses(
    http: HttpClientFactory,
) -> None:
    with FakeServer(Audience()) as server:
        ctx = context(server, http)
        run(provider.export(ctx, batches_of([{"email": "   "}, *people(1)])))
    assert (ctx.counts.added, ctx.counts.omitted, ctx.counts.invalid) == (1, 0, 1)


def test_facebook_declares_upsert_and_mirror_only() -> None:
    """Meta's users endpoint adds or removes hashed identifiers and never says whether a user was in the
    audience already (num_received, num_invalid_entries), so insert and update cannot be honoured:
    https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/"""
    assert [m.value for m in provider.modes] == ["upsert", "mirror"]


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
