"""OAuth2 through the whole system: the real operator, the sandbox kubelet running the real worker, and a
local Salesforce org (tests/providers/salesforce_fake.py) that rotates refresh tokens or revokes them.

Rotation as Salesforce documents it: each refresh answers a new refresh token and invalidates the one
used (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm). The
operator must end with the one token that still works in the Authorization's Secret."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.sandbox import wait_until
from tests.operator.harness import AUTHORIZATIONS, JOBS, OperatorCluster
from tests.providers.oauth_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from tests.providers.salesforce_fake import TOKEN_PATH, Org
from tests.providers.servers import FakeServer


@pytest.fixture
def org() -> Iterator[tuple[Org, FakeServer]]:
    fake = Org()
    with FakeServer(fake) as server:
        fake.tokens.instance_url = server.url
        yield fake, server


def salesforce_setup(cluster: OperatorCluster, namespace: str, server: FakeServer) -> None:
    cluster.namespace(namespace)
    cluster.secret(
        namespace,
        "salesforce",
        {
            "refreshToken": REFRESH_TOKEN,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "tokenUrl": f"{server.url}{TOKEN_PATH}",
        },
    )
    cluster.create(
        AUTHORIZATIONS.format(namespace=namespace),
        {
            "apiVersion": "destinations.dev/v1",
            "kind": "Authorization",
            "metadata": {"name": "salesforce"},
            "spec": {"provider": "salesforce", "method": "oauth2", "secretRef": {"name": "salesforce"}},
        },
    )


def authorization_status(cluster: OperatorCluster, namespace: str) -> dict[str, Any]:
    body = cluster.api.get(f"{AUTHORIZATIONS.format(namespace=namespace)}/salesforce").json()
    return dict(body.get("status") or {})


def stored_refresh_token(cluster: OperatorCluster, namespace: str) -> str:
    secret = cluster.api.get(f"/api/v1/namespaces/{namespace}/secrets/salesforce").json()
    return base64.b64decode(secret["data"]["refreshToken"]).decode()


def first_run_on_a_rotating_org(
    cluster: OperatorCluster, namespace: str, fake: Org, server: FakeServer, **spec: Any
) -> None:
    """A Salesforce job (`spec` added to its spec) on an org that rotates refresh tokens, until its first
    run succeeded and the Secret holds `rotated-2`: the health check and the run each refreshed once,
    each time rotating the refresh token."""
    fake.tokens.rotate = True
    salesforce_setup(cluster, namespace, server)
    manifest = cluster.job_manifest(
        namespace,
        provider="salesforce",
        authorizationRef={"name": "salesforce"},
        config={"sobject": "Contact", "externalIdField": "Email", "fields": {"email": "Email"}},
        schedule={"every": "1h"},
        **spec,
    )
    cluster.create(JOBS.format(namespace=namespace), manifest)
    first = cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("result"), "the first run")
    assert first["lastRun"]["result"] == "succeeded", first
    wait_until(
        lambda: stored_refresh_token(cluster, namespace) == "rotated-2", timeout=20, message="rotated-2"
    )


def test_rotated_refresh_tokens_end_up_in_the_secret_and_the_next_run_still_works(
    cluster: OperatorCluster, org: tuple[Org, FakeServer]
) -> None:
    fake, server = org
    namespace = "rotation"
    first_run_on_a_rotating_org(cluster, namespace, fake, server)
    assert fake.tokens.refresh_tokens == {"rotated-2"} and fake.tokens.refused == []

    cluster.run_now(namespace)
    second = cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("number") == 2, "run 2")
    assert second["lastRun"]["result"] == "succeeded", second
    assert fake.tokens.refused == []
    wait_until(
        lambda: stored_refresh_token(cluster, namespace) == "rotated-3", timeout=20, message="rotated-3"
    )
    pods = json.dumps(cluster.pods(namespace))
    assert "rotated-" not in pods and CLIENT_SECRET not in pods  # sealed in the termination message
    assert len(fake.contacts) == 3


def test_a_revoked_refresh_token_makes_the_authorization_unhealthy_saying_to_reauthorize(
    cluster: OperatorCluster, org: tuple[Org, FakeServer]
) -> None:
    fake, server = org
    fake.tokens.refresh_tokens.clear()
    namespace = "revoked"
    salesforce_setup(cluster, namespace, server)

    wait_until(
        lambda: authorization_status(cluster, namespace).get("health") == "Unhealthy",
        timeout=30,
        message="an Unhealthy Authorization",
    )
    message = authorization_status(cluster, namespace)["message"]
    assert "invalid_grant" in message
    assert "Re-authorize: authorize the connected app again" in message
    assert REFRESH_TOKEN not in message and CLIENT_SECRET not in message


def test_a_dry_run_on_a_rotating_org_hands_its_rotated_token_back_and_the_next_run_still_works(
    cluster: OperatorCluster, org: tuple[Org, FakeServer]
) -> None:
    """Salesforce insert dry runs look records up (a token refresh and REST queries, nothing else); the
    refresh rotates the token, and the operator stores it from the dry run's report as from a run's."""
    fake, server = org
    namespace = "dry-rotation"
    first_run_on_a_rotating_org(cluster, namespace, fake, server, mode="insert")
    cluster.provider.records[namespace] = [
        {"email": address} for address in ("user0@example.com", "new0@example.com", "User1@example.com")
    ]
    before = len(server.requests)

    cluster.patch_job(
        namespace, {"metadata": {"annotations": {"destinations.dev/dry-run-requested-at": "preview-1"}}}
    )
    done = cluster.wait_for(
        namespace, lambda s: (s.get("lastDryRun") or {}).get("requestedAt") == "preview-1", "the dry run"
    )

    dry = done["lastDryRun"]
    assert dry["result"] == "succeeded", dry
    assert dry["records"] == {"read": 3, "added": 1, "skipped": 2}
    assert (dry["samples"]["added"], dry["samples"]["skipped"]) == (
        ["new0@example.com"],
        ["user0@example.com", "User1@example.com"],
    )
    wait_until(
        lambda: stored_refresh_token(cluster, namespace) == "rotated-3", timeout=20, message="rotated-3"
    )
    reached = [(request.method, request.path) for request in server.requests[before:]]
    assert reached == [("POST", TOKEN_PATH), ("GET", "/services/data/v62.0/query")]  # no write
    assert sorted(fake.contacts) == ["user0@example.com", "user1@example.com", "user2@example.com"]

    cluster.run_now(namespace)
    second = cluster.wait_for(namespace, lambda s: (s.get("lastRun") or {}).get("number") == 2, "run 2")
    assert second["lastRun"]["result"] == "succeeded", second
    assert (second["lastRun"]["records"]["added"], second["lastRun"]["records"]["skipped"]) == (1, 2)
    assert fake.tokens.refused == []
    wait_until(
        lambda: stored_refresh_token(cluster, namespace) == "rotated-4", timeout=20, message="rotated-4"
    )
