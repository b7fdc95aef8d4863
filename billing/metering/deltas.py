"""Rollup deltas on their way from a cell to the control rollups, each applied exactly once.

A batch's delta is committed in its cell with the contacts (``rollup_deltas``); it is then applied
to ``contact_rollups`` under a receipt (``rollup_receipts``, one per delta id: a second application
is a no-op) and dropped from the cell. `DeltaApplier` does that right after the API's answer,
several batches per control transaction; `apply_pending` applies what a stopped process or a
failed application left behind (the ``rollup_deltas`` job, a starting server, reads that settle a
tenant first, ``bpoctl rollups apply-pending``). The sums commute (`rollups.add_to_rollups`), so
the order in which deltas arrive does not matter. A ``region`` argument here names a cell
(``Databases.cells``: ``eu``, or ``eu-1``/``eu-2`` in a region with several); a tenant move copies
pending deltas with their ids, and the receipts make each count once whichever cell applies it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from billing.metering.models import RollupDelta, RollupReceipt
from billing.metering.rollups import DeltaSum, Key, Vector, add_to_rollups
from control_plane import telemetry
from control_plane.database import Databases, utcnow

log = logging.getLogger(__name__)


async def apply_delta(db: Databases, region: str, delta_id: str, tenant_id: uuid.UUID, rows: list) -> bool:
    """Apply one cell delta to the control rollups exactly once; ``False`` when it was applied before."""
    return bool(await apply_deltas(db, region, [(delta_id, tenant_id, rows)]))


async def apply_deltas(db: Databases, region: str, deltas: Sequence[tuple[str, uuid.UUID, list]]) -> int:
    """Apply several deltas of one cell in one control transaction, each exactly once.

    One multi-row receipt INSERT (``ON CONFLICT DO NOTHING RETURNING``) says which deltas are new;
    only their rows are summed and upserted, in key order (`add_to_rollups`: concurrent appliers
    lock rows in the same order). Returns how many deltas were applied now.
    """
    if not deltas:
        return 0
    now = utcnow()
    with telemetry.span("rollup apply", region=region, deltas=len(deltas)):
        return await _apply_deltas(db, region, deltas, now)


async def _apply_deltas(db: Databases, region: str, deltas: Sequence[tuple[str, uuid.UUID, list]], now) -> int:
    async with db.control_transaction() as session:
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        table = RollupReceipt.__table__
        fresh = set(
            (
                await session.scalars(
                    insert(table)
                    .values(
                        [
                            {"delta_id": d, "tenant_id": t, "region": region, "applied_at": now}
                            for d, t in {d: t for d, t, _ in deltas}.items()  # each id once
                        ]
                    )
                    .on_conflict_do_nothing()
                    .returning(table.c.delta_id)
                )
            ).all()
        )
        by_tenant: dict[uuid.UUID, list[list]] = {}
        applied = 0
        for delta_id, tenant_id, rows in deltas:
            if delta_id in fresh:
                fresh.discard(delta_id)  # a delta listed twice counts once
                by_tenant.setdefault(tenant_id, []).append(rows)
                applied += 1
        for tenant_id, parts in by_tenant.items():
            if len(parts) == 1:  # one delta: its keys are unique and its rows nonzero already
                rows = parts[0]
            else:
                total = DeltaSum()
                for rows in parts:
                    total.add_rows(rows)
                rows = total.nonzero()
            await add_to_rollups(session, tenant_id, rows)
    return applied


async def forget_delta(db: Databases, region: str, delta_id: str) -> None:
    await forget_deltas(db, region, [delta_id])


async def forget_deltas(db: Databases, region: str, delta_ids: Sequence[str]) -> None:
    """Drop applied deltas from their cell (one DELETE)."""
    if delta_ids:
        async with db.cell_session(region) as cell, cell.begin():
            await cell.execute(sa.delete(RollupDelta).where(RollupDelta.id.in_(list(delta_ids))))


PENDING_CHUNK = 200  # deltas applied per control transaction by `apply_pending`


async def apply_pending(db: Databases, tenant_id: uuid.UUID | None = None, *, older_than: float | None = None) -> int:
    """Apply every delta a cell still holds (the control database was down, or the process that wrote
    it stopped before applying it), oldest first, up to `PENDING_CHUNK` per control transaction.
    ``older_than`` (seconds) skips deltas younger than that, which the writing process is still
    applying. Deltas committed after the call began are left to the next call (no endless chase of
    a busy tenant); the receipts make it safe to race the writing process's own applier."""
    applied = 0
    began = utcnow()
    for region in db.cells:
        while True:
            async with db.cell_session(region) as cell:
                stmt = (
                    sa.select(RollupDelta.id, RollupDelta.tenant_id, RollupDelta.deltas)
                    .where(RollupDelta.created_at <= began)
                    .order_by(RollupDelta.created_at)
                    .limit(PENDING_CHUNK)
                )
                if tenant_id is not None:
                    stmt = stmt.where(RollupDelta.tenant_id == tenant_id)
                if older_than is not None:
                    stmt = stmt.where(RollupDelta.created_at < began - timedelta(seconds=older_than))
                pending = (await cell.execute(stmt)).all()
            if not pending:
                break
            applied += await apply_deltas(db, region, [(d, t, DeltaSum.from_json(rows)) for d, t, rows in pending])
            await forget_deltas(db, region, [d for d, _, _ in pending])
            if len(pending) < PENDING_CHUNK:
                break
    return applied


