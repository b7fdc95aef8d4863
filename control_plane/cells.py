"""Placement: which cell of a region holds a tenant's contacts, and the fence that makes a move safe.

A region has one or more cells (``BPO_CELL_URLS=eu-1=…,eu-2=…``). A region with one cell needs no
placement: its cell is the answer and nothing can move. In a region with several, ``tenant_cells``
(control database) places a tenant in one cell the first time it needs one:

- a cell of the region that already holds contacts of the tenant keeps them (a region that had one
  cell and was given more: its tenants stay where their data is);
- otherwise the cell with the fewest placed tenants of the region (ties: the first by name).

The placement is read from the control database by every batch (no per-process cache), and checked
again under the **fence lock** (`tenant_cell`): a writer of the tenant's contacts in a region takes
the lock shared in the cell's transaction, then reads the placement once more; a move takes it
exclusive in the source cell for its final catch-up, switches the placement (committed in the
control database) and only then releases it. A writer that waited on the lock therefore reads the new
placement and goes to the new cell; a writer that held it before the move finished first, and its rows
are in the catch-up. PostgreSQL: a transaction-scoped advisory lock per tenant and region. SQLite: the
database's write lock (an empty DELETE takes it), which fences every tenant of that cell file.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, Databases, utcnow

PLACEMENT_ATTEMPTS = 3  # placement changes a writer follows before it gives up (a move is rare)
FENCE_WAIT = "10s"  # PostgreSQL: how long a writer waits on a move's fence before its batch fails (503)


class TenantCell(ControlBase):
    """The cell of a region that holds a tenant's contacts (regions with several cells only)."""

    __tablename__ = "tenant_cells"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    region: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    cell: Mapped[str] = mapped_column(sa.String(40), index=True)
    placed_at: Mapped[datetime]
    moved_at: Mapped[datetime | None]


class PlacementChanging(TimeoutError):
    """The tenant's placement kept changing while a writer followed it: a passing condition (a
    ``TimeoutError``, so ingest answers 503 and the client sends the batch again)."""


async def read_placement(db: Databases, tenant_id: uuid.UUID, region: str) -> str | None:
    async with db.control_autocommit() as session:
        return await session.scalar(
            sa.select(TenantCell.cell).where(TenantCell.tenant_id == tenant_id, TenantCell.region == region)
        )


async def _holds_contacts(db: Databases, cell: str, tenant_id: uuid.UUID) -> bool:
    stmt = sa.text("SELECT 1 FROM contacts WHERE tenant_id = :t LIMIT 1").bindparams(sa.bindparam("t", type_=sa.Uuid))
    async with db.cell_session(cell) as session:
        return (await session.scalar(stmt, {"t": tenant_id})) is not None


async def choose_cell(db: Databases, tenant_id: uuid.UUID, region: str) -> str:
    """The placement rule for a tenant not placed yet (see the module docstring)."""
    cells = db.cells_of(region)
    for cell in cells:
        if await _holds_contacts(db, cell, tenant_id):
            return cell
    async with db.control_autocommit() as session:
        load = dict(
            (
                await session.execute(
                    sa.select(TenantCell.cell, sa.func.count())
                    .where(TenantCell.region == region)
                    .group_by(TenantCell.cell)
                )
            ).all()
        )
    return min(cells, key=lambda c: (load.get(c, 0), c))


async def placed_cell(db: Databases, tenant_id: uuid.UUID, region: str) -> str:
    """The tenant's cell in ``region``, placing it there first when it has none (every instance agrees:
    the first placement committed wins)."""
    cells = db.cells_of(region)
    if not cells:
        raise LookupError(f"no cell is configured for region {region!r}")
    if len(cells) == 1:
        return cells[0]
    cell = await read_placement(db, tenant_id, region)
    if cell is not None:
        return cell
    chosen = await choose_cell(db, tenant_id, region)
    async with db.control_transaction() as session:
        table = TenantCell.__table__
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        await session.execute(
            insert(table)
            .values(tenant_id=tenant_id, region=region, cell=chosen, placed_at=utcnow())
            .on_conflict_do_nothing()
        )
    return await read_placement(db, tenant_id, region) or chosen


async def fence_lock(cell: AsyncSession, tenant_id: uuid.UUID, region: str, *, exclusive: bool) -> None:
    """Take the tenant's fence in ``region`` inside the cell transaction (released at its end)."""
    if cell.bind.dialect.name == "postgresql":
        await cell.execute(sa.text(f"SET LOCAL lock_timeout = '{FENCE_WAIT}'"))
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await cell.execute(sa.text(f"SELECT {fn}(hashtext(:k))"), {"k": f"cellfence:{tenant_id}:{region}"})
    else:  # SQLite: the first write of a transaction takes the database's write lock
        await cell.execute(sa.text("DELETE FROM readiness_probes WHERE 0 = 1"))


@asynccontextmanager
async def tenant_cell(db: Databases, tenant_id: uuid.UUID, region: str) -> AsyncIterator[tuple[str, AsyncSession]]:
    """``(cell name, session)``: a transaction on the cell that holds the tenant's contacts in ``region``,
    committed when the block ends. In a region with several cells the fence is held shared and the
    placement was read under it, so a move cannot switch the tenant away while the block writes."""
    cells = db.cells_of(region)
    if len(cells) == 1:
        async with db.cell_session(cells[0]) as session, session.begin():
            yield cells[0], session
        return
    cell = await placed_cell(db, tenant_id, region)
    for _ in range(PLACEMENT_ATTEMPTS):
        async with db.cell_session(cell) as session, session.begin():
            await fence_lock(session, tenant_id, region, exclusive=False)
            now = await read_placement(db, tenant_id, region)
            if now == cell:
                yield cell, session
                return
        cell = now or cell
    raise PlacementChanging(f"the tenant's cell in {region!r} changed {PLACEMENT_ATTEMPTS} times; retry")


async def switch_placement(session: AsyncSession, tenant_id: uuid.UUID, region: str, cell: str) -> None:
    """Point the tenant's placement in ``region`` at ``cell`` (in the caller's control transaction)."""
    await session.execute(
        sa.update(TenantCell)
        .where(TenantCell.tenant_id == tenant_id, TenantCell.region == region)
        .values(cell=cell, moved_at=utcnow())
    )


async def holding(db: Databases, tenant_id: uuid.UUID) -> list[str]:
    """The cells that hold the tenant's contacts: a region's only cell, or the tenant's placed cell in a
    region with several (every cell of such a region where it is not placed yet). A per-tenant read
    over "every cell" reads these, so a move's copy is not counted twice while it runs."""
    out = []
    for region in sorted(set(db.cell_regions.values())):
        names = db.cells_of(region)
        placed = await read_placement(db, tenant_id, region) if len(names) > 1 else None
        out += [placed] if placed else names
    return out


async def placements(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, str]:
    """``{region: cell}`` of the tenant's placements (regions with several cells), for its pages."""
    rows = await session.execute(sa.select(TenantCell.region, TenantCell.cell).where(TenantCell.tenant_id == tenant_id))
    return dict(rows.all())
