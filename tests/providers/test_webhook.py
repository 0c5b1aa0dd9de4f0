"""Contract tests of the `webhook` provider against a local receiver.

Signing per the Standard Webhooks specification (headers `webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, secret `whsec_` + base64):
https://www.standardwebhooks.com/ and
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from types import SimpleNamespace

import pytest

from destinations.api.models import AuthMethod, JobType
from destinations.providers import webhook
from destinations.providers._http import HttpClientFactory
from destinations.providers.base import Record, SyncContext
from destinations.providers.errors import ConfigurationError, ProviderError
from destinations.providers.webhook import provider
from tests.providers.conftest import batches_of, make_context, run
from tests.providers.servers import FakeServer, Request, Response, closed_port_url

SECRET_BYTES = b"a-thirty-two-byte-long-secret!!!"
SIGNING_SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()
RECORDS = [{"email": f"user{i}@example.com", "n": i} for i in range(25)]


def accept(request: Request) -> Response:
    return Response(200, {"ok": True})


def export_context(
    url: str,
    http: HttpClientFactory,
    *,
    method: AuthMethod = AuthMethod.NONE,
    values: dict[str, str] | None = None,
    **config: object,
) -> SyncContext:
    return make_context(
        provider,
        JobType.EXPORT,
        {"url": url, **config},
        method=method,
        values=values or {},
        endpoint=None,
        http=http,
    )


def export(context: SyncContext, records: list[Record] = RECORDS) -> None:
    run(provider.export(context, batches_of(records, 7)))


def test_records_are_posted_in_batches_of_the_configured_size(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        context = export_context(f"{server.url}/hook", http, batch_size=10)
        export(context)
    sizes = sorted(len(request.json()["records"]) for request in server.requests)
    assert sizes == [5, 10, 10]
    assert context.counts.added == 25


def test_batches_are_json_objects_with_a_records_array(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(export_context(server.url, http, batch_size=100))
    (request,) = server.requests
    assert request.header("content-type") == "application/json"
    assert request.json() == {"records": RECORDS}


def test_bearer_token_for_oauth2(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(export_context(server.url, http, method=AuthMethod.OAUTH2, values={"accessToken": "tok-123"}))
    assert server.requests[0].header("authorization") == "Bearer tok-123"


def test_basic_auth(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(
            export_context(
                server.url, http, method=AuthMethod.BASIC, values={"username": "ann", "password": "pw"}
            )
        )
    assert server.requests[0].header("authorization") == "Basic " + base64.b64encode(b"ann:pw").decode()


def test_api_key_in_the_configured_header(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(
            export_context(
                server.url,
                http,
                method=AuthMethod.API_KEY,
                values={"apiKey": "k-1"},
                api_key_header="X-Token",
            )
        )
    assert server.requests[0].header("x-token") == "k-1"


def test_requests_are_signed_per_standard_webhooks(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(export_context(server.url, http, values={"signingSecret": SIGNING_SECRET}, batch_size=100))
    (request,) = server.requests
    message_id, timestamp = request.header("webhook-id"), request.header("webhook-timestamp")
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(SECRET_BYTES, signed, hashlib.sha256).digest()).decode()
    assert request.header("webhook-signature") == f"v1,{expected}"


def test_every_retry_of_a_batch_is_the_same_message_signed_afresh(
    http: HttpClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard Webhooks: `webhook-id` "will be the same when the same webhook is being resent (e.g.
    due to a previous failure)"; the timestamp is the attempt's, and the signature covers both."""
    clock = iter([1_700_000_000.0, 1_700_000_061.0, 1_700_000_122.0, 1_700_000_183.0])
    monkeypatch.setattr(webhook, "time", SimpleNamespace(time=lambda: next(clock)))
    attempts = 0

    def fails_twice(request: Request) -> Response:
        nonlocal attempts
        attempts += 1
        return Response(503 if attempts <= 2 else 200, {"ok": attempts > 2})

    with FakeServer(fails_twice) as server:
        ctx = export_context(server.url, http, values={"signingSecret": SIGNING_SECRET}, batch_size=100)
        export(ctx, RECORDS[:3])
    assert len(server.requests) == 3 and ctx.counts.added == 3
    ids = {request.header("webhook-id") for request in server.requests}
    assert len(ids) == 1 and next(iter(ids)).startswith("msg_")
    assert [r.header("webhook-timestamp") for r in server.requests] == [
        "1700000000",
        "1700000061",
        "1700000122",
    ]
    for request in server.requests:
        signed = f"{request.header('webhook-id')}.{request.header('webhook-timestamp')}.".encode()
        digest = hmac.new(SECRET_BYTES, signed + request.body, hashlib.sha256).digest()
        assert request.header("webhook-signature") == f"v1,{base64.b64encode(digest).decode()}"


