"""PostgreSQL: the keys of the stored contacts (`models.ContactKey`), unique across the partitions of ``contacts``.

``contacts`` is partitioned by month of ``opened_at`` (`partitions`), so its unique index holds
``opened_at`` and cannot stop a second row of one contact with another ``opened_at``. This table can:
ingest copies a batch's new keys (`copy_keys`) before the contacts, in ``external_id`` order, and a
concurrent batch storing one of them waits on the primary key and fails once the first commits.
It is also what ingest probes first for stored versions: one index for every id, where the
partitioned table has one per month (`cell_writes._stored`).

Whoever deletes contacts deletes their keys in the same transaction (`drop_keys`: retention, tenant
moves; `drop_partition_keys` before a partition is dropped whole); whoever inserts them otherwise
than by ingest adds them (`add_keys`: tenant moves). A key left without its contact costs one
retry of a batch (ingest deletes it when it finds one); a contact without its key could be stored
twice, so `missing_keys` counts those (``bpoctl rollups rebuild --check`` and the tests look).
SQLite keeps one ``contacts`` table with its own unique index: every function here does nothing there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering.models import ContactKey

KEYS = ContactKey.__table__
_COPY = "COPY contact_keys (tenant_id, external_id) FROM STDIN (FORMAT BINARY)"


def _used(cell: AsyncSession) -> bool:
    return cell.bind.dialect.name == "postgresql"


async def copy_keys(driver: Any, tenant_id: uuid.UUID, external_ids: Sequence[str]) -> None:
    """Binary ``COPY`` of new keys on the cell's psycopg connection (``driver``), in the given order."""
    async with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.set_types(["uuid", "varchar"])
        for external_id in external_ids:
            await copy.write_row((tenant_id, external_id))


async def add_keys(cell: AsyncSession, tenant_id: uuid.UUID, external_ids: Sequence[str]) -> None:
    """Keys of contacts inserted otherwise than by ingest (a tenant move's copy)."""
    if _used(cell) and external_ids:
        await cell.execute(sa.insert(KEYS), [{"tenant_id": tenant_id, "external_id": e} for e in external_ids])


async def drop_keys(cell: AsyncSession, tenant_id: uuid.UUID, external_ids: Sequence[str] | None = None) -> None:
    """Delete keys of the tenant's contacts being deleted: ``external_ids``, or all of them (``None``)."""
    if not _used(cell):
        return
    stmt = sa.delete(KEYS).where(KEYS.c.tenant_id == tenant_id)
    if external_ids is None:
        await cell.execute(stmt)
    elif external_ids:
        await cell.execute(stmt.where(KEYS.c.external_id.in_(list(external_ids))))


async def drop_partition_keys(cell: AsyncSession, partition: str) -> None:
    """Delete the keys of every contact of ``partition`` (a month about to be dropped whole)."""
    await cell.execute(
        sa.text(
            f"DELETE FROM contact_keys AS k USING {partition} AS c "  # noqa: S608 (a partition's name)
            "WHERE k.tenant_id = c.tenant_id AND k.external_id = c.external_id"
        )
    )


async def missing_keys(cell: AsyncSession, tenant_id: uuid.UUID) -> int:
    """The tenant's contacts in this cell without a key (0 unless something inserted contacts by hand)."""
    if not _used(cell):
        return 0
    return int(
        await cell.scalar(
            sa.text(
                "SELECT count(*) FROM contacts AS c WHERE c.tenant_id = :t AND NOT EXISTS "
                "(SELECT 1 FROM contact_keys AS k WHERE k.tenant_id = c.tenant_id AND k.external_id = c.external_id)"
            ),
            {"t": tenant_id},
        )
        or 0
    )
