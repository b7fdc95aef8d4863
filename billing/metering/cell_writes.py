"""One cell's part of an ingest batch: dedup by version, write the contacts, write the rollup delta.

`write_to_cell` runs inside the caller's cell transaction (`service._write_region` opens it and runs it
again when a concurrent batch stored one of its new contacts first); see its docstring for how
SQLite and PostgreSQL keep concurrent batches exact. The contact's reopen flag is derived here from
the earliest resolution of every version received (`reopened`).
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import contact_keys, rollups
from billing.metering.models import Contact, RollupDelta
from billing.metering.schemas import FIELDS, RESOLVED, ContactIn
from tenants.calendar import BusinessCalendar

log = logging.getLogger(__name__)

CONTACTS = Contact.__table__
WRITE_ATTEMPTS = 3  # of a cell's part of a batch, when concurrent batches store the same new contacts
_EXISTING = sa.select(
    CONTACTS.c.id,
    CONTACTS.c.external_id,
    CONTACTS.c.updated_at,
    CONTACTS.c.first_resolved_at,
    CONTACTS.c.market,
    CONTACTS.c.customer_hash,
    *(CONTACTS.c[c.key] for c in rollups.RECOUNT_COLUMNS),
)
# What a version says about its contact (the reference as its hash): two versions with one
# ``updated_at`` must say the same, or the second is refused (`conflicts`).
_CONTENT = operator.attrgetter(
    "channel",
    "language",
    "market",
    "intent",
    "opened_at",
    "first_response_at",
    "handoff_at",
    "resolved_at",
    "resolution",
    "csat",
)
# The columns ingest writes, in the order of `_values` (and of the COPY on PostgreSQL).
COLUMNS: tuple[str, ...] = (
    "tenant_id",
    *("customer_hash" if f == "customer_ref" else f for f in FIELDS),  # the reference is stored hashed
    "received_at",
    "reopens",
    "first_resolved_at",
)
# A stored row is found by its id and stored opened_at: on PostgreSQL the partition key, so the
# statement reads one monthly partition (billing.metering.partitions); a new opened_at moves the row.
_STORED_ROW = sa.and_(CONTACTS.c.id == sa.bindparam("_id"), CONTACTS.c.opened_at == sa.bindparam("_opened_at"))
_UPDATE = (  # an update rewrites every column but the contact's key (tenant_id, external_id)
    sa.update(CONTACTS).where(_STORED_ROW).values({name: sa.bindparam(name) for name in COLUMNS[2:]})
)

# A stale version resolved earlier than any stored one moves only the contact's first resolution.
_EARLIER = (
    sa.update(CONTACTS)
    .where(_STORED_ROW)
    .values(first_resolved_at=sa.bindparam("first_resolved_at"), reopens=sa.bindparam("reopens"))
)


# PostgreSQL: each of the batch's ids looked up in ``contact_keys`` (one index, unlike the partitioned
# ``contacts``, see `contact_keys`), and only for the keys found, the stored row (over every partition's
# unique index). Both are LATERAL subqueries with LIMIT 1 over one element of an array parameter: an
# index probe per id, whatever the statistics say (a plain join was planned as a hash join over every
# key of the tenant while the table had never been analysed: 30 ms instead of 1 ms per 1,000 ids).
# A key without its row comes back with NULL columns.
_PG_PROBE = (
    "SELECT wanted.external_id AS key, stored.* FROM unnest(CAST(%(ids)s AS varchar[])) AS wanted(external_id) "  # noqa: S608
    "JOIN LATERAL (SELECT 1 FROM contact_keys WHERE tenant_id = %(tenant)s AND external_id = wanted.external_id "
    "LIMIT 1) AS k ON true LEFT JOIN LATERAL ("
    f"SELECT {', '.join(c.name for c in _EXISTING.selected_columns)} FROM contacts "
    "WHERE tenant_id = %(tenant)s AND external_id = wanted.external_id LIMIT 1) AS stored ON true"
)


async def _driver_connection(cell: AsyncSession) -> Any:
    """The psycopg connection under the cell session (its transaction), for what SQLAlchemy does not
    offer: COPY, and statements that must never become prepared statements."""
    connection = await cell.connection()
    return (await connection.get_raw_connection()).driver_connection


async def _stored(cell: AsyncSession, tenant_id: uuid.UUID, external_ids: list[str]) -> dict[str, Any]:
    """The stored versions of ``external_ids``, by external id.

    PostgreSQL (`_PG_PROBE`) looks the ids up in ``contact_keys`` first (one index; the partitioned
    ``contacts`` has one per month), and runs the probe as a one-off statement, planned each time for its own
    parameters, never prepared: a prepared statement's generic plan outlives the table size it was
    planned for. Planned while a new cell's table held a page or two, it scanned the table once per
    id, and kept doing so as the table grew (seconds per batch at 40,000 contacts in a
    micro-benchmark). A plain ``external_id IN (…1,000 ids…)`` could also let a generic plan pick
    the ``(tenant_id, resolved_at)`` index and compare every row of the tenant with the list.
    """
    if cell.bind.dialect.name != "postgresql":
        stmt = _EXISTING.where(CONTACTS.c.tenant_id == tenant_id, CONTACTS.c.external_id.in_(external_ids))
        return {row.external_id: row for row in await cell.execute(stmt)}
    driver = await _driver_connection(cell)
    async with driver.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(_PG_PROBE, {"ids": external_ids, "tenant": tenant_id}, prepare=False)
        rows = await cursor.fetchall()
    orphans = [row.key for row in rows if row.id is None]
    if orphans:  # their contacts were deleted without them: gone now, the contacts count as new
        log.warning("%d contact keys without their contact in tenant %s: deleted", len(orphans), tenant_id)
        await contact_keys.drop_keys(cell, tenant_id, orphans)
    return {row.external_id: row for row in rows if row.id is not None}


@dataclass
class CellOutcome:
    accepted: int = 0
    updated: int = 0
    duplicates: int = 0
    delta_id: str | None = None
    rows: list = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)  # batch indices refused as conflicting versions

    def counts(self) -> dict[str, int]:
        return {"accepted": self.accepted, "updated": self.updated, "duplicates": self.duplicates}


@dataclass(frozen=True)
class TenantContext:
    id: uuid.UUID
    slug: str
    timezone: str
    hash_key: bytes
    regions: dict[str, str]  # market -> region, for the markets of this batch
    calendar: BusinessCalendar | None = None  # support calendar, for business-hours response times


def _values(c: ContactIn, tenant_id: uuid.UUID, customer_hash: str | None, now: datetime) -> tuple:
    return (
        tenant_id,
        c.external_id,
        c.channel,
        c.language,
        c.market,
        c.intent,
        c.opened_at,
        c.first_response_at,
        c.handoff_at,
        c.resolved_at,
        c.resolution,
        c.csat,
        customer_hash,
        c.updated_at,
        now,
        c.reopens,
        c.first_resolved_at,
    )


def _row(c: ContactIn, tenant_id: uuid.UUID, customer_hash: str | None, now: datetime) -> dict[str, Any]:
    return dict(zip(COLUMNS, _values(c, tenant_id, customer_hash, now), strict=True))


_EXTERNAL_ID = operator.itemgetter(COLUMNS.index("external_id"))
_COPY = f"COPY contacts ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_copy_types: list[int] = []  # the columns' type oids, read from the first cell (every cell has one schema)


async def _insert_contacts(cell: AsyncSession, rows: list[tuple]) -> None:
    """Insert new contacts (tuples in `COLUMNS` order) inside the cell's transaction.

    PostgreSQL: binary ``COPY`` on the session's own connection. Against SQLAlchemy's executemany
    (a multi-row INSERT with every value bound in Python) it takes about a tenth of the server's
    CPU and two thirds of PostgreSQL's for 1,000 contacts. SQLite: executemany.
    """
    if cell.bind.dialect.name != "postgresql":
        await cell.execute(CONTACTS.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in rows])
        return
    driver = await _driver_connection(cell)
    async with driver.cursor() as cursor:
        if not _copy_types:
            await cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM contacts LIMIT 0")  # noqa: S608 (constant names)
            _copy_types[:] = [column.type_code for column in cursor.description]  # batches may race here
        async with cursor.copy(_COPY) as copy:
            copy.set_types(_copy_types)
            for row in rows:
                await copy.write_row(row)


def _delta_json(cell: AsyncSession, rows: list) -> Any:
    """A delta's rows as the value of its JSON column, encoded once by msgspec: JSON text, cast to
    ``json`` on PostgreSQL (SQLite stores JSON as text; a CAST there would make it a number)."""
    text = sa.bindparam("deltas", rollups.DeltaSum.encode(rows).decode(), type_=sa.Text)
    return sa.cast(text, sa.JSON) if cell.bind.dialect.name == "postgresql" else text


async def _write_delta(cell: AsyncSession, ctx: TenantContext, delta_id: str, rows: list, now: datetime) -> None:
    """Write the batch's prepared delta (final unless the probe finds stale or updated contacts).

    On SQLite this first write takes the database's write lock, before the stored versions are
    read, so two identical batches cannot both see a contact as new."""
    row = {"id": delta_id, "tenant_id": ctx.id, "timezone": ctx.timezone, "created_at": now}
    await cell.execute(sa.insert(RollupDelta).values(**row, deltas=_delta_json(cell, rows)))


async def lock_tenant(cell: AsyncSession, tenant_id: uuid.UUID) -> None:
    """PostgreSQL: serialise the writers of the tenant's stored contacts (transaction-scoped): ingest's
    updates, and retention's deletes (`compliance.retention`)."""
    await cell.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"contacts:{tenant_id}"})


