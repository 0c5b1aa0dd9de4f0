"""Dry runs end to end: `destinations worker` with `dryRun` against PostgreSQL and the fake providers.

A dry run reads the source and says what a run would do without calling the provider or writing the
bookkeeping; on a mirror job its adds and removes are exactly what the next real run then does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from destinations.api.models import DestinationJobSpec, JobType
from destinations.providers.base import Foreseen, Record, RecordBatches, SyncContext
from destinations.providers.mailchimp import MailchimpProvider
from destinations.providers.rotation import SealError, fingerprint, unseal
from destinations.worker.dry_run import preview as dry_run_preview
from tests.providers.oauth_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from tests.providers.salesforce_fake import TOKEN_PATH
from tests.providers.salesforce_fake import Org as SalesforceOrg
from tests.providers.servers import FakeServer
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience
from tests.worker.conftest import WORKER, Finished, WorkerPod, file_endpoint, job, warehouse

pytestmark = pytest.mark.postgres

PEOPLE = [f"p{i}@example.com" for i in range(10)]


def create_people(dsn: str, emails: list[str]) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO people VALUES (%s)", [(e,) for e in emails])


def execute(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(statement)


def bookkeeping(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every destinations_* table, in a stable order."""
    with psycopg.connect(dsn) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'destinations_%' ORDER BY tablename"
            )
        ]
        return {
            table: sorted(
                (tuple(str(value) for value in row) for row in connection.execute(f"SELECT * FROM {table}")),
            )
            for table in tables
        }


def dry_run(
    pod: WorkerPod,
    spec: dict[str, Any],
    *,
    endpoint: str | None,
    run: int,
    method: str = "apiKey",
    requested_at: str = "preview",
) -> Finished:
    request = json.loads(pod.request(spec, method=method, endpoint=endpoint, run=run))
    request["dryRun"] = True
    request["dryRunRequestedAt"] = requested_at
    for key, value in pod.credentials.items():
        (pod.root / "credentials" / key).write_text(value)
    process = subprocess.run(
        [*WORKER, *pod.arguments()],
        env={**os.environ, "DESTINATIONS_JOB": json.dumps(request)},
        text=True,
        capture_output=True,
        timeout=120,
    )
    return pod.finished(process.returncode, process.stdout, process.stderr)


def mirror_spec() -> dict[str, Any]:
    return job("mailchimp", "export", {"listId": "abc123"}, source=warehouse(table="people"), mode="mirror")


def test_a_dry_run_on_a_mirror_job_reports_what_the_next_run_does(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, PEOPLE)
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(audience := MailchimpAudience()) as server:
        endpoint = f"{server.url}/3.0"
        first = pod.run(mirror_spec(), method="apiKey", endpoint=endpoint, run=1)
        assert first.exit_code == 0, first.report
        execute(postgres_dsn, "DELETE FROM people WHERE email = 'p9@example.com'")
        execute(postgres_dsn, "INSERT INTO people VALUES ('new1@example.com'), ('new2@example.com')")
        before, requests = bookkeeping(postgres_dsn), len(server.requests)

        preview = dry_run(pod, mirror_spec(), endpoint=endpoint, run=2)

        assert (preview.exit_code, len(server.requests)) == (0, requests)  # the provider was not called
        assert bookkeeping(postgres_dsn) == before
        second = pod.run(mirror_spec(), method="apiKey", endpoint=endpoint, run=2)
    assert preview.report["preview"]["records"] == {
        "read": 11, "added": 2, "updated": 9, "removed": 1, "skipped": 0
    }  # fmt: skip
    assert sorted(preview.report["preview"]["samples"]["added"]) == ["new1@example.com", "new2@example.com"]
    assert preview.report["preview"]["samples"]["removed"] == ["p9@example.com"]
    assert preview.report["message"] == "dry run: read 11; would add 2, update 9, remove 1, skip 0"
    assert (second.records["added"], second.records["updated"], second.records["removed"]) == (2, 9, 1)
    assert audience.members["p9@example.com"] == "unsubscribed"


