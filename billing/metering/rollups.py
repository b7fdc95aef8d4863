"""Rollups: per tenant x basis x day (tenant's zone) x channel x intent x language x resolution.

A contact contributes to one ``opened`` row (by ``opened_at``) and, once it has a ``resolved_at``,
to one ``resolved`` row (by it). Ingest turns every change of a contact into a delta (minus the
stored version's contribution, plus the new one's), sums the deltas of a batch in memory, writes
them to the cell in the contacts' transaction and applies them to the control database once, under
a receipt. :func:`recount` computes the same rows from the contacts themselves; ``bpoctl rollups
rebuild`` replaces a tenant's rows with it. Billing and SLA read :func:`read_rollups`, never contacts.
"""

from __future__ import annotations

import bisect
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import response_rollups
from billing.metering.models import (
    BUCKETS,
    DIMENSIONS,
    HISTOGRAM_BOUNDS,
    MEASURES,
    MONTH_DIMENSIONS,
    MONTH_MEASURES,
    Contact,
    ContactRollup,
    ContactRollupMonth,
    RollupDelta,
)
from control_plane import cells
from control_plane.database import Databases
from tenants.calendar import BusinessCalendar, ceil_seconds, load_calendar

Key = tuple[str, date, str, str, str, str]  # basis, day, channel, intent, language, resolution
Vector = list[int]

_I = {name: i for i, name in enumerate(MEASURES)}
CONTACTS, RATED, CSAT_SUM, CSAT_GOOD, HANDOFFS = (_I[n] for n in MEASURES[:5])
FIRST_RESPONSES, FRT_SECONDS, RESOLUTIONS, RES_SECONDS = (_I[n] for n in MEASURES[5:9])
FRT_B0, RES_B0, REOPENED = _I["frt_b00"], _I["res_b00"], _I["reopened"]
N = len(MEASURES)
ROLLUP = ContactRollup.__table__
MONTHS = ContactRollupMonth.__table__
_MONTH_INDEX = tuple(_I[m] for m in MONTH_MEASURES)


def bucket_of(seconds: int) -> int:
    """Histogram bucket of a duration: the first bound it does not exceed (last bucket: longer)."""
    return bisect.bisect_left(HISTOGRAM_BOUNDS, seconds)


def contribution(
    zone: ZoneInfo,
    *,
    channel: str,
    intent: str,
    language: str,
    resolution: str,
    opened_at: datetime,
    first_response_at: datetime | None,
    handoff_at: datetime | None,
    resolved_at: datetime | None,
    csat: int | None,
    reopens: int = 0,
) -> list[tuple[Key, list[tuple[int, int]]]]:
    """What one contact adds to the rollups: ``[(key, [(measure index, amount), …]), …]``."""
    parts: list[tuple[int, int]] = [(CONTACTS, 1)]
    if reopens:
        parts.append((REOPENED, 1))
    if csat is not None:
        parts += [(RATED, 1), (CSAT_SUM, csat)]
        if csat >= 4:
            parts.append((CSAT_GOOD, 1))
    if handoff_at is not None:
        parts.append((HANDOFFS, 1))
    if first_response_at is not None:
        frt = int((first_response_at - opened_at).total_seconds())
        parts += [(FIRST_RESPONSES, 1), (FRT_SECONDS, frt), (FRT_B0 + bucket_of(frt), 1)]
    if resolved_at is not None:
        res = int((resolved_at - opened_at).total_seconds())
        parts += [(RESOLUTIONS, 1), (RES_SECONDS, res), (RES_B0 + bucket_of(res), 1)]
    out = [(("opened", opened_at.astimezone(zone).date(), channel, intent, language, resolution), parts)]
    if resolved_at is not None:
        out.append((("resolved", resolved_at.astimezone(zone).date(), channel, intent, language, resolution), parts))
    return out