def reopened(newest: Any, first_resolved_at: datetime | None) -> int:
    """1 when the contact was resolved once (``first_resolved_at``, the earliest ``resolved_at`` of any
    of its ``ai_resolved``/``human_resolved`` versions) and its newest version is not resolved at that
    time: open again, abandoned, or resolved later (DESIGN.md: "a reopened contact arrives as an
    update"). A correction at the same resolution time is no reopen. Both inputs are the same
    whatever order the versions arrived in (the newest by ``updated_at``, a minimum), so is this."""
    if first_resolved_at is None:
        return 0
    return int(newest.resolution not in RESOLVED or newest.resolved_at != first_resolved_at)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _first_resolutions(items: Sequence[tuple[ContactIn, str | None]]) -> dict[str, datetime]:
    """Per contact, the earliest ``resolved_at`` of the batch's resolved versions (all of them, stale ones too)."""
    first: dict[str, datetime] = {}
    for c, _ in items:
        if c.resolution in RESOLVED:
            first[c.external_id] = _earlier(first.get(c.external_id), c.resolved_at)
    return first


def same_content(c: ContactIn, customer_hash: str | None, other: Any, other_hash: str | None) -> bool:
    """Whether two versions (a `ContactIn` or a stored row) say the same about their contact."""
    return customer_hash == other_hash and _CONTENT(c) == _CONTENT(other)


