"""Finance tables (control database): issuers, billing profiles per tenant, versioned tax rates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase


class Issuer(ControlBase):
    """A legal entity of the BPO that issues invoices; its number series are ``{prefix}-YYYY``."""

    __tablename__ = "issuers"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    legal_name: Mapped[str] = mapped_column(sa.String(200))
    address: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # {"lines", "postal_code", "city", "country"}
    tax_registrations: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON)  # [{"country", "tax_id"}]
    invoice_prefix: Mapped[str] = mapped_column(sa.String(8), unique=True)
    credit_note_prefix: Mapped[str] = mapped_column(sa.String(8), unique=True)
    payment_instructions: Mapped[str] = mapped_column(sa.String(1000))
    regions: Mapped[list[str]] = mapped_column(sa.JSON)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BillingProfile(ControlBase):
    """Who a tenant's invoices are addressed to (one per tenant)."""

    __tablename__ = "billing_profiles"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(sa.String(200))
    address: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    tax_id: Mapped[str | None] = mapped_column(sa.String(40))
    billing_emails: Mapped[list[str]] = mapped_column(sa.JSON)
    purchase_order: Mapped[str | None] = mapped_column(sa.String(100))
    locale: Mapped[str] = mapped_column(sa.String(10))
    issuer_code: Mapped[str | None] = mapped_column(sa.ForeignKey("issuers.code"))
    updated_at: Mapped[datetime]


class TaxRate(ControlBase):
    """One version of a country's rate: valid from ``valid_from`` through ``valid_to`` (inclusive, or open)."""

    __tablename__ = "tax_rates"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    rate: Mapped[Decimal] = mapped_column(sa.Numeric(8, 6))
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(sa.String(300))