def _dense(stored: dict[str, int] | list[int]) -> Vector:
    if isinstance(stored, list):  # deltas written before a measure was added are shorter
        return [*stored, *[0] * (N - len(stored))]
    vector = [0] * N
    for i, x in stored.items():
        vector[int(i)] = x
    return vector


def contact_parts(zone: ZoneInfo, calendar: BusinessCalendar | None = None, **contact: Any) -> list:
    """`contribution` plus the contact's first-response rows (keys starting with ``"frt"``,
    see `response_rollups`); ``calendar`` is the tenant's support calendar, for business hours."""
    parts: list = contribution(zone, **contact)
    day = contact["opened_at"].astimezone(zone).date()
    return parts + response_rollups.frt_parts(
        day, contact["channel"], contact["opened_at"], contact["first_response_at"], calendar
    )


class DeltaSum:
    """Rollup deltas of one batch, summed in memory before they touch a database.

    ``rows`` maps a key to its measures: ``N`` counts for a contact rollup key, one (contacts) for a
    first-response key (``"frt"``, see `response_rollups`)."""

    def __init__(self) -> None:
        self.rows: dict[Key, Vector] = {}

    def add(self, parts: Iterable[tuple[Key, list[tuple[int, int]]]], sign: int) -> None:
        rows = self.rows
        for key, amounts in parts:
            vector = rows.get(key)
            if vector is None:
                vector = rows[key] = [0] * (1 if key[0] == response_rollups.FRT else N)
            for index, amount in amounts:
                vector[index] += sign * amount

    def add_contact(self, zone: ZoneInfo, c: Any, calendar: BusinessCalendar | None, sign: int) -> None:
        """``add(contact_parts(zone, calendar, **c), sign)`` for a contact with those attributes, without
        the intermediate lists (ingest's hot path; a test holds the two equal on random contacts)."""
        rows = self.rows
        opened_at, first, resolved, csat = c.opened_at, c.first_response_at, c.resolved_at, c.csat
        day = opened_at.astimezone(zone).date()
        dims = (c.channel, c.intent, c.language, c.resolution)
        keys = [("opened", day, *dims)]
        if resolved is not None:
            keys.append(("resolved", resolved.astimezone(zone).date(), *dims))
            res = int((resolved - opened_at).total_seconds())
            res_bucket = RES_B0 + bisect.bisect_left(HISTOGRAM_BOUNDS, res)
        if first is not None:
            frt = int((first - opened_at).total_seconds())
            frt_bucket = FRT_B0 + bisect.bisect_left(HISTOGRAM_BOUNDS, frt)
        handoff, reopened = c.handoff_at is not None, c.reopens > 0
        for key in keys:
            v = rows.get(key)
            if v is None:
                v = rows[key] = [0] * N
            v[CONTACTS] += sign
            if reopened:
                v[REOPENED] += sign
            if csat is not None:
                v[RATED] += sign
                v[CSAT_SUM] += sign * csat
                if csat >= 4:
                    v[CSAT_GOOD] += sign
            if handoff:
                v[HANDOFFS] += sign
            if first is not None:
                v[FIRST_RESPONSES] += sign
                v[FRT_SECONDS] += sign * frt
                v[frt_bucket] += sign
            if resolved is not None:
                v[RESOLUTIONS] += sign
                v[RES_SECONDS] += sign * res
                v[res_bucket] += sign
        if first is not None:
            frt_keys = [
                (response_rollups.FRT, day, c.channel, response_rollups.CALENDAR, ceil_seconds(first - opened_at))
            ]
            if calendar is not None:
                frt_keys = [k for k, _ in response_rollups.frt_parts(day, c.channel, opened_at, first, calendar)]
            for key in frt_keys:
                v = rows.get(key)
                if v is None:
                    rows[key] = [sign]
                else:
                    v[0] += sign

    def add_rows(self, rows: Iterable[tuple[Key, Vector]]) -> None:
        """Add whole delta vectors (several batches' deltas summed before one upsert)."""
        table = self.rows
        for key, vector in rows:
            total = table.get(key)
            if total is None:
                table[key] = list(vector)
            else:
                for i, x in enumerate(vector):
                    if x:
                        total[i] += x

    def nonzero(self) -> list[tuple[Key, Vector]]:
        return [(k, v) for k, v in self.rows.items() if any(v)]

    @staticmethod
    def encode(rows: Sequence[tuple[Key, Vector]]) -> bytes:
        """``rows`` (from :meth:`nonzero`) as stored in the cell, JSON: ``[*key, vector]`` per row,
        days as ISO dates. A first-response row's vector is its one count (``[contacts]``)."""
        return msgspec.json.encode([(*k, v) for k, v in rows])

    @staticmethod
    def from_json(rows: Sequence[Sequence[Any]]) -> list[tuple[Key, Vector]]:
        out: list[tuple[Key, Vector]] = []
        for r in rows:
            if response_rollups.is_frt_key(r):
                out.append((response_rollups.key_from_json(r), [r[5][0]]))
            else:
                out.append(((r[0], date.fromisoformat(r[1]), r[2], r[3], r[4], r[5]), _dense(r[6])))
        return out