def conflicts(items: Sequence[tuple[ContactIn, str | None]], stored: dict[str, Any]) -> list[int]:
    """The batch indices of the versions that carry their stored version's ``updated_at`` but say
    something else (``conflicting_version``: a change needs a later ``updated_at``)."""
    out = []
    for c, customer_hash in items:
        old = stored.get(c.external_id)
        if (
            old is not None
            and c.updated_at == old.updated_at
            and not same_content(c, customer_hash, old, old.customer_hash)
        ):
            out.append(c.index)
    return out


def _prepare(
    items: Sequence[tuple[ContactIn, str | None]], zone: ZoneInfo, calendar: BusinessCalendar | None
) -> tuple[dict[str, tuple[ContactIn, str | None]], rollups.DeltaSum]:
    """Per contact, the version that wins if it is new, and the delta of the batch as if all were new."""
    newest: dict[str, tuple[ContactIn, str | None]] = {}
    _versions(items, {}, newest)
    first_resolved = _first_resolutions(items)
    delta_sum = rollups.DeltaSum()
    for c, _ in newest.values():
        c.first_resolved_at = first_resolved.get(c.external_id)
        c.reopens = reopened(c, c.first_resolved_at)
        delta_sum.add_contact(zone, c, calendar, 1)
    return newest, delta_sum


def _versions(
    items: Sequence[tuple[ContactIn, str | None]],
    stored: dict[str, Any],
    winners: dict[str, tuple[ContactIn, str | None]],
) -> tuple[int, int, int]:
    """Walk a cell's part of a batch in order against the stored versions.

    A version counts when it is newer than the contact's latest so far (stored, or earlier in the
    batch): the first as accepted (no stored version) or updated, later ones as updated; older or
    equal ones are duplicates. Fills ``winners`` with each contact's last counted version and
    returns the counts.
    """
    heads: dict[str, Any] = {}
    accepted = updated = duplicates = 0
    for item in items:
        c = item[0]
        key = c.external_id
        before = heads.get(key)
        if before is None:
            before = stored.get(key)
        if before is None:
            accepted += 1
        elif c.updated_at > before.updated_at:
            updated += 1
        else:
            duplicates += 1
            continue
        heads[key] = c
        winners[key] = item
    return accepted, updated, duplicates


