"""Billing scenarios with a frozen clock: late changes after finalization, reopened contacts, month ends by zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.invoices import service
from compliance.service import SystemActor
from tests.billing.invoices.conftest import NOW, contact, ingest

ACTOR = SystemActor("tests", "system")
OCT = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)


def _lines(invoice) -> list[tuple[str, int, int]]:
    return [(r.kind, int(r.quantity), int(r.amount_minor)) for r in invoice.lines]


class TestLateChanges:
    async def test_reopened_ai_contact_after_finalization_is_an_adjustment_next_month(self, dbs, client, ingest_tenant):
        tenant = await ingest_tenant()
        c = contact("reopens", opened=OCT)
        await ingest(client, tenant, [c, contact(opened=OCT)])
        async with dbs.control_transaction() as session:
            october, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
            await service.finalize_invoice(session, ACTOR, october.id, now=NOW)
        assert _lines(october)[:1] == [("ai_resolved", 2, 280)]
        # The customer came back: the AI contact is now human-resolved (a newer version of it).
        later = (OCT + timedelta(days=3)).isoformat()
        await ingest(
            client, tenant,
            [c | {"resolution": "human_resolved", "handoff_at": later, "resolved_at": later, "updated_at": later}],
        )  # fmt: skip
        dec = NOW + timedelta(days=20)
        async with dbs.control_transaction() as session:
            november, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-11", now=dec)
        adjustments = [(r.description, r.amount_minor) for r in november.lines if r.kind == "adjustment"]
        # ai 2 -> 1 (-1.40), human 0 -> 1 (+5.20), true-up follows the usage (-3.80); no credit moved (0% -> 10%)
        assert adjustments == [
            ("Correction to 2026-10: ai-resolved contacts 2 → 1", -140),
            ("Correction to 2026-10: human-resolved contacts 0 → 1", 520),
            ("Correction to 2026-10: minimum fee true-up", -380),
            ("Correction to 2026-10: SLA credits", -66),
        ]
        async with dbs.control_session() as session:
            frozen = await service.get_invoice(session, None, october.id)
            assert frozen.status == "finalized" and frozen.total_minor == 500000
        async with dbs.control_transaction() as session:
            await service.finalize_invoice(session, ACTOR, november.id, now=dec)
            december, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-12",
                                                      now=dec + timedelta(days=31))  # fmt: skip
        assert [r for r in december.lines if r.kind == "adjustment"] == []  # billed once, not again


class TestMonthEnds:
    @pytest.mark.parametrize(
        ("timezone", "currency", "utc_offset"),
        [("America/Los_Angeles", "USD", -7), ("Asia/Tokyo", "JPY", 9), ("Asia/Kuwait", "KWD", 3)],
    )
    async def test_a_contact_at_2330_local_on_the_31st_is_in_october(
        self, dbs, client, ingest_tenant, timezone, currency, utc_offset
    ):
        tenant = await ingest_tenant(timezone=timezone, currency=currency)
        local_2330 = datetime(2026, 10, 31, 23, 30, tzinfo=UTC) - timedelta(hours=utc_offset)
        late = contact(opened=local_2330 - timedelta(minutes=10), resolved_at=local_2330.isoformat(),
                       updated_at=local_2330.isoformat())  # fmt: skip
        november = (local_2330 + timedelta(hours=1)).isoformat()  # 00:30 local on November 1st
        early = contact(opened=local_2330 + timedelta(hours=1), resolved_at=november, updated_at=november)
        await ingest(client, tenant, [late, early])
        async with dbs.control_transaction() as session:
            october, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
        ai = [(q, a) for k, q, a in _lines(october) if k == "ai_resolved"]
        # 1.40 per contact: 140 cents, 1 yen (1.40 rounds half up to 1), 1.400 dinar
        assert ai == [(1, {"USD": 140, "JPY": 1, "KWD": 1400}[currency])]
        total = {"USD": 500000, "JPY": 5000, "KWD": 5000000}[currency]
        assert october.total_minor == total  # the minimum fee of 5000 tops it up in every currency
