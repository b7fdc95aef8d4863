"""Itemised usage and the running month's estimate (thin routes; see `usage_rows` and `estimate`).

``GET /api/v1/invoices/{invoice_id}/usage.csv`` streams the invoice's billed contacts (columns
`usage_rows.COLUMNS`) from the tenant's cells; ``GET /api/v1/tenants/{slug}/invoices/estimate`` rates
the running month so far and projects it to month end. Both answer whoever may read the invoices
(merchants their own tenant's; API keys with ``invoices:read``).
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices.controllers import READ, now_of
from billing.invoices.estimate import running_estimate
from billing.invoices.usage_rows import itemised_usage, usage_csv
from billing.metering.controllers import settle_before_read
from control_plane.auth import Principal
from control_plane.downloads import attachment


@get("/api/v1/invoices/{invoice_id:str}/usage.csv", opt=READ, tags=["invoices"])
async def invoice_usage_csv(session: AsyncSession, principal: Principal, state: State, invoice_id: str) -> Stream:
    """Every contact billed in the invoice's period, with the charge (invoice line) it fell into, as CSV."""
    itemised = await itemised_usage(session, principal, invoice_id)
    return Stream(
        usage_csv(state.db, itemised.scope, itemised.terms),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": attachment(itemised.filename)},
    )


@get(
    "/api/v1/tenants/{slug:str}/invoices/estimate",
    opt=READ,
    tags=["invoices"],
    before_request=settle_before_read,
)
async def invoice_estimate(session: AsyncSession, principal: Principal, state: State, slug: str) -> dict[str, Any]:
    """The running month so far (lines, SLA credits) and a month-end projection at the current rate: an estimate."""
    return await running_estimate(session, principal, slug, now=now_of(state))


ROUTES = [invoice_usage_csv, invoice_estimate]