def test_a_dry_run_on_the_first_mirror_run_adds_everyone(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, PEOPLE[:3])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(MailchimpAudience()) as server:
        preview = dry_run(pod, mirror_spec(), endpoint=f"{server.url}/3.0", run=1)
    assert preview.report["preview"]["records"] == {
        "read": 3,
        "added": 3,
        "updated": 0,
        "removed": 0,
        "skipped": 0,
    }
    assert bookkeeping(postgres_dsn) == {}  # not even the tables were created


def test_a_dry_run_says_when_the_guard_would_refuse(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, PEOPLE)
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"apiKey": API_KEY}
    with FakeServer(MailchimpAudience()) as server:
        pod.run(mirror_spec(), method="apiKey", endpoint=f"{server.url}/3.0", run=1)
        execute(
            postgres_dsn,
            "DELETE FROM people WHERE email IN ('p7@example.com', 'p8@example.com', 'p9@example.com')",
        )
        preview = dry_run(pod, mirror_spec(), endpoint=f"{server.url}/3.0", run=2)
    assert preview.report["message"] == (
        "dry run: read 7; would add 0, update 7, remove 3, skip 0; the mass-removal guard would refuse "
        "removing 3 of 10 members (more than spec.mirror.maxRemovePercent 20%) unless confirmed"
    )


