"""The worker end to end for imports (provider → sink) and enrichments (source → lookup → sink)."""

from __future__ import annotations

import csv
import json

import psycopg
import pytest

from tests.providers.servers import FakeServer, Request, Response
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience
from tests.worker.conftest import WorkerPod, file_endpoint, job, warehouse


@pytest.mark.postgres
def test_mailchimp_import_upserts_into_a_table(pod: WorkerPod, postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute(
            'CREATE TABLE members (email text PRIMARY KEY, status text, "FNAME" text, tags jsonb)'
        )
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    audience = MailchimpAudience(existing={f"m{i}@example.com" for i in range(7)})
    spec = job("mailchimp", "import", {"listId": "abc123", "pageSize": 3}, sink=warehouse(table="members"))
    with FakeServer(audience) as server:
        first = pod.run(spec, method="apiKey", endpoint=f"{server.url}/3.0")
        audience.members["m0@example.com"] = "unsubscribed"
        second = pod.run(spec, method="apiKey", endpoint=f"{server.url}/3.0", run=2)
    with psycopg.connect(postgres_dsn) as connection:
        rows = connection.execute(
            'SELECT email, status, "FNAME", tags FROM members ORDER BY email'
        ).fetchall()
    assert (first.records["read"], first.records["added"]) == (7, 7)
    assert (second.records["added"], second.records["updated"]) == (0, 7)
    assert rows[0] == ("m0@example.com", "unsubscribed", "m0", ["vip"])


@pytest.mark.postgres
def test_a_missing_sink_table_fails_with_how_to_fix_it(pod: WorkerPod, postgres_dsn: str) -> None:
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(MailchimpAudience()) as server:
        done = pod.run(
            job("mailchimp", "import", {"listId": "abc123"}, sink=warehouse(table="absent")),
            method="apiKey",
            endpoint=f"{server.url}/3.0",
        )
    assert done.exit_code == 1
    assert "does not exist" in done.report["message"] and "unique key" in done.report["message"]


@pytest.mark.postgres
def test_a_sink_table_without_a_unique_key_is_refused(pod: WorkerPod, postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("CREATE TABLE members (email text, status text)")
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(MailchimpAudience(existing={"a@example.com"})) as server:
        done = pod.run(
            job("mailchimp", "import", {"listId": "abc123"}, sink=warehouse(table="members")),
            method="apiKey",
            endpoint=f"{server.url}/3.0",
        )
    assert done.exit_code == 1 and "unique index" in done.report["message"]


def test_mailchimp_import_to_a_csv_file(pod: WorkerPod) -> None:
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(MailchimpAudience(existing={"a@example.com", "b@example.com"})) as server:
        done = pod.run(
            job("mailchimp", "import", {"listId": "abc123"}, sink=file_endpoint("members.csv", "csv")),
            method="apiKey",
            endpoint=f"{server.url}/3.0",
        )
    with (pod.sink_dir / "members.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert done.exit_code == 0
    assert [row["email"] for row in rows] == ["a@example.com", "b@example.com"]
    assert rows[0]["tags"] == '["vip"]'


def test_webhook_enrichment_from_a_file_to_a_file(pod: WorkerPod) -> None:
    (pod.source_dir / "in.jsonl").write_text(
        "".join(json.dumps({"email": f"e{i}@x.io"}) + "\n" for i in range(6))
    )

    def lookup(request: Request) -> Response:
        email = request.query["email"]
        return Response(404) if email == "e5@x.io" else Response(200, {"profile": {"score": len(email)}})

    with FakeServer(lookup) as server:
        done = pod.run(
            job(
                "webhook",
                "enrichment",
                {"url": server.url + "/lookup?email={email}", "mapping": {"score": "profile.score"}},
                source=file_endpoint("in.jsonl"),
                sink=file_endpoint("out.jsonl"),
            )
        )
    written = [json.loads(line) for line in (pod.sink_dir / "out.jsonl").read_text().splitlines()]
    assert done.exit_code == 0, done.report
    assert (done.records["read"], done.records["added"], done.records["omitted"]) == (6, 5, 1)
    assert written[0] == {"email": "e0@x.io", "score": 7}


def test_a_failed_run_leaves_the_previous_sink_file(pod: WorkerPod) -> None:
    (pod.sink_dir / "out.jsonl").write_text('{"previous": true}\n')
    (pod.source_dir / "in.jsonl").write_text('{"email": "a@x.io"}\n')
    with FakeServer(lambda request: Response(401)) as server:
        done = pod.run(
            job(
                "webhook",
                "enrichment",
                {"url": server.url + "/?e={email}"},
                source=file_endpoint("in.jsonl"),
                sink=file_endpoint("out.jsonl"),
            )
        )
    assert done.exit_code == 1
    assert (pod.sink_dir / "out.jsonl").read_text() == '{"previous": true}\n'
    assert [p.name for p in pod.sink_dir.iterdir()] == ["out.jsonl"]