_COLUMNS = ("tenant_id", *DIMENSIONS, *MEASURES)
_MONTH_COLUMNS = ("tenant_id", *MONTH_DIMENSIONS, *MONTH_MEASURES)


def month_totals(rows: Iterable[tuple[Key, Vector]]) -> dict[Key, Vector]:
    """Daily rows (or deltas) summed per tenant-local month: ``(basis, first day of the month, channel,
    intent, language, resolution) -> [contacts, rated, csat_good]`` (`MONTH_MEASURES`), nonzero only."""
    out: dict[Key, Vector] = {}
    for key, vector in rows:
        if key[0] == response_rollups.FRT:
            continue
        month = (key[0], key[1].replace(day=1), *key[2:])
        total = out.get(month)
        if total is None:
            out[month] = [vector[i] for i in _MONTH_INDEX]
        else:
            for j, i in enumerate(_MONTH_INDEX):
                total[j] += vector[i]
    return {k: v for k, v in out.items() if any(v)}


@functools.cache
def _month_upsert_sql() -> str:
    """SQLite: the additive upsert of month totals (executemany, like `_upsert_sql`)."""
    columns, values = ", ".join(_MONTH_COLUMNS), ", ".join(["?"] * len(_MONTH_COLUMNS))
    keys = ", ".join(("tenant_id", *MONTH_DIMENSIONS))
    adds = ", ".join(f"{m} = contact_rollup_months.{m} + excluded.{m}" for m in MONTH_MEASURES)
    insert = f"INSERT INTO contact_rollup_months ({columns}) VALUES ({values}) "  # noqa: S608 (constant names)
    return insert + f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"


@functools.cache
def _upsert_sql(dialect: str) -> str:
    """The additive upsert as driver SQL: executemany of plain tuples skips per-row bind processing,
    which dominated a batch's cost with ~40 measures per row."""
    mark = "%s" if dialect == "postgresql" else "?"
    columns, values = ", ".join(_COLUMNS), ", ".join([mark] * len(_COLUMNS))
    keys = ", ".join(("tenant_id", *DIMENSIONS))
    adds = ", ".join(f"{m} = contact_rollups.{m} + excluded.{m}" for m in MEASURES)
    insert = f"INSERT INTO contact_rollups ({columns}) VALUES ({values}) "  # noqa: S608 (constant names)
    return insert + f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"


_PG_KEYS = ("b", "d", "c", "i", "l", "r")  # basis, day, channel, intent, language, resolution
# One delta row as PostgreSQL reads it: the key, then measure i under the name "i", omitted when zero.
_PgRow = msgspec.defstruct(
    "_PgRow",
    [*_PG_KEYS, *((f"m{i}", int, 0) for i in range(N))],
    omit_defaults=True,
    rename=lambda name: name[1:] if name[0] == "m" else name,
    array_like=False,
)