async def oldest_pending(db: Databases) -> datetime | None:
    """When the oldest delta still held by any cell was written (``None``: none is pending)."""
    oldest = None
    for region in db.cells:
        async with db.cell_session(region) as cell:
            created = await cell.scalar(sa.select(sa.func.min(RollupDelta.created_at)))
        if created is not None and (oldest is None or created < oldest):
            oldest = created
    return oldest


@dataclass
class PendingDelta:
    """A batch's delta, committed in its cell, not yet applied to the control rollups."""

    region: str
    delta_id: str
    tenant_id: uuid.UUID
    rows: list[tuple[Key, Vector]]


class DeltaApplier:
    """Applies deltas after the answer was sent, several batches per control transaction.

    Callers ``await apply(pending)``; while one application runs, deltas of later batches queue up
    and the next caller applies all of them at once (group commit): fewer, larger upserts and
    commits, and one writer of the rollup rows per process. Applications are also at least
    ``interval`` seconds apart (``BPO_ROLLUP_INTERVAL``): a caller that comes sooner after the last
    one waits out the rest of the interval, and the callers meanwhile leave their deltas to it. The
    batches of a busy tenant mostly share their days and keys, so their summed delta has far fewer
    rows than its parts (on the ingest benchmark, 8 batches per application: a quarter of the
    contact rollup rows and two thirds of the first-response rows to upsert). A caller that finds
    ``max_queued`` waiting applies at once. A failure leaves the deltas in their cells, where
    ``apply_pending`` (the ``rollup_deltas`` job, or ``bpoctl rollups apply-pending``) applies them
    exactly once later; the receipts make a second application a no-op.
    """

    def __init__(self, db: Databases, *, max_queued: int = 16, interval: float = 0.0) -> None:
        self.db = db
        self.max_queued = max_queued
        self.interval = interval
        self.applications = 0  # how many control transactions applied deltas (tests, figures)
        self._queue: list[PendingDelta] = []
        self._lock = asyncio.Lock()
        self._last = float("-inf")  # when the last application began (event loop time)
        self._waiting = False  # a caller waits out the interval for everyone queued

    @property
    def behind(self) -> bool:
        """More deltas wait than ``max_queued``: callers should apply theirs before answering
        (backpressure: the queue, and the memory it holds, stays bounded)."""
        return len(self._queue) >= self.max_queued

    async def apply(self, pending: Sequence[PendingDelta]) -> None:
        if not pending:
            return
        self._queue.extend(pending)
        loop = asyncio.get_running_loop()
        rest = self._last + self.interval - loop.time()
        if rest > 0 and not self.behind:
            if self._waiting:  # the waiting caller applies ours with its own
                return
            self._waiting = True
            try:
                await asyncio.sleep(rest)
            finally:
                self._waiting = False
        async with self._lock:
            taken, self._queue = self._queue, []
            if taken:  # else an earlier caller applied ours with its own
                self._last = loop.time()
                self.applications += 1
                await self._apply(taken)

    async def _apply(self, taken: list[PendingDelta]) -> None:
        by_region: dict[str, list[PendingDelta]] = {}
        for p in taken:
            by_region.setdefault(p.region, []).append(p)
        for region, items in sorted(by_region.items()):
            try:
                await apply_deltas(self.db, region, [(p.delta_id, p.tenant_id, p.rows) for p in items])
                await forget_deltas(self.db, region, [p.delta_id for p in items])
            except Exception:  # they wait in the cell; apply_pending applies them exactly once
                log.exception("%d rollup deltas of cell %s left pending", len(items), region)
