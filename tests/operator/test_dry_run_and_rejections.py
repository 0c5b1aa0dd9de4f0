"""Issue 15 through the operator: a dry run on a mirror job, and a run's rejections in status.

- `destinations.dev/dry-run-requested-at` starts a read-only pod; its result lands in
  `status.lastDryRun` (echoing the value); the phase, counters, run numbers, history and the mirror
  bookkeeping stay byte-identical, and the next real run adds and removes exactly what it said.
- A record Mailchimp refuses shows in `status.lastRun.rejections` with its key and Mailchimp's reason
  (https://mailchimp.com/developer/marketing/docs/errors/), no other field value.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import psycopg
import pytest

from tests.operator.harness import AUTHORIZATIONS, JOBS, OperatorCluster
from tests.providers.servers import FakeServer
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience

pytestmark = pytest.mark.postgres

GONE = "gone@example.com"


def bookkeeping(dsn: str) -> dict[str, list[tuple[str, ...]]]:
    with psycopg.connect(dsn) as connection:
        tables = [
            str(row[0])
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'destinations_%' ORDER BY tablename"
            )
        ]
        return {
            table: sorted(tuple(str(v) for v in row) for row in connection.execute(f"SELECT * FROM {table}"))
            for table in tables
        }


def settled_status(cluster: OperatorCluster, namespace: str) -> dict[str, Any]:
    """The status once two reads a second apart agree (the operator's writes after a run are done)."""
    previous = cluster.status(namespace)
    for _ in range(20):
        time.sleep(1)
        current = cluster.status(namespace)
        if current == previous:
            return current
        previous = current
    raise AssertionError(f"the status kept changing: {previous}")


def unchanged_by_a_dry_run(status: dict[str, Any]) -> dict[str, Any]:
    """Everything a dry run must leave alone: the whole status but `lastDryRun`."""
    return {key: value for key, value in status.items() if key != "lastDryRun"}


def test_a_dry_run_previews_the_next_mirror_run_and_changes_nothing(
    cluster: OperatorCluster, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY, first_name text)")
        connection.execute(
            "INSERT INTO people SELECT 'p' || i || '@example.com', 'Gwendolyn' FROM generate_series(0, 9) i"
        )
        connection.execute("INSERT INTO people VALUES (%s, 'Gwendolyn')", (GONE,))
    namespace = cluster.namespace("dry-run")
    with FakeServer(audience := MailchimpAudience(forgotten={GONE})) as mailchimp:
        for name, values in (("mailchimp", {"apiKey": API_KEY}), ("warehouse", {"dsn": postgres_dsn})):
            data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
            cluster.create(
                f"/api/v1/namespaces/{namespace}/secrets",
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data},
            )
        cluster.create(
            AUTHORIZATIONS.format(namespace=namespace),
            {
                "apiVersion": "destinations.dev/v1",
                "kind": "Authorization",
                "metadata": {"name": "mailchimp"},
                "spec": {
                    "provider": "mailchimp",
                    "method": "apiKey",
                    "secretRef": {"name": "mailchimp"},
                    "endpoint": f"{mailchimp.url}/3.0",
                },
            },
        )
        cluster.create(
            JOBS.format(namespace=namespace),
            {
                "apiVersion": "destinations.dev/v1",
                "kind": "DestinationJob",
                "metadata": {"name": "export"},
                "spec": {
                    "provider": "mailchimp",
                    "type": "export",
                    "mode": "mirror",
                    "authorizationRef": {"name": "mailchimp"},
                    "config": {"listId": "abc123", "mergeFields": {"FNAME": "first_name"}},
                    "source": {
                        "warehouse": {
                            "connectionSecretRef": {"name": "warehouse", "key": "dsn"},
                            "table": "people",
                        }
                    },
                    "schedule": {"every": "1h"},
                },
            },
        )
        first = cluster.wait_for(
            namespace, lambda s: (s.get("lastRun") or {}).get("result") == "succeeded", "run 1"
        )
        assert first["lastRun"]["rejections"] == [
            {
                "key": GONE,
                "reason": f"ERROR_GENERIC: {GONE} was permanently deleted and cannot be re-imported.",
            }
        ]
        assert "Gwendolyn" not in str(first)

        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("DELETE FROM people WHERE email = 'p9@example.com'")
            connection.execute("INSERT INTO people VALUES ('new@example.com', NULL)")
        before, tables, requests = (
            settled_status(cluster, namespace),
            bookkeeping(postgres_dsn),
            len(mailchimp.requests),
        )

        cluster.patch_job(
            namespace, {"metadata": {"annotations": {"destinations.dev/dry-run-requested-at": "preview-1"}}}
        )
        after = cluster.wait_for(
            namespace, lambda s: (s.get("lastDryRun") or {}).get("requestedAt") == "preview-1", "the dry run"
        )
        assert after["lastDryRun"]["result"] == "succeeded", after["lastDryRun"]
        assert after["lastDryRun"]["records"] == {
            "read": 11,
            "added": 1,
            "updated": 10,
            "removed": 1,
            "skipped": 0,
        }
        # The refused address counts as updated: run 1 sent it, so the bookkeeping knows it.
        assert after["lastDryRun"]["samples"]["added"] == ["new@example.com"]
        assert after["lastDryRun"]["samples"]["removed"] == ["p9@example.com"]
        assert unchanged_by_a_dry_run(after) == unchanged_by_a_dry_run(before)
        assert bookkeeping(postgres_dsn) == tables
        assert len(mailchimp.requests) == requests

        cluster.run_now(namespace)
        second = cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("number") == 2, "run 2")
    assert second["lastRun"]["result"] == "succeeded", second["lastRun"]
    records = second["lastRun"]["records"]
    assert (records["added"], records["removed"]) == (1, 1)
    assert (records["retried"], records.get("accepted")) == (1, None)  # the refused address, sent first again
    assert audience.members["p9@example.com"] == "unsubscribed"
