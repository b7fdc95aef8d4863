"""Credit notes at the payment provider: the outbox row written when a note is issued, its handler,
and the follow-up that refunds a note issued while its invoice was open once the invoice is paid.

A credit note on an invoice that went to a provider is taken there exactly once: the row
(``payments.credit_note``) is written in the note's transaction with the key
``credit_note:<id>:<provider>:<action>``, which the adapter passes on as the provider's idempotency
key (Stripe) or finds again in the refund's metadata (Polar). Whether it is a ``refund`` or a
``reduce`` is decided when the note is issued (the invoice's status then), so every retry asks the
provider for the same thing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices.models import CreditNote, Invoice
from billing.providers.factory import build_provider
from billing.providers.port import CreditRequest, ProviderConfig
from control_plane.database import utcnow
from control_plane.outbox import RetryLater, enqueue

if TYPE_CHECKING:
    from control_plane.outbox import Handler
    from control_plane.periodic import JobContext

CREDIT_NOTE = "payments.credit_note"
PAID = "paid"
AWAITING = "awaiting_payment"


def action_for(invoice: Invoice) -> str:
    """A paid invoice is refunded; any other (open) one has its amount due reduced."""
    return "refund" if invoice.status == PAID else "reduce"


async def enqueue_credit_note(session: AsyncSession, note: CreditNote, invoice: Invoice, *, now: datetime) -> None:
    """In the note's transaction: flush it, mark it pending at the invoice's provider and write the
    outbox row. Nothing more when the invoice never went to a provider."""
    await session.flush()
    if invoice.provider in (None, "none"):
        return
    action = action_for(invoice)
    note.provider, note.provider_action, note.provider_status = invoice.provider, action, "pending"
    await enqueue(
        session,
        kind=CREDIT_NOTE,
        payload={"credit_note_id": str(note.id), "provider": invoice.provider, "action": action},
        idempotency_key=f"credit_note:{note.id}:{invoice.provider}:{action}",
        now=now,
    )


def credit_note_factory(ctx: JobContext) -> Handler:
    config = ProviderConfig.load(ctx.settings.extra)

    async def send_credit_note(payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        note_id = uuid.UUID(payload["credit_note_id"])
        async with ctx.db.control_session() as session:
            note = await session.get_one(CreditNote, note_id)
            invoice = await session.get_one(Invoice, note.invoice_id)
            if invoice.provider_invoice_id is None:
                raise RetryLater(f"invoice {invoice.number} is not at {payload['provider']} yet")
            request = CreditRequest(
                credit_note_id=str(note.id), number=note.number, invoice_id=str(invoice.id),
                provider_invoice_id=invoice.provider_invoice_id, currency=note.currency,
                amount_minor=note.amount_minor, reason=note.reason, action=payload["action"],
            )  # fmt: skip
        result = await build_provider(payload["provider"], config).credit_invoice(request, idempotency_key)
        async with ctx.db.control_transaction() as session:
            await session.execute(
                sa.update(CreditNote)
                .where(CreditNote.id == note_id)
                .values(
                    provider_action=payload["action"],
                    provider_status=result.status,
                    provider_credit_note_id=result.provider_credit_note_id,
                    provider_refund_id=result.provider_refund_id,
                    provider_synced_at=utcnow(),
                )
            )
        return {
            "provider": result.provider, "status": result.status,
            "provider_credit_note_id": result.provider_credit_note_id, "provider_refund_id": result.provider_refund_id,
        }  # fmt: skip

    return send_credit_note


async def follow_up_awaiting(session: AsyncSession, *, now: datetime) -> int:
    """Notes left ``awaiting_payment`` (Polar cannot lower an open checkout) whose invoice is now paid:
    each gets its refund row (a key of its own, so it is written once)."""
    rows = await session.execute(
        sa.select(CreditNote, Invoice)
        .join(Invoice, Invoice.id == CreditNote.invoice_id)
        .where(CreditNote.provider_status == AWAITING, Invoice.status == PAID)
    )
    count = 0
    for note, invoice in rows.all():
        await enqueue_credit_note(session, note, invoice, now=now)
        count += 1
    return count


async def credit_note_followups(ctx: JobContext) -> int:
    async with ctx.db.control_transaction() as session:
        return await follow_up_awaiting(session, now=utcnow())
