"""The billing domain's part of ``make demo``: a realistic month of contacts per demo tenant through
the ingest service, then last month's invoices (one finalized and paid, the others drafts)."""

from __future__ import annotations

from typing import Any

from billing.finance.demo import seed_demo_finance
from billing.invoices.demo import seed_demo_invoices
from billing.metering.demo import seed_demo_contacts
from control_plane.database import utcnow
from tenants.demo import SEEDER


async def seed_demo_billing(ctx: Any) -> None:
    for t in ctx.tenants:
        await seed_demo_contacts(
            ctx.db, ctx.keyring, slug=t["slug"], timezone=t["timezone"], markets=t["markets"], region=t["home_region"]
        )
    async with ctx.db.control_transaction() as session:
        await seed_demo_finance(session, SEEDER, [t["slug"] for t in ctx.tenants], now=utcnow())
    ctx.report.invoices = await seed_demo_invoices(ctx.db, SEEDER, [t["slug"] for t in ctx.tenants])
