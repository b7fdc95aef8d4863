"""Moving a tenant's contacts between two cells of a region (``bpoctl tenants move``) while it ingests.

1. **Bulk copy**, no lock: the tenant's contacts in the source cell are copied to the target cell
   (leftovers of an earlier failed move there are cleared first). Ingest goes on into the source.
2. **Fence**: the tenant's fence is taken exclusive in the source cell (`control_plane.cells`): its
   batches for that region wait (PostgreSQL: up to ``cells.FENCE_WAIT``, then 503 and the client sends
   again; SQLite: the whole source file waits). Under it, every source row that differs from (or is
   missing in) the target is copied again, the tenant's pending rollup deltas are copied with their
   ids (receipts make a delta count once wherever it is applied from), the counts are compared, the
   target commits, the placement switches in the control database (with an audit entry), and only
   then are the source rows and deltas deleted; the source commit releases the fence. Batches that
   waited read the new placement under the lock and write to the target.
3. **Check**: the tenant's pending deltas are applied and a recount of every cell is compared with
   the control rollups (as ``bpoctl rollups rebuild --check``); with ingest running, a batch in
   flight can make the comparison differ for a moment, so it is reported, not enforced.

The fence lasts as long as reading the tenant's rows in both cells (a full compare, which also
catches changes that leave ``received_at`` as it was, e.g. a stale version's ``first_resolved_at``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import contact_keys, deltas, rollups
from billing.metering.models import Contact, RollupDelta
from control_plane import cells
from control_plane.audit import append_audit_entry
from control_plane.database import Databases
from control_plane.errors import DomainError
from tenants.models import Tenant

CHUNK = 2000  # rows per INSERT of the bulk copy
CONTACT_COLUMNS = [c for c in Contact.__table__.columns if c.name != "id"]
DELTA_COLUMNS = list(RollupDelta.__table__.columns)


class MoveRefused(DomainError):
    code = "move_refused"

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field  # the form field the refusal is about, when it is about one


async def placement_rows(session: AsyncSession) -> list[Any]:
    """Every placement (regions with several cells), with the tenant's slug: ``slug, region, cell, moved_at``."""
    stmt = (
        sa.select(Tenant.slug, cells.TenantCell.region, cells.TenantCell.cell, cells.TenantCell.moved_at)
        .join(cells.TenantCell, cells.TenantCell.tenant_id == Tenant.id)
        .order_by(cells.TenantCell.region, Tenant.slug)
    )
    return list((await session.execute(stmt)).all())


@dataclass
class MoveReport:
    slug: str
    region: str
    source: str
    target: str
    copied: int = 0  # rows of the bulk copy
    caught_up: int = 0  # rows copied again under the fence
    deltas: int = 0  # pending rollup deltas moved
    contacts: int = 0  # the tenant's contacts in the region, counted in both cells under the fence
    removed: int = 0  # source rows deleted after the switch
    rollups_match: bool | None = None
    notes: list[str] = field(default_factory=list)


async def _rows(cell: AsyncSession, tenant_id: uuid.UUID) -> dict[str, tuple]:
    result = await cell.execute(sa.select(*CONTACT_COLUMNS).where(Contact.tenant_id == tenant_id))
    return {row.external_id: tuple(row) for row in result}


async def _insert(cell: AsyncSession, tenant_id: uuid.UUID, rows: list[tuple]) -> None:
    names = [c.name for c in CONTACT_COLUMNS]
    for start in range(0, len(rows), CHUNK):
        chunk = [dict(zip(names, r, strict=True)) for r in rows[start : start + CHUNK]]
        await contact_keys.add_keys(cell, tenant_id, [row["external_id"] for row in chunk])
        await cell.execute(sa.insert(Contact), chunk)


async def _clear(cell: AsyncSession, tenant_id: uuid.UUID) -> int:
    await contact_keys.drop_keys(cell, tenant_id)
    removed = await cell.execute(sa.delete(Contact).where(Contact.tenant_id == tenant_id))
    await cell.execute(sa.delete(RollupDelta).where(RollupDelta.tenant_id == tenant_id))
    return removed.rowcount or 0


async def _bulk_copy(db: Databases, tenant_id: uuid.UUID, source: str, target: str) -> int:
    async with db.cell_session(target) as dst, dst.begin():
        await _clear(dst, tenant_id)  # a failed move's leftovers: the placement is the source's
    copied = 0
    async with db.cell_session(source) as src:
        result = await src.stream(sa.select(*CONTACT_COLUMNS).where(Contact.tenant_id == tenant_id))
        async for part in result.partitions(CHUNK):
            async with db.cell_session(target) as dst, dst.begin():
                await _insert(dst, tenant_id, [tuple(r) for r in part])
            copied += len(part)
    return copied


