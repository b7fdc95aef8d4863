"""The payment lifecycle of a finalized invoice: ``open`` -> ``paid`` | ``payment_failed`` |
``overdue`` | ``uncollectible`` (see TRANSITIONS), driven by provider webhooks, the dunning job
(billing/invoices/dunning.py) and staff.

The invoice's ``status`` (draft | finalized | paid | void) is unchanged and stays the API's contract;
``payment_status`` says where a finalized invoice is in getting paid (None for drafts). Every
transition is an audit entry in the tenant's stream, and paid / payment_failed / overdue are
published as events (merchant webhooks) in the same transaction. The payment-failed e-mail is
queued here; the dunning reminders are the job's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance import service as finance
from billing.invoices import service
from billing.invoices.models import DunningStep, Invoice
from billing.money import from_minor_units, money_str
from compliance.service import Actor, append_audit_entry
from control_plane.errors import Conflict, FieldError, InvalidInput
from control_plane.events import publish
from control_plane.mail import queue_mail
from tenants.models import Tenant

OPEN, PAID, FAILED, OVERDUE, UNCOLLECTIBLE = "open", "paid", "payment_failed", "overdue", "uncollectible"
STATES = (OPEN, PAID, FAILED, OVERDUE, UNCOLLECTIBLE)
UNPAID = (OPEN, FAILED, OVERDUE)  # what the dunning job looks at
TRANSITIONS: dict[str, frozenset[str]] = {
    OPEN: frozenset({PAID, FAILED, OVERDUE, UNCOLLECTIBLE}),
    FAILED: frozenset({PAID, OVERDUE, UNCOLLECTIBLE}),
    OVERDUE: frozenset({PAID, UNCOLLECTIBLE}),
    UNCOLLECTIBLE: frozenset({PAID}),  # a late payment still counts
    PAID: frozenset(),
}
EVENTS = {PAID: "invoice.paid", FAILED: "invoice.payment_failed", OVERDUE: "invoice.overdue"}
SUSPEND_STEP = "suspend"


@dataclass(frozen=True)
class DunningActor:
    """The dunning job as an actor (it may act on any tenant, like staff)."""

    actor: str = "dunning"
    role: str = "system"
    tenant_bound: bool = False


DUNNING = DunningActor()


def reason_of(data: Any) -> str:
    reason = (data or {}).get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput([FieldError("reason", "say why, in a few words")])
    return reason.strip()[:500]


def summary(invoice: Invoice, tenant: Tenant) -> dict[str, Any]:
    """What an event and an e-mail say about an invoice (JSON, no customer data)."""
    cur = invoice.currency
    return {
        "invoice_id": str(invoice.id),
        "number": invoice.number,
        "tenant": tenant.slug,
        "tenant_name": tenant.name,
        "period": invoice.period,
        "currency": cur,
        "total": money_str(from_minor_units(invoice.total_minor, cur), cur),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "payment_status": invoice.payment_status,
        "url": f"/invoices/{invoice.id}",
    }


async def transition(
    session: AsyncSession,
    actor: Actor,
    invoice: Invoice,
    to: str,
    *,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> bool:
    """Move ``invoice`` to ``to`` if its state allows it (False otherwise, nothing written): the
    audit entry ``invoice.<to>`` and, for paid / payment_failed / overdue, the event."""
    before = invoice.payment_status
    if before is None or to not in TRANSITIONS.get(before, frozenset()):
        return False
    tenant = await service.tenant_of(session, invoice)
    invoice.payment_status, invoice.payment_status_at = to, now
    if to == PAID:
        invoice.status, invoice.paid_at = "paid", now
    await session.flush()
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action=f"invoice.{to}", target=f"invoice:{invoice.id}",
        data={"number": invoice.number, "from": before, "to": to, **(data or {})}, now=now,
    )  # fmt: skip
    if to in EVENTS:
        await publish(session, type=EVENTS[to], tenant_id=invoice.tenant_id, key=f"{EVENTS[to]}:{invoice.id}",
                      data=summary(invoice, tenant), now=now)  # fmt: skip
    return True


async def mark_paid(session: AsyncSession, actor: Actor, invoice: Invoice, *, now: datetime, source: str) -> bool:
    """A provider said the invoice was paid."""
    return await transition(session, actor, invoice, PAID, now=now, data={"source": source})


async def payment_failed(session: AsyncSession, actor: Actor, invoice: Invoice, *, now: datetime, source: str) -> bool:
    """A provider said a payment attempt failed: ``payment_failed`` (an overdue invoice stays overdue)
    and one e-mail to the billing addresses per failure reported."""
    if not await transition(session, actor, invoice, FAILED, now=now, data={"source": source}):
        return False
    await mail(session, invoice, "payment_failed", key=f"invoice.payment_failed:{invoice.id}:{source}", now=now)
    return True


async def mail(
    session: AsyncSession, invoice: Invoice, template: str, *, key: str, now: datetime, extra: dict | None = None
) -> int:
    """Queue ``template`` to the tenant's billing e-mails in the profile's locale; the count of rows."""
    tenant = await service.tenant_of(session, invoice)
    profile = await finance.profile_of(session, tenant.id)
    if profile is None or not profile.billing_emails:
        return 0
    context = summary(invoice, tenant) | (extra or {})
    rows = await queue_mail(
        session, to=list(profile.billing_emails), template=template, context=context, key=key,
        locale=profile.locale or "en", tenant_id=str(tenant.id), now=now,
    )  # fmt: skip
    return len(rows)


async def record_refund(
    session: AsyncSession, actor: Actor, invoice: Invoice, *, now: datetime, source: str, amount_minor: int | None
) -> None:
    """A refund the provider reports (``charge.refunded``, Polar ``order.refunded``): recorded in the
    audit log; the refunds we initiate are credit notes (billing/providers)."""
    tenant = await service.tenant_of(session, invoice)
    cur = invoice.currency
    amount = money_str(from_minor_units(amount_minor, cur), cur) if amount_minor is not None else None
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="invoice.refund_recorded", target=f"invoice:{invoice.id}",
        data={"number": invoice.number, "source": source, "amount": amount, "currency": cur}, now=now,
    )  # fmt: skip


async def mark_uncollectible(
    session: AsyncSession, actor: Actor, invoice_id: uuid.UUID | str, data: Any, *, now: datetime
) -> Invoice:
    """Staff give up on collecting an unpaid invoice (with a reason); 409 from any other state."""
    reason = reason_of(data)
    invoice = await service.get_invoice(session, actor, invoice_id, lock=True)
    if not await transition(session, actor, invoice, UNCOLLECTIBLE, now=now, data={"reason": reason}):
        raise Conflict(
            f"invoice {invoice.number or invoice.id} is {invoice.payment_status or invoice.status}; only an open, "
            "failed or overdue invoice can be marked uncollectible",
            code="not_unpaid",
        )
    return invoice


async def take_step(
    session: AsyncSession, invoice_id: uuid.UUID, step: str, *, now: datetime, detail: dict[str, Any] | None = None
) -> bool:
    """Record a dunning step once: True when this call took it, False when it was taken before."""
    table = DunningStep.__table__
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    taken = await session.execute(
        insert(table)
        .values(invoice_id=invoice_id, step=step, done_at=now, detail=detail)
        .on_conflict_do_nothing()
        .returning(table.c.step)
    )
    return taken.scalar() is not None


async def steps_of(session: AsyncSession, invoice_id: uuid.UUID) -> list[DunningStep]:
    stmt = sa.select(DunningStep).where(DunningStep.invoice_id == invoice_id).order_by(DunningStep.done_at)
    return list((await session.scalars(stmt)).all())


async def override_suspension(
    session: AsyncSession, actor: Any, invoice_id: uuid.UUID | str, data: Any, *, now: datetime
) -> tuple[Invoice, bool]:
    """An account manager overrides the suspension for this invoice (with a reason): the job will not
    suspend the tenant for it, and a tenant it suspended is active again. ``(invoice, reactivated)``."""
    from tenants.service import transition_tenant

    reason = reason_of(data)
    invoice = await service.get_invoice(session, actor, invoice_id, lock=True)
    tenant = await service.tenant_of(session, invoice)
    detail = {"overridden_by": actor.actor, "reason": reason, "overridden_at": now.isoformat()}
    step = await session.get(DunningStep, (invoice.id, SUSPEND_STEP))
    if step is not None and (step.detail or {}).get("overridden_by"):
        raise Conflict("the suspension for this invoice is already overridden", code="already_overridden")
    suspended_by_us = step is not None and bool((step.detail or {}).get("suspended"))
    if step is None:
        await take_step(session, invoice.id, SUSPEND_STEP, now=now, detail=detail)
    else:
        step.detail = {**(step.detail or {}), **detail}
    reactivated = suspended_by_us and tenant.status == "suspended"
    if reactivated:
        await transition_tenant(
            session, actor, tenant.slug, {"to": "active", "reason": f"suspension overridden: {reason}"}
        )
    await session.flush()
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="invoice.suspension_overridden",
        target=f"invoice:{invoice.id}", data={"number": invoice.number, "reason": reason, "reactivated": reactivated},
        now=now,
    )  # fmt: skip
    return invoice, reactivated
