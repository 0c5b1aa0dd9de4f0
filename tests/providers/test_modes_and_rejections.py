"""What every provider declares about sync modes, and how refused records are counted and kept."""

from __future__ import annotations

from typing import ClassVar

from destinations.api.models import SyncMode
from destinations.providers.base import RecordCounter, mask_record_values
from destinations.providers.catalog import load_catalog
from destinations.providers.webhook import WebhookProvider


def test_the_catalog_declares_each_providers_modes() -> None:
    modes = {key: [m.value for m in provider.modes] for key, provider in load_catalog().items()}
    assert modes["mailchimp"] == ["upsert", "mirror", "insert", "update"]
    assert modes["salesforce"] == ["upsert", "mirror", "insert", "update"]
    assert modes["google"] == ["upsert", "mirror"]
    assert modes["facebook"] == ["upsert", "mirror"]
    assert modes["webhook"] == ["upsert"]


def test_a_provider_that_only_sets_supports_mirror_gets_upsert_and_mirror() -> None:
    class Removing(WebhookProvider):
        supports_mirror: ClassVar[bool] = True

    assert Removing.modes == (SyncMode.UPSERT, SyncMode.MIRROR)


def test_declared_modes_decide_supports_mirror() -> None:
    class InsertOnly(WebhookProvider):
        modes: ClassVar[tuple[SyncMode, ...]] = (SyncMode.INSERT,)

    class WithMirror(WebhookProvider):
        modes: ClassVar[tuple[SyncMode, ...]] = (SyncMode.UPSERT, SyncMode.MIRROR)

    assert not InsertOnly.supports_mirror
    assert WithMirror.supports_mirror


def test_a_rejection_is_kept_under_the_key_with_the_code_and_other_values_masked() -> None:
    counts = RecordCounter(record_key=lambda record: str(record["id"]))
    record = {"id": "c-17", "email": "jane@example.com", "phone": "+44 20 7946 0958", "vip": True}
    counts.reject(record, "phone +44 20 7946 0958 of jane@example.com is not valid", code="INVALID_PHONE")
    assert counts.rejected == {"c-17": "INVALID_PHONE: phone *** of *** is not valid"}
    assert counts.omitted == 1
    assert counts.omission_samples == ["c-17: INVALID_PHONE: phone *** of *** is not valid"]


def test_the_key_itself_stays_readable_in_the_reason() -> None:
    record = {"email": "jane@example.com", "first_name": "jan"}
    assert mask_record_values("jane@example.com refused (jan)", record, keep="jane@example.com") == (
        "jane@example.com refused (***)"
    )


def test_records_dropped_before_sending_are_invalid_not_omitted() -> None:
    counts = RecordCounter()
    counts.discard(2, "a record has no email address")
    counts.skip(3)
    snapshot = counts.snapshot()
    assert (snapshot.invalid, snapshot.omitted, snapshot.skipped) == (2, 0, 3)
    assert RecordCounter().snapshot().model_dump(exclude_none=True, by_alias=True) == {
        "read": 0, "added": 0, "updated": 0, "removed": 0, "omitted": 0, "failed": 0
    }  # fmt: skip
