"""The invoice e-mail: queued when an invoice is finalized, to every address of the tenant's billing
profile, in the profile's locale, with the invoice PDF attached by reference (``invoice_pdf``,
rendered when the message is sent, the same document as ``GET /api/v1/invoices/{id}.pdf``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from billing.finance.models import BillingProfile
from billing.invoices.i18n import DEFAULT, document_locale
from billing.invoices.models import CreditNote, Invoice
from billing.invoices.pdf import render_invoice_pdf
from billing.invoices.schemas import invoice_json
from billing.money import from_minor_units, money_str
from control_plane.database import Databases
from control_plane.errors import InvalidInput
from control_plane.mail import queue_mail
from tenants.models import Tenant

INVOICE_PDF = "invoice_pdf"


def profile_language(profile: BillingProfile | None) -> str:
    """The profile's locale when the invoice documents speak it, else English (as the PDF download)."""
    try:
        return document_locale(profile.locale if profile is not None else None, "locale")
    except InvalidInput:
        return DEFAULT


async def queue_invoice_mail(
    session: Any, invoice: Invoice, tenant: Tenant, profile: BillingProfile | None, *, now: datetime
) -> None:
    """One message per billing address, in the finalizing transaction."""
    emails = list(profile.billing_emails or []) if profile is not None else []
    if not emails:
        return
    total = money_str(from_minor_units(invoice.total_minor, invoice.currency), invoice.currency)
    await queue_mail(
        session,
        to=emails,
        template="invoice_finalized",
        context={
            "tenant_name": tenant.name,
            "legal_name": profile.legal_name if profile is not None else tenant.name,
            "number": invoice.number,
            "period": invoice.period,
            "total": total,
            "currency": invoice.currency,
            "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
            "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        },
        key=f"invoice.finalized:{invoice.id}",
        locale=profile_language(profile),
        attachments=[{"kind": INVOICE_PDF, "ref": str(invoice.id)}],
        tenant_id=str(tenant.id),
        now=now,
    )


async def invoice_pdf(db: Databases, ref: str) -> tuple[str, str, bytes]:
    """The attachment: the invoice PDF in the billing profile's language."""
    async with db.control_session() as session:
        invoice = await session.get_one(Invoice, uuid.UUID(ref))
        tenant = await session.get_one(Tenant, invoice.tenant_id)
        profile = await session.get(BillingProfile, invoice.tenant_id)
        notes = (
            await session.scalars(
                sa.select(CreditNote).where(CreditNote.invoice_id == invoice.id).order_by(CreditNote.created_at)
            )
        ).all()
        body = invoice_json(invoice, tenant.slug, list(notes))
    pdf = render_invoice_pdf(body, {"name": tenant.name, "slug": tenant.slug}, locale=profile_language(profile))
    return f"{invoice.number or 'draft-' + invoice.period}.pdf", "application/pdf", pdf
