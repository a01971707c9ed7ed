"""Notifications sent twice, as the fault runs count them: provider resources against the ledger."""

from __future__ import annotations

import pytest

from fleetpipe_dev.twilio.audit import audit_deliveries

pytestmark = pytest.mark.unit


def message(sid: str, reference: str) -> dict[str, str]:
    return {"sid": sid, "to": "+15550000001", "body": f"Crash detected. Ref {reference}"}


def test_every_resource_claimed_once_is_nothing_sent_twice() -> None:
    found = audit_deliveries(
        ["SM1", "CA1", None],
        [message("SM1", "FP-ABCDEFGHIJ")],
        [{"sid": "CA1", "to": "+15550000001"}],
    )
    assert (found.sent, found.unclaimed, found.repeated_references) == (2, [], 0)
    assert found.sent_twice == 0


def test_a_message_no_delivery_claims_and_a_repeated_reference_are_counted() -> None:
    found = audit_deliveries(
        ["SM1"],
        [message("SM1", "FP-ABCDEFGHIJ"), message("SM2", "FP-ABCDEFGHIJ")],
        [{"sid": "CA9", "to": "+15550000002"}],
    )
    assert [u["sid"] for u in found.unclaimed] == ["SM2", "CA9"]
    assert found.repeated_references == 1
    assert found.sent_twice == 3
