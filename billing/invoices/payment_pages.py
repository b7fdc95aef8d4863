"""Payment lifecycle pages (thin): the confirmation steps for marking an invoice uncollectible and
for overriding the automatic suspension, each with its reason (post-redirect-get; bad input is shown
beside the field with the typed reason kept). The buttons are on the invoice page."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import payments, service
from billing.invoices.controllers import now_of
from billing.invoices.pages import ACT, FORM, _errors, _invoice_context, _page
from control_plane.auth import Principal
from control_plane.errors import Conflict, InvalidInput
from control_plane.navigation import notify

ACTIONS: dict[str, dict[str, str]] = {
    "uncollectible": {
        "title": "Mark invoice {number} uncollectible?",
        "detail": "It will no longer be dunned (no reminders, no suspension). A late payment still marks it paid.",
        "button": "Confirm: mark uncollectible",
        "placeholder": "Customer insolvent, claim filed",
    },
    "suspension-override": {
        "title": "Override the suspension for invoice {number}?",
        "detail": "The tenant is not suspended because of this invoice; if it was, it becomes active again.",
        "button": "Confirm: override suspension",
        "placeholder": "Payment promised by 15 December",
    },
}


async def _confirm(
    session: AsyncSession, principal: Principal, invoice_id: str, action: str, *, errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None, status_code: int = 200,
) -> Template:  # fmt: skip
    invoice = await service.get_invoice(session, principal, invoice_id)
    context = await _invoice_context(session, invoice)
    text = {k: v.format(number=invoice.number or invoice.period) for k, v in ACTIONS[action].items()}
    return _page(
        "payment_confirm.html", principal, status_code=status_code, action=action, text=text,
        errors=errors or {}, values=values or {}, **context,
    )  # fmt: skip


async def _act(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str, action: str,
    data: dict[str, str],
) -> Template | Redirect:  # fmt: skip
    values = {"reason": data.get("reason", "")}
    try:
        if action == "uncollectible":
            invoice = await payments.mark_uncollectible(session, principal, invoice_id, values, now=now_of(state))
            message = f"Invoice {invoice.number} marked uncollectible"
        else:
            invoice, reactivated = await payments.override_suspension(
                session, principal, invoice_id, values, now=now_of(state)
            )
            message = "Suspension overridden" + (": the tenant is active again" if reactivated else "")
    except (InvalidInput, Conflict) as exc:
        await session.rollback()
        return await _confirm(session, principal, invoice_id, action, errors=_errors(exc, "reason"), values=values,
                              status_code=exc.status_code)  # fmt: skip
    await session.commit()
    notify(request, message)
    return Redirect(f"/invoices/{invoice.id}")


@get("/invoices/{invoice_id:str}/uncollectible", opt=ACT, include_in_schema=False)
async def uncollectible_confirm(session: AsyncSession, principal: Principal, invoice_id: str) -> Template:
    return await _confirm(session, principal, invoice_id, "uncollectible")


@post("/invoices/{invoice_id:str}/uncollectible", opt=ACT, include_in_schema=False)
async def uncollectible_form(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:  # fmt: skip
    return await _act(request, session, principal, state, invoice_id, "uncollectible", dict(data))


@get("/invoices/{invoice_id:str}/suspension-override", opt=ACT, include_in_schema=False)
async def override_confirm(session: AsyncSession, principal: Principal, invoice_id: str) -> Template:
    return await _confirm(session, principal, invoice_id, "suspension-override")


@post("/invoices/{invoice_id:str}/suspension-override", opt=ACT, include_in_schema=False)
async def override_form(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:  # fmt: skip
    return await _act(request, session, principal, state, invoice_id, "suspension-override", dict(data))


PAGE_ROUTES = [uncollectible_confirm, uncollectible_form, override_confirm, override_form]
