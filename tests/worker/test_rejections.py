"""Rejected records end to end: `destinations worker` against PostgreSQL and the fake Mailchimp audience.

A record Mailchimp refuses one by one (a permanently deleted address: "was permanently deleted and
cannot be re-imported", https://mailchimp.com/developer/marketing/docs/errors/) is kept with its key and
reason in the source database, sent first by the next run, counted as retried and, once Mailchimp takes
it, accepted; after `spec.retryRejectedAttempts` refusals in a row it is given up but stays listed.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.providers.servers import FakeServer
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience
from tests.worker.conftest import Finished, WorkerPod, file_endpoint, job, warehouse

pytestmark = pytest.mark.postgres

GONE = "gone@example.com"
GONE_REASON = f"ERROR_GENERIC: {GONE} was permanently deleted and cannot be re-imported."


def create_people(dsn: str, emails: list[str]) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY, first_name text)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO people VALUES (%s, %s)", [(e, "Gwendolyn") for e in emails])


def kept(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT record_key, reason, attempts, given_up, first_run, last_run FROM destinations_rejections "
            "ORDER BY record_key"
        ).fetchall()


class Export:
    def __init__(self, pod: WorkerPod, dsn: str, server: FakeServer, **spec: Any) -> None:
        pod.secret("warehouse", {"dsn": dsn})
        pod.credentials = {"apiKey": API_KEY}
        self.pod, self.server = pod, server
        self.spec = job(
            "mailchimp",
            "export",
            {"listId": "abc123", "mergeFields": {"FNAME": "first_name"}},
            source=warehouse(table="people"),
        )
        self.spec.update(spec)

    def run(self, number: int) -> Finished:
        return self.pod.run(self.spec, method="apiKey", endpoint=f"{self.server.url}/3.0", run=number)

    def first_batch(self) -> list[str]:
        batches = [r for r in self.server.requests if r.method == "POST" and r.path == "/3.0/lists/abc123"]
        return [m["email_address"] for m in batches[-1].json()["members"]]


def test_a_refused_record_is_kept_with_its_key_and_reason(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, ["a@example.com", GONE])
    with FakeServer(MailchimpAudience(forgotten={GONE})) as server:
        first = Export(pod, postgres_dsn, server).run(1)
    assert first.exit_code == 0, first.report
    assert first.records == {"read": 2, "added": 1, "updated": 0, "removed": 0, "omitted": 1, "failed": 0}
    assert first.report["rejections"] == [{"key": GONE, "reason": GONE_REASON}]
    assert "Gwendolyn" not in first.termination_log
    assert kept(postgres_dsn) == [(GONE, GONE_REASON, 1, False, 1, 1)]


def test_the_next_run_sends_it_first_and_counts_it_accepted(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, ["a@example.com", "b@example.com", GONE])
    audience = MailchimpAudience(forgotten={GONE})
    with FakeServer(audience) as server:
        export = Export(pod, postgres_dsn, server)
        export.run(1)
        audience.forgotten.clear()  # the person subscribed again through Mailchimp's own form
        second = export.run(2)
        assert export.first_batch()[0] == GONE
    assert second.exit_code == 0, second.report
    assert (second.records["read"], second.records["retried"], second.records["accepted"]) == (3, 1, 1)
    assert (second.records["added"], second.records["updated"], second.records["omitted"]) == (1, 2, 0)
    assert "rejections" not in second.report
    assert kept(postgres_dsn) == []
    members_sent = [m for r in server.requests if r.method == "POST" for m in r.json().get("members", [])]
    assert [m["email_address"] for m in members_sent].count(GONE) == 2  # once per run, never twice in one


def test_a_key_the_source_no_longer_has_leaves_the_list(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, ["a@example.com", GONE])
    with FakeServer(MailchimpAudience(forgotten={GONE})) as server:
        export = Export(pod, postgres_dsn, server)
        export.run(1)
        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("DELETE FROM people WHERE email = %s", (GONE,))
        second = export.run(2)
    assert "retried" not in second.records
    assert kept(postgres_dsn) == []


def test_a_record_refused_too_often_is_given_up_and_stays_listed(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, ["a@example.com", GONE])
    with FakeServer(MailchimpAudience(forgotten={GONE})) as server:
        export = Export(pod, postgres_dsn, server, retryRejectedAttempts=2)
        export.run(1)
        second = export.run(2)
        third = export.run(3)
        assert export.first_batch()[0] == "a@example.com"  # no longer sent first
    records = second.records
    assert (records["retried"], records.get("accepted"), records["givenUp"]) == (1, None, 1)
    assert "retried" not in third.records and "givenUp" not in third.records
    assert third.records["omitted"] == 1  # the source still has it: still sent, still refused
    assert kept(postgres_dsn) == [(GONE, GONE_REASON, 3, True, 1, 3)]


def test_retry_rejected_false_keeps_nothing(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, [GONE])
    with FakeServer(MailchimpAudience(forgotten={GONE})) as server:
        first = Export(pod, postgres_dsn, server, retryRejected=False).run(1)
    assert first.report["rejections"] == [{"key": GONE, "reason": GONE_REASON}]
    with psycopg.connect(postgres_dsn) as connection:
        table = connection.execute("SELECT to_regclass('destinations_rejections')").fetchone()
    assert table == (None,)


def test_a_file_source_reports_rejections_but_keeps_no_bookkeeping(pod: WorkerPod) -> None:
    lines = [{"email": "a@example.com"}, {"email": GONE}, {"name": "no address"}]
    (pod.source_dir / "people.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    pod.credentials = {"apiKey": API_KEY}
    spec = job("mailchimp", "export", {"listId": "abc123"}, source=file_endpoint("people.jsonl"))
    with FakeServer(MailchimpAudience(forgotten={GONE})) as server:
        first = pod.run(spec, method="apiKey", endpoint=f"{server.url}/3.0", run=1)
    assert first.exit_code == 0, first.report
    assert (first.records["omitted"], first.records["invalid"]) == (1, 1)
    assert first.report["rejections"] == [{"key": GONE, "reason": GONE_REASON}]


def test_the_worker_refuses_a_mode_the_provider_lacks_naming_the_ones_it_has(pod: WorkerPod) -> None:
    """The last line of defence when validation was bypassed (an operator from before the modes)."""
    (pod.source_dir / "people.jsonl").write_text(json.dumps({"email": "a@example.com"}) + "\n")
    pod.credentials = {"accessToken": "token"}
    spec = job(
        "facebook", "export", {"audienceId": "123"}, source=file_endpoint("people.jsonl"), mode="insert"
    )
    finished = pod.run(spec, method="oauth2", endpoint="http://127.0.0.1:9")
    assert finished.exit_code == 1
    assert finished.report["message"].startswith(
        "spec.mode 'insert' is not supported by provider 'facebook'; it supports: upsert, mirror"
    )
