"""Invoicing's metrics for ``/metrics``: drafts awaiting finalization (read at scrape time)."""

from __future__ import annotations

import sqlalchemy as sa

from billing.invoices.models import Invoice
from control_plane.database import Databases
from control_plane.metrics import Reading


async def drafts_awaiting(db: Databases) -> list[Reading]:
    async with db.control_session() as session:
        drafts = await session.scalar(sa.select(sa.func.count()).where(Invoice.status == "draft")) or 0
    return [Reading("bpo_invoice_drafts", "Invoice drafts awaiting finalization", drafts)]
