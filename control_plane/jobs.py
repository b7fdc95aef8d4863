"""The periodic jobs of every domain, in one list (each is idempotent and safe to re-run)."""

from __future__ import annotations

from control_plane.scheduler import JobContext, periodic


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
