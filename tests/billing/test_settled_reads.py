"""Reads never lag what was accepted: a draft, a finalization, an SLA report or the usage taken right
after the last accepted batch counts it, although its rollup delta still waits in the cell (as it
does for a moment after every answer, and for longer after a crash)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from billing.metering.models import RollupDelta
from billing.metering.service import ingest_contacts
from tests.billing.conftest import T0, contact, ts


async def _pending(dbs, tenant_id) -> int:
    total = 0
    for region in dbs.cells:
        async with dbs.cell_session(region) as cell:
            total += await cell.scalar(sa.select(sa.func.count()).where(RollupDelta.tenant_id == tenant_id))
    return total


async def _accept_unapplied(dbs, keyring, slug: str, contacts: list) -> None:
    """Ingest as the API does, but never apply the deltas: they stay in the cells."""
    result = await ingest_contacts(dbs, keyring, None, slug, contacts, defer_rollups=True)
    assert result.accepted + result.updated == len(contacts) and result.pending


def _batch(prefix: str, n: int, **overrides) -> list:
    return [
        contact(
            f"{prefix}{i}",
            opened=T0 + timedelta(hours=i),
            resolution="human_resolved" if i % 4 == 0 else "ai_resolved",
            handoff_at=ts(T0 + timedelta(hours=i, minutes=1)) if i % 4 == 0 else None,
            resolved_at=ts(T0 + timedelta(hours=i, minutes=4)),
            **overrides,
        )
        for i in range(n)
    ]


class TestReadsSettleTheTenantFirst:
    async def test_usage_sla_report_and_draft_count_every_accepted_contact(
        self, client, dbs, keyring, ingest_tenant, staff_headers
    ):
        t = await ingest_tenant()
        await _accept_unapplied(dbs, keyring, t.slug, _batch("a", 40))
        assert await _pending(dbs, t.id) == 1

        usage = await client.get(f"/api/v1/tenants/{t.slug}/usage?month=2026-10", headers=staff_headers)
        assert usage.status_code == 200 and usage.json()["contacts"] == 40
        assert await _pending(dbs, t.id) == 0

        await _accept_unapplied(dbs, keyring, t.slug, _batch("b", 10))
        report = await client.get(f"/api/v1/tenants/{t.slug}/sla?period=2026-10", headers=staff_headers)
        assert report.status_code == 200 and report.json()["metrics"]["contacts_resolved"] == 50

        await _accept_unapplied(dbs, keyring, t.slug, _batch("c", 6))
        draft = await client.post(f"/api/v1/tenants/{t.slug}/invoices?period=2026-10", headers=staff_headers)
        assert draft.status_code == 200, draft.text
        billed = {line["kind"]: line["quantity"] for line in draft.json()["lines"] if line["kind"].endswith("resolved")}
        # 56 contacts: i % 4 == 0 are human (10 + 3 + 2), the rest AI.
        assert billed == {"ai_resolved": 41, "human_resolved": 15}

    async def test_finalizing_an_outdated_draft_is_refused_until_it_is_redrafted(
        self, client, dbs, keyring, ingest_tenant, staff_headers
    ):
        t = await ingest_tenant()
        await _accept_unapplied(dbs, keyring, t.slug, _batch("d", 8))
        draft = await client.post(f"/api/v1/tenants/{t.slug}/invoices?period=2026-10", headers=staff_headers)
        invoice_id = draft.json()["id"]
        await _accept_unapplied(dbs, keyring, t.slug, _batch("e", 3))  # arrives after the review

        refused = await client.post(f"/api/v1/invoices/{invoice_id}/finalize", headers=staff_headers)
        assert refused.status_code == 409 and refused.json()["code"] == "draft_outdated"
        assert "period=2026-10" in refused.json()["detail"]

        again = await client.post(f"/api/v1/tenants/{t.slug}/invoices?period=2026-10", headers=staff_headers)
        assert sum(line["quantity"] for line in again.json()["lines"] if line["kind"].endswith("resolved")) == 11
        final = await client.post(f"/api/v1/invoices/{invoice_id}/finalize", headers=staff_headers)
        assert final.status_code == 200 and final.json()["status"] == "finalized"
