"""Contract tests of the `salesforce` provider against a local org (see salesforce_fake.py for the pages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from destinations.api.models import AuthMethod, JobType, SyncMode
from destinations.providers._http import HttpClientFactory
from destinations.providers._oauth import ReauthorizationNeeded
from destinations.providers.base import Credentials, Record, SyncContext
from destinations.providers.errors import ConfigurationError, ProviderError, RateLimited
from destinations.providers.salesforce import provider, soql_in_batches, soql_literal
from tests.providers.conftest import batches_of, make_context, run
from tests.providers.oauth_fake import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from tests.providers.salesforce_fake import TOKEN_PATH, Org
from tests.providers.servers import FakeServer, Request, Response

EXPORT = {
    "sobject": "Contact",
    "externalIdField": "Email",
    "fields": {"email": "Email", "first_name": "FirstName"},
}


@pytest.fixture
def org() -> Iterator[tuple[Org, FakeServer]]:
    fake = Org()
    with FakeServer(fake) as server:
        fake.tokens.instance_url = server.url
        yield fake, server


def oauth_values(server: FakeServer) -> dict[str, str]:
    return {
        "refreshToken": REFRESH_TOKEN,
        "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "tokenUrl": f"{server.url}{TOKEN_PATH}",
    }


def context(
    server: FakeServer,
    http: HttpClientFactory,
    job_type: JobType = JobType.EXPORT,
    config: dict[str, Any] | None = None,
    mode: SyncMode = SyncMode.UPSERT,
    values: dict[str, str] | None = None,
    endpoint: str | None = None,
) -> SyncContext:
    return make_context(
        provider,
        job_type,
        config if config is not None else EXPORT,
        method=AuthMethod.OAUTH2,
        values=values if values is not None else oauth_values(server),
        endpoint=endpoint,
        http=http,
        mode=mode,
    )


def people(count: int, start: int = 0) -> list[Record]:
    return [{"email": f"p{i}@example.com", "first_name": f"P{i}"} for i in range(start, start + count)]


async def collect(batches: Any) -> list[Record]:
    return [record async for batch in batches for record in batch]


# ----------------------------------------------------------------------------------------- export


def test_small_runs_upsert_through_collections_of_at_most_200_with_all_or_none_false(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.contacts["p0@example.com"] = {"Id": "0030", "Email": "p0@example.com"}
    sync = context(server, http)
    run(provider.export(sync, batches_of(people(450), size=100)))
    patches = [path for method, path in fake.requests_log if method == "PATCH"]
    assert patches == ["/services/data/v62.0/composite/sobjects/Contact/Email"] * 3
    assert (sync.counts.added, sync.counts.updated) == (449, 1)
    assert fake.contacts["p7@example.com"]["FirstName"] == "P7"


def test_records_without_the_external_id_are_invalid_and_never_sent(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    sync = context(server, http)
    run(provider.export(sync, batches_of([{"first_name": "No Address"}, *people(2)])))
    assert (sync.counts.added, sync.counts.omitted, sync.counts.invalid) == (2, 0, 1)
    assert sorted(fake.contacts) == ["p0@example.com", "p1@example.com"]


def test_records_salesforce_refuses_in_a_collection_are_omitted_with_their_errors(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.refuse = {"p2@example.com"}
    sync = context(server, http)
    run(provider.export(sync, batches_of(people(4))))
    assert (sync.counts.added, sync.counts.omitted) == (3, 1)
    # Kept under the source record's key with Salesforce's status code and message (retried next run).
    assert sync.counts.rejected == {
        "p2@example.com": "INVALID_EMAIL_ADDRESS: invalid email address: p2@example.com"
    }
    assert sync.counts.omission_samples == [
        "p2@example.com: INVALID_EMAIL_ADDRESS: invalid email address: p2@example.com"
    ]


def test_runs_above_the_threshold_go_through_bulk_api_ingest_jobs_with_failed_results_omitted(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.refuse = {"p5@example.com"}
    fake.contacts["p1@example.com"] = {"Id": "0031", "Email": "p1@example.com"}
    fake.polls_before_done = 3
    config = {**EXPORT, "bulkThreshold": 10, "bulkJobRecords": 15}
    sync = context(server, http, config=config)
    run(provider.export(sync, batches_of(people(25), size=7)))
    creates = [
        path
        for method, path in fake.requests_log
        if (method, path) == ("POST", "/services/data/v62.0/jobs/ingest")
    ]
    assert len(creates) == 2  # 15 + 10 records
    assert not any(path.endswith("/composite/sobjects/Contact/Email") for _, path in fake.requests_log)
    assert (sync.counts.added, sync.counts.updated, sync.counts.omitted) == (23, 1, 1)
    assert "INVALID_EMAIL_ADDRESS" in sync.counts.omission_samples[0]
    assert list(sync.counts.rejected) == ["p5@example.com"]  # the failed result, under its record's key
    assert len(fake.contacts) == 24


def test_mirror_removal_sets_the_configured_field_instead_of_deleting(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    config = {**EXPORT, "removal": {"field": "Synced_To_Ads__c", "value": False}}
    sync = context(server, http, config=config, mode=SyncMode.MIRROR)
    run(provider.export(sync, batches_of(people(3))))
    run(provider.remove(sync, batches_of([{"email": "P1@Example.com"}])))
    assert sync.counts.removed == 1
    assert fake.contacts["p1@example.com"]["Synced_To_Ads__c"] is False
    assert len(fake.contacts) == 3


def test_mirror_mode_without_a_removal_field_is_refused_naming_it(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    _, server = org
    with pytest.raises(ConfigurationError, match=r"config\.removal"):
        run(provider.remove(context(server, http, mode=SyncMode.MIRROR), batches_of(people(1))))


def test_a_config_whose_fields_miss_the_external_id_is_refused() -> None:
    with pytest.raises(Exception, match="externalIdField 'Email'"):
        provider.parse_config(JobType.EXPORT, {**EXPORT, "fields": {"first_name": "FirstName"}})


def test_external_ids_differing_only_in_case_are_one_member() -> None:
    config = provider.parse_config(JobType.EXPORT, EXPORT)
    assert provider.member_identities(config, {"email": "Jane@Example.com"}) == frozenset(
        {"Email:jane@example.com"}
    )
    sensitive = provider.parse_config(JobType.EXPORT, {**EXPORT, "externalIdCaseSensitive": True})
    assert provider.member_identities(sensitive, {"email": "Jane@Example.com"}) == frozenset(
        {"Email:Jane@Example.com"}
    )


# ----------------------------------------------------------------------------------------- limits


def test_request_limit_exceeded_ends_the_run_rate_limited(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.limit_exceeded = True
    with pytest.raises(RateLimited, match="REQUEST_LIMIT_EXCEEDED") as limited:
        run(provider.export(context(server, http), batches_of(people(2))))
    assert limited.value.retry_after_seconds == 3600


def test_a_nearly_spent_daily_allocation_stops_before_the_next_call(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.api_usage = (14_000, 15_000)
    sync = context(server, http, config={**EXPORT, "maxApiUsagePercent": 90})
    with pytest.raises(RateLimited, match="14000 of its 15000"):
        run(provider.export(sync, batches_of(people(450), size=100)))
    assert sync.counts.added == 200  # the first collection went out, then the header said stop


# ------------------------------------------------------------------------------------------ OAuth2


def test_the_instance_url_comes_from_the_token_response(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    run(provider.export(context(server, http), batches_of(people(1))))
    assert fake.tokens.issued == ["access-1"]
    assert fake.requests_log[0] == ("PATCH", "/services/data/v62.0/composite/sobjects/Contact/Email")


def test_an_expired_session_is_refreshed_once_and_the_run_goes_on(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.tokens.uses_per_token = 1
    sync = context(server, http)
    run(provider.export(sync, batches_of(people(600), size=200)))
    assert sync.counts.added == 600
    assert fake.tokens.issued == ["access-1", "access-2", "access-3"]


def test_a_rotated_refresh_token_is_used_for_later_refreshes_and_handed_over(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.tokens.rotate = True
    fake.tokens.uses_per_token = 1
    sync = context(server, http)
    run(provider.export(sync, batches_of(people(600), size=200)))
    assert sync.counts.added == 600
    assert fake.tokens.refused == []
    assert sync.rotated.values == {"refreshToken": "rotated-3"}
    assert fake.tokens.refresh_tokens == {"rotated-3"}


def test_a_revoked_refresh_token_fails_the_run_saying_to_reauthorize(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.tokens.refresh_tokens.clear()
    with pytest.raises(ReauthorizationNeeded, match="Re-authorize: authorize the connected app again"):
        run(provider.export(context(server, http), batches_of(people(1))))


def test_the_health_check_reports_the_daily_allocation(org: tuple[Org, FakeServer]) -> None:
    _, server = org
    check = provider.check_credentials(Credentials(AuthMethod.OAUTH2, oauth_values(server)))
    assert check.healthy, check.message
    assert "14900 of 15000 daily API requests left" in check.message


def test_the_health_check_of_a_revoked_refresh_token_is_unhealthy_with_the_reauthorize_message(
    org: tuple[Org, FakeServer],
) -> None:
    fake, server = org
    fake.tokens.refresh_tokens.clear()
    check = provider.check_credentials(Credentials(AuthMethod.OAUTH2, oauth_values(server)))
    assert not check.healthy
    assert "invalid_grant" in check.message and "Re-authorize" in check.message
    assert REFRESH_TOKEN not in check.message


def test_a_bare_access_token_needs_the_endpoint_as_instance(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.tokens.accept_static("00Dxx!static")
    with pytest.raises(ConfigurationError, match="endpoint"):
        run(
            provider.export(
                context(server, http, values={"accessToken": "00Dxx!static"}), batches_of(people(1))
            )
        )
    sync = context(server, http, values={"accessToken": "00Dxx!static"}, endpoint=server.url)
    run(provider.export(sync, batches_of(people(1))))
    assert sync.counts.added == 1


# ----------------------------------------------------------------------------------------- import


def test_import_runs_a_bulk_query_job_and_pages_by_locator(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    for i in range(5):
        fake.contacts[f"c{i}@x.io"] = {
            "Id": f"003{i}",
            "Email": f"c{i}@x.io",
            "FirstName": None if i == 4 else f"C{i}",
        }
    fake.polls_before_done = 2
    config = {"query": "SELECT Id, Email, FirstName FROM Contact", "pageSize": 2, "pollSeconds": 1}
    sync = context(server, http, JobType.IMPORT, config)
    records = run(collect(provider.import_records(sync)))
    assert [r["Email"] for r in records] == [f"c{i}@x.io" for i in range(5)]
    assert records[4] == {"Id": "0034", "Email": "c4@x.io", "FirstName": None}
    pages = [path for method, path in fake.requests_log if path.endswith("/results")]
    assert len(pages) == 3


def test_a_query_salesforce_refuses_fails_naming_the_config_field(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    _, server = org
    config = {"query": "SELECT Id FROM Contact"}
    sync = context(server, http, JobType.IMPORT, config)
    sync.config = provider.parse_config(JobType.IMPORT, config).model_copy(update={"query": "DELETE Contact"})
    with pytest.raises(ProviderError, match=r"MALFORMED_QUERY.*config\.query"):
        run(collect(provider.import_records(sync)))


# ------------------------------------------------------------------------------------- enrichment


def test_enrichment_looks_keys_up_in_batches_and_merges_fields_ignoring_case(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.contacts["a@x.io"] = {"Id": "003A", "Email": "A@x.io", "Account": {"Name": "Acme"}}
    fake.contacts["o'neil@x.io"] = {"Id": "003O", "Email": "o'neil@x.io", "Account": {"Name": "Initech"}}
    config = {
        "sobject": "Contact",
        "matchField": "Email",
        "keyField": "email",
        "fields": {"Id": "salesforce_id", "Account.Name": "company"},
        "batchSize": 2,
    }
    sync = context(server, http, JobType.ENRICHMENT, config)
    source = [{"email": "a@X.io"}, {"email": "o'neil@x.io"}, {"email": "missing@x.io"}]
    records = run(collect(provider.enrich(sync, batches_of(source))))
    assert records == [
        {"email": "a@X.io", "salesforce_id": "003A", "company": "Acme"},
        {"email": "o'neil@x.io", "salesforce_id": "003O", "company": "Initech"},
    ]
    assert sync.counts.omitted == 1 and "missing@x.io" in sync.counts.omission_samples[0]
    assert len([p for _, p in fake.requests_log if p.endswith("/query")]) == 2


def test_soql_literals_escape_quotes_and_backslashes() -> None:
    assert soql_literal("o'ne\\il") == "'o\\'ne\\\\il'"


# ------------------------------------------------------------------------- insert and update modes
# Create: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm
# Update: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm
# Lookup: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
# URI limit (16,384 bytes with the headers): https://help.salesforce.com/s/articleView?id=000386264&type=1

COLLECTION = "/services/data/v62.0/composite/sobjects"
QUERY = "/services/data/v62.0/query"


def calls(server: FakeServer) -> list[tuple[str, str]]:
    """The API calls the provider made (not the token endpoint)."""
    return [(r.method, r.path) for r in server.requests if r.path != TOKEN_PATH]


def sent_records(server: FakeServer, method: str) -> list[list[dict[str, Any]]]:
    return [r.json()["records"] for r in server.requests if (r.method, r.path) == (method, COLLECTION)]


def test_salesforce_declares_insert_and_update_besides_upsert_and_mirror() -> None:
    assert provider.modes == (SyncMode.UPSERT, SyncMode.MIRROR, SyncMode.INSERT, SyncMode.UPDATE)


def test_insert_creates_only_new_external_ids_and_leaves_existing_records_untouched(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.external_id_unique = False  # Contact.Email: Salesforce itself would create a second record
    fake.contacts["p1@example.com"] = {"Id": "0031", "Email": "P1@Example.com", "FirstName": "Kept"}
    sync = context(server, http, mode=SyncMode.INSERT)
    run(provider.export(sync, batches_of(people(4))))
    assert (sync.counts.added, sync.counts.updated, sync.counts.skipped) == (3, 0, 1)
    assert fake.contacts["p1@example.com"] == {"Id": "0031", "Email": "P1@Example.com", "FirstName": "Kept"}
    assert fake.duplicates == []
    assert calls(server) == [("GET", QUERY), ("POST", COLLECTION)]
    assert [r["Email"] for r in sent_records(server, "POST")[0]] == [
        "p0@example.com",
        "p2@example.com",
        "p3@example.com",
    ]
    assert sorted(fake.contacts) == ["p0@example.com", "p1@example.com", "p2@example.com", "p3@example.com"]


def test_insert_creates_a_repeated_external_id_once_and_skips_the_repeat(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.external_id_unique = False
    source = [
        {"email": "p0@example.com", "first_name": "First"},
        {"email": "p1@example.com", "first_name": "P1"},
        {"email": "P0@example.com", "first_name": "Second"},
    ]
    sync = context(server, http, mode=SyncMode.INSERT)
    run(provider.export(sync, batches_of(source)))
    assert (sync.counts.added, sync.counts.skipped) == (2, 1)
    assert fake.contacts["p0@example.com"]["FirstName"] == "First"
    assert fake.duplicates == []
    # The repeat goes into the next request, after a lookup that finds the record just created.
    assert calls(server) == [("GET", QUERY), ("POST", COLLECTION), ("GET", QUERY)]


def test_update_changes_known_records_by_id_and_skips_unknown_external_ids(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.contacts["p0@example.com"] = {"Id": "0030", "Email": "p0@example.com", "FirstName": "Old"}
    fake.contacts["p2@example.com"] = {"Id": "0032", "Email": "P2@EXAMPLE.com", "FirstName": "Old"}
    sync = context(server, http, mode=SyncMode.UPDATE)
    run(provider.export(sync, batches_of(people(4))))
    assert (sync.counts.added, sync.counts.updated, sync.counts.skipped) == (0, 2, 2)
    assert sorted(fake.contacts) == ["p0@example.com", "p2@example.com"]
    assert fake.contacts["p2@example.com"]["FirstName"] == "P2"
    assert calls(server) == [("GET", QUERY), ("PATCH", COLLECTION)]
    assert [(r["id"], r["Email"]) for r in sent_records(server, "PATCH")[0]] == [
        ("0030", "p0@example.com"),
        ("0032", "p2@example.com"),
    ]


def test_update_never_sends_one_record_id_twice_in_a_request_and_applies_repeats_in_order(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.contacts["p0@example.com"] = {"Id": "0030", "Email": "p0@example.com", "FirstName": "Old"}
    source = [
        {"email": "p0@example.com", "first_name": "First"},
        {"email": "p0@example.com", "first_name": "Second"},
    ]
    sync = context(server, http, mode=SyncMode.UPDATE)
    run(provider.export(sync, batches_of(source)))
    assert (sync.counts.updated, sync.counts.omitted) == (2, 0)
    assert fake.contacts["p0@example.com"]["FirstName"] == "Second"
    assert [len(records) for records in sent_records(server, "PATCH")] == [1, 1]


def test_update_refuses_an_external_id_several_records_share(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.external_id_unique = False
    fake.contacts["p1@example.com"] = {"Id": "0031", "Email": "p1@example.com", "FirstName": "A"}
    fake.duplicates.append({"Id": "0039", "Email": "P1@example.com", "FirstName": "B"})
    sync = context(server, http, mode=SyncMode.UPDATE)
    run(provider.export(sync, batches_of(people(2, start=1))))
    assert (sync.counts.updated, sync.counts.skipped, sync.counts.omitted) == (0, 1, 1)
    assert sync.counts.rejected == {
        "p1@example.com": "DUPLICATE_EXTERNAL_ID: 2 Contact records have this Email (0031, 0039); "
        "update mode updates a record only when one has it"
    }
    assert (fake.contacts["p1@example.com"]["FirstName"], fake.duplicates[0]["FirstName"]) == ("A", "B")
    assert calls(server) == [("GET", QUERY)]  # nothing left to update


def test_records_salesforce_refuses_in_insert_mode_are_rejections_with_their_status_codes(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.required = {"LastName"}
    fake.refuse = {"p2@example.com"}
    # Declared case-sensitive, but the org's field is unique ignoring case: the lookup misses
    # p3's record, and Salesforce refuses the create as a duplicate.
    fake.contacts["p3@example.com"] = {"Id": "0033", "Email": "p3@example.com"}
    config = {
        **EXPORT,
        "fields": {"email": "Email", "last_name": "LastName"},
        "externalIdCaseSensitive": True,
    }
    source = [
        {"email": "p0@example.com", "last_name": "Zero"},
        {"email": "p1@example.com"},
        {"email": "p2@example.com", "last_name": "Two"},
        {"email": "P3@example.com", "last_name": "Three"},
    ]
    sync = context(server, http, config=config, mode=SyncMode.INSERT)
    run(provider.export(sync, batches_of(source)))
    assert (sync.counts.added, sync.counts.omitted, sync.counts.skipped) == (1, 3, 0)
    assert sync.counts.rejected == {
        "p1@example.com": "REQUIRED_FIELD_MISSING: Required fields are missing: ['LastName']",
        "p2@example.com": "INVALID_EMAIL_ADDRESS: Email: invalid email address: p2@example.com",
        "P3@example.com": "DUPLICATE_VALUE: duplicate value found: Email duplicates value on record "
        "with id: 0033",
    }


def test_a_record_deleted_between_the_lookup_and_the_update_is_a_rejection(
    http: HttpClientFactory,
) -> None:
    fake = Org()
    fake.contacts["p0@example.com"] = {"Id": "0030", "Email": "p0@example.com"}
    fake.contacts["p1@example.com"] = {"Id": "0031", "Email": "p1@example.com"}

    def deleting_after_the_lookup(request: Request) -> Response:
        response = fake(request)
        if request.path == QUERY:
            fake.contacts.pop("p1@example.com")
        return response

    with FakeServer(deleting_after_the_lookup) as server:
        fake.tokens.instance_url = server.url
        sync = context(server, http, mode=SyncMode.UPDATE)
        run(provider.export(sync, batches_of(people(2))))
    assert (sync.counts.updated, sync.counts.omitted) == (1, 1)
    assert sync.counts.rejected == {"p1@example.com": "ENTITY_IS_DELETED: entity is deleted"}


@pytest.mark.parametrize(("mode", "method"), [(SyncMode.INSERT, "POST"), (SyncMode.UPDATE, "PATCH")])
def test_insert_and_update_send_at_most_200_records_a_request_whatever_the_bulk_threshold(
    org: tuple[Org, FakeServer], http: HttpClientFactory, mode: SyncMode, method: str
) -> None:
    fake, server = org
    for i in range(450):
        fake.contacts[f"p{i}@example.com"] = {"Id": f"003{i:04d}", "Email": f"p{i}@example.com"}
    if mode == SyncMode.INSERT:
        fake.contacts.clear()
    sync = context(server, http, config={**EXPORT, "bulkThreshold": 10}, mode=mode)
    run(provider.export(sync, batches_of(people(450), size=100)))
    assert [len(records) for records in sent_records(server, method)] == [200, 200, 50]
    assert [p for _, p in calls(server)].count(QUERY) == 3
    assert sync.counts.added + sync.counts.updated == 450
    assert not any("/jobs/ingest" in path for _, path in calls(server))


def test_lookup_queries_are_split_to_keep_each_url_under_8000_bytes(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    _, server = org
    # 115-character addresses: each costs 126 bytes of query string percent-encoded ('…' as %27…%27, @ as
    # %40, the comma as %2C) and the rest of the URL about 120, so 62 fit one 8,000-byte URL
    # (120 + 123 + 61 * 126 = 7,929): 200 records take 4 lookups (62 + 62 + 62 + 14).
    long = [{"email": f"{'a' * 100}{i:03d}@example.com", "first_name": "L"} for i in range(200)]
    sync = context(server, http, mode=SyncMode.INSERT)
    run(provider.export(sync, batches_of(long)))
    lookups = [r for r in server.requests if r.path == QUERY]
    assert len(lookups) == 4
    assert all(len(r.target) <= 8_000 for r in lookups)
    assert [r.query["q"].count("@example.com") for r in lookups] == [62, 62, 62, 14]
    assert sync.counts.added == 200


def test_lookup_results_are_followed_through_next_records_url(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.query_batch_size = 50
    for i in range(120):
        fake.contacts[f"p{i}@example.com"] = {"Id": f"003{i:04d}", "Email": f"p{i}@example.com"}
    sync = context(server, http, mode=SyncMode.UPDATE)
    run(provider.export(sync, batches_of(people(150))))
    assert (sync.counts.updated, sync.counts.skipped) == (120, 30)
    more = [path for _, path in calls(server) if path.startswith(f"{QUERY}/")]
    assert len(more) == 2  # 120 matches in pages of 50: two nextRecordsUrl calls


def test_lookup_batches_count_each_key_percent_encoded_against_the_limit() -> None:
    # "q=" and "IN ()" encoded (IN%20%28%29) take 2 + 11 bytes, 'ab' encoded (%27ab%27) 8, and each
    # further key a comma (%2C) more: two keys need 13 + 8 + 3 + 8 = 32 bytes.
    assert list(soql_in_batches("IN (", ["ab", "cd", "ef"], "q=", 31)) == [["ab"], ["cd"], ["ef"]]
    assert list(soql_in_batches("IN (", ["ab", "cd", "ef"], "q=", 32)) == [["ab", "cd"], ["ef"]]


def test_an_external_id_too_long_for_any_lookup_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="an external ID of 40 characters does not fit"):
        list(soql_in_batches("IN (", ["x" * 40], "q=", 30))


# ------------------------------------------------------------------------- dry runs (foresee)
# A dry run of an insert or update job runs the run's lookups (REST query) and nothing else, and says
# record by record what the run would do; then the run itself does exactly that.


async def foreseen(batches: Any) -> list[tuple[str | None, str]]:
    return [(item.record.get("email"), item.outcome) async for batch in batches for item in batch]


def test_an_insert_dry_run_only_looks_up_and_foresees_what_the_run_then_does(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.external_id_unique = False
    fake.contacts["p1@example.com"] = {"Id": "0031", "Email": "P1@Example.com", "FirstName": "Kept"}
    fake.contacts["p3@example.com"] = {"Id": "0033", "Email": "p3@example.com", "FirstName": "A"}
    fake.duplicates.append({"Id": "0039", "Email": "p3@example.com", "FirstName": "B"})
    source = [*people(4), {"email": "P0@example.com", "first_name": "Again"}, {"first_name": "No email"}]
    before = {key: dict(value) for key, value in fake.contacts.items()}

    preview = run(foreseen(provider.foresee(context(server, http, mode=SyncMode.INSERT), batches_of(source))))

    assert preview == [
        (None, "skipped"),  # no external ID: known with its batch, the others after their lookup
        ("p0@example.com", "added"),
        ("p1@example.com", "skipped"),
        ("p2@example.com", "added"),
        ("p3@example.com", "skipped"),
        ("P0@example.com", "skipped"),  # the run would create p0 first, then find it
    ]
    assert calls(server) == [("GET", QUERY)]
    assert fake.contacts == before and len(fake.duplicates) == 1
    sync = context(server, http, mode=SyncMode.INSERT)
    run(provider.export(sync, batches_of(source)))
    assert (sync.counts.added, sync.counts.skipped, sync.counts.invalid) == (2, 3, 1)


def test_an_update_dry_run_foresees_updates_skips_and_the_refusal_of_a_shared_id(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    fake.external_id_unique = False
    fake.contacts["p0@example.com"] = {"Id": "0030", "Email": "p0@example.com", "FirstName": "Old"}
    fake.contacts["p2@example.com"] = {"Id": "0032", "Email": "P2@EXAMPLE.com", "FirstName": "Old"}
    fake.contacts["p3@example.com"] = {"Id": "0033", "Email": "p3@example.com", "FirstName": "A"}
    fake.duplicates.append({"Id": "0039", "Email": "p3@example.com", "FirstName": "B"})

    preview = run(
        foreseen(provider.foresee(context(server, http, mode=SyncMode.UPDATE), batches_of(people(5))))
    )

    assert preview == [
        ("p0@example.com", "updated"),
        ("p1@example.com", "skipped"),
        ("p2@example.com", "updated"),
        ("p3@example.com", "rejected"),
        ("p4@example.com", "skipped"),
    ]
    assert calls(server) == [("GET", QUERY)]
    assert fake.contacts["p0@example.com"]["FirstName"] == "Old"
    sync = context(server, http, mode=SyncMode.UPDATE)
    run(provider.export(sync, batches_of(people(5))))
    assert (sync.counts.updated, sync.counts.skipped, sync.counts.omitted) == (2, 2, 1)
    assert list(sync.counts.rejected) == ["p3@example.com"]


def test_an_insert_dry_run_looks_up_200_at_a_time_and_skips_a_repeat_in_a_later_lookup(
    org: tuple[Org, FakeServer], http: HttpClientFactory
) -> None:
    fake, server = org
    source = [*people(449), {"email": "p5@example.com", "first_name": "Again"}]

    preview = run(foreseen(provider.foresee(context(server, http, mode=SyncMode.INSERT), batches_of(source))))

    assert [outcome for _, outcome in preview].count("added") == 449
    assert preview[-1] == ("p5@example.com", "skipped")  # its first was in the first lookup's 200
    assert calls(server) == [("GET", QUERY)] * 3
    assert fake.contacts == {}
