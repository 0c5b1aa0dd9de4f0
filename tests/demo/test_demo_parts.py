"""The demo's parts on their own: the receiver, the manifests, the expectations and the table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from destinations.demo import (
    ALWAYS_FAIL,
    API_KEY,
    EXPECTATIONS,
    RATE_LIMIT_SECONDS,
    RATE_LIMITED,
    Expectation,
    Receiver,
    demo_customers,
    demo_manifests,
    format_age,
    render_table,
)
from destinations.validate import validate_manifest

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver({"/failing": ALWAYS_FAIL, "/limited": RATE_LIMITED}).start()
    yield running
    running.stop()


def post(receiver: Receiver, path: str, records: int, headers: dict[str, str] = KEY) -> httpx.Response:
    body = {"records": [{"email": f"user{n}@example.com"} for n in range(records)]}
    return httpx.post(f"{receiver.url}{path}", json=body, headers=headers)


def test_receiver_counts_the_records_it_accepts_per_path(receiver: Receiver) -> None:
    post(receiver, "/newsletter", 3)
    post(receiver, "/newsletter", 2)
    counts = receiver.counts()["/newsletter"]
    assert (counts.records, counts.requests, counts.statuses) == (5, 2, {200: 2})


def test_receiver_path_set_to_fail_always_answers_500(receiver: Receiver) -> None:
    assert post(receiver, "/failing", 1).status_code == 500
    assert receiver.counts()["/failing"].records == 0


def test_receiver_rate_limited_path_answers_429_with_retry_after(receiver: Receiver) -> None:
    response = post(receiver, "/limited", 1)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(RATE_LIMIT_SECONDS)


def test_receiver_refuses_requests_without_the_api_key(receiver: Receiver) -> None:
    assert post(receiver, "/newsletter", 1, headers={}).status_code == 401
    assert httpx.get(f"{receiver.url}/").status_code == 401
    assert httpx.get(f"{receiver.url}/", headers=KEY).status_code == 200


def test_receiver_serves_the_customers_as_json_lines(receiver: Receiver) -> None:
    lines = httpx.get(f"{receiver.url}/customers.jsonl").text.splitlines()
    assert [json.loads(line) for line in lines] == demo_customers()


def test_receiver_stop_closes_its_port(receiver: Receiver) -> None:
    url = receiver.url
    receiver.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_demo_manifests_point_every_job_at_the_receiver() -> None:
    for document in demo_manifests("http://127.0.0.1:9999"):
        if document["kind"] == "DestinationJob":
            assert document["spec"]["config"]["url"].startswith("http://127.0.0.1:9999/")


def test_demo_manifests_pass_validation() -> None:
    problems = [
        problem
        for manifest in demo_manifests("http://127.0.0.1:9999")
        if manifest["kind"] != "Secret"  # credentials sit next to their Authorization, as in examples/
        for problem in validate_manifest(manifest)
    ]
    assert problems == []


def test_every_demo_job_has_an_expectation_and_every_expectation_a_job() -> None:
    jobs = {d["metadata"]["name"] for d in demo_manifests("http://x:1") if d["kind"] == "DestinationJob"}
    assert jobs == {expectation.job for expectation in EXPECTATIONS}


def test_a_scheduled_export_meets_its_expectation_only_with_records_added() -> None:
    expectation = Expectation("export", "Sleeping", "Scheduled", "")
    status = {"phase": "Sleeping", "reason": "Scheduled", "lastRun": {"records": {"read": 5, "added": 0}}}
    assert not expectation.met_by({"status": status})
    status["lastRun"] = {"records": {"read": 5, "added": 5}}
    assert expectation.met_by({"status": status})


def test_table_shows_the_kubectl_columns_plus_records_and_message() -> None:
    job = {
        "metadata": {"name": "newsletter-export", "creationTimestamp": "2025-06-02T10:00:00Z"},
        "spec": {"authorizationRef": {"name": "receiver"}, "provider": "webhook", "type": "export"},
        "status": {
            "phase": "Sleeping",
            "message": "next run due soon",
            "lastRun": {"records": {"read": 120, "added": 120}},
        },
    }
    header, row = render_table([job], datetime(2025, 6, 2, 10, 0, 42, tzinfo=UTC)).splitlines()
    assert header.split() == [
        "NAME",
        "AUTHORIZATION",
        "PROVIDER",
        "TYPE",
        "STATUS",
        "AGE",
        "RECORDS",
        "MESSAGE",
    ]
    assert row.split("   ")[0:1] == ["newsletter-export"]
    for shown in ("Sleeping", "42s", "120 read, 120 added", "next run due soon"):
        assert shown in row


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(42, "42s"), (130, "2m10s"), (600, "10m"), (7200, "120m"), (90000, "25h"), (200000, "2d")],
)
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    assert format_age(seconds) == shown
