"""The worker end to end: `destinations worker` processes exporting from each source kind to each provider."""

from __future__ import annotations

import base64
import csv
import json
from typing import Any

import psycopg
import pytest

from tests.providers.servers import FakeServer, Request, Response, closed_port_url
from tests.providers.test_facebook import TOKEN
from tests.providers.test_facebook import Audience as FacebookAudience
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience
from tests.worker.conftest import WorkerPod, file_endpoint, job, warehouse

PEOPLE = [{"email": f"p{i}@example.com", "first_name": f"P{i}", "phone": f"+1555{i:07}"} for i in range(12)]


class Receiver:
    """A webhook receiver that keeps every record it was sent."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Response:
        self.records.extend(request.json()["records"])
        return Response(200, {"accepted": True})


def write_jsonl(pod: WorkerPod, name: str, records: list[dict[str, Any]]) -> None:
    (pod.source_dir / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def seed_people(dsn: str, rows: list[dict[str, Any]] = PEOPLE) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY, first_name text, phone text)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO people VALUES (%(email)s, %(first_name)s, %(phone)s)", rows)


def test_jsonl_file_to_webhook(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    with FakeServer(receiver := Receiver()) as server:
        done = pod.run(
            job(
                "webhook", "export", {"url": server.url, "batchSize": 5}, source=file_endpoint("people.jsonl")
            )
        )
    assert done.exit_code == 0
    assert done.report["result"] == "succeeded"
    assert done.records["read"] == 12 and done.records["added"] == 12
    assert sorted(r["email"] for r in receiver.records) == sorted(p["email"] for p in PEOPLE)


def test_csv_file_to_mailchimp(pod: WorkerPod) -> None:
    with (pod.source_dir / "people.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["email", "first_name", "phone"])
        writer.writeheader()
        writer.writerows(PEOPLE)
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(audience := MailchimpAudience()) as server:
        done = pod.run(
            job(
                "mailchimp",
                "export",
                {"listId": "abc123", "mergeFields": {"FNAME": "first_name"}},
                source=file_endpoint("people.csv", "csv"),
            ),
            method="apiKey",
            endpoint=f"{server.url}/3.0",
        )
    assert done.exit_code == 0, done.report
    assert done.records["added"] == 12
    assert len(audience.members) == 12


def test_paginated_url_to_facebook(pod: WorkerPod) -> None:
    def pages(request: Request) -> Response:
        page = int(request.query.get("page", "0"))
        body = "".join(json.dumps(p) + "\n" for p in PEOPLE[page * 5 : page * 5 + 5])
        headers = {"Link": f'<{request.path}?page={page + 1}>; rel="next"'} if page < 2 else {}
        return Response(200, body, headers=headers)

    pod.credentials = {"accessToken": TOKEN}
    with FakeServer(pages) as source, FakeServer(FacebookAudience()) as graph:
        done = pod.run(
            job(
                "facebook",
                "export",
                {"audienceId": "123456"},
                source={"url": {"url": source.url + "/people"}},
            ),
            method="oauth2",
            endpoint=graph.url,
        )
    assert done.exit_code == 0, done.report
    assert done.records["read"] == 12 and done.records["added"] == 12
    assert [r.query.get("page") for r in source.requests] == [None, "1", "2"]


def test_url_with_cursor_pagination_and_secret_headers_to_webhook(pod: WorkerPod) -> None:
    def pages(request: Request) -> Response:
        if request.header("authorization") != "Token source-secret":
            return Response(401)
        cursor = int(request.query.get("after", "0"))
        body = "".join(json.dumps(p) + "\n" for p in PEOPLE[cursor : cursor + 4])
        return Response(200, body, headers={"X-Next-Cursor": str(cursor + 4)} if cursor + 4 < 12 else {})

    pod.secret("source-headers", {"Authorization": "Token source-secret"})
    source_endpoint = {
        "url": {
            "url": "",
            "headersSecretRef": {"name": "source-headers"},
            "pagination": {"nextCursorHeader": "X-Next-Cursor", "cursorParam": "after"},
        }
    }
    with FakeServer(pages) as source, FakeServer(receiver := Receiver()) as hook:
        source_endpoint["url"]["url"] = source.url
        done = pod.run(job("webhook", "export", {"url": hook.url}, source=source_endpoint))
    assert done.exit_code == 0, done.report
    assert len(receiver.records) == 12


def test_jsonl_file_to_facebook(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    pod.credentials = {"accessToken": TOKEN}
    with FakeServer(FacebookAudience()) as graph:
        done = pod.run(
            job(
                "facebook",
                "export",
                {"audienceId": "123456", "identifiers": {"EMAIL": "email", "PHONE": "phone"}},
                source=file_endpoint("people.jsonl"),
            ),
            method="oauth2",
            endpoint=graph.url,
        )
    assert done.exit_code == 0, done.report
    assert done.records["read"] == 12 and done.records["added"] == 12
    (upload,) = [r.json()["payload"] for r in graph.requests if r.method == "POST"]
    assert upload["schema"] == ["EMAIL", "PHONE"] and len(upload["data"]) == 12


def test_url_to_mailchimp(pod: WorkerPod) -> None:
    def lines(request: Request) -> Response:
        return Response(200, "".join(json.dumps(p) + "\n" for p in PEOPLE))

    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(lines) as source, FakeServer(audience := MailchimpAudience()) as server:
        done = pod.run(
            job("mailchimp", "export", {"listId": "abc123"}, source={"url": {"url": source.url + "/people"}}),
            method="apiKey",
            endpoint=f"{server.url}/3.0",
        )
    assert done.exit_code == 0, done.report
    assert done.records["read"] == 12 and done.records["added"] == 12
    assert sorted(audience.members) == sorted(p["email"] for p in PEOPLE)


@pytest.mark.postgres
def test_postgres_query_to_webhook(pod: WorkerPod, postgres_dsn: str) -> None:
    seed_people(postgres_dsn)
    pod.secret("warehouse", {"dsn": postgres_dsn})
    with FakeServer(receiver := Receiver()) as server:
        done = pod.run(
            job(
                "webhook",
                "export",
                {"url": server.url},
                source=warehouse(query="SELECT email, first_name FROM people WHERE phone LIKE '%1'"),
            ),
            extra=["--batch-size", "3"],
        )
    assert done.exit_code == 0, done.report
    assert receiver.records == [
        {"email": "p1@example.com", "first_name": "P1"},
        {"email": "p11@example.com", "first_name": "P11"},
    ]


@pytest.mark.postgres
def test_postgres_mirror_to_mailchimp_unsubscribes_members_who_left(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    seed_people(postgres_dsn, PEOPLE[:3])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    spec = job("mailchimp", "export", {"listId": "abc123"}, source=warehouse(table="people"), mode="mirror")
    spec["mirror"] = {"maxRemovePercent": 100}  # 1 of 3 is more than the default guard allows
    with FakeServer(audience := MailchimpAudience()) as server:
        first = pod.run(spec, method="apiKey", endpoint=f"{server.url}/3.0", run=1)
        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("DELETE FROM people WHERE email = 'p0@example.com'")
        second = pod.run(spec, method="apiKey", endpoint=f"{server.url}/3.0", run=2)
    assert (first.exit_code, first.records["added"], first.records["removed"]) == (0, 3, 0)
    assert (second.exit_code, second.records["updated"], second.records["removed"]) == (0, 2, 1)
    assert audience.members["p0@example.com"] == "unsubscribed"


@pytest.mark.postgres
def test_postgres_mirror_to_facebook_removes_with_delete(pod: WorkerPod, postgres_dsn: str) -> None:
    seed_people(postgres_dsn, PEOPLE[:4])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"accessToken": TOKEN}
    spec = job(
        "facebook", "export", {"audienceId": "123456"}, source=warehouse(table="people"), mode="mirror"
    )
    spec["mirror"] = {"maxRemovePercent": 100}  # 2 of 4 is more than the default guard allows
    with FakeServer(graph_handler := FacebookAudience()) as graph:
        pod.run(spec, method="oauth2", endpoint=graph.url, run=1)
        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("DELETE FROM people WHERE email IN ('p0@example.com', 'p1@example.com')")
        second = pod.run(spec, method="oauth2", endpoint=graph.url, run=2)
    deletes = [r for r in graph.requests if r.method == "DELETE"]
    assert second.records["removed"] == 2
    assert len(deletes) == 1 and len(deletes[0].json()["payload"]["data"]) == 2
    assert graph_handler is not None


@pytest.mark.postgres
def test_a_failed_mirror_run_keeps_the_previous_membership(pod: WorkerPod, postgres_dsn: str) -> None:
    seed_people(postgres_dsn, PEOPLE[:3])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    spec = job("mailchimp", "export", {"listId": "abc123"}, source=warehouse(table="people"), mode="mirror")
    with FakeServer(MailchimpAudience()) as server:
        pod.run(spec, method="apiKey", endpoint=f"{server.url}/3.0", run=1)
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("DELETE FROM people")
    with FakeServer(lambda request: Response(400, {"title": "Bad", "detail": "nope"})) as broken:
        failed = pod.run(spec, method="apiKey", endpoint=f"{broken.url}/3.0", run=2)
    with psycopg.connect(postgres_dsn) as connection:
        kept = connection.execute("SELECT count(*) FROM destinations_membership").fetchone()
    assert failed.exit_code == 1
    assert kept == (3,)


def test_rate_limit_beyond_a_short_wait_ends_rate_limited(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    with FakeServer(lambda request: Response(429, headers={"Retry-After": "3600"})) as server:
        done = pod.run(job("webhook", "export", {"url": server.url}, source=file_endpoint("people.jsonl")))
    assert done.exit_code == 0  # not an error: the pod is Completed (docs/lifecycle.md#rate-limited-runs)
    assert done.report["result"] == "rate_limited"
    assert done.report["retryAfterSeconds"] == 3600


def test_authentication_failure_fails_with_an_actionable_message(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    pod.credentials = {"accessToken": "wrong"}
    with FakeServer(lambda request: Response(401, {"error": "invalid token"})) as server:
        done = pod.run(
            job("webhook", "export", {"url": server.url}, source=file_endpoint("people.jsonl")),
            method="oauth2",
        )
    assert done.exit_code == 1
    assert done.report["result"] == "failed"
    assert "refused the credentials" in done.report["message"] and "Secret" in done.report["message"]


def test_unreachable_endpoint_fails_with_an_actionable_message(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE[:1])
    done = pod.run(
        job("webhook", "export", {"url": closed_port_url()}, source=file_endpoint("people.jsonl")), extra=[]
    )
    assert done.exit_code == 1
    assert "no answer" in done.report["message"]


def test_secrets_never_reach_logs_or_the_report(pod: WorkerPod) -> None:
    canary = "canary-7f3a9c-do-not-leak"
    write_jsonl(pod, "people.jsonl", PEOPLE)
    pod.credentials = {"username": "user", "password": canary}

    def echo(request: Request) -> Response:
        return Response(403, f"denied for {base64.b64decode(request.header('authorization')[6:]).decode()}")

    with FakeServer(echo) as server:
        done = pod.run(
            job("webhook", "export", {"url": server.url}, source=file_endpoint("people.jsonl")),
            method="basic",
        )
    assert done.exit_code == 1
    assert canary not in done.stdout + done.stderr + done.termination_log
    assert "***" in done.report["message"]


def test_progress_is_logged_as_json_lines(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    with FakeServer(Receiver()) as server:
        done = pod.run(job("webhook", "export", {"url": server.url}, source=file_endpoint("people.jsonl")))
    events = [line["event"] for line in done.lines]
    assert events[0] == "started" and events[-1] == "finished"
    assert all(line["job"] == "team/job-1" and line["run"] == 1 for line in done.lines)


def test_missing_source_file_fails_naming_it(pod: WorkerPod) -> None:
    done = pod.run(
        job("webhook", "export", {"url": "http://127.0.0.1:9"}, source=file_endpoint("absent.jsonl"))
    )
    assert done.exit_code == 1 and "absent.jsonl" in done.report["message"]


def test_malformed_source_lines_are_counted_as_failed_naming_the_line_and_blank_lines_skipped(
    pod: WorkerPod,
) -> None:
    (pod.source_dir / "mixed.jsonl").write_text(
        '{"email": "a@x.io"}\nnot json\n\n  \r\n[1]\n{"email": "b@x.io"}\n'
    )
    with FakeServer(Receiver()) as server:
        done = pod.run(job("webhook", "export", {"url": server.url}, source=file_endpoint("mixed.jsonl")))
    assert done.exit_code == 0
    assert (done.records["read"], done.records["failed"]) == (2, 2)
    assert (
        "failed 2 (e.g. mixed.jsonl line 2 is not JSON; mixed.jsonl line 5 is not a JSON object)"
        in (done.report["message"])
    )