@functools.cache
def _pg_upsert_sql() -> str:
    """PostgreSQL: the whole delta in one statement, its rows one JSON array parameter of objects
    with the key under one-letter names and only the nonzero measures, under their index
    (``{"b": "opened", "d": "2026-10-01", …, "0": 1, "5": 1, …}``): one round trip and a set-based
    upsert. ``json_to_recordset`` parses each row once into typed columns, which costs PostgreSQL
    about a third less than reading 47 measures out of a ``jsonb`` array each by its own path.

    The same statement adds the rows' month totals to ``contact_rollup_months`` (grouped by month,
    so that no month row is updated twice). Parameters: the payload, then the tenant id twice. The
    daily upsert is a CTE whose row count the month upsert's one-time filter reads, so it runs to
    completion first: every applier locks a tenant's daily rows in key order, then its month rows in
    key order (no deadlock between concurrent appliers)."""
    keys = ", ".join(("tenant_id", *DIMENSIONS))
    types = ("text", "date", "text", "text", "text", "text")
    columns = [f"{k} {t}" for k, t in zip(_PG_KEYS, types, strict=True)]
    record = ", ".join([*columns, *(f'"{i}" bigint' for i in range(N))])
    measures = (f'coalesce(x."{i}", 0)' for i in range(N))
    values = ", ".join(["CAST(%s AS uuid)", *(f"x.{k}" for k in _PG_KEYS), *measures])
    adds = ", ".join(f"{m} = contact_rollups.{m} + excluded.{m}" for m in MEASURES)
    month_keys = ", ".join(("tenant_id", *MONTH_DIMENSIONS))
    month_of = "x.d - CAST(EXTRACT(DAY FROM x.d) AS integer) + 1"  # date arithmetic, no time zone
    month_group = ["x.b", month_of, "x.c", "x.i", "x.l", "x.r"]
    month_sums = [f'sum(coalesce(x."{i}", 0))' for i in _MONTH_INDEX]
    month_adds = ", ".join(f"{m} = contact_rollup_months.{m} + excluded.{m}" for m in MONTH_MEASURES)
    return (
        f"WITH x AS (SELECT * FROM json_to_recordset(CAST(%s AS json)) AS x({record})), "  # noqa: S608 (constants)
        f"daily AS (INSERT INTO contact_rollups ({', '.join(_COLUMNS)}) "
        f"SELECT {values} FROM x "
        # Key order: concurrent appliers lock the rows they share in the same order (no deadlock).
        f"ORDER BY {', '.join(f'x.{k}' for k in _PG_KEYS)} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds} RETURNING 1) "
        f"INSERT INTO contact_rollup_months ({', '.join(_MONTH_COLUMNS)}) "
        f"SELECT CAST(%s AS uuid), {', '.join(month_group)}, {', '.join(month_sums)} FROM x "
        "WHERE (SELECT count(*) FROM daily) >= 0 "
        f"GROUP BY {', '.join(month_group)} "
        f"HAVING {' OR '.join(f'{m} <> 0' for m in month_sums)} "
        f"ORDER BY {', '.join(month_group)} "
        f"ON CONFLICT ({month_keys}) DO UPDATE SET {month_adds}"
    )


# A row is removed only when every measure is zero: then it is the same as no row.
_ALL_ZERO = tuple(ROLLUP.c[m] == 0 for m in MEASURES)
_MONTH_ALL_ZERO = tuple(MONTHS.c[m] == 0 for m in MONTH_MEASURES)


