"""Data-subject request tables of the control database."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, UUIDPrimaryKey


class SubjectRequest(UUIDPrimaryKey, ControlBase):
    """One request of a data subject, with its regime's deadline.

    ``subject_hash`` is the pseudonymous reference (never the identifier itself); it is kept only
    while the request is open and cleared when it closes.
    """

    __tablename__ = "subject_requests"
    __table_args__ = (sa.Index("ix_subject_requests_tenant_received", "tenant_id", "received_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    number: Mapped[int]  # per tenant, 1, 2, … (for people to quote)
    kind: Mapped[str] = mapped_column(sa.String(30))  # access | erasure | correction | opt_out_sale_share
    regime: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(20))  # open | completed | rejected
    subject_hash: Mapped[str | None] = mapped_column(sa.String(64))
    cells: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # {region: contacts found at intake}
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the request's note, correction, result
    received_at: Mapped[datetime]
    received_on: Mapped[date] = mapped_column(sa.Date)  # in the tenant's time zone
    due_on: Mapped[date] = mapped_column(sa.Date)
    extended_due_on: Mapped[date | None] = mapped_column(sa.Date)
    extension_reason: Mapped[str | None] = mapped_column(sa.String(500))
    closed_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(sa.String(200))

    @property
    def deadline(self) -> date:
        return self.extended_due_on or self.due_on


class DsrPolicy(ControlBase):
    """A tenant's data-subject request settings (PIPL leaves the deadline to the tenant's policy)."""

    __tablename__ = "dsr_policies"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    pipl_days: Mapped[int] = mapped_column(default=15)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(200))
