"""The shared provider HTTP client: retries with jitter, Retry-After, and the errors that end a run.

Retry-After semantics per RFC 9110 §10.2.3 (delta-seconds or an HTTP-date):
https://www.rfc-editor.org/rfc/rfc9110#name-retry-after
"""

from __future__ import annotations

import email.utils
import time

import pytest

from destinations.providers._http import HttpClientFactory, RetryPolicy, parse_retry_after
from destinations.providers.errors import (
    AuthenticationFailed,
    EndpointUnreachable,
    ProviderError,
    RateLimited,
)
from tests.providers.conftest import RecordingSleep, run
from tests.providers.servers import FakeServer, Request, Response, closed_port_url


def sequence(*responses: Response):  # type: ignore[no-untyped-def]
    remaining = list(responses)

    def handler(request: Request) -> Response:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return handler


async def get(http: HttpClientFactory, url: str) -> int:
    async with http(name="test") as client:
        return (await client.request("GET", url)).status_code


def test_retry_after_in_seconds_is_parsed() -> None:
    assert parse_retry_after("17") == 17


def test_retry_after_as_http_date_is_parsed_relative_to_now() -> None:
    now = time.time()
    header = email.utils.formatdate(now + 120, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(120, abs=1)


def test_unparseable_retry_after_is_ignored() -> None:
    assert parse_retry_after("soon") is None


def test_backoff_grows_and_stays_within_the_jitter_band() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=8)
    for attempt, full in ((1, 1), (2, 2), (3, 4), (5, 8), (9, 8)):
        assert full / 2 <= policy.backoff(attempt) <= full


def test_server_errors_are_retried_until_an_answer(http: HttpClientFactory, sleeps: RecordingSleep) -> None:
    with FakeServer(sequence(Response(503), Response(502), Response(200, {}))) as server:
        assert run(get(http, server.url)) == 200
    assert len(server.requests) == 3
    assert len(sleeps.waits) == 2


def test_persistent_server_errors_fail_with_the_status(http: HttpClientFactory) -> None:
    with (
        FakeServer(sequence(Response(500, "boom"))) as server,
        pytest.raises(ProviderError, match="HTTP 500"),
    ):
        run(get(http, server.url))


def test_short_retry_after_is_waited_inside_the_run(http: HttpClientFactory, sleeps: RecordingSleep) -> None:
    with FakeServer(sequence(Response(429, headers={"Retry-After": "7"}), Response(200, {}))) as server:
        assert run(get(http, server.url)) == 200
    assert sleeps.waits == [7]


def test_long_retry_after_ends_the_run_rate_limited(http: HttpClientFactory, sleeps: RecordingSleep) -> None:
    with (
        FakeServer(sequence(Response(429, headers={"Retry-After": "3600"}))) as server,
        pytest.raises(RateLimited) as raised,
    ):
        run(get(http, server.url))
    assert raised.value.retry_after_seconds == 3600
    assert sleeps.waits == []


def test_repeated_429_without_retry_after_ends_rate_limited(http: HttpClientFactory) -> None:
    with FakeServer(sequence(Response(429))) as server, pytest.raises(RateLimited) as raised:
        run(get(http, server.url))
    assert raised.value.retry_after_seconds > 0


def test_401_is_an_authentication_failure_without_retries(http: HttpClientFactory) -> None:
    with (
        FakeServer(sequence(Response(401, {"error": "bad key"}))) as server,
        pytest.raises(AuthenticationFailed, match="Secret"),
    ):
        run(get(http, server.url))
    assert len(server.requests) == 1


def test_unreachable_endpoint_fails_after_the_retries(
    http: HttpClientFactory, sleeps: RecordingSleep
) -> None:
    with pytest.raises(EndpointUnreachable, match="no answer"):
        run(get(http, closed_port_url()))
    assert len(sleeps.waits) == 2


def test_a_hanging_endpoint_times_out(sleeps: RecordingSleep) -> None:
    import threading

    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(5)
        return Response(200)

    http = HttpClientFactory(policy=RetryPolicy(attempts=1), sleep=sleeps)

    async def call(url: str) -> None:
        async with http(name="slow", timeout=0.2) as client:
            await client.request("GET", url)

    with FakeServer(hang) as server:
        try:
            with pytest.raises(EndpointUnreachable, match="timed out"):
                run(call(server.url))
        finally:
            release.set()


def test_query_strings_are_left_out_of_error_messages(http: HttpClientFactory) -> None:
    with FakeServer(sequence(Response(401))) as server, pytest.raises(AuthenticationFailed) as raised:
        run(get(http, f"{server.url}/hook?token=canary-secret-value"))
    assert "canary-secret-value" not in str(raised.value)
