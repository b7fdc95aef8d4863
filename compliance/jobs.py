"""The compliance domain's periodic jobs (each idempotent and safe to re-run)."""

from __future__ import annotations

from compliance.checkpoints import checkpoint_all_streams
from compliance.dsr.due_soon import publish_due_soon
from compliance.dsr.reminders import queue_deadline_reminders
from compliance.retention import purge_expired_contacts
from control_plane.periodic import JobContext


async def audit_checkpoints(ctx: JobContext) -> int:
    """Sign a checkpoint over the head of every audit stream that moved."""
    async with ctx.db.control_transaction() as session:
        return await checkpoint_all_streams(session, ctx.keyring)


async def retention_purge(ctx: JobContext) -> int:
    """Contact rows past their tenant's retention, per cell (audited with counts)."""
    return (await purge_expired_contacts(ctx.db)).total


async def subject_request_reminders(ctx: JobContext) -> int:
    """E-mail the compliance officers about requests due within a week (once per request and deadline)."""
    async with ctx.db.control_transaction() as session:
        return await queue_deadline_reminders(session, public_url=ctx.settings.public_url)


async def dsr_due_soon(ctx: JobContext) -> int:
    """Announce open data-subject requests due within 7 days (``subject_request.due_soon``, once each)."""
    async with ctx.db.control_transaction() as session:
        return await publish_due_soon(session)
