"""Cell tables: contact records (pseudonymous personal data, one cell per region)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import CellBase


class Contact(CellBase):
    """One customer contact, latest version only (``updated_at`` orders versions)."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.Index("ix_contacts_tenant_resolved", "tenant_id", "resolved_at"),
        sa.Index("ix_contacts_tenant_customer", "tenant_id", "customer_hash"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    external_id: Mapped[str] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(20))
    language: Mapped[str] = mapped_column(sa.String(35))
    market: Mapped[str] = mapped_column(sa.String(2))
    intent: Mapped[str] = mapped_column(sa.String(40))
    opened_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    handoff_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str] = mapped_column(sa.String(20))
    csat: Mapped[int | None] = mapped_column(sa.SmallInteger)
    customer_hash: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime]
    received_at: Mapped[datetime]
