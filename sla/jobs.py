"""The SLA domain's periodic job (idempotent: the same status again raises no alert)."""

from __future__ import annotations

from billing.metering.deltas import apply_pending
from control_plane.periodic import JobContext
from sla.service import evaluate_all


async def sla_status(ctx: JobContext) -> int:
    """Every active tenant's SLA status for the running month; one alert per change (sla.service).
    The tenants' pending rollup deltas are applied first, so no status reads a lagging model."""
    await apply_pending(ctx.db)
    async with ctx.db.control_transaction() as session:
        return await evaluate_all(session)
