"""The hourly ``draft_invoices`` job (billing/jobs.py) with a frozen clock: it drafts last month
only once that month has settled in the tenant's zone (reopen window + late grace), and running it
again changes nothing until the rollups change; a finalized invoice is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing import jobs
from billing.invoices import service
from billing.invoices.models import Invoice
from compliance.models import AuditEntry
from compliance.service import SystemActor
from control_plane.periodic import JobContext
from tests.billing.invoices.conftest import contact, ingest

OCT = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
# October ends at Oct 31 23:00 UTC in Berlin and Nov 1 07:00 UTC in Los Angeles; + 72 h + 24 h.
BERLIN_SETTLED = datetime(2026, 11, 4, 23, 0, tzinfo=UTC)
LA_SETTLED = datetime(2026, 11, 5, 7, 0, tzinfo=UTC)


@pytest.fixture
def run_job(settings, dbs, keyring, monkeypatch):
    """``await run_job(now)``: the scheduler's job as registered, with ``utcnow`` frozen at ``now``."""

    async def run(now: datetime) -> dict[str, int]:
        monkeypatch.setattr("control_plane.database.utcnow", lambda: now)
        return await jobs.draft_invoices(JobContext(settings, dbs, keyring))

    return run


async def invoices_of(dbs, *tenants) -> dict[tuple[str, str], Invoice]:
    ids = {t.id: t.slug for t in tenants}
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(Invoice).where(Invoice.tenant_id.in_(list(ids))))).all()
    return {(ids[r.tenant_id], r.period): r for r in rows}


async def audit_count(dbs, slug: str) -> int:
    async with dbs.control_session() as session:
        return await session.scalar(sa.select(sa.func.count()).where(AuditEntry.stream == slug))


async def test_drafts_only_settled_periods_and_is_safe_to_rerun(dbs, client, ingest_tenant, run_job):
    berlin = await ingest_tenant(timezone="Europe/Berlin")
    la = await ingest_tenant(timezone="America/Los_Angeles", currency="USD")
    for t in (berlin, la):
        await ingest(client, t, [contact(opened=OCT), contact(opened=OCT + timedelta(hours=1))])

    # During October, and one second before October has settled anywhere: nothing is drafted.
    await run_job(OCT + timedelta(days=5))
    await run_job(BERLIN_SETTLED - timedelta(seconds=1))
    assert await invoices_of(dbs, berlin, la) == {}

    # Berlin's October has settled, Los Angeles' (eight hours later) has not.
    await run_job(BERLIN_SETTLED)
    drafted = await invoices_of(dbs, berlin, la)
    assert set(drafted) == {(berlin.slug, "2026-10")}

    await run_job(LA_SETTLED)
    drafted = await invoices_of(dbs, berlin, la)
    assert set(drafted) == {(berlin.slug, "2026-10"), (la.slug, "2026-10")}  # never September, never November
    assert all(i.status == "draft" and i.drafts == 1 for i in drafted.values())
    before = {k: (i.total_minor, i.drafted_at) for k, i in drafted.items()}
    audits = await audit_count(dbs, berlin.slug)

    # Re-runs an hour apart change nothing: same invoices, same totals, no new draft, no audit entry.
    for hours in (1, 2):
        result = await run_job(LA_SETTLED + timedelta(hours=hours))
        assert result["failed"] == 0
        again = await invoices_of(dbs, berlin, la)
        assert {k: (i.total_minor, i.drafted_at) for k, i in again.items()} == before
        assert all(i.drafts == 1 for i in again.values())
    assert await audit_count(dbs, berlin.slug) == audits

    # A late contact of October (still a draft): the next run re-drafts Berlin only.
    await ingest(client, berlin, [contact(opened=OCT + timedelta(hours=2))])
    await run_job(LA_SETTLED + timedelta(hours=3))
    after = await invoices_of(dbs, berlin, la)
    assert after[(berlin.slug, "2026-10")].drafts == 2
    assert after[(berlin.slug, "2026-10")].lines[0].quantity == 3
    assert after[(la.slug, "2026-10")].drafts == 1

    # Finalized, the invoice is left alone by the job, even when more October contacts arrive.
    async with dbs.control_transaction() as session:
        final = await service.finalize_invoice(
            session, SystemActor("tests", "system"), after[(berlin.slug, "2026-10")].id, now=LA_SETTLED
        )
    await ingest(client, berlin, [contact(opened=OCT + timedelta(hours=3))])
    await run_job(LA_SETTLED + timedelta(hours=4))
    frozen = (await invoices_of(dbs, berlin))[(berlin.slug, "2026-10")]
    assert (frozen.status, frozen.number, frozen.total_minor, frozen.drafts) == (
        "finalized", final.number, final.total_minor, 2,
    )  # fmt: skip
