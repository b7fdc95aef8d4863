"""Gapless numbers per series ("INV-2026-000001", "CN-2026-000001").

The series row is the lock: the UPDATE that takes the next number locks the row on PostgreSQL
(FOR UPDATE semantics) until the finalizing transaction ends, and takes SQLite's single write
lock, so two concurrent finalizations get consecutive numbers and a rolled-back one gives its
number back. Call it as the transaction's first write so SQLite waits for the lock rather than
failing on a stale read snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices.models import NumberSeries

SERIES = NumberSeries.__table__


async def next_number(session: AsyncSession, series: str) -> int:
    """The next number of ``series``, held until the caller's transaction ends."""
    bump = (
        sa.update(SERIES)
        .where(SERIES.c.series == series)
        .values(last_number=SERIES.c.last_number + 1)
        .returning(SERIES.c.last_number)
    )
    number = (await session.execute(bump)).scalar()
    if number is None:
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        await session.execute(insert(SERIES).values(series=series, last_number=0).on_conflict_do_nothing())
        number = (await session.execute(bump)).scalar_one()
    return int(number)


def formatted(series: str, number: int) -> str:
    return f"{series}-{number:06d}"
