"""Monthly partitions of the cell table ``contacts`` on PostgreSQL (SQLite keeps one table).

Cell revision ``c0006_partitions`` made ``contacts`` a table partitioned by RANGE on ``opened_at``:
one partition per UTC month, ``contacts_pYYYY_MM`` holding ``[first instant of the month, first
instant of the next)``, and a DEFAULT partition ``contacts_default`` for a row whose month has no
partition (a contact backdated to a month never created, or one past the months created ahead),
so ingest never fails for want of a partition.

A unique index of a partitioned table must hold the partition key: uniqueness is
``(tenant_id, external_id, opened_at)`` and the primary key ``(id, opened_at)``. That one contact
has one row whatever its ``opened_at`` is kept by ingest (``cell_writes``: the tenant's lock and a
check of the new contacts before commit). An update that changes ``opened_at`` moves the row to
its new month's partition (PostgreSQL moves a row whose partition key changes).

``create_partitions_ahead`` (the metering job ``contact_partitions``, daily) creates the current
month and the next `AHEAD_MONTHS` in every PostgreSQL cell, and a partition for every month that
has rows in the DEFAULT partition, moving them there; it is idempotent. Retention drops a month's
partition whole when every row in it is past its tenant's retention (``compliance.retention``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.database import Databases, utcnow

PARENT = "contacts"
DEFAULT = "contacts_default"
AHEAD_MONTHS = 3
LOCK_TIMEOUT = "10s"  # a partition change waits at most this long for ingest's transactions to end
_NAME = re.compile(r"^contacts_p(\d{4})_(\d{2})$")


def month_of(at: datetime) -> date:
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of a month's partition, in UTC."""
    end = next_month(month)
    return datetime(month.year, month.month, 1, tzinfo=UTC), datetime(end.year, end.month, 1, tzinfo=UTC)


def partition_name(month: date) -> str:
    return f"contacts_p{month.year:04d}_{month.month:02d}"


def is_partition_name(name: str) -> bool:
    """Whether a table name is one of ``contacts``'s partitions (not a model: see ``env_common``)."""
    return name == DEFAULT or _NAME.match(name) is not None


async def is_partitioned(cell: AsyncSession) -> bool:
    """Whether the cell's ``contacts`` is a partitioned table (PostgreSQL after ``c0006_partitions``)."""
    if cell.bind.dialect.name != "postgresql":
        return False
    kind = await cell.scalar(sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass('contacts')"))
    return kind == "p"


async def month_partitions(cell: AsyncSession) -> dict[date, str]:
    """The cell's month partitions of ``contacts`` by month (the DEFAULT partition aside)."""
    names = await cell.scalars(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('contacts')"
        )
    )
    out = {}
    for name in names:
        if m := _NAME.match(name):
            out[date(int(m[1]), int(m[2]), 1)] = name
    return out


async def _months_in_default(cell: AsyncSession) -> set[date]:
    rows = await cell.execute(
        sa.text(
            "SELECT DISTINCT CAST(extract(year FROM opened_at AT TIME ZONE 'UTC') AS int), "
            "CAST(extract(month FROM opened_at AT TIME ZONE 'UTC') AS int) FROM contacts_default"
        )
    )
    return {date(y, m, 1) for y, m in rows}


async def _create(cell: AsyncSession, month: date) -> None:
    """Create one month's partition; rows of that month in the DEFAULT partition move into it (a
    partition cannot be created over rows the DEFAULT partition holds for its range)."""
    name = partition_name(month)
    start, end = month_bounds(month)
    bounds = f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    in_range = "opened_at >= :start AND opened_at < :end"
    params = {"start": start, "end": end}
    exists = f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE {in_range})"  # noqa: S608 (constant names)
    held = await cell.scalar(sa.text(exists), params)
    if not held:
        await cell.execute(sa.text(f"CREATE TABLE {name} PARTITION OF {PARENT} {bounds}"))
        return
    await cell.execute(sa.text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    await cell.execute(sa.text(f"INSERT INTO {name} SELECT * FROM {DEFAULT} WHERE {in_range}"), params)  # noqa: S608
    await cell.execute(sa.text(f"DELETE FROM {DEFAULT} WHERE {in_range}"), params)  # noqa: S608
    await cell.execute(sa.text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} {bounds}"))


async def create_partitions(cell: AsyncSession, months: Iterable[date]) -> list[str]:
    """Create the partitions of ``months`` that do not exist yet, inside the caller's transaction;
    returns the names created. ``contacts`` is locked (ACCESS EXCLUSIVE, at most `LOCK_TIMEOUT`)
    only when one is missing, so that no row lands in the DEFAULT partition while its month moves out."""
    wanted = set(months)
    if not wanted - set(await month_partitions(cell)):
        return []
    await cell.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await cell.execute(sa.text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
    missing = sorted(wanted - set(await month_partitions(cell)))  # again, under the lock
    for month in missing:
        await _create(cell, month)
    return [partition_name(m) for m in missing]


def months_ahead(now: datetime, ahead: int = AHEAD_MONTHS) -> list[date]:
    """The current UTC month and the ``ahead`` next ones."""
    months = [month_of(now)]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    return months


async def create_partitions_ahead(db: Databases, *, now: datetime | None = None) -> dict[str, list[str]]:
    """In every PostgreSQL cell: the partitions of this month and the `AHEAD_MONTHS` next, and of
    every month with rows in the DEFAULT partition (moved into it). Returns the names created per region."""
    now = now or utcnow()
    created = {}
    for region in sorted(db.cells):
        async with db.cell_session(region) as cell, cell.begin():
            if not await is_partitioned(cell):
                continue
            names = await create_partitions(cell, {*months_ahead(now), *await _months_in_default(cell)})
        if names:
            created[region] = names
    return created
