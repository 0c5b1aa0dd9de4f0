"""The worker end to end with the `google` and `salesforce` providers: warehouse, URL and file sources,
imports and enrichments into sinks, mirror runs, and OAuth2 tokens that expire or rotate mid-run."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg
import pytest

from tests.providers.google_fake import DataManager
from tests.providers.oauth_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TokenEndpoint
from tests.providers.salesforce_fake import TOKEN_PATH, Org
from tests.providers.servers import FakeServer, Request, Response
from tests.worker.conftest import WorkerPod, file_endpoint, job, warehouse

PEOPLE = [{"email": f"P{i}@Example.com", "first_name": f"P{i}"} for i in range(12)]
GOOGLE = {"operatingAccountId": "1234567890", "userListId": "987654321"}
SALESFORCE = {
    "sobject": "Contact",
    "externalIdField": "Email",
    "fields": {"email": "Email", "first_name": "FirstName"},
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def oauth_credentials(server: FakeServer, token_path: str) -> dict[str, str]:
    return {
        "refreshToken": REFRESH_TOKEN,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "tokenUrl": f"{server.url}{token_path}",
    }


def write_jsonl(pod: WorkerPod, name: str, records: list[dict[str, Any]]) -> None:
    (pod.source_dir / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def seed(dsn: str, rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY, first_name text)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO people VALUES (%(email)s, %(first_name)s)", rows)


def org_server(fake: Org) -> FakeServer:
    server = FakeServer(fake)
    fake.tokens.instance_url = server.url
    return server


# ------------------------------------------------------------------------------------------ google


def test_jsonl_file_to_google(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    with FakeServer(fake := DataManager()) as server:
        pod.credentials = oauth_credentials(server, "/token")
        done = pod.run(
            job("google", "export", GOOGLE, source=file_endpoint("people.jsonl")),
            method="oauth2",
            endpoint=server.url,
        )
    assert done.exit_code == 0, done.report
    assert (done.records["read"], done.records["added"]) == (12, 12)
    assert sha("p3@example.com") in fake.members


def test_url_to_google_survives_an_access_token_expiring_mid_run(pod: WorkerPod) -> None:
    with (
        FakeServer(lambda r: Response(200, "".join(json.dumps(p) + "\n" for p in PEOPLE))) as source,
        FakeServer(fake := DataManager(tokens=TokenEndpoint(uses_per_token=1))) as server,
    ):
        pod.credentials = oauth_credentials(server, "/token")
        done = pod.run(
            job(
                "google",
                "export",
                {**GOOGLE, "batchSize": 4},
                source={"url": {"url": source.url + "/people"}},
            ),
            method="oauth2",
            endpoint=server.url,
        )
    assert done.exit_code == 0, done.report
    assert done.records["added"] == 12
    # One call a token: three ingests, then three status polls.
    assert fake.tokens.issued == [f"access-{i}" for i in range(1, 7)]
    assert len(fake.polls) == 3
    assert not any(
        token in done.stdout + done.termination_log for token in ("access-1", REFRESH_TOKEN, CLIENT_SECRET)
    )


def test_a_revoked_refresh_token_fails_the_run_with_the_reauthorize_message(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE[:2])
    with FakeServer(DataManager(tokens=TokenEndpoint(refresh_tokens=set()))) as server:
        pod.credentials = oauth_credentials(server, "/token")
        done = pod.run(
            job("google", "export", GOOGLE, source=file_endpoint("people.jsonl")),
            method="oauth2",
            endpoint=server.url,
        )
    assert done.exit_code == 1
    assert "invalid_grant" in done.report["message"] and "Re-authorize" in done.report["message"]


@pytest.mark.postgres
def test_postgres_to_google_mirror_keeps_members_whose_email_changed_only_in_case(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    seed(postgres_dsn, PEOPLE[:6])  # removing one of six stays under mirror mode's 20% guard
    pod.secret("warehouse", {"dsn": postgres_dsn})
    spec = job("google", "export", GOOGLE, source=warehouse(table="people", key=["email"]), mode="mirror")
    with FakeServer(fake := DataManager()) as server:
        pod.credentials = oauth_credentials(server, "/token")
        first = pod.run(spec, method="oauth2", endpoint=server.url, run=1)
        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("UPDATE people SET email = lower(email)")  # same members, new spelling
            connection.execute("DELETE FROM people WHERE email = 'p0@example.com'")
        second = pod.run(spec, method="oauth2", endpoint=server.url, run=2)
    assert (first.exit_code, first.records["added"]) == (0, 6), first.report
    assert (second.exit_code, second.records["removed"]) == (0, 1), second.report
    removes = [body for body in fake.bodies if "consent" not in body and len(body["audienceMembers"]) == 1]
    assert [m["userData"]["userIdentifiers"][0]["emailAddress"] for m in removes[-1]["audienceMembers"]] == [
        sha("p0@example.com")
    ]
    assert sorted(fake.members) == sorted(sha(f"p{i}@example.com") for i in (1, 2, 3, 4, 5))


@pytest.mark.postgres
def test_postgres_to_google_members_of_a_request_google_failed_to_process_are_kept_and_retried(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    """Google's request status (https://developers.google.com/data-manager/api/reference/rest/v1/
    requestStatus/retrieve) says FAILED for the request holding P0 and P1: they are rejections under
    their keys, kept by the rejected-record bookkeeping; the next run, whose requests Google is still
    processing when its wait ends, leaves them as they were (unconfirmed, neither accepted nor refused
    again); the one after that, processed, accepts them."""
    seed(postgres_dsn, PEOPLE[:4])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    config = {**GOOGLE, "batchSize": 2, "requestStatusWaitSeconds": 0.2, "requestStatusFirstPollSeconds": 0.1}
    spec = job("google", "export", config, source=warehouse(table="people", key=["email"]))
    reason = "Google could not process request req-1 (FAILED): DENIED_CONSENT (2)"

    def kept() -> list[tuple[Any, ...]]:
        with psycopg.connect(postgres_dsn) as connection:
            return connection.execute(
                "SELECT record_key, reason, attempts FROM destinations_rejections ORDER BY record_key"
            ).fetchall()

    refused = {sha(f"p{i}@example.com"): "PROCESSING_ERROR_REASON_DENIED_CONSENT" for i in (0, 1)}
    with FakeServer(fake := DataManager(processing_errors=refused)) as server:
        pod.credentials = oauth_credentials(server, "/token")
        first = pod.run(spec, method="oauth2", endpoint=server.url, run=1)
        after_first = kept()
        fake.processing_errors.clear()
        fake.processing_polls = 1000
        second = pod.run(spec, method="oauth2", endpoint=server.url, run=2)
        after_second = kept()
        fake.processing_polls = 0
        third = pod.run(spec, method="oauth2", endpoint=server.url, run=3)
    assert first.exit_code == 0, first.report
    assert (first.records["added"], first.records["omitted"]) == (2, 2)
    assert first.report["rejections"] == [
        {"key": "P0@Example.com", "reason": reason},
        {"key": "P1@Example.com", "reason": reason},
    ]
    assert after_first == [("P0@Example.com", reason, 1), ("P1@Example.com", reason, 1)]
    assert second.exit_code == 0, second.report
    assert (second.records["added"], second.records["unconfirmed"], second.records["retried"]) == (0, 4, 2)
    assert "accepted" not in second.records
    assert "unconfirmed 4" in second.report["message"] and "still processing" in second.report["message"]
    assert after_second == after_first
    assert third.exit_code == 0, third.report
    assert (third.records["added"], third.records["retried"], third.records["accepted"]) == (4, 2, 2)
    assert kept() == []


# -------------------------------------------------------------------------------------- salesforce


def test_jsonl_file_to_salesforce_through_bulk_api(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE)
    fake = Org()
    with org_server(fake) as server:
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        done = pod.run(
            job("salesforce", "export", {**SALESFORCE, "bulkThreshold": 5, "pollSeconds": 0.01},
                source=file_endpoint("people.jsonl")),
            method="oauth2",
        )  # fmt: skip
    assert done.exit_code == 0, done.report
    assert (done.records["read"], done.records["added"]) == (12, 12)
    assert ("POST", "/services/data/v62.0/jobs/ingest") in fake.requests_log


def test_url_to_salesforce_through_collections(pod: WorkerPod) -> None:
    fake = Org(refuse={"P3@Example.com"})
    with (
        FakeServer(lambda r: Response(200, "".join(json.dumps(p) + "\n" for p in PEOPLE))) as source,
        org_server(fake) as server,
    ):
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        done = pod.run(
            job("salesforce", "export", SALESFORCE, source={"url": {"url": source.url + "/people"}}),
            method="oauth2",
        )
    assert done.exit_code == 0, done.report
    assert (done.records["added"], done.records["omitted"]) == (11, 1)


@pytest.mark.postgres
def test_postgres_to_salesforce_mirror_marks_departed_records_and_ignores_case_changes(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    seed(postgres_dsn, PEOPLE[:6])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    config = {**SALESFORCE, "removal": {"field": "Synced__c", "value": False}}
    spec = job("salesforce", "export", config, source=warehouse(table="people", key=["email"]), mode="mirror")
    fake = Org()
    with org_server(fake) as server:
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        first = pod.run(spec, method="oauth2", run=1)
        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("UPDATE people SET email = upper(email)")
            connection.execute("DELETE FROM people WHERE email = 'P0@EXAMPLE.COM'")
        second = pod.run(spec, method="oauth2", run=2)
    assert (first.exit_code, first.records["added"]) == (0, 6), first.report
    assert (second.exit_code, second.records["updated"], second.records["removed"]) == (0, 5, 1), (
        second.report
    )
    assert (
        fake.contacts["p0@example.com"]["Synced__c"] == "false"
        or fake.contacts["p0@example.com"]["Synced__c"] is False
    )
    assert "Synced__c" not in fake.contacts["p1@example.com"]


@pytest.mark.postgres
def test_postgres_to_salesforce_insert_keeps_existing_retries_refusals_then_update_skips_unknowns(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    seed(postgres_dsn, PEOPLE[:6])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    source = warehouse(table="people", key=["email"])
    fake = Org()
    fake.contacts["p1@example.com"] = {"Id": "0031", "Email": "p1@example.com", "FirstName": "Kept"}
    fake.refuse = {"P4@Example.com"}
    with org_server(fake) as server:
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        insert = job("salesforce", "export", SALESFORCE, source=source, mode="insert")
        first = pod.run(insert, method="oauth2", run=1)
        fake.refuse.clear()
        second = pod.run(insert, method="oauth2", run=2)
        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("UPDATE people SET first_name = first_name || '!'")
            connection.execute("INSERT INTO people VALUES ('new@example.com', 'New')")
            kept = connection.execute("SELECT count(*) FROM destinations_rejections").fetchone()
        update = job("salesforce", "export", SALESFORCE, source=source, mode="update")
        third = pod.run(update, method="oauth2", run=3)
    assert first.exit_code == 0, first.report
    assert first.records == {
        "read": 6, "added": 4, "updated": 0, "removed": 0, "omitted": 1, "failed": 0, "skipped": 1
    }  # fmt: skip
    assert first.report["rejections"] == [
        {
            "key": "P4@Example.com",
            "reason": "INVALID_EMAIL_ADDRESS: Email: invalid email address: P4@Example.com",
        }
    ]
    # The refused record is sent first next run and created; the rest exist now and are left alone.
    assert second.records == {
        "read": 6, "added": 1, "updated": 0, "removed": 0, "omitted": 0, "failed": 0,
        "skipped": 5, "retried": 1, "accepted": 1,
    }  # fmt: skip
    assert kept == (0,)
    assert third.records == {
        "read": 7, "added": 0, "updated": 6, "removed": 0, "omitted": 0, "failed": 0, "skipped": 1
    }  # fmt: skip
    assert fake.contacts["p1@example.com"] == {"Id": "0031", "Email": "P1@Example.com", "FirstName": "P1!"}
    assert sorted(fake.contacts) == [f"p{i}@example.com" for i in range(6)]


@pytest.mark.postgres
def test_salesforce_import_into_a_table(pod: WorkerPod, postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute('CREATE TABLE contacts ("Id" text PRIMARY KEY, "Email" text, "FirstName" text)')
    pod.secret("warehouse", {"dsn": postgres_dsn})
    fake = Org(
        contacts={
            f"c{i}@x.io": {"Id": f"003{i}", "Email": f"c{i}@x.io", "FirstName": f"C{i}"} for i in range(7)
        }
    )
    config = {"query": "SELECT Id, Email, FirstName FROM Contact", "pageSize": 3, "pollSeconds": 0.01}
    with org_server(fake) as server:
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        done = pod.run(
            job("salesforce", "import", config, sink=warehouse(table="contacts", key=["Id"])), method="oauth2"
        )
    with psycopg.connect(postgres_dsn) as connection:
        rows = connection.execute('SELECT "Id", "Email" FROM contacts ORDER BY "Id"').fetchall()
    assert done.exit_code == 0, done.report
    assert (done.records["read"], done.records["added"]) == (7, 7)
    assert rows[0] == ("0030", "c0@x.io") and len(rows) == 7


def test_salesforce_enrichment_from_a_url_to_a_file(pod: WorkerPod) -> None:
    fake = Org(contacts={"a@x.io": {"Id": "003A", "Email": "a@x.io", "Title": "CFO"}})
    lines = [{"email": "A@x.io"}, {"email": "b@x.io"}]

    def source_handler(request: Request) -> Response:
        return Response(200, "".join(json.dumps(line) + "\n" for line in lines))

    config = {
        "sobject": "Contact",
        "matchField": "Email",
        "keyField": "email",
        "fields": {"Id": "sfid", "Title": "title"},
    }
    with FakeServer(source_handler) as source, org_server(fake) as server:
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        done = pod.run(
            job(
                "salesforce",
                "enrichment",
                config,
                source={"url": {"url": source.url}},
                sink=file_endpoint("out.jsonl"),
            ),
            method="oauth2",
        )
    written = [json.loads(line) for line in (pod.sink_dir / "out.jsonl").read_text().splitlines()]
    assert done.exit_code == 0, done.report
    assert written == [{"email": "A@x.io", "sfid": "003A", "title": "CFO"}]
    assert (done.records["read"], done.records["omitted"]) == (2, 1)


def test_salesforce_request_limit_ends_the_run_rate_limited(pod: WorkerPod) -> None:
    write_jsonl(pod, "people.jsonl", PEOPLE[:2])
    fake = Org(limit_exceeded=True)
    with org_server(fake) as server:
        pod.credentials = oauth_credentials(server, TOKEN_PATH)
        done = pod.run(
            job("salesforce", "export", SALESFORCE, source=file_endpoint("people.jsonl")), method="oauth2"
        )
    assert done.exit_code == 0, done.report  # a rate limit is not an error
    assert done.report["result"] == "rate_limited" and done.report["retryAfterSeconds"] == 3600
