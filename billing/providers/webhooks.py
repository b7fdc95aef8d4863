"""Provider webhooks: verify, store once by (provider, event id), mark the invoice paid.

A duplicate delivery finds its event stored and changes nothing; a bad signature is refused
before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import service as invoices
from billing.invoices.models import Invoice, PaymentWebhookEvent
from billing.providers.port import PaymentProvider
from compliance.service import SystemActor
from control_plane.errors import NotFound


async def receive(
    session: AsyncSession, provider: PaymentProvider, body: bytes, headers: Mapping[str, str], *, now: datetime
) -> dict[str, object]:
    """Verify and apply one delivery; raises `WebhookRefused` for a bad signature."""
    event = provider.verify_webhook(body, headers)
    invoice = await _invoice_of(session, provider.name, event.invoice_id, event.provider_invoice_id)
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
    outcome = "ignored"
    if event.paid and invoice is not None:
        changed = await invoices.mark_paid(
            session, SystemActor(f"webhook:{provider.name}", "system"), invoice, now=now, source=event.event_id
        )
        outcome = "paid" if changed else f"already_{invoice.status}"
    elif event.paid:
        outcome = "unknown_invoice"
    await session.execute(
        sa.update(table)
        .where(table.c.provider == provider.name, table.c.event_id == event.event_id)
        .values(outcome=outcome)
    )
    return {"event_id": event.event_id, "duplicate": False, "outcome": outcome}


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
