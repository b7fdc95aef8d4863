"""Retention: contact rows are purged once they are older than the tenant's ``retention_days``.

A contact's age runs from ``opened_at``; stored helpdesk webhook events age from ``received_at``.
The purge runs per cell (every configured cell, since a policy change can leave older rows in a cell
the tenant no longer uses) in batches, and each tenant with purged rows gets one audit entry with
the counts per cell.

On PostgreSQL ``contacts`` is partitioned by UTC month of ``opened_at``
(`billing.metering.partitions`). First, a month's partition in which every row is past its tenant's
retention is dropped whole, one ``DROP TABLE`` (it detaches and drops), its rows counted per tenant
into the same audit entries (``partitions`` names the partitions per cell). A partition holding a
row still kept (another tenant's, a longer retention, a tenant no longer known) stays, and its expired
rows, like those of the DEFAULT partition, are deleted row by row as on SQLite.

Rollups and invoices live in the control database and are never touched: the purge writes no rollup
delta, so billing figures stay as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from billing.metering import cell_writes, contact_keys, partitions
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
    # {region: [partition names dropped whole]} (PostgreSQL)
    dropped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(c["contacts"] for cells in self.purged.values() for c in cells.values())


async def _purge_table(db: Databases, region: str, model, column, tenant_id: uuid.UUID, cutoff: datetime) -> int:
    """Delete the tenant's rows of ``model`` with ``column < cutoff``, ``BATCH`` rows per transaction."""
    removed = 0
    while True:
        async with db.cell_session(region) as cell, cell.begin():
            if model is Contact and cell.bind.dialect.name == "postgresql":
                # Ingest updates stored contacts under this lock, after reading them under it: a contact
                # updated meanwhile (say, reopened with a later opened_at) is read here as it now is.
                await cell_writes.lock_tenant(cell, tenant_id)
            ids = (
                await cell.scalars(
                    sa.select(model.id).where(model.tenant_id == tenant_id, column < cutoff).limit(BATCH)
                )
            ).all()
            if not ids:
                return removed
            delete = sa.delete(model).where(model.id.in_(ids))
            if model is Contact:  # their keys go with them (billing.metering.contact_keys)
                gone = (await cell.scalars(delete.returning(Contact.external_id))).all()
                await contact_keys.drop_keys(cell, tenant_id, gone)
            else:
                await cell.execute(delete)
            removed += len(ids)


# A row of the partition that must stay: its tenant's cutoff is not past it, or its tenant is unknown.
_KEPT_ROW = (
    "SELECT EXISTS (SELECT 1 FROM {name} AS c LEFT JOIN unnest(CAST(:ids AS uuid[]), "
    "CAST(:cutoffs AS timestamptz[])) AS t(tenant_id, cutoff) ON t.tenant_id = c.tenant_id "
    "WHERE t.cutoff IS NULL OR c.opened_at >= t.cutoff)"
)


async def _drop_expired_partition(
    db: Databases, region: str, name: str, cutoffs: dict[uuid.UUID, datetime]
) -> dict[uuid.UUID, int]:
    """Drop the partition ``name`` when every row in it is past its tenant's cutoff; its rows per tenant.

    Checked first without a lock (most partitions hold a kept row, found early); then ``contacts``
    is locked (ACCESS EXCLUSIVE: the ``DROP`` needs it, and no row may arrive between the count and
    the drop), counted and checked again in one scan, and dropped in one statement."""
    params = {"ids": list(cutoffs), "cutoffs": list(cutoffs.values())}
    async with db.cell_session(region) as cell, cell.begin():
        if await cell.scalar(sa.text(_KEPT_ROW.format(name=name)), params):
            return {}
    async with db.cell_session(region) as cell, cell.begin():
        await cell.execute(sa.text(f"SET LOCAL lock_timeout = '{partitions.LOCK_TIMEOUT}'"))
        await cell.execute(sa.text(f"LOCK TABLE {partitions.PARENT} IN ACCESS EXCLUSIVE MODE"))
        if name not in (await partitions.month_partitions(cell)).values():
            return {}
        rows = await cell.execute(
            sa.text(f"SELECT tenant_id, count(*), max(opened_at) FROM {name} GROUP BY tenant_id")  # noqa: S608
        )
        counts = {}
        for tenant_id, n, latest in rows:
            if tenant_id not in cutoffs or latest >= cutoffs[tenant_id]:
                return {}
            counts[tenant_id] = n
        await contact_keys.drop_partition_keys(cell, name)
        await cell.execute(sa.text(f"DROP TABLE {name}"))
        return counts


async def _drop_expired_partitions(
    db: Databases, region: str, cutoffs: dict[uuid.UUID, datetime]
) -> dict[str, dict[uuid.UUID, int]]:
    """The cell's month partitions whose rows are all past retention, dropped whole (PostgreSQL):
    the rows each held per tenant, by partition name. Only months that began before the latest
    cutoff can qualify."""
    async with db.cell_session(region) as cell:
        if not cutoffs or not await partitions.is_partitioned(cell):
            return {}
        months = await partitions.month_partitions(cell)
    latest = max(cutoffs.values())
    dropped = {}
    for month, name in sorted(months.items()):
        if partitions.month_bounds(month)[0] < latest and (
            held := await _drop_expired_partition(db, region, name, cutoffs)
        ):
            dropped[name] = held
    return dropped


async def purge_expired_contacts(db: Databases, *, now: datetime | None = None, actor: Actor = SYSTEM) -> PurgeReport:
    """Purge every tenant's expired contact rows in every cell; audit the counts per tenant."""
    now = now or utcnow()
    async with db.control_session() as session:
        tenants = [(t.id, t.slug, t.retention_days) for t in (await session.scalars(sa.select(Tenant))).all()]
    report = PurgeReport()
    cutoffs = {tenant_id: now - timedelta(days=days) for tenant_id, _, days in tenants}
    whole: dict[str, dict[str, dict[uuid.UUID, int]]] = {}  # {region: {partition dropped: {tenant: rows}}}
    for region in sorted(db.cells):
        whole[region] = await _drop_expired_partitions(db, region, cutoffs)
        if whole[region]:
            report.dropped[region] = list(whole[region])
    for tenant_id, slug, days in tenants:
        cutoff = cutoffs[tenant_id]
        counts = {}
        for region in sorted(db.cells):
            contacts = await _purge_table(db, region, Contact, Contact.opened_at, tenant_id, cutoff)
            contacts += sum(held.get(tenant_id, 0) for held in whole[region].values())
            events = await _purge_table(db, region, WebhookEvent, WebhookEvent.received_at, tenant_id, cutoff)
            if contacts or events:
                counts[region] = {"contacts": contacts, "webhook_events": events}
        if counts:
            report.purged[slug] = counts
            data = {"retention_days": days, "cutoff": cutoff, "purged": counts}
            mine = {r: [name for name, held in whole[r].items() if tenant_id in held] for r in sorted(whole)}
            if mine := {r: names for r, names in mine.items() if names}:
                data["partitions"] = mine  # the partitions dropped whole that held this tenant's rows
            async with db.control_transaction() as session:
                await append_audit_entry(
                    session,
                    stream=slug,
                    actor=actor,
                    action=PURGED,
                    target=f"tenant:{slug}/contacts",
                    data=data,
                    now=now,
                )
    return report


async def has_purged_contacts(session, slug: str) -> bool:
    """Whether retention has ever purged contacts of the tenant ``slug`` (its audit stream says so)."""
    stmt = sa.select(AuditEntry.id).where(AuditEntry.stream == slug, AuditEntry.action == PURGED).limit(1)
    return await session.scalar(stmt) is not None
