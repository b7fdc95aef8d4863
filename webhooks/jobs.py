"""The webhooks domain's periodic job: usage thresholds (idempotent: each fires once per period)."""

from __future__ import annotations

from control_plane.periodic import JobContext
from webhooks.thresholds import check_all


async def usage_thresholds(ctx: JobContext) -> int:
    return await check_all(ctx.db)
