"""The periodic jobs of every domain, in one list (each is idempotent and safe to re-run)."""

from __future__ import annotations

from control_plane.periodic import JobContext, periodic


@periodic("audit_checkpoints", seconds=900)
async def audit_checkpoints(ctx: JobContext) -> int:
    from compliance.checkpoints import checkpoint_all_streams

    async with ctx.db.control_transaction() as session:
        return await checkpoint_all_streams(session, ctx.keyring)


@periodic("outbox", seconds=10)
async def dispatch_outbox(ctx: JobContext) -> dict[str, int]:
    from billing.outbox.service import dispatch_due
    from control_plane.outbox_handlers import handlers

    return await dispatch_due(ctx.db, handlers(ctx))


@periodic("retention_purge", seconds=3600)
async def retention_purge(ctx: JobContext) -> int:
    """Contact rows past their tenant's retention, per cell (audited with counts)."""
    from compliance.retention import purge_expired_contacts

    return (await purge_expired_contacts(ctx.db)).total


@periodic("sla_status", seconds=600)
async def sla_status(ctx: JobContext) -> int:
    """Every active tenant's SLA status for the running month; one alert per change (sla.service)."""
    from sla.service import evaluate_all

    await _settle_rollups(ctx)
    async with ctx.db.control_transaction() as session:
        return await evaluate_all(session)


@periodic("draft_invoices", seconds=3600)
async def draft_invoices(ctx: JobContext) -> dict[str, int]:
    """Draft (or refresh) last month's invoice of every active tenant once its period has settled plus grace."""
    from billing.invoices.service import draft_due_invoices
    from compliance.service import SystemActor
    from control_plane.database import utcnow

    await _settle_rollups(ctx)
    return await draft_due_invoices(ctx.db.control_transaction, SystemActor("scheduler", "system"), now=utcnow())


async def _settle_rollups(ctx: JobContext) -> None:
    """Jobs that read rollups apply every pending delta first, whatever its age: right after a crash
    or a change of leader the deltas of accepted batches may still wait in their cells."""
    from billing.metering.deltas import apply_pending

    await apply_pending(ctx.db)


@periodic("rollup_deltas", seconds=10)
async def rollup_deltas(ctx: JobContext) -> int:
    """Rollup deltas still in their cells 5 s after their batch: the application that follows the
    answer failed (a database fault) or the process that wrote them stopped. Applying one that its
    writer is still applying is harmless (the receipt makes the second a no-op)."""
    from billing.metering.deltas import apply_pending

    return await apply_pending(ctx.db, older_than=5)
