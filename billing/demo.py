"""The billing domain's part of ``make demo``: a realistic month of contacts per demo tenant through
the ingest service, then last month's invoices (one finalized and paid, the others drafts)."""

from __future__ import annotations

from typing import Any

from billing.invoices.demo import seed_demo_invoices
from billing.metering.demo import seed_demo_contacts
from tenants.demo import SEEDER


async def seed_demo_billing(ctx: Any) -> None:
    for t in ctx.tenants:
        await seed_demo_contacts(
            ctx.db, ctx.keyring, slug=t["slug"], timezone=t["timezone"], markets=t["markets"], region=t["home_region"]
        )
    ctx.report.invoices = await seed_demo_invoices(ctx.db, SEEDER, [t["slug"] for t in ctx.tenants])
