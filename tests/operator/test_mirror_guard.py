"""The mass-removal guard through the operator: a refused run shows why, and the confirmation annotation
on the DestinationJob reaches the next sync pod (docs/api-notes.md#mirror-mode)."""

from __future__ import annotations

import base64

import psycopg
import pytest

from tests.operator.harness import AUTHORIZATIONS, JOBS, OperatorCluster
from tests.providers.servers import FakeServer
from tests.providers.test_mailchimp import API_KEY
from tests.providers.test_mailchimp import Audience as MailchimpAudience

pytestmark = pytest.mark.postgres


def test_a_refused_mass_removal_goes_through_once_the_run_is_confirmed(
    cluster: OperatorCluster, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("CREATE TABLE people (email text PRIMARY KEY)")
        connection.execute(
            "INSERT INTO people SELECT 'p' || i || '@example.com' FROM generate_series(0, 9) i"
        )
    namespace = cluster.namespace("mirror-guard")
    with FakeServer(audience := MailchimpAudience()) as mailchimp:
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
                    "config": {"listId": "abc123"},
                    "source": {
                        "warehouse": {
                            "connectionSecretRef": {"name": "warehouse", "key": "dsn"},
                            "table": "people",
                            "key": ["email"],
                        }
                    },
                    "schedule": {"every": "1h"},
                },
            },
        )
        cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("result") == "succeeded", "run 1")

        with psycopg.connect(postgres_dsn) as connection:
            connection.execute("DELETE FROM people")
        cluster.run_now(namespace)
        refused = cluster.wait_for(
            namespace, lambda s: (s.get("lastRun") or {}).get("number") == 2, "run 2", timeout=60
        )
        assert refused["lastRun"]["result"] == "failed"
        assert refused["lastRun"]["message"].startswith(
            "mirror mode would remove 10 of 10 members (100%), more than spec.mirror.maxRemovePercent (20%); "
            "nobody was removed. If the source is right, confirm with the annotation "
            "destinations.dev/confirm-removal=2 and run the job again"
        )
        assert "unsubscribed" not in audience.members.values()

        cluster.patch_job(namespace, {"metadata": {"annotations": {"destinations.dev/confirm-removal": "2"}}})
        cluster.run_now(namespace)
        confirmed = cluster.wait_for(
            namespace, lambda s: (s.get("lastRun") or {}).get("number") == 3, "run 3", timeout=60
        )
    assert confirmed["lastRun"]["result"] == "succeeded", confirmed["lastRun"]
    assert confirmed["lastRun"]["records"]["removed"] == 10
    assert set(audience.members.values()) == {"unsubscribed"}
