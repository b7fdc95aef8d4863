"""Retention: exactly the contact rows past the tenant's retention go, per cell; billing stays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from billing.metering.cli import rebuild_rollups
from billing.metering.models import WebhookEvent
from compliance import jobs
from compliance.models import AuditEntry
from compliance.retention import PURGED, purge_expired_contacts
from control_plane.periodic import JobContext
from tests.compliance.conftest import billing_snapshot, cell_rows, contact, ingest

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


class TestRetentionPurge:
    async def test_exactly_the_rows_past_their_time_go(self, client, cell_tenant, dbs, staff_headers, settings):
        short = await cell_tenant(retention_days=30)
        long = await cell_tenant(retention_days=365)
        second = timedelta(seconds=1)
        expired = [contact("DE", "a@x.de", CUTOFF - second), contact("US", "b@x.us", CUTOFF - timedelta(days=9))]
        kept = [contact("DE", "c@x.de", CUTOFF), contact("SG", "d@x.sg", CUTOFF + second), contact("US", None, NOW)]
        await ingest(client, short, expired + kept)
        old_but_long = [contact("DE", "e@x.de", CUTOFF - timedelta(days=60))]
        await ingest(client, long, old_but_long)
        async with dbs.cell_session("sg") as cell, cell.begin():
            await cell.execute(
                sa.insert(WebhookEvent),
                [
                    dict(
                        tenant_id=short.id,
                        integration_id=uuid.uuid4(),
                        source="gorgias",
                        delivery_id=name,
                        event_type="ticket",
                        payload={},
                        received_at=at,
                        status="mapped",
                    )
                    for name, at in (("old", CUTOFF - second), ("new", CUTOFF))
                ],
            )
        before = {t.slug: await billing_snapshot(dbs, t.id) for t in (short, long)}

        report = await purge_expired_contacts(dbs, now=NOW)

        assert report.purged[short.slug] == {
            "eu": {"contacts": 1, "webhook_events": 0},
            "sg": {"contacts": 0, "webhook_events": 1},
            "us": {"contacts": 1, "webhook_events": 0},
        }
        assert long.slug not in report.purged
        rows = await cell_rows(dbs, short.id)
        left = {eid for cell in rows.values() for eid in cell}
        assert left == {c["external_id"] for c in kept}
        assert {eid for cell in (await cell_rows(dbs, long.id)).values() for eid in cell} == {
            old_but_long[0]["external_id"]
        }
        async with dbs.cell_session("sg") as cell:
            events = (
                await cell.scalars(sa.select(WebhookEvent.delivery_id).where(WebhookEvent.tenant_id == short.id))
            ).all()
        assert events == ["new"]
        # Rollups and invoices are kept as they were.
        assert {t.slug: await billing_snapshot(dbs, t.id) for t in (short, long)} == before
        async with dbs.control_session() as session:
            entry = await session.scalar(
                sa.select(AuditEntry).where(AuditEntry.stream == short.slug, AuditEntry.action == PURGED)
            )
        assert entry.actor == "system" and entry.data["purged"]["eu"]["contacts"] == 1
        assert entry.data["retention_days"] == 30

        # Running again purges nothing and audits nothing more.
        again = await purge_expired_contacts(dbs, now=NOW)
        assert short.slug not in again.purged

        # A rollup rebuild cannot see purged contacts: it is refused rather than erase their counts.
        said: list[str] = []
        assert await rebuild_rollups(settings, short.slug, check=False, echo=said.append) is False
        assert "not rebuilt: retention has purged" in said[-1]
        assert await billing_snapshot(dbs, short.id) == before[short.slug]
        assert await rebuild_rollups(settings, short.slug, check=True, echo=said.append) is False
        assert said[-1].endswith("DIFFER from the recount (retention has purged contacts that the rollups still count)")
        assert await rebuild_rollups(settings, long.slug, check=False, echo=said.append) is True  # nothing purged
        assert await rebuild_rollups(settings, short.slug, check=False, echo=said.append, force=True) is True
        assert await billing_snapshot(dbs, short.id) != before[short.slug]  # --force: the purged counts are gone

    async def test_the_scheduled_job_is_registered_and_runs(self, settings, dbs, keyring):
        from control_plane.plugins import periodic_jobs

        assert periodic_jobs()["retention_purge"] == (3600, jobs.retention_purge)
        assert await jobs.retention_purge(JobContext(settings, dbs, keyring)) >= 0
