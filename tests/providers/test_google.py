"""Contract tests of the `google` provider against a local Data Manager API (see google_fake.py for pages).

Normalisation expectations come from "Format user data"
(https://developers.google.com/data-manager/api/devguides/concepts/formatting): emails lower case
without whitespace, gmail.com/googlemail.com local parts without dots and `+suffix`; phones E.164
(`(800)555-0100` in the US → `+18005550100`); names lower case; SHA-256, hex.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from destinations.api.models import AuthMethod, JobType, SyncMode
from destinations.providers._http import HttpClientFactory
from destinations.providers._oauth import ReauthorizationNeeded
from destinations.providers.base import Credentials, Record, SyncContext
from destinations.providers.errors import ProviderError, RateLimited
from destinations.providers.google import (
    normalize_google_email,
    provider,
    seconds_until_pacific_midnight,
)
from destinations.worker.report import summarize
from tests.providers.conftest import RecordingSleep, batches_of, make_context, run
from tests.providers.google_fake import DataManager, resource_exhausted
from tests.providers.oauth_fake import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    TokenEndpoint,
    service_account_json,
)
from tests.providers.servers import FakeServer, Response

SCOPE = "https://www.googleapis.com/auth/datamanager"
CONFIG = {"operatingAccountId": "1234567890", "userListId": "987654321"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def oauth_values(server: FakeServer) -> dict[str, str]:
    return {
        "refreshToken": REFRESH_TOKEN,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "tokenUrl": f"{server.url}/token",
    }


def context(
    server: FakeServer,
    http: HttpClientFactory,
    values: dict[str, str] | None = None,
    method: AuthMethod = AuthMethod.OAUTH2,
    mode: SyncMode = SyncMode.UPSERT,
    **config: Any,
) -> SyncContext:
    return make_context(
        provider,
        JobType.EXPORT,
        {**CONFIG, **config},
        method=method,
        values=values if values is not None else oauth_values(server),
        endpoint=server.url,
        http=http,
        mode=mode,
    )


def people(count: int, start: int = 0) -> list[Record]:
    return [{"email": f"Person{i}@Example.com "} for i in range(start, start + count)]


# ------------------------------------------------------------------------------------ normalisation


def test_gmail_addresses_lose_dots_and_plus_suffixes() -> None:
    assert normalize_google_email(" Cloudy.SanFrancisco+shopping@gmail.com") == "cloudysanfrancisco@gmail.com"


def test_other_domains_keep_dots_and_plus_signs() -> None:
    assert normalize_google_email("User.Name+NYC@Example.com ") == "user.name+nyc@example.com"


def test_identifiers_are_normalised_then_hashed_and_the_address_keeps_region_and_postcode(
    http: HttpClientFactory,
) -> None:
    record = {
        "mail": " Jane.Doe@Example.com",
        "tel": "(800) 555-0100",
        "first": " Jane ",
        "last": "DOE",
        "country": "us",
        "zip": "94045",
    }
    identifiers = {
        "email": "mail", "phone": "tel", "givenName": "first", "familyName": "last",
        "regionCode": "country", "postalCode": "zip",
    }  # fmt: skip
    with FakeServer(fake := DataManager()) as server:
        run(
            provider.export(
                context(server, http, identifiers=identifiers, defaultPhoneRegion="US"), batches_of([record])
            )
        )
    sent = fake.bodies[0]["audienceMembers"][0]["userData"]["userIdentifiers"]
    assert sent == [
        {"emailAddress": sha("jane.doe@example.com")},
        {"phoneNumber": sha("+18005550100")},
        {
            "address": {
                "givenName": sha("jane"),
                "familyName": sha("doe"),
                "regionCode": "US",
                "postalCode": "94045",
            }
        },
    ]


# ----------------------------------------------------------------------------------------- ingest


def test_members_go_in_requests_of_at_most_10000_with_hex_encoding_and_the_destination(
    http: HttpClientFactory,
) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http, loginAccountId="5550001111")
        run(provider.export(sync, batches_of(people(12_500), size=1000)))
    assert [len(body["audienceMembers"]) for body in fake.bodies] == [10_000, 2_500]
    assert fake.bodies[0]["encoding"] == "HEX"
    assert fake.bodies[0]["destinations"] == [
        {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "productDestinationId": "987654321",
            "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "5550001111"},
        }
    ]
    assert sync.counts.added == 12_500 and len(fake.members) == 12_500


def test_consent_from_the_config_is_sent_with_every_ingest(http: HttpClientFactory) -> None:
    consent = {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"}
    with FakeServer(fake := DataManager()) as server:
        run(provider.export(context(server, http, consent=consent), batches_of(people(3))))
    assert fake.bodies[0]["consent"] == {
        "adUserData": "CONSENT_GRANTED",
        "adPersonalization": "CONSENT_DENIED",
    }


def test_consent_values_outside_googles_enum_are_refused_by_the_config() -> None:
    with pytest.raises(Exception, match=r"adUserData|ad_user_data"):
        provider.parse_config(JobType.EXPORT, {**CONFIG, "consent": {"adUserData": "YES"}})


def test_members_google_refuses_are_omitted_with_reasons_and_the_rest_is_resent(
    http: HttpClientFactory,
) -> None:
    with FakeServer(
        fake := DataManager(refuse={sha("person1@example.com"), sha("person3@example.com")})
    ) as server:
        sync = context(server, http)
        run(provider.export(sync, batches_of(people(5))))
    assert len(fake.bodies) == 2
    assert len(fake.bodies[1]["audienceMembers"]) == 3
    assert (sync.counts.added, sync.counts.omitted) == (3, 2)
    assert "INVALID_AUDIENCE_MEMBER" in sync.counts.omission_samples[0]
    assert sha("person1@example.com") not in fake.members
    # Kept under each record's key (its email), to be retried first next run (docs/concepts.md).
    assert sorted(sync.counts.rejected) == [
        "Person1@Example.com",
        "Person3@Example.com",
    ]  # as the source has it


def test_records_without_any_usable_identifier_are_omitted_before_sending(http: HttpClientFactory) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http)
        run(
            provider.export(
                sync, batches_of([{"email": "not-an-address"}, {"email": None}, {"email": "a@b.co"}])
            )
        )
    assert len(fake.bodies[0]["audienceMembers"]) == 1
    assert (sync.counts.added, sync.counts.omitted, sync.counts.invalid) == (1, 0, 2)


def test_mirror_removal_calls_remove_without_consent(http: HttpClientFactory) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http, mode=SyncMode.MIRROR, consent={"adUserData": "CONSENT_GRANTED"})
        run(provider.export(sync, batches_of(people(3))))
        run(provider.remove(sync, batches_of(people(1))))
    assert "consent" not in fake.bodies[1]
    assert sync.counts.removed == 1 and sha("person0@example.com") not in fake.members


def test_an_unknown_user_list_fails_naming_the_config_fields(http: HttpClientFactory) -> None:
    with (
        FakeServer(DataManager(user_list="111")) as server,
        pytest.raises(ProviderError, match=r"config\.userListId"),
    ):
        run(provider.export(context(server, http), batches_of(people(1))))


def test_identities_differing_only_in_case_are_one_member() -> None:
    config = provider.parse_config(JobType.EXPORT, CONFIG)
    assert provider.member_identities(config, {"email": "Jane@Example.com"}) == provider.member_identities(
        config, {"email": " jane@example.COM"}
    )
    assert provider.member_identities(config, {"email": "jane@example.com"}) != provider.member_identities(
        config, {"email": "john@example.com"}
    )


# ------------------------------------------------------------------------------------ rate limits


def test_resource_exhausted_with_a_short_retry_delay_is_waited_out(
    http: HttpClientFactory, sleeps: RecordingSleep
) -> None:
    with FakeServer(fake := DataManager(exhausted=[resource_exhausted("30s")])) as server:
        sync = context(server, http)
        run(provider.export(sync, batches_of(people(2))))
    assert 30.0 in sleeps.waits
    assert sync.counts.added == 2 and len(fake.bodies) == 1


def test_resource_exhausted_with_a_long_retry_delay_ends_the_run_rate_limited(
    http: HttpClientFactory,
) -> None:
    with (
        FakeServer(DataManager(exhausted=[resource_exhausted("600s")])) as server,
        pytest.raises(RateLimited) as limited,
    ):
        run(provider.export(context(server, http), batches_of(people(2))))
    assert limited.value.retry_after_seconds == 600


def test_a_spent_daily_quota_sleeps_until_pacific_midnight(http: HttpClientFactory) -> None:
    daily = resource_exhausted(None, "IngestionMutateRequestsPerDayPerProject")
    with (
        FakeServer(DataManager(exhausted=[daily])) as server,
        pytest.raises(RateLimited, match="daily") as limited,
    ):
        run(provider.export(context(server, http), batches_of(people(2))))
    assert 60 <= limited.value.retry_after_seconds <= 25 * 3600


def test_pacific_midnight_is_computed_in_pacific_time() -> None:
    # 2026-07-01 06:00 UTC is 23:00 PDT: one hour to midnight.
    assert seconds_until_pacific_midnight(dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)) == 3600


def test_the_worker_paces_itself_under_the_per_minute_quota(
    http: HttpClientFactory, sleeps: RecordingSleep
) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http, batchSize=1, requestsPerMinute=2, requestStatusWaitSeconds=0)
        run(provider.export(sync, batches_of(people(5))))
    assert len(fake.bodies) == 5 and fake.polls == []
    assert len([wait for wait in sleeps.waits if 59 <= wait <= 60]) == 3


# ------------------------------------------------------------------------------------------ OAuth2


def test_an_access_token_expiring_mid_run_is_refreshed_without_failing_the_run(
    http: HttpClientFactory,
) -> None:
    tokens = TokenEndpoint(uses_per_token=2)
    with FakeServer(fake := DataManager(tokens=tokens)) as server:
        sync = context(server, http, batchSize=2)
        run(provider.export(sync, batches_of(people(9))))
    assert sync.counts.added == 9
    # 5 ingests and 5 status polls, two calls a token.
    assert tokens.issued == ["access-1", "access-2", "access-3", "access-4", "access-5"]
    assert len(fake.bodies) == 5 and len(fake.polls) == 5


def test_a_token_about_to_expire_is_refreshed_before_it_is_used(http: HttpClientFactory) -> None:
    tokens = TokenEndpoint(expires_in=30)  # under the one-minute margin: never used twice
    with FakeServer(fake := DataManager(tokens=tokens)) as server:
        run(provider.export(context(server, http, batchSize=1), batches_of(people(3))))
    assert len(tokens.issued) == 6 and len(fake.bodies) == 3 and len(fake.polls) == 3


def test_a_revoked_refresh_token_fails_the_run_saying_to_reauthorize(http: HttpClientFactory) -> None:
    tokens = TokenEndpoint(refresh_tokens=set())
    with FakeServer(DataManager(tokens=tokens)) as server, pytest.raises(ReauthorizationNeeded) as failed:
        run(provider.export(context(server, http), batches_of(people(1))))
    assert "Re-authorize" in str(failed.value) and "refreshToken" in str(failed.value)
    assert REFRESH_TOKEN not in str(failed.value) and CLIENT_SECRET not in str(failed.value)


def test_the_health_check_of_a_revoked_refresh_token_is_unhealthy_with_the_reauthorize_message() -> None:
    with FakeServer(DataManager(tokens=TokenEndpoint(refresh_tokens=set()))) as server:
        check = provider.check_credentials(Credentials(AuthMethod.OAUTH2, oauth_values(server), server.url))
    assert not check.healthy
    assert "invalid_grant" in check.message and "Re-authorize" in check.message


def test_the_health_check_of_working_credentials_is_healthy() -> None:
    with FakeServer(fake := DataManager()) as server:
        check = provider.check_credentials(Credentials(AuthMethod.OAUTH2, oauth_values(server), server.url))
    assert check.healthy, check.message
    assert fake.bodies[0]["validateOnly"] is True


def test_a_service_account_key_is_exchanged_for_a_token_with_a_signed_assertion(
    http: HttpClientFactory,
) -> None:
    key = RSAKey.generate_key(2048)
    tokens = TokenEndpoint(service_account_key=key, scope=SCOPE)
    with FakeServer(fake := DataManager(tokens=tokens)) as server:
        tokens.token_url = f"{server.url}/token"
        values = {"serviceAccountJson": service_account_json(key, tokens.token_url)}
        sync = context(server, http, values=values, method=AuthMethod.SERVICE_ACCOUNT)
        run(provider.export(sync, batches_of(people(2))))
        check = provider.check_credentials(Credentials(AuthMethod.SERVICE_ACCOUNT, values, server.url))
    assert sync.counts.added == 2 and len(fake.members) == 2
    assert check.healthy, check.message


def test_a_service_account_key_signed_by_another_key_is_unhealthy() -> None:
    tokens = TokenEndpoint(service_account_key=RSAKey.generate_key(2048), scope=SCOPE)
    with FakeServer(DataManager(tokens=tokens)) as server:
        tokens.token_url = f"{server.url}/token"
        values = {"serviceAccountJson": service_account_json(RSAKey.generate_key(2048), tokens.token_url)}
        check = provider.check_credentials(Credentials(AuthMethod.SERVICE_ACCOUNT, values, server.url))
    assert not check.healthy and "Re-authorize" in check.message and "serviceAccountJson" in check.message


def test_a_service_account_json_that_is_not_a_key_is_refused_naming_the_key() -> None:
    check = provider.check_credentials(
        Credentials(AuthMethod.SERVICE_ACCOUNT, {"serviceAccountJson": '{"type": "x"}'})
    )
    assert not check.healthy and "client_email" in check.message and "private_key" in check.message


# ---------------------------------------------------------------------- asynchronous processing
# An accepted request is processed later; its outcome is read with requestStatus:retrieve
# (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve), polled
# with exponential backoff until final (https://developers.google.com/data-manager/api/devguides/diagnostics).


def test_members_google_fails_to_process_in_a_partial_success_are_omitted_with_its_reasons(
    http: HttpClientFactory,
) -> None:
    errors = {
        sha("person1@example.com"): "PROCESSING_ERROR_REASON_INVALID_FORMAT",
        sha("person3@example.com"): "PROCESSING_ERROR_REASON_DENIED_CONSENT",
    }
    with FakeServer(fake := DataManager(processing_errors=errors)) as server:
        sync = context(server, http)
        run(provider.export(sync, batches_of(people(5))))
    assert fake.polls == ["req-1"]
    assert (sync.counts.added, sync.counts.omitted, sync.counts.unconfirmed) == (3, 2, 0)
    assert sync.counts.omission_samples == [
        "Google could not process 2 of 5 members of request req-1 (PARTIAL_SUCCESS, naming none: none kept "
        "for retry): DENIED_CONSENT (1), INVALID_FORMAT (1)"
    ]
    assert sync.counts.rejected == {}  # Google's counts name no member: no key to keep


def test_a_request_google_fails_to_process_rejects_each_member_under_its_key(
    http: HttpClientFactory,
) -> None:
    errors = {
        sha("person0@example.com"): "PROCESSING_ERROR_REASON_DENIED_CONSENT",
        sha("person1@example.com"): "PROCESSING_ERROR_REASON_DENIED_CONSENT",
    }
    with FakeServer(fake := DataManager(processing_errors=errors)) as server:
        sync = context(server, http, batchSize=2)
        run(provider.export(sync, batches_of(people(4))))
    assert fake.polls == ["req-1", "req-2"]
    assert (sync.counts.added, sync.counts.omitted) == (2, 2)
    reason = "Google could not process request req-1 (FAILED): DENIED_CONSENT (2)"
    assert sync.counts.rejected == {"Person0@Example.com": reason, "Person1@Example.com": reason}
    samples = [(rejection.key, rejection.reason) for rejection in sync.counts.rejection_samples()]
    assert samples == [("Person0@Example.com", reason), ("Person1@Example.com", reason)]


def test_statuses_are_polled_with_exponential_backoff_until_final(
    http: HttpClientFactory, sleeps: RecordingSleep
) -> None:
    with FakeServer(fake := DataManager(processing_polls=3)) as server:
        sync = context(server, http, batchSize=1, requestStatusFirstPollSeconds=30)
        run(provider.export(sync, batches_of(people(2))))
    # A round right after the last request, then after 30 s, 60 s, 120 s: the fourth is final.
    assert sleeps.waits == [30, 60, 120]
    assert fake.polls == ["req-1", "req-2"] * 4
    assert (sync.counts.added, sync.counts.unconfirmed) == (2, 0)


def test_requests_still_processing_when_the_wait_ends_are_unconfirmed_not_added(
    http: HttpClientFactory, sleeps: RecordingSleep
) -> None:
    with FakeServer(fake := DataManager(processing_polls=1000)) as server:
        sync = context(
            server, http, batchSize=1, requestStatusWaitSeconds=100, requestStatusFirstPollSeconds=30
        )
        run(provider.export(sync, batches_of(people(2))))
    assert sleeps.waits == [30, 60, 10]  # the last round when the 100 s are spent
    assert len(fake.polls) == 8
    assert (sync.counts.added, sync.counts.omitted, sync.counts.unconfirmed) == (0, 0, 2)
    assert sync.counts.snapshot().unconfirmed == 2
    assert sync.counts.unconfirmed_samples == [
        "2 of 2 requests (2 members; req-1, req-2): Google was still processing them when the run "
        "stopped waiting after 100s (config.requestStatusWaitSeconds); they may yet be added or refused"
    ]
    assert sync.counts.unconfirmed_keys == {"Person0@Example.com", "Person1@Example.com"}
    assert "unconfirmed 2 (neither added nor refused as far as this run knows: 2 of 2 requests" in summarize(
        sync.counts
    )


def test_a_wait_of_zero_asks_nothing_and_leaves_every_member_unconfirmed(http: HttpClientFactory) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http, requestStatusWaitSeconds=0)
        run(provider.export(sync, batches_of(people(3))))
    assert fake.polls == [] and len(fake.members) == 3
    assert (sync.counts.added, sync.counts.unconfirmed) == (0, 3)
    assert "config.requestStatusWaitSeconds is 0" in sync.counts.unconfirmed_samples[0]


def test_status_polls_share_the_per_minute_pace_with_ingest(
    http: HttpClientFactory, sleeps: RecordingSleep
) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http, batchSize=1, requestsPerMinute=2)
        run(provider.export(sync, batches_of(people(3))))
    assert len(fake.bodies) == 3 and len(fake.polls) == 3
    # Six calls at two a minute: every call after the first two waits for the window.
    assert len([wait for wait in sleeps.waits if 59 <= wait <= 60]) == 4


def test_a_partial_success_without_error_counts_leaves_its_members_unconfirmed(
    http: HttpClientFactory,
) -> None:
    errors = {sha("person1@example.com"): "PROCESSING_ERROR_REASON_INVALID_FORMAT"}
    with FakeServer(DataManager(processing_errors=errors, error_counts=False)) as server:
        sync = context(server, http)
        run(provider.export(sync, batches_of(people(3))))
    assert (sync.counts.added, sync.counts.omitted, sync.counts.unconfirmed) == (0, 0, 3)
    assert sync.counts.unconfirmed_samples == [
        "Google processed request req-1 only in part (PARTIAL_SUCCESS) and gave no error counts"
    ]


def test_a_removal_google_fails_to_process_is_omitted_and_not_kept(http: HttpClientFactory) -> None:
    with FakeServer(fake := DataManager()) as server:
        sync = context(server, http, mode=SyncMode.MIRROR)
        run(provider.export(sync, batches_of(people(3))))
        fake.processing_errors[sha("person0@example.com")] = "PROCESSING_ERROR_REASON_INTERNAL_ERROR"
        run(provider.remove(sync, batches_of(people(1))))
    assert (sync.counts.removed, sync.counts.omitted) == (0, 1)
    assert sync.counts.rejected == {}
    assert sha("person0@example.com") in fake.members


def test_a_status_poll_refused_for_a_spent_quota_leaves_the_requests_unconfirmed_without_failing(
    http: HttpClientFactory,
) -> None:
    with FakeServer(fake := DataManager(status_answers=[resource_exhausted("600s")])) as server:
        sync = context(server, http, batchSize=1)
        run(provider.export(sync, batches_of(people(2))))
    assert fake.polls == ["req-1"]  # no further poll once the quota is spent
    assert (sync.counts.added, sync.counts.unconfirmed) == (0, 2)
    assert sync.counts.unconfirmed_samples[0].startswith(
        "2 of 2 requests (2 members; req-1, req-2): asking Google for the status of request req-1 failed: "
        "Google rate limit reached"
    )


def test_a_status_answer_that_is_not_json_leaves_the_requests_unconfirmed(http: HttpClientFactory) -> None:
    with FakeServer(DataManager(status_answers=[Response(200, "<html>maintenance</html>")])) as server:
        sync = context(server, http)
        run(provider.export(sync, batches_of(people(2))))
    assert (sync.counts.added, sync.counts.unconfirmed) == (0, 2)
    assert sync.counts.unconfirmed_samples == [
        "1 of 1 requests (2 members; req-1): Google's status of request req-1 is not JSON"
    ]
