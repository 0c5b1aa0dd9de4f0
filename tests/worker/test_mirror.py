"""Mirror mode end to end: `destinations worker` runs against PostgreSQL and fake providers.

Two promises are checked per provider that supports mirror (Mailchimp, Meta):

- membership is compared the way the provider compares identities (Mailchimp: the lower-cased
  address, https://mailchimp.com/developer/marketing/docs/methods-parameters/#path-parameters; Meta:
  the hashes of normalised identifiers, any of which matches a user,
  https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/#hash), so a
  run never removes a member it added or updated;
- the mass-removal guard (`spec.mirror.maxRemovePercent`, default 20): a run that would remove more
  removes nobody and fails naming the numbers, until `destinations.dev/confirm-removal` names it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import pytest

from tests.providers.servers import FakeServer
from tests.providers.test_facebook import TOKEN
from tests.providers.test_facebook import Audience as FacebookAudience
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience
from tests.worker.conftest import Finished, WorkerPod, job, warehouse

pytestmark = pytest.mark.postgres


def create_people(dsn: str, rows: list[tuple[str, str | None]]) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY, phone text)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO people VALUES (%s, %s)", rows)


def execute(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(statement)


def membership_size(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT count(*) FROM destinations_membership").fetchone()
    assert row is not None
    return int(row[0])


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class MailchimpJob:
    """One mirror job exporting the `people` table to a fake Mailchimp audience."""

    def __init__(self, pod: WorkerPod, dsn: str, server: FakeServer, mirror: dict[str, Any] | None = None):
        pod.secret("warehouse", {"dsn": dsn})
        pod.credentials = {"apiKey": API_KEY}
        self.pod = pod
        self.server = server
        self.spec = job(
            "mailchimp", "export", {"listId": "abc123"}, source=warehouse(table="people"), mode="mirror"
        )
        if mirror is not None:
            self.spec["mirror"] = mirror

    def run(self, number: int, confirmed_removal_run: int | None = None) -> Finished:
        return self.pod.run(
            self.spec,
            method="apiKey",
            endpoint=f"{self.server.url}/3.0",
            run=number,
            confirmed_removal_run=confirmed_removal_run,
        )


TEN = [(f"p{i}@example.com", None) for i in range(10)]


# ----------------------------------------------------------------------------------- identities


def test_mailchimp_member_whose_address_changed_case_is_not_removed(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    """Issue 13: the warehouse lower-cases its emails between two runs; nobody left."""
    create_people(postgres_dsn, [("Jane.Doe@Example.com", None), ("bob@example.com", None)])
    with FakeServer(audience := MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        first = mirror.run(1)
        execute(postgres_dsn, "UPDATE people SET email = lower(email)")
        second = mirror.run(2)
    assert (first.exit_code, first.records["added"]) == (0, 2), first.report
    assert (second.exit_code, second.records["updated"], second.records["removed"]) == (0, 2, 0)
    assert audience.members == {"jane.doe@example.com": "subscribed", "bob@example.com": "subscribed"}
    assert membership_size(postgres_dsn) == 2


def test_mailchimp_address_written_twice_in_one_run_is_one_member(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(
        postgres_dsn, [("Ann@Example.com", None), (" ann@example.com", None), ("x@example.com", None)]
    )
    with FakeServer(MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(postgres_dsn, "DELETE FROM people WHERE email = 'Ann@Example.com'")
        second = mirror.run(2)
    assert (second.exit_code, second.records["removed"]) == (0, 0), second.report
    assert membership_size(postgres_dsn) == 2


def facebook_spec() -> dict[str, Any]:
    spec = job(
        "facebook",
        "export",
        {"audienceId": "123456", "identifiers": {"EMAIL": "email", "PHONE": "phone"}},
        source=warehouse(table="people"),
        mode="mirror",
    )
    spec["mirror"] = {"maxRemovePercent": 100}
    return spec


def test_facebook_user_written_another_way_is_not_deleted(pod: WorkerPod, postgres_dsn: str) -> None:
    """Same email in another case, same phone in another format: the same hashes, no DELETE."""
    create_people(
        postgres_dsn,
        [("Jane.Doe@Example.com", "+44 (0)20 7946-0958"), ("gone@example.com", "+1 650 555 1212")],
    )
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"accessToken": TOKEN}
    with FakeServer(FacebookAudience()) as graph:
        pod.run(facebook_spec(), method="oauth2", endpoint=graph.url, run=1)
        execute(
            postgres_dsn,
            "UPDATE people SET email = 'jane.doe@example.com', phone = '0044 20 7946 0958' "
            "WHERE email = 'Jane.Doe@Example.com'",
        )
        execute(postgres_dsn, "DELETE FROM people WHERE email = 'gone@example.com'")
        second = pod.run(facebook_spec(), method="oauth2", endpoint=graph.url, run=2)
    assert (second.exit_code, second.records["removed"]) == (0, 1), second.report
    (delete,) = [r for r in graph.requests if r.method == "DELETE"]
    assert delete.json()["payload"]["data"] == [[sha("gone@example.com"), sha("16505551212")]]


def test_facebook_user_still_matched_by_one_identifier_is_not_deleted(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    """Meta matches a row on any identifier: deleting the old row would delete the user just added."""
    create_people(postgres_dsn, [("jane@example.com", "+442079460958")])
    pod.secret("warehouse", {"dsn": postgres_dsn})
    pod.credentials = {"accessToken": TOKEN}
    with FakeServer(FacebookAudience()) as graph:
        pod.run(facebook_spec(), method="oauth2", endpoint=graph.url, run=1)
        execute(postgres_dsn, "UPDATE people SET phone = '+16505551212'")
        second = pod.run(facebook_spec(), method="oauth2", endpoint=graph.url, run=2)
    assert (second.exit_code, second.records["removed"]) == (0, 0), second.report
    assert [r.method for r in graph.requests] == ["POST", "POST"]


def test_membership_kept_before_identities_existed_is_read_by_identity(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    """Bookkeeping written by an earlier version (keyed by the source key) removes nobody who is still in."""
    create_people(postgres_dsn, [("p0@example.com", None), ("p1@example.com", None)])
    execute(
        postgres_dsn,
        """
        CREATE TABLE destinations_membership (
            namespace text NOT NULL, job text NOT NULL, member_key text NOT NULL, member jsonb NOT NULL,
            PRIMARY KEY (namespace, job, member_key));
        INSERT INTO destinations_membership VALUES
            ('team', 'job-1', '["P0@Example.com"]', '{"email": "P0@Example.com"}'),
            ('team', 'job-1', '["p1@example.com"]', '{"email": "p1@example.com"}'),
            ('team', 'job-1', '["left@example.com"]', '{"email": "left@example.com"}');
        """,
    )
    with FakeServer(audience := MailchimpAudience({"left@example.com": "subscribed"})) as server:
        done = MailchimpJob(pod, postgres_dsn, server, mirror={"maxRemovePercent": 50}).run(5)
    assert (done.exit_code, done.records["removed"]) == (0, 1), done.report
    assert audience.members["left@example.com"] == "unsubscribed"


# ------------------------------------------------------------------------------ mass-removal guard


def test_an_emptied_source_removes_nobody_and_fails_naming_the_numbers(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(audience := MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(postgres_dsn, "DELETE FROM people")
        refused = mirror.run(2)
    assert refused.exit_code == 1
    assert refused.report["result"] == "failed"
    assert refused.report["message"].startswith(
        "mirror mode would remove 10 of 10 members (100%), more than spec.mirror.maxRemovePercent (20%); "
        "nobody was removed. If the source is right, confirm with the annotation "
        "destinations.dev/confirm-removal=2 and run the job again"
    )
    assert refused.records["removed"] == 0
    assert set(audience.members.values()) == {"subscribed"} and len(audience.members) == 10
    assert membership_size(postgres_dsn) == 10


def test_a_partial_source_beyond_the_limit_is_refused(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(audience := MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(
            postgres_dsn,
            "DELETE FROM people WHERE email IN ('p0@example.com', 'p1@example.com', 'p2@example.com')",
        )
        refused = mirror.run(2)
    assert refused.exit_code == 1
    assert (
        "would remove 3 of 10 members (30%), more than spec.mirror.maxRemovePercent (20%)"
        in (refused.report["message"])
    )
    assert "unsubscribed" not in audience.members.values()


def test_removals_up_to_the_limit_go_through(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(audience := MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server, mirror={"maxRemovePercent": 30})
        mirror.run(1)
        execute(
            postgres_dsn,
            "DELETE FROM people WHERE email IN ('p0@example.com', 'p1@example.com', 'p2@example.com')",
        )
        done = mirror.run(2)
    assert (done.exit_code, done.records["removed"]) == (0, 3), done.report
    assert sorted(email for email, status in audience.members.items() if status == "unsubscribed") == [
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
    ]


def test_the_default_limit_lets_two_of_ten_through(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(postgres_dsn, "DELETE FROM people WHERE email IN ('p0@example.com', 'p1@example.com')")
        done = mirror.run(2)
    assert (done.exit_code, done.records["removed"]) == (0, 2), done.report


def test_a_confirmation_of_the_refused_run_lets_the_removal_through_once(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(audience := MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(postgres_dsn, "DELETE FROM people")
        refused = mirror.run(2)
        confirmed = mirror.run(3, confirmed_removal_run=2)
        execute(postgres_dsn, "INSERT INTO people VALUES ('p0@example.com', NULL), ('p1@example.com', NULL)")
        mirror.run(4, confirmed_removal_run=2)
        execute(postgres_dsn, "DELETE FROM people")
        again = mirror.run(5, confirmed_removal_run=2)
    assert refused.exit_code == 1
    assert (confirmed.exit_code, confirmed.records["removed"]) == (0, 10), confirmed.report
    (logged,) = [line for line in confirmed.lines if line["event"] == "removal_confirmed"]
    assert (logged["confirmed_run"], logged["removals"]) == (2, 10)
    assert set(audience.members.values()) == {"unsubscribed"}
    assert again.exit_code == 1, "a confirmation is settled by the run it let through"
    assert (
        "destinations.dev/confirm-removal=2 names no run refused since the last successful one"
        in (again.report["message"])
    )


def test_a_confirmation_naming_another_run_confirms_nothing(pod: WorkerPod, postgres_dsn: str) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(postgres_dsn, "DELETE FROM people")
        done = mirror.run(2, confirmed_removal_run=1)
    assert done.exit_code == 1
    assert "destinations.dev/confirm-removal=1 names no run refused" in done.report["message"]
    assert membership_size(postgres_dsn) == 10


def test_a_confirmation_covers_no_more_removals_than_the_refused_run_would_make(
    pod: WorkerPod, postgres_dsn: str
) -> None:
    create_people(postgres_dsn, TEN)
    with FakeServer(MailchimpAudience()) as server:
        mirror = MailchimpJob(pod, postgres_dsn, server)
        mirror.run(1)
        execute(postgres_dsn, "DELETE FROM people WHERE email <> 'p9@example.com'")
        mirror.run(2)
        execute(postgres_dsn, "DELETE FROM people")
        grown = mirror.run(3, confirmed_removal_run=2)
        allowed = mirror.run(4, confirmed_removal_run=3)
    assert grown.exit_code == 1
    assert "would remove 10 of 10 members" in grown.report["message"]
    assert "run 2 was confirmed for at most 9 removals" in grown.report["message"]
    assert "destinations.dev/confirm-removal=3" in grown.report["message"]
    assert (allowed.exit_code, allowed.records["removed"]) == (0, 10), allowed.report