def test_a_dry_run_of_an_upsert_job_counts_what_would_be_sent(pod: WorkerPod) -> None:
    lines = [{"email": "a@example.com"}, {"email": "b@example.com"}, {"name": "no address"}]
    (pod.source_dir / "people.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    pod.credentials = {"apiKey": API_KEY}
    spec = job("mailchimp", "export", {"listId": "abc123"}, source=file_endpoint("people.jsonl"))
    with FakeServer(MailchimpAudience()) as server:
        preview = dry_run(pod, spec, endpoint=f"{server.url}/3.0", run=1)
        assert server.requests == []
    assert preview.report["preview"]["records"] == {"read": 3, "sent": 2, "skipped": 1}
    assert preview.report["preview"]["samples"]["skipped"] == []  # no key to show
    assert preview.report["preview"]["samples"]["sent"] == ["a@example.com", "b@example.com"]


# Mailchimp insert and update: the dry run checks the audience and reads each distinct address once
# with "Get member info" (404 = not on the list:
# https://mailchimp.com/developer/marketing/api/list-members/get-member-info/ and "Check subscription
# status" in https://developer.mailchimp.com/documentation/mailchimp/guides/manage-subscribers-with-the-mailchimp-api/);
# nothing else reaches Mailchimp.


def mailchimp_dry_run(pod: WorkerPod, mode: str, audience: MailchimpAudience) -> tuple[Finished, list[str]]:
    """The dry run of a Mailchimp job in `mode` against `audience`, and the requests that reached it."""
    pod.credentials = {"apiKey": API_KEY}
    config = {"listId": "abc123", "mergeFields": {"FNAME": "first_name"}, "tags": ["crm"]}
    spec = job("mailchimp", "export", config, source=file_endpoint("people.jsonl"), mode=mode)
    with FakeServer(audience) as server:
        preview = dry_run(pod, spec, endpoint=f"{server.url}/3.0", run=1)
    return preview, [f"{request.method} {request.path}" for request in server.requests]


def member(email: str) -> str:
    return "GET /3.0/lists/abc123/members/" + hashlib.md5(email.encode()).hexdigest()


def test_a_mailchimp_insert_dry_run_counts_what_the_audience_lacks_with_only_reads(pod: WorkerPod) -> None:
    lines = [{"email": f"n{i:02}@example.com", "first_name": "New"} for i in range(12)]
    lines += [{"email": " A@Example.com "}, {"email": "N00@example.com"}, {"first_name": "No Address"}]
    write_people(pod, lines)
    audience = MailchimpAudience({"a@example.com": "unsubscribed"})

    preview, requests = mailchimp_dry_run(pod, "insert", audience)

    assert preview.exit_code == 0, preview.report
    assert requests[0] == "GET /3.0/lists/abc123"  # no write of any kind: the audience, then members
    assert sorted(requests[1:]) == sorted(
        [member("a@example.com")] + [member(f"n{i:02}@example.com") for i in range(12)]
    )
    assert (audience.members, audience.merge_fields, audience.tags) == (
        {"a@example.com": "unsubscribed"},
        {"a@example.com": {}},
        {"a@example.com": set()},
    )
    assert preview.report["preview"]["records"] == {"read": 15, "added": 12, "skipped": 3}
    assert preview.report["preview"]["samples"]["added"] == [f"n{i:02}@example.com" for i in range(10)]
    assert preview.report["preview"]["samples"]["skipped"] == ["A@Example.com", "N00@example.com"]
    assert preview.report["message"] == (
        "dry run: read 15; would add 12, skip 3 (mode insert skips records mailchimp has already, "
        "repeats and records without an identity)"
    )


def test_a_mailchimp_update_dry_run_counts_members_and_others_with_only_reads(pod: WorkerPod) -> None:
    write_people(
        pod,
        [{"email": "a@example.com"}, {"email": "b@example.com"}, {"email": "C@example.com"}, {"name": "x"}],
    )
    audience = MailchimpAudience({"a@example.com": "subscribed", "c@example.com": "cleaned"})

    preview, requests = mailchimp_dry_run(pod, "update", audience)

    assert preview.exit_code == 0, preview.report
    assert requests[0] == "GET /3.0/lists/abc123"
    assert sorted(requests[1:]) == sorted(member(f"{x}@example.com") for x in "abc")
    assert audience.members == {"a@example.com": "subscribed", "c@example.com": "cleaned"}
    assert preview.report["preview"]["records"] == {"read": 4, "updated": 2, "skipped": 2, "rejected": 0}
    samples = preview.report["preview"]["samples"]
    assert (samples["updated"], samples["skipped"], samples["rejected"]) == (
        ["a@example.com", "C@example.com"],
        ["b@example.com"],
        [],
    )
    assert preview.report["message"] == (
        "dry run: read 4; would update 2, skip 2 (mode update skips records mailchimp does not have and "
        "records without an identity)"
    )


def test_a_dry_run_of_a_provider_without_lookups_for_insert_says_what_the_mode_does_without_asking() -> None:
    """A plug-in may declare insert without `dry_run_lookup_modes`: its dry runs never call it."""

    class NoLookups(MailchimpProvider):
        dry_run_lookup_modes = ()

        def foresee(self, context: SyncContext, batches: RecordBatches) -> AsyncIterator[list[Foreseen]]:
            raise AssertionError("a provider without lookups is never asked")

    spec = DestinationJobSpec.model_validate(
        job("mailchimp", "export", {"listId": "abc123"}, source=file_endpoint("people.jsonl"), mode="insert")
    )
    plugin = NoLookups()
    config = plugin.parse_config(JobType.EXPORT, {"listId": "abc123"})

    async def source() -> AsyncIterator[list[Record]]:
        yield [{"email": "a@example.com"}, {"email": "b@example.com"}, {"first_name": "No Address"}]

    result, message = asyncio.run(
        dry_run_preview(spec, plugin, config, source(), conninfo=None, namespace="team", job="job-1")
    )
    assert result.records.model_dump(exclude_none=True) == {"read": 3, "sent": 2, "skipped": 1}
    assert message == (
        "dry run: read 3; would send 2 in mode insert (mailchimp creates those it does not have and leaves "
        "the ones it has untouched, counted skipped; a dry run does not ask it which are which), skip 1"
    )


# Salesforce insert and update: the dry run runs the run's read-only lookup (REST query) with the run's
# OAuth2 credentials, and nothing else reaches the org; a refresh token rotated on the way comes back
# sealed to the dry-run request (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm).

SALESFORCE = {"sobject": "Contact", "externalIdField": "Email", "fields": {"email": "Email"}}
QUERY = "/services/data/v62.0/query"


def salesforce_dry_run(
    pod: WorkerPod, spec: dict[str, Any], org: SalesforceOrg
) -> tuple[Finished, list[str]]:
    """The dry run against `org` with rotation on, and the requests that reached the org."""
    org.tokens.rotate = True
    with FakeServer(org) as server:
        org.tokens.instance_url = server.url
        pod.credentials = {
            "refreshToken": REFRESH_TOKEN,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "tokenUrl": f"{server.url}{TOKEN_PATH}",
        }
        preview = dry_run(pod, spec, method="oauth2", endpoint=None, run=3, requested_at="preview-7")
    return preview, [f"{request.method} {request.path}" for request in server.requests]


def write_people(pod: WorkerPod, lines: list[dict[str, Any]]) -> None:
    (pod.source_dir / "people.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_salesforce_insert_dry_run_counts_what_the_org_lacks_with_only_a_token_and_lookups(
    pod: WorkerPod,
) -> None:
    lines = [{"email": f"n{i:02}@example.com"} for i in range(12)]
    lines += [{"email": "a@example.com"}, {"email": "N00@example.com"}, {"first_name": "No Address"}]
    write_people(pod, lines)
    org = SalesforceOrg()
    org.contacts["a@example.com"] = {"Id": "003A", "Email": "a@example.com"}
    spec = job("salesforce", "export", SALESFORCE, source=file_endpoint("people.jsonl"), mode="insert")

    preview, requests = salesforce_dry_run(pod, spec, org)

    assert preview.exit_code == 0, preview.report
    assert requests == [f"POST {TOKEN_PATH}", f"GET {QUERY}"]  # no write of any kind
    assert org.contacts == {"a@example.com": {"Id": "003A", "Email": "a@example.com"}}
    assert preview.report["preview"]["records"] == {"read": 15, "added": 12, "skipped": 3}
    assert preview.report["preview"]["samples"]["added"] == [f"n{i:02}@example.com" for i in range(10)]
    assert preview.report["preview"]["samples"]["skipped"] == ["a@example.com", "N00@example.com"]
    assert preview.report["message"] == (
        "dry run: read 15; would add 12, skip 3 (mode insert skips records salesforce has already, "
        "repeats and records without an identity)"
    )
    # The lookup's refresh rotated the token: handed back sealed to this dry-run request only.
    assert "rotated-1" not in preview.termination_log
    sealed = preview.report["rotatedCredentials"]
    assert unseal(sealed, client_secret=CLIENT_SECRET, run_id="team/job-1#dry-run=preview-7") == (
        {"refreshToken": "rotated-1"},
        fingerprint(REFRESH_TOKEN),
    )
    with pytest.raises(SealError):
        unseal(sealed, client_secret=CLIENT_SECRET, run_id="team/job-1#3")  # not the next run's


def test_a_salesforce_update_dry_run_counts_known_unknown_and_shared_ids(pod: WorkerPod) -> None:
    write_people(
        pod,
        [{"email": "a@example.com"}, {"email": "b@example.com"}, {"email": "c@example.com"}, {"name": "x"}],
    )
    org = SalesforceOrg(external_id_unique=False)
    org.contacts["a@example.com"] = {"Id": "003A", "Email": "a@example.com"}
    org.contacts["c@example.com"] = {"Id": "003C", "Email": "c@example.com"}
    org.duplicates.append({"Id": "003D", "Email": "C@example.com"})
    spec = job("salesforce", "export", SALESFORCE, source=file_endpoint("people.jsonl"), mode="update")

    preview, requests = salesforce_dry_run(pod, spec, org)

    assert preview.exit_code == 0, preview.report
    assert requests == [f"POST {TOKEN_PATH}", f"GET {QUERY}"]
    assert preview.report["preview"]["records"] == {"read": 4, "updated": 1, "skipped": 2, "rejected": 1}
    samples = preview.report["preview"]["samples"]
    assert (samples["updated"], samples["skipped"], samples["rejected"]) == (
        ["a@example.com"],
        ["b@example.com"],
        ["c@example.com"],
    )
    assert preview.report["message"] == (
        "dry run: read 4; would update 1, skip 2, reject 1 (mode update skips records salesforce does "
        "not have and records without an identity, and refuses an identity several salesforce records "
        "share)"
    )