async def add_to_rollups(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[tuple[Key, Vector]]) -> None:
    """Add delta rows (one per key) to the control rollups in one statement; rows left all zero are removed.

    Deltas commute: the rows are sums, so applying a tenant's deltas in any order gives the same
    rows as a recount. A delta may arrive before the one it corrects (an update's ``-v1 +v2`` before
    the ``+v1`` of the batch that stored v1, after a crash or a failed application): a row can then
    hold ``contacts == 0`` while other measures are not zero yet, or a negative measure, until the
    late delta lands. So a row is deleted only when every measure is zero (an absent row and an
    all-zero row read the same), never because one measure reached zero. Readers settle the
    tenant's pending deltas first (``apply_pending``), so they do not see such a passing state.

    PostgreSQL upserts them in key order (the statements sort); SQLite has one writer at a time."""
    frt, main = [], []
    for row in rows:
        if row[0][0] == response_rollups.FRT:
            frt.append((row[0], row[1][0]))
        else:
            main.append(row)
    await response_rollups.add_rows(session, tenant_id, frt)
    rows = main
    if not rows:
        return
    connection = await session.connection()
    if session.bind.dialect.name == "postgresql":
        payload = msgspec.json.encode([_PgRow(*k, *v) for k, v in rows]).decode()
        await connection.exec_driver_sql(_pg_upsert_sql(), (payload, tenant_id, tenant_id))
    else:  # executemany in the driver; stored as SQLAlchemy stores them on SQLite: hex UUID, ISO date
        tid = tenant_id.hex
        params = [(tid, k[0], k[1].isoformat(), *k[2:], *v) for k, v in rows]
        await connection.exec_driver_sql(_upsert_sql("sqlite"), params)
        months = [(tid, k[0], k[1].isoformat(), *k[2:], *v) for k, v in month_totals(rows).items()]
        if months:
            await connection.exec_driver_sql(_month_upsert_sql(), months)
    if any(x < 0 for _, v in rows for x in v):
        # Only a row whose every measure is zero goes: deltas commute (see `add_to_rollups`).
        await session.execute(sa.delete(ROLLUP).where(ROLLUP.c.tenant_id == tenant_id, *_ALL_ZERO))
        await session.execute(sa.delete(MONTHS).where(MONTHS.c.tenant_id == tenant_id, *_MONTH_ALL_ZERO))


# --- recount and rebuild ----------------------------------------------------------------------
RECOUNT_COLUMNS = (
    Contact.channel,
    Contact.intent,
    Contact.language,
    Contact.resolution,
    Contact.opened_at,
    Contact.first_response_at,
    Contact.handoff_at,
    Contact.resolved_at,
    Contact.csat,
    Contact.reopens,
)


async def recount(db: Databases, tenant_id: uuid.UUID, timezone: str) -> dict[Key, Vector]:
    """The tenant's rollups computed from scratch from the contacts of every cell."""
    zone = ZoneInfo(timezone)
    async with db.control_session() as session:
        calendar = await load_calendar(session, tenant_id)
    total = DeltaSum()
    for region in await cells.holding(db, tenant_id):  # a move's copy in progress is not counted twice
        async with db.cell_session(region) as cell:
            result = await cell.stream(sa.select(*RECOUNT_COLUMNS).where(Contact.tenant_id == tenant_id))
            async for row in result:  # the reference definition, not ingest's add_contact: this checks it
                total.add(contact_parts(zone, calendar, **row._mapping), 1)
    return dict(total.nonzero())


async def stored_rollups(session: AsyncSession, tenant_id: uuid.UUID) -> dict[Key, Vector]:
    rows = await session.execute(sa.select(ROLLUP).where(ROLLUP.c.tenant_id == tenant_id))
    out = {}
    for row in rows.mappings():
        key = tuple(row[d] for d in DIMENSIONS)
        vector = [int(row[m]) for m in MEASURES]
        if any(vector):
            out[key] = vector
    for key, contacts in (await response_rollups.stored_rows(session, tenant_id)).items():
        out[key] = [contacts]
    return out


