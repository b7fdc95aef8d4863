"""The events billing publishes for merchant webhooks (``control_plane.events``), with their data:
amounts as decimal strings, no customer reference, no bank detail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices.models import CreditNote, Invoice
from billing.money import from_minor_units, money_str
from control_plane.events import publish
from tenants.models import Tenant


def _amount(minor: int, currency: str) -> str:
    return money_str(from_minor_units(minor, currency), currency)


def invoice_data(invoice: Invoice, tenant: Tenant) -> dict[str, Any]:
    cur = invoice.currency
    return {
        "tenant": tenant.slug, "invoice_id": str(invoice.id), "number": invoice.number, "period": invoice.period,
        "status": invoice.status, "currency": cur, "total": _amount(invoice.total_minor, cur),
        "tax_total": _amount(invoice.tax_total_minor or 0, cur),
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
    }  # fmt: skip


async def invoice_finalized(session: AsyncSession, invoice: Invoice, tenant: Tenant, now: datetime) -> None:
    await publish(session, type="invoice.finalized", tenant_id=tenant.id, key=f"invoice.finalized:{invoice.id}",
                  data=invoice_data(invoice, tenant), now=now)  # fmt: skip


async def credit_note_issued(
    session: AsyncSession, note: CreditNote, invoice: Invoice, tenant: Tenant, now: datetime
) -> None:
    data = {
        "tenant": tenant.slug, "credit_note_id": str(note.id), "number": note.number, "invoice_id": str(invoice.id),
        "invoice_number": invoice.number, "currency": note.currency, "reason": note.reason,
        "amount": _amount(note.amount_minor, note.currency), "tax": _amount(note.tax_minor or 0, note.currency),
    }  # fmt: skip
    await publish(session, type="credit_note.issued", tenant_id=tenant.id, key=f"credit_note.issued:{note.id}",
                  data=data, now=now)  # fmt: skip
