"""The invoice's JSON shape (DESIGN.md, "Invoice shape") and the conversions between stored rows and lines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from billing.invoices.models import CreditNote, Invoice, InvoiceLineRow
from billing.money import from_minor_units, minor_digits, money_str, to_decimal
from billing.rating import InvoiceLine, LineKind, RatedInvoice


def price_text(price: Decimal, currency: str) -> str:
    """A unit price as it travels: no trailing zeros beyond the currency's places ("1.40", "0.125", "120")."""
    value = to_decimal(price).normalize()
    places = max(minor_digits(currency), -value.as_tuple().exponent if value.as_tuple().exponent < 0 else 0)
    return format(value.quantize(Decimal(1).scaleb(-places)) if places else value.quantize(Decimal(1)), "f")


def line_of(row: InvoiceLineRow, currency: str) -> InvoiceLine:
    return InvoiceLine(
        kind=LineKind(row.kind),
        description=row.description,
        quantity=int(row.quantity),
        unit_price=price_text(row.unit_price, currency),
        amount=from_minor_units(int(row.amount_minor), currency),
        sla=row.sla,
    )


def rated_of(invoice: Invoice) -> RatedInvoice:
    return RatedInvoice(invoice.currency, tuple(line_of(r, invoice.currency) for r in invoice.lines))


def lines_json(invoice: Invoice) -> dict[str, Any]:
    """Lines and totals only: what a draft's differences are computed over."""
    return rated_of(invoice).as_json()


def invoice_json(invoice: Invoice, tenant_slug: str, credit_notes: list[CreditNote] | None = None) -> dict[str, Any]:
    """The invoice as the API gives it; with its credit notes, also ``credited`` (their sum) and
    ``balance`` (the total less that sum: what the merchant owes after the corrections)."""
    cur = invoice.currency
    body = {
        "id": str(invoice.id),
        "number": invoice.number,
        "tenant": tenant_slug,
        "period": invoice.period,
        "period_start": invoice.period_start.isoformat(),
        "period_end": invoice.period_end.isoformat(),
        "timezone": invoice.timezone,
        "status": invoice.status,
        "payment_status": invoice.payment_status,  # None for drafts (billing/invoices/payments.py)
        "payment_status_at": invoice.payment_status_at.isoformat() if invoice.payment_status_at else None,
        "contract_version": invoice.contract_version,
        **lines_json(invoice),
        # DESIGN "Issuers, billing profiles and tax": the net is every line; tax is set at finalization.
        "net_total": money_str(from_minor_units(invoice.net_total_minor, cur), cur),
        "tax_lines": invoice.tax_lines or [],
        "tax_total": money_str(from_minor_units(invoice.tax_total_minor, cur), cur),
        "total": money_str(from_minor_units(invoice.total_minor, cur), cur),
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "payment_terms_days": invoice.payment_terms_days,
        "issuer": invoice.issuer,
        "bill_to": invoice.bill_to,
        "drafted_at": invoice.drafted_at.isoformat(),
        "finalized_at": invoice.finalized_at.isoformat() if invoice.finalized_at else None,
        "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
        "void_reason": invoice.void_reason,
        "provider": invoice.provider,
        "provider_invoice_id": invoice.provider_invoice_id,
    }
    if credit_notes is not None:
        body["credit_notes"] = [credit_note_json(n) for n in credit_notes]
        credited = sum(n.amount_minor for n in credit_notes)
        body["credited"] = money_str(from_minor_units(credited, cur), cur)
        body["balance"] = money_str(from_minor_units(invoice.total_minor - credited, cur), cur)
    return body


def credit_note_json(note: CreditNote) -> dict[str, Any]:
    cur = note.currency
    return {
        "id": str(note.id),
        "number": note.number,
        "invoice_id": str(note.invoice_id),
        "currency": cur,
        "amount": money_str(from_minor_units(note.amount_minor, cur), cur),
        "net": money_str(from_minor_units(note.amount_minor - note.tax_minor, cur), cur),
        "tax_lines": note.tax_lines or [],
        "tax_total": money_str(from_minor_units(note.tax_minor, cur), cur),
        "issuer": note.issuer_code,
        "reason": note.reason,
        "created_at": note.created_at.isoformat(),
    }


def draft_differences(invoice: Invoice) -> list[dict[str, str]]:
    """What changed since the previous draft: one entry per line description or total that differs."""
    if not invoice.previous_draft:
        return []
    before, after = invoice.previous_draft, lines_json(invoice)
    out: list[dict[str, str]] = []

    def by_desc(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {f"{line['kind']}: {line['description']}": line for line in doc["lines"]}

    old, new = by_desc(before), by_desc(after)
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        was = f"{a['quantity']} x {a['unit_price']} = {a['amount']}" if a else "—"
        now = f"{b['quantity']} x {b['unit_price']} = {b['amount']}" if b else "—"
        if was != now:
            out.append({"item": key, "was": was, "now": now})
    for total in ("usage_subtotal", "credit_total", "total"):
        if before[total] != after[total]:
            out.append({"item": total.replace("_", " "), "was": before[total], "now": after[total]})
    return out


class VoidIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/invoices/{id}/void`` (parsed by ``service.void_invoice``)."""

    reason: str


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/invoices/{id}/uncollectible`` and ``…/suspension-override``."""

    reason: str


class CreditNoteIn(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/v1/invoices/{id}/credit-notes``: a decimal string in the invoice's currency."""

    amount: str
    reason: str