async def rebuild(db: Databases, tenant_id: uuid.UUID, timezone: str) -> int:
    """Replace the tenant's rollups with a recount; pending cell deltas are then void. Returns rows.

    Run it while the tenant's ingest is quiet (a batch committed during the recount would be
    counted by both); it is the repair tool, not part of the ingest path.
    """
    for region in db.cells:
        async with db.cell_session(region) as cell, cell.begin():
            await cell.execute(sa.delete(RollupDelta).where(RollupDelta.tenant_id == tenant_id))
    rows = await recount(db, tenant_id, timezone)
    frt = [(k, v[0]) for k, v in rows.items() if response_rollups.is_frt_key(k)]
    rows = {k: v for k, v in rows.items() if not response_rollups.is_frt_key(k)}
    async with db.control_transaction() as session:
        await response_rollups.replace_rows(session, tenant_id, frt)
        await session.execute(sa.delete(ROLLUP).where(ROLLUP.c.tenant_id == tenant_id))
        await session.execute(sa.delete(MONTHS).where(MONTHS.c.tenant_id == tenant_id))
        months = month_totals(rows.items())
        if months:
            await session.execute(
                sa.insert(MONTHS),
                [
                    {
                        "tenant_id": tenant_id,
                        **dict(zip(MONTH_DIMENSIONS, k, strict=True)),
                        **dict(zip(MONTH_MEASURES, v, strict=True)),
                    }
                    for k, v in months.items()
                ],
            )
        if rows:
            await session.execute(
                sa.insert(ROLLUP),
                [
                    {
                        "tenant_id": tenant_id,
                        **dict(zip(DIMENSIONS, k, strict=True)),
                        **dict(zip(MEASURES, v, strict=True)),
                    }
                    for k, v in rows.items()
                ],
            )
    return len(rows) + len(frt)


async def stored_months(session: AsyncSession, tenant_id: uuid.UUID) -> dict[Key, Vector]:
    """The tenant's stored month totals (nonzero rows), keyed like `month_totals`."""
    rows = await session.execute(sa.select(MONTHS).where(MONTHS.c.tenant_id == tenant_id))
    out = {}
    for row in rows.mappings():
        vector = [int(row[m]) for m in MONTH_MEASURES]
        if any(vector):
            out[tuple(row[d] for d in MONTH_DIMENSIONS)] = vector
    return out


# --- reading ----------------------------------------------------------------------------------
async def read_rollups(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    basis: str,
    start: date,
    end: date,
    group_by: Sequence[str] = (),
    where: Mapping[str, Iterable[str]] | None = None,
) -> list[dict[str, Any]]:
    """Sums of every measure over days ``start <= day < end``, grouped by the named dimensions.

    ``basis="resolved"`` for billing, deflection and CSAT (a contact belongs to the period of its
    ``resolved_at``); ``basis="opened"`` for response targets and usage.
    """
    groups = [ROLLUP.c[g] for g in group_by]
    stmt = (
        sa.select(*groups, *(sa.func.sum(ROLLUP.c[m]).label(m) for m in MEASURES))
        .where(ROLLUP.c.tenant_id == tenant_id, ROLLUP.c.basis == basis, ROLLUP.c.day >= start, ROLLUP.c.day < end)
        .group_by(*groups)
        .order_by(*groups)
    )
    for dim, values in (where or {}).items():
        stmt = stmt.where(ROLLUP.c[dim].in_(list(values)))
    rows = await session.execute(stmt)
    return [{k: (int(v or 0) if k in _I else v) for k, v in row.items()} for row in rows.mappings() if row["contacts"]]


def within_limit(row: Mapping[str, int], seconds: int, *, kind: str = "frt") -> int:
    """How many contacts of a rollup row took at most ``seconds`` (exact when it is a bucket bound)."""
    last = bisect.bisect_left(HISTOGRAM_BOUNDS, seconds)
    if last < len(HISTOGRAM_BOUNDS) and HISTOGRAM_BOUNDS[last] != seconds:
        last -= 1  # not a bound: the buckets wholly within the limit (a lower bound)
    return sum(int(row[f"{kind}_b{i:02d}"]) for i in range(min(last, BUCKETS - 1) + 1))
