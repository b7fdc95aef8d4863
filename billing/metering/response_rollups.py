"""First-response rollups: contacts per tenant x opened day x channel x clock x exact whole seconds.

Response targets are credited to the cent, so "first response within N seconds" must be exact for
any N a contract names (45 s, 90 s, 2 h…), not only the bounds of the duration histogram in
`ContactRollup`. Each contact with a first response adds 1 to the row of its exact time to first
response, rounded up to a whole second (60.2 s is not within 60 s):

- clock ``calendar``: wall time from ``opened_at`` to ``first_response_at``;
- clock ``business``: the part of it inside the tenant's support calendar (`tenants.calendar`), only
  when the tenant has one.

"Within N" is then ``sum(contacts) where seconds <= N``, and percentiles are exact. A contact
without a first response has no row: it counts in the opened total and never as within a limit.
These rows travel in the same deltas as the other rollups (keys starting with ``"frt"``) and are
recounted by ``bpoctl rollups rebuild`` (run it after a support calendar changes).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering.models import FirstResponseRollup
from tenants.calendar import BusinessCalendar, ceil_seconds

FRT = "frt"
CALENDAR, BUSINESS = "calendar", "business"


TABLE = FirstResponseRollup.__table__


def frt_parts(
    day: date, channel: str, opened_at: datetime, first_response_at: datetime | None, calendar: BusinessCalendar | None
) -> list[tuple[tuple, list[tuple[int, int]]]]:
    """Rollup parts of one contact's first response: ``[(("frt", day, channel, clock, seconds), [(0, 1)])]``."""
    if first_response_at is None:
        return []
    out = [((FRT, day, channel, CALENDAR, ceil_seconds(first_response_at - opened_at)), [(0, 1)])]
    if calendar is not None:
        business = ceil_seconds(calendar.business_time(opened_at, first_response_at))
        out.append(((FRT, day, channel, BUSINESS, business), [(0, 1)]))
    return out


def is_frt_key(key: Sequence[Any]) -> bool:
    return key[0] == FRT


def key_from_json(row: Sequence[Any]) -> tuple:
    return (FRT, date.fromisoformat(row[1]), row[2], row[3], int(row[4]))


def _row(tenant_id: uuid.UUID, key: tuple, contacts: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "day": key[1],
        "channel": key[2],
        "clock": key[3],
        "seconds": key[4],
        "contacts": contacts,
    }


@functools.cache
def _upsert_sql(dialect: str) -> str:
    """The additive upsert as driver SQL (executemany of plain tuples, no per-row bind processing)."""
    mark = "%s" if dialect == "postgresql" else "?"
    return (
        "INSERT INTO first_response_rollups (tenant_id, clock, day, channel, seconds, contacts) "  # noqa: S608
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}) "
        "ON CONFLICT (tenant_id, clock, day, channel, seconds) "
        "DO UPDATE SET contacts = first_response_rollups.contacts + excluded.contacts"
    )


_PG_UPSERT = (
    "INSERT INTO first_response_rollups (tenant_id, clock, day, channel, seconds, contacts) "
    "SELECT CAST(%s AS uuid), e->>0, CAST(e->>1 AS date), e->>2, CAST(e->>3 AS bigint), CAST(e->>4 AS bigint) "
    "FROM jsonb_array_elements(CAST(%s AS jsonb)) AS e ORDER BY e->>0, e->>1, e->>2, CAST(e->>3 AS bigint) "
    "ON CONFLICT (tenant_id, clock, day, channel, seconds) "
    "DO UPDATE SET contacts = first_response_rollups.contacts + excluded.contacts"
)


async def add_rows(session: AsyncSession, tenant_id: uuid.UUID, rows: Iterable[tuple[tuple, int]]) -> None:
    """Add ``(key, contacts delta)`` rows; rows left at zero are removed."""
    rows = [(k, n) for k, n in rows if n]
    if not rows:
        return
    connection = await session.connection()
    if session.bind.dialect.name == "postgresql":  # one statement, the rows one JSON array parameter
        payload = msgspec.json.encode([(k[3], k[1], k[2], k[4], n) for k, n in rows]).decode()
        await connection.exec_driver_sql(_PG_UPSERT, (tenant_id, payload))
    else:  # executemany in the driver; stored as SQLAlchemy stores them on SQLite: hex UUID, ISO date
        tid = tenant_id.hex
        params = [(tid, k[3], k[1].isoformat(), k[2], k[4], n) for k, n in rows]
        await connection.exec_driver_sql(_upsert_sql("sqlite"), params)
    if any(n < 0 for _, n in rows):
        await session.execute(sa.delete(TABLE).where(TABLE.c.tenant_id == tenant_id, TABLE.c.contacts == 0))


async def replace_rows(session: AsyncSession, tenant_id: uuid.UUID, rows: Iterable[tuple[tuple, int]]) -> None:
    await session.execute(sa.delete(TABLE).where(TABLE.c.tenant_id == tenant_id))
    params = [_row(tenant_id, k, n) for k, n in rows if n]
    if params:
        await session.execute(sa.insert(TABLE), params)


async def stored_rows(session: AsyncSession, tenant_id: uuid.UUID) -> dict[tuple, int]:
    rows = await session.execute(sa.select(TABLE).where(TABLE.c.tenant_id == tenant_id))
    return {(FRT, r.day, r.channel, r.clock, int(r.seconds)): int(r.contacts) for r in rows if r.contacts}


def _day_ranges_clause(ranges: Sequence[tuple[date, date]]):
    return sa.or_(*(sa.and_(TABLE.c.day >= a, TABLE.c.day < b) for a, b in ranges)) if ranges else sa.false()


async def within_limits(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    clock: str,
    ranges: Sequence[tuple[date, date]],
    limits: Sequence[tuple[str, int]],
    by_day: bool = False,
) -> dict[Any, int]:
    """Contacts answered within each ``(channel, limit)`` over days in ``ranges`` ([start, end) pairs).

    Keys: ``(channel, limit)``, or ``(channel, limit, day)`` with ``by_day``.
    """
    out: dict[Any, int] = {}
    for channel, limit in limits:
        cols = [TABLE.c.day] if by_day else []
        stmt = (
            sa.select(*cols, sa.func.sum(TABLE.c.contacts))
            .where(
                TABLE.c.tenant_id == tenant_id,
                TABLE.c.clock == clock,
                TABLE.c.channel == channel,
                TABLE.c.seconds <= limit,
                _day_ranges_clause(ranges),
            )
            .group_by(*cols)
        )
        for row in await session.execute(stmt):
            if by_day:
                out[(channel, limit, row[0])] = int(row[1] or 0)
            else:
                out[(channel, limit)] = int(row[0] or 0)
    return out


async def distribution(
    session: AsyncSession, tenant_id: uuid.UUID, *, clock: str, ranges: Sequence[tuple[date, date]]
) -> list[tuple[int, int]]:
    """``[(seconds, contacts)]`` ascending, over every channel: the exact distribution for percentiles."""
    stmt = (
        sa.select(TABLE.c.seconds, sa.func.sum(TABLE.c.contacts))
        .where(TABLE.c.tenant_id == tenant_id, TABLE.c.clock == clock, _day_ranges_clause(ranges))
        .group_by(TABLE.c.seconds)
        .order_by(TABLE.c.seconds)
    )
    return [(int(s), int(n)) for s, n in await session.execute(stmt)]