async def _catch_up(src: AsyncSession, dst: AsyncSession, tenant_id: uuid.UUID, report: MoveReport) -> None:
    """Under the fence: make the target's rows and pending deltas equal to the source's."""
    here, there = await _rows(src, tenant_id), await _rows(dst, tenant_id)
    changed = [external_id for external_id, row in here.items() if there.get(external_id) != row]
    redo = set(changed)
    stale = [external_id for external_id in there if external_id not in here or external_id in redo]
    for start in range(0, len(stale), CHUNK):
        await contact_keys.drop_keys(dst, tenant_id, stale[start : start + CHUNK])
        await dst.execute(
            sa.delete(Contact).where(
                Contact.tenant_id == tenant_id, Contact.external_id.in_(stale[start : start + CHUNK])
            )
        )
    await _insert(dst, tenant_id, [here[k] for k in changed])
    report.caught_up = len(changed)
    pending = (await src.execute(sa.select(*DELTA_COLUMNS).where(RollupDelta.tenant_id == tenant_id))).all()
    if pending:
        insert = postgresql.insert if dst.bind.dialect.name == "postgresql" else sqlite.insert
        names = [c.name for c in DELTA_COLUMNS]
        rows = [dict(zip(names, r, strict=True)) for r in pending]
        await dst.execute(insert(RollupDelta).on_conflict_do_nothing(), rows)
    report.deltas = len(pending)
    count = sa.select(sa.func.count()).select_from(Contact).where(Contact.tenant_id == tenant_id)
    in_source, in_target = await src.scalar(count), await dst.scalar(count)
    if in_source != in_target:
        raise MoveRefused(f"the copy holds {in_target} contacts, the source {in_source}: nothing was switched")
    if missing := await contact_keys.missing_keys(dst, tenant_id):
        raise MoveRefused(f"{missing} copied contacts have no contact key in the target: nothing was switched")
    report.contacts = int(in_source or 0)


async def _remove_leftovers(db: Databases, tenant_id: uuid.UUID, region: str, placed: str, report: MoveReport) -> None:
    """Rows of the tenant in the region's other cells are leftovers of a move whose last step failed."""
    for cell in db.cells_of(region):
        if cell != placed:
            async with db.cell_session(cell) as session, session.begin():
                report.removed += await _clear(session, tenant_id)


async def move_tenant(
    db: Databases,
    actor: Any,
    slug: str,
    region: str,
    target: str,
    *,
    after_copy: Callable[[], Awaitable[None]] | None = None,
) -> MoveReport:
    """Move the tenant's contacts and pending deltas in ``region`` to the cell ``target`` (see the module
    docstring). Moving to the cell it is placed in already removes leftovers of a failed move.
    ``after_copy`` is awaited between the bulk copy and the fence (tests let ingest change rows there)."""
    async with db.control_autocommit() as session:
        tenant = (await session.execute(sa.select(Tenant.id, Tenant.timezone).where(Tenant.slug == slug))).first()
    if tenant is None:
        raise MoveRefused(f"no tenant {slug!r}", code="not_found")
    tenant_id, timezone = tenant
    if target not in db.cells_of(region):
        raise MoveRefused(
            f"{target!r} is not a cell of region {region!r} (its cells: {db.cells_of(region)})", field="target"
        )
    source = await cells.placed_cell(db, tenant_id, region)
    report = MoveReport(slug, region, source, target)
    if source == target:
        await _remove_leftovers(db, tenant_id, region, target, report)
        report.notes.append(f"already placed in {target}; {report.removed} leftover rows removed elsewhere")
        return report
    report.copied = await _bulk_copy(db, tenant_id, source, target)
    if after_copy is not None:
        await after_copy()
    async with db.cell_session(source) as src, src.begin():
        await cells.fence_lock(src, tenant_id, region, exclusive=True)
        async with db.cell_session(target) as dst, dst.begin():
            await _catch_up(src, dst, tenant_id, report)
        async with db.control_transaction() as control:
            await cells.switch_placement(control, tenant_id, region, target)
            await append_audit_entry(
                control,
                stream=slug,
                actor=actor,
                action="tenant.moved",
                target=f"tenant:{slug}",
                data={
                    "region": region,
                    "from": source,
                    "to": target,
                    "contacts": report.contacts,
                    "deltas": report.deltas,
                },
            )
        report.removed = await _clear(src, tenant_id)  # only now: the target holds them and is placed
    await deltas.apply_pending(db, tenant_id)
    recount = await rollups.recount(db, tenant_id, timezone)
    async with db.control_session() as session:
        stored = await rollups.stored_rollups(session, tenant_id)
    report.rollups_match = recount == stored
    if not report.rollups_match:
        report.notes.append("rollups differ from a recount (a batch in flight?): run bpoctl rollups rebuild --check")
    return report