# Long on purpose (most of it the docstring): one cell transaction's steps in the order that makes
# concurrent batches exact; split apart, the order of the lock, the probe and the writes would hide.
async def write_to_cell(
    cell: AsyncSession,
    ctx: TenantContext,
    items: Sequence[tuple[ContactIn, str | None]],
    now: datetime,
    *,
    probe_first: bool = True,
) -> CellOutcome:
    """Dedup and write one cell's part of a batch inside the caller's transaction (never commits).

    The rows and the rollup delta are prepared, and the delta written, as if every contact were new
    (the usual case); once the stored versions are read, the delta is corrected (rewritten) for the
    contacts that turn out to be stale (their contribution removed) or updates (the stored one's
    removed). A version with its stored version's ``updated_at`` but other content is refused
    (``out.conflicts``) and the batch's part prepared again without it.

    SQLite: the delta's write takes the database's write lock, then the versions are read.

    PostgreSQL: new contacts need no lock to be copied: their keys are copied first into
    ``contact_keys``, whose primary key ``(tenant_id, external_id)`` arbitrates between batches that
    store one contact, whatever its ``opened_at`` (`contact_keys`). With ``probe_first`` the stored
    versions are read first, without a lock; when none is stored (the usual case) the keys and the
    contacts are copied at once. When some are, the tenant's
    advisory lock is taken (it serialises every writer of stored contacts) and those are read again
    under it, so an update is decided on the latest version. A contact read as missing but stored
    meanwhile by a concurrent batch makes the keys' COPY fail (:class:`psycopg.errors.UniqueViolation`,
    after that batch commits): nothing of this transaction is written, and the caller runs the
    cell's part again with ``probe_first=False``: lock first, then every version read under it.
    The COPYs send their rows in ``external_id`` order, so two batches inserting some of the same new
    contacts wait on each other in one order (no deadlock).
    """
    zone = ZoneInfo(ctx.timezone)
    out = CellOutcome(delta_id=str(uuid.uuid4()))
    newest, delta_sum = _prepare(items, zone, ctx.calendar)
    prepared: list | None = delta_sum.nonzero()
    await _write_delta(cell, ctx, out.delta_id, prepared, now)
    if cell.bind.dialect.name != "postgresql":
        stored = await _stored(cell, ctx.id, list(newest))
    elif probe_first:
        stored = await _stored(cell, ctx.id, list(newest))
        if stored:
            await lock_tenant(cell, ctx.id)
            stored = await _stored(cell, ctx.id, list(stored))
    else:
        await lock_tenant(cell, ctx.id)
        stored = await _stored(cell, ctx.id, list(newest))
    out.conflicts = conflicts(items, stored) if stored else []
    if out.conflicts:  # rare: prepared again without them (they change nothing, not even a first resolution)
        refused = set(out.conflicts)
        items = [item for item in items if item[0].index not in refused]
        newest, delta_sum = _prepare(items, zone, ctx.calendar)
        prepared = None
    written: dict[str, tuple[ContactIn, str | None]] = {}
    out.accepted, out.updated, out.duplicates = _versions(items, stored, written)
    inserts, updates, earlier = [], [], []
    for external_id, (c, customer_hash) in newest.items():
        old = stored.get(external_id)
        first = _earlier(None if old is None else old.first_resolved_at, c.first_resolved_at)
        if external_id not in written:  # stale: the stored version stays, only its earliest resolution may move
            delta_sum.add_contact(zone, c, ctx.calendar, -1)
            if first != old.first_resolved_at:
                flag = reopened(old, first)
                if (flag > 0) != (old.reopens > 0):
                    delta_sum.add_contact(zone, old, ctx.calendar, -1)
                    delta_sum.add_contact(zone, SimpleNamespace(**{**old._asdict(), "reopens": flag}), ctx.calendar, 1)
                earlier.append(
                    {"_id": old.id, "_opened_at": old.opened_at, "first_resolved_at": first, "reopens": flag}
                )
            continue
        if old is not None:  # an update: the stored version's contribution goes
            delta_sum.add_contact(zone, old, ctx.calendar, -1)
        flag = reopened(c, first)
        if (flag > 0) != (c.reopens > 0):  # counted as (not) reopened before the stored version was read
            delta_sum.add_contact(zone, c, ctx.calendar, -1)
            c.reopens = flag
            delta_sum.add_contact(zone, c, ctx.calendar, 1)
        c.first_resolved_at, c.reopens = first, flag
        if old is None:
            inserts.append(_values(c, ctx.id, customer_hash, now))
        else:
            row = _row(c, ctx.id, customer_hash, now)
            row["_id"], row["_opened_at"] = old.id, old.opened_at
            updates.append(row)
    if inserts:
        inserts.sort(key=_EXTERNAL_ID)
        if cell.bind.dialect.name == "postgresql":  # the keys first: they arbitrate between batches
            await contact_keys.copy_keys(await _driver_connection(cell), ctx.id, [_EXTERNAL_ID(r) for r in inserts])
        await _insert_contacts(cell, inserts)
    if updates:
        await cell.execute(_UPDATE, updates)
    if earlier:
        await cell.execute(_EARLIER, earlier)
    if prepared is not None and len(inserts) == len(newest):  # all new: the delta written first stands
        out.rows = prepared
        return out
    out.rows = delta_sum.nonzero()
    if out.rows:
        delta = sa.update(RollupDelta).where(RollupDelta.id == out.delta_id)
        await cell.execute(delta.values(deltas=_delta_json(cell, out.rows)))
    else:
        await cell.execute(sa.delete(RollupDelta).where(RollupDelta.id == out.delta_id))
        out.delta_id = None
    return out
