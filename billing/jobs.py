"""The billing domain's periodic jobs (each idempotent and safe to re-run)."""

from __future__ import annotations

import structlog

from billing.invoices.dunning import run_dunning
from billing.invoices.run import draft_due_invoices
from billing.metering.deltas import apply_pending
from billing.metering.partitions import create_partitions_ahead
from compliance.service import SystemActor
from control_plane import database
from control_plane.database import Databases
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers

log = structlog.get_logger("bpo.start")


async def settle_all_rollups(ctx: JobContext) -> None:
    """Jobs that read rollups apply every pending delta first, whatever its age: right after a crash
    or a change of leader the deltas of accepted batches may still wait in their cells."""
    await apply_pending(ctx.db)


async def settle_at_start(db: Databases) -> None:
    """Apply every rollup delta left in the cells by a process that stopped between a batch's commit
    and its rollup application; reads settle their own tenant anyway, and a failure here is left to
    the ``rollup_deltas`` job."""
    try:
        applied = await apply_pending(db)
        if applied:
            log.info("rollups.settled", deltas=applied)
    except Exception:
        log.exception("rollups.settle_failed")


async def dispatch_outbox(ctx: JobContext) -> dict[str, int]:
    """Send what the outbox holds, with the handler each domain declares for its kinds."""
    return await dispatch_due(ctx.db, outbox_handlers(ctx))


async def draft_invoices(ctx: JobContext) -> dict[str, int]:
    """Draft (or refresh) last month's invoice of every active tenant once its period has settled plus grace."""
    await settle_all_rollups(ctx)
    return await draft_due_invoices(
        ctx.db.control_transaction, SystemActor("scheduler", "system"), now=database.utcnow()
    )  # read at call time: the clock tests freeze


async def rollup_deltas(ctx: JobContext) -> int:
    """Rollup deltas still in their cells 5 s after their batch: the application that follows the
    answer failed (a database fault) or the process that wrote them stopped. Applying one that its
    writer is still applying is harmless (the receipt makes the second a no-op)."""
    return await apply_pending(ctx.db, older_than=5)


async def dunning(ctx: JobContext) -> dict[str, int]:
    """Overdue invoices, reminders and suspensions as each contract's dunning schedule says (idempotent)."""
    return await run_dunning(ctx.db, now=database.utcnow())  # read at call time: the clock tests freeze


async def contact_partitions(ctx: JobContext) -> int:
    """PostgreSQL cells: the contacts partitions of this month and the next ones, and of the months
    held by the DEFAULT partition (`billing.metering.partitions`); idempotent."""
    return sum(len(names) for names in (await create_partitions_ahead(ctx.db)).values())
