"""Payment lifecycle API (thin): staff mark an unpaid invoice uncollectible, and override the
automatic suspension for an invoice (billing/invoices/payments.py). Both take ``{"reason": …}``."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import payments
from billing.invoices.controllers import WRITE, _body, _json, now_of
from control_plane.auth import Principal


@post("/api/v1/invoices/{invoice_id:str}/uncollectible", opt=WRITE, status_code=200, tags=["invoices"])
async def mark_uncollectible(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str
) -> dict[str, Any]:
    """An open, failed or overdue invoice will not be collected (409 otherwise); audited with the reason."""
    invoice = await payments.mark_uncollectible(session, principal, invoice_id, await _body(request), now=now_of(state))
    return await _json(session, invoice)


@post("/api/v1/invoices/{invoice_id:str}/suspension-override", opt=WRITE, status_code=200, tags=["invoices"])
async def override_suspension(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str
) -> dict[str, Any]:
    """The dunning job will not suspend the tenant for this invoice; a tenant it suspended is active again."""
    invoice, reactivated = await payments.override_suspension(
        session, principal, invoice_id, await _body(request), now=now_of(state)
    )
    return await _json(session, invoice) | {"tenant_reactivated": reactivated}


ROUTES = [mark_uncollectible, override_suspension]
