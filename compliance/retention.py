"""Retention: contact rows are purged once they are older than the tenant's ``retention_days``.

A contact's age runs from ``opened_at``; stored helpdesk webhook events age from ``received_at``.
The purge runs per cell (every configured cell, since a policy change can leave older rows in a cell
the tenant no longer uses) in batches, and each tenant with purged rows gets one audit entry with
the counts per cell. Rollups and invoices live in the control database and are never touched: the
purge writes no rollup delta, so billing figures stay as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from billing.metering.models import Contact, WebhookEvent
from compliance.models import AuditEntry
from compliance.service import SYSTEM, Actor, append_audit_entry
from control_plane.database import Databases, utcnow
from tenants.models import Tenant

BATCH = 5000
PURGED = "retention.purged"  # the audit action of a purge (one entry per tenant and run)


@dataclass
class PurgeReport:
    # {tenant slug: {region: {"contacts": n, "webhook_events": n}}}
    purged: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(c["contacts"] for cells in self.purged.values() for c in cells.values())


async def _purge_table(db: Databases, region: str, model, column, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    """Delete the tenant's rows of ``model`` with ``column < cutoff``, ``BATCH`` rows per transaction."""
    removed = 0
    while True:
        async with db.cell_session(region) as cell, cell.begin():
            ids = (
                await cell.scalars(
                    sa.select(model.id).where(model.tenant_id == tenant_id, column < cutoff).limit(BATCH)
                )
            ).all()
            if not ids:
                return removed
            await cell.execute(sa.delete(model).where(model.id.in_(ids)))
            removed += len(ids)


async def purge_expired_contacts(db: Databases, *, now: datetime | None = None, actor: Actor = SYSTEM) -> PurgeReport:
    """Purge every tenant's expired contact rows in every cell; audit the counts per tenant."""
    now = now or utcnow()
    async with db.control_session() as session:
        tenants = [(t.id, t.slug, t.retention_days) for t in (await session.scalars(sa.select(Tenant))).all()]
    report = PurgeReport()
    for tenant_id, slug, days in tenants:
        cutoff = now - timedelta(days=days)
        counts = {}
        for region in sorted(db.cells):
            contacts = await _purge_table(db, region, Contact, Contact.opened_at, tenant_id, cutoff)
            events = await _purge_table(db, region, WebhookEvent, WebhookEvent.received_at, tenant_id, cutoff)
            if contacts or events:
                counts[region] = {"contacts": contacts, "webhook_events": events}
        if counts:
            report.purged[slug] = counts
            async with db.control_transaction() as session:
                await append_audit_entry(
                    session,
                    stream=slug,
                    actor=actor,
                    action=PURGED,
                    target=f"tenant:{slug}/contacts",
                    data={"retention_days": days, "cutoff": cutoff, "purged": counts},
                    now=now,
                )
    return report


async def has_purged_contacts(session, slug: str) -> bool:
    """Whether retention has ever purged contacts of the tenant ``slug`` (its audit stream says so)."""
    stmt = sa.select(AuditEntry.id).where(AuditEntry.stream == slug, AuditEntry.action == PURGED).limit(1)
    return await session.scalar(stmt) is not None
