"""Invoice tables (control database): invoices, their lines, number series, credit notes, provider webhooks.

Money is integer minor units beside the invoice's currency; unit prices are `Numeric`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control_plane.database import ControlBase, UUIDPrimaryKey


class Invoice(UUIDPrimaryKey, ControlBase):
    __tablename__ = "invoices"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "period"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    period: Mapped[str] = mapped_column(sa.String(7))  # YYYY-MM in the tenant's zone
    period_start: Mapped[datetime]  # UTC bounds of the month in the tenant's zone
    period_end: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(sa.String(64))
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(12))  # draft | finalized | paid | void
    number: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    contract_version: Mapped[int]
    usage_subtotal_minor: Mapped[int] = mapped_column(sa.BigInteger)
    credit_total_minor: Mapped[int] = mapped_column(sa.BigInteger)
    total_minor: Mapped[int] = mapped_column(sa.BigInteger)  # net + tax
    net_total_minor: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")  # usage + credits (all lines)
    tax_total_minor: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    tax_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)  # [{"code", "rate", "base", ...}]
    issue_date: Mapped[date | None]  # the finalization date in the tenant's zone
    due_date: Mapped[date | None]
    payment_terms_days: Mapped[int | None]
    issuer_code: Mapped[str | None] = mapped_column(sa.String(40))
    issuer: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # the issuer as it was when the invoice was issued
    bill_to: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # the billing profile as it was then
    counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the period counts the lines were rated from
    previous_draft: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # lines and totals of the draft before
    drafts: Mapped[int] = mapped_column(default=1)
    drafted_at: Mapped[datetime]
    finalized_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(sa.String(500))
    provider: Mapped[str | None] = mapped_column(sa.String(20))
    provider_invoice_id: Mapped[str | None] = mapped_column(sa.String(200))
    # The payment state of a finalized invoice (billing/invoices/payments.py); None for drafts.
    payment_status: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    payment_status_at: Mapped[datetime | None]

    lines: Mapped[list[InvoiceLineRow]] = relationship(
        order_by="InvoiceLineRow.position", cascade="all, delete-orphan", lazy="selectin"
    )


class InvoiceLineRow(ControlBase):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(sa.String(300))
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    unit_price: Mapped[Decimal] = mapped_column(sa.Numeric(24, 8))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    sla: Mapped[str | None] = mapped_column(sa.String(60))
    # adjustment lines: which finalized invoice and which kind of line they correct
    adjusts_invoice_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    adjusts_kind: Mapped[str | None] = mapped_column(sa.String(20))
    adjusts_quantity: Mapped[int | None] = mapped_column(sa.BigInteger)


class NumberSeries(ControlBase):
    """The last number given in a series ("INV-2026"); its row is the lock that keeps numbers gapless."""

    __tablename__ = "invoice_number_series"

    series: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    last_number: Mapped[int] = mapped_column(sa.BigInteger)


class CreditNote(UUIDPrimaryKey, ControlBase):
    __tablename__ = "credit_notes"

    invoice_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)  # positive: what is given back (tax included)
    tax_minor: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")  # the tax part, in proportion
    tax_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    issuer_code: Mapped[str | None] = mapped_column(sa.String(40))
    reason: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200))
    # At the payment provider (see billing/providers/credits.py): None when the invoice was never sent.
    provider: Mapped[str | None] = mapped_column(sa.String(20))
    provider_action: Mapped[str | None] = mapped_column(sa.String(20))  # refund | reduce (decided at issue)
    provider_status: Mapped[str | None] = mapped_column(sa.String(30))  # pending | refunded | reduced | ...
    provider_credit_note_id: Mapped[str | None] = mapped_column(sa.String(200))  # Stripe cn_…
    provider_refund_id: Mapped[str | None] = mapped_column(sa.String(200))  # Stripe re_… / Polar refund id
    provider_synced_at: Mapped[datetime | None]


class PaymentWebhookEvent(ControlBase):
    """A verified provider webhook, stored once by (provider, event id): a duplicate delivery is a no-op."""

    __tablename__ = "payment_webhook_events"

    provider: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    received_at: Mapped[datetime]
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    outcome: Mapped[str] = mapped_column(sa.String(40))


class DunningStep(ControlBase):
    """One step of an invoice's dunning, taken once: ``reminder:-3``, ``overdue``, ``suspend`` ...
    The row is the receipt that makes a re-run of the dunning job a no-op; ``detail`` says what was
    done (or, for a suspension an account manager overrode, who and why)."""

    __tablename__ = "invoice_dunning_steps"

    invoice_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    done_at: Mapped[datetime]
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