def test_each_batch_is_a_message_of_its_own(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(export_context(server.url, http, values={"signingSecret": SIGNING_SECRET}, batch_size=10))
    assert len({request.header("webhook-id") for request in server.requests}) == 3


def test_unsigned_without_a_signing_secret(http: HttpClientFactory) -> None:
    with FakeServer(accept) as server:
        export(export_context(server.url, http))
    assert server.requests[0].header("webhook-signature") is None


def test_a_batch_refused_with_422_is_omitted_and_the_run_goes_on(http: HttpClientFactory) -> None:
    def refuse_first(request: Request) -> Response:
        return Response(422, "bad record") if request.json()["records"][0]["n"] == 0 else Response(200)

    with FakeServer(refuse_first) as server:
        context = export_context(server.url, http, batch_size=10, concurrency=1)
        export(context)
    assert (context.counts.added, context.counts.omitted) == (15, 10)
    assert "422" in context.counts.omission_samples[0]


def test_each_record_of_a_refused_batch_is_kept_under_its_key(http: HttpClientFactory) -> None:
    def handler(request: Request) -> Response:
        return (
            Response(422, "bad record")
            if request.json()["records"][0]["email"] == "a@example.com"
            else Response(200)
        )

    records = [{"email": "a@example.com", "name": "Ann"}, {"email": "b@example.com", "name": "Bob"}]
    with FakeServer(handler) as server:
        context = export_context(server.url, http, batch_size=1, concurrency=1)
        export(context, records)
    assert context.counts.rejected == {"a@example.com": "HTTP 422: a batch of 1 was refused: bad record"}
    assert (context.counts.added, context.counts.omitted) == (1, 1)


def test_a_missing_endpoint_fails_the_run(http: HttpClientFactory) -> None:
    with FakeServer(lambda request: Response(404)) as server, pytest.raises(ProviderError, match="404"):
        export(export_context(server.url, http))


def test_enrichment_maps_response_fields_into_the_record(http: HttpClientFactory) -> None:
    def lookup(request: Request) -> Response:
        return Response(200, {"data": {"company": {"name": f"Co of {request.query['email']}"}}})

    with FakeServer(lookup) as server:
        context = make_context(
            provider,
            JobType.ENRICHMENT,
            {"url": server.url + "/people?email={email}", "mapping": {"company": "data.company.name"}},
            method=AuthMethod.NONE,
            values={},
            endpoint=None,
            http=http,
        )

        async def collect() -> list[Record]:
            return [r async for batch in provider.enrich(context, batches_of(RECORDS[:3])) for r in batch]

        enriched = run(collect())
    assert enriched[1] == {"email": "user1@example.com", "n": 1, "company": "Co of user1@example.com"}
    assert len(server.requests) == 3


def test_enrichment_omits_records_whose_lookup_fails(http: HttpClientFactory) -> None:
    def lookup(request: Request) -> Response:
        if request.query["email"].startswith("user0"):
            return Response(404)
        if request.query["email"].startswith("user1"):
            return Response(200, "<html>not json</html>")
        return Response(200, {"score": 1})

    with FakeServer(lookup) as server:
        context = make_context(
            provider,
            JobType.ENRICHMENT,
            {"url": server.url + "/?email={email}"},
            method=AuthMethod.NONE,
            values={},
            endpoint=None,
            http=http,
        )

        async def collect() -> list[Record]:
            return [r async for batch in provider.enrich(context, batches_of(RECORDS[:3])) for r in batch]

        enriched = run(collect())
    assert enriched == [{"email": "user2@example.com", "n": 2, "score": 1}]
    assert context.counts.omitted == 2


def test_credential_check_without_endpoint_verifies_the_secret_keys() -> None:
    from destinations.providers.base import Credentials

    healthy = provider.check_credentials(Credentials(AuthMethod.BASIC, {"username": "a", "password": "b"}))
    unhealthy = provider.check_credentials(Credentials(AuthMethod.BASIC, {"username": "a"}))
    assert healthy.healthy
    assert not unhealthy.healthy and "password" in unhealthy.message


def test_credential_check_refuses_a_malformed_signing_secret() -> None:
    from destinations.providers.base import Credentials

    check = provider.check_credentials(Credentials(AuthMethod.NONE, {"signingSecret": "whsec_!!notbase64"}))
    assert not check.healthy and "signingSecret" in check.message


def test_credential_check_with_endpoint_calls_it() -> None:
    from destinations.providers.base import Credentials

    with FakeServer(
        lambda r: Response(401) if r.header("authorization") != "Bearer good" else Response(204)
    ) as server:
        good = provider.check_credentials(Credentials(AuthMethod.OAUTH2, {"accessToken": "good"}, server.url))
        bad = provider.check_credentials(Credentials(AuthMethod.OAUTH2, {"accessToken": "bad"}, server.url))
    assert good.healthy and not bad.healthy


def test_credential_check_of_an_unreachable_endpoint_is_unhealthy() -> None:
    from destinations.providers.base import Credentials

    check = provider.check_credentials(Credentials(AuthMethod.NONE, {}, closed_port_url()))
    assert not check.healthy and "no answer" in check.message


def test_signing_secret_must_be_base64() -> None:
    from destinations.providers.webhook import signing_key

    with pytest.raises(ConfigurationError):
        signing_key("whsec_***")
