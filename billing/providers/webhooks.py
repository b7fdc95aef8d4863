"""Provider webhooks: verify, store once by (provider, event id), move the invoice's payment state.

A duplicate delivery finds its event stored and changes nothing; a bad signature is refused
before anything is stored. What each event does (billing/invoices/payments.py):

- Stripe ``invoice.paid`` / ``invoice.payment_succeeded``, Polar ``order.paid``: the invoice is paid;
- Stripe ``invoice.payment_failed``: the invoice is ``payment_failed`` (an e-mail goes to the
  billing addresses); Stripe retries the charge on its own schedule (Smart Retries) and says
  ``invoice.paid`` when one succeeds;
- Stripe ``charge.refunded``, Polar ``order.refunded``: the refund is recorded (audit), whoever
  started it; anything else is stored and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import payments
from billing.invoices import service as invoices
from billing.invoices.models import Invoice, PaymentWebhookEvent
from billing.providers.port import PaymentEvent, PaymentProvider
from compliance.service import SystemActor
from control_plane.errors import NotFound

FAILED_EVENTS = frozenset({"invoice.payment_failed"})
REFUND_EVENTS = frozenset({"charge.refunded", "order.refunded"})


def _object(body: bytes) -> dict[str, Any]:
    """The event's object from the (already verified) body: Stripe's ``data.object``, Polar's ``data``."""
    try:
        data = json.loads(body).get("data") or {}
    except (ValueError, AttributeError):
        return {}
    obj = data.get("object", data) if isinstance(data, dict) else {}
    return obj if isinstance(obj, dict) else {}


def _refund_target(event: PaymentEvent, obj: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    """``(invoice id, provider invoice id, amount refunded)`` of a refund event: a Stripe charge names
    its invoice in ``invoice``; a Polar order carries our invoice id in its metadata."""
    amount = obj.get("amount_refunded", obj.get("refunded_amount"))
    amount = amount if isinstance(amount, int) else None
    provider_invoice = obj.get("invoice") if isinstance(obj.get("invoice"), str) else None
    return event.invoice_id, provider_invoice or event.provider_invoice_id, amount


async def receive(
    session: AsyncSession, provider: PaymentProvider, body: bytes, headers: Mapping[str, str], *, now: datetime
) -> dict[str, object]:
    """Verify and apply one delivery; raises `WebhookRefused` for a bad signature."""
    event = provider.verify_webhook(body, headers)
    invoice_id, provider_invoice_id, refunded = event.invoice_id, event.provider_invoice_id, None
    if event.event_type in REFUND_EVENTS:
        invoice_id, provider_invoice_id, refunded = _refund_target(event, _object(body))
    invoice = await _invoice_of(session, provider.name, invoice_id, provider_invoice_id)
    table = PaymentWebhookEvent.__table__
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stored = await session.execute(
        insert(table)
        .values(
            provider=provider.name,
            event_id=event.event_id,
            event_type=event.event_type,
            payload=event.payload,
            received_at=now,
            invoice_id=invoice.id if invoice else None,
            outcome="received",
        )
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    if stored.scalar() is None:
        return {"event_id": event.event_id, "duplicate": True, "outcome": "ignored"}
    outcome = await _apply(session, provider.name, event, invoice, refunded, now=now)
    await session.execute(
        sa.update(table)
        .where(table.c.provider == provider.name, table.c.event_id == event.event_id)
        .values(outcome=outcome)
    )
    return {"event_id": event.event_id, "duplicate": False, "outcome": outcome}


async def _apply(
    session: AsyncSession,
    provider: str,
    event: PaymentEvent,
    invoice: Invoice | None,
    refunded: int | None,
    *,
    now: datetime,
) -> str:
    """The event's effect on the invoice, as the outcome stored with it."""
    relevant = event.paid or event.event_type in FAILED_EVENTS or event.event_type in REFUND_EVENTS
    if not relevant:
        return "ignored"
    if invoice is None:
        return "unknown_invoice"
    actor = SystemActor(f"webhook:{provider}", "system")
    if event.paid:
        changed = await payments.mark_paid(session, actor, invoice, now=now, source=event.event_id)
        return "paid" if changed else f"already_{invoice.payment_status or invoice.status}"
    if event.event_type in FAILED_EVENTS:
        changed = await payments.payment_failed(session, actor, invoice, now=now, source=event.event_id)
        return "payment_failed" if changed else f"already_{invoice.payment_status or invoice.status}"
    await payments.record_refund(session, actor, invoice, now=now, source=event.event_id, amount_minor=refunded)
    return "refund_recorded"


async def _invoice_of(
    session: AsyncSession, provider: str, invoice_id: str | None, provider_invoice_id: str | None
) -> Invoice | None:
    if invoice_id:
        try:
            return await invoices.get_invoice(session, None, invoice_id, lock=True)
        except NotFound:
            return None
    if provider_invoice_id:
        return await session.scalar(
            sa.select(Invoice).where(Invoice.provider == provider, Invoice.provider_invoice_id == provider_invoice_id)
        )
    return None


__all__ = ["receive"]
