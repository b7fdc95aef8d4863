"""SLA tables of the control database: support calendars, excluded windows, status, alerts.

Nothing here identifies a merchant's customer: SLA results are computed from rollups (counts).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, UUIDPrimaryKey


class ExcludedWindow(UUIDPrimaryKey, ControlBase):
    """Days (inclusive, in the tenant's zone) taken out of SLA measurement, with the reason why.

    Whole local days, because the rollups that SLA reads are daily in the tenant's zone.
    """

    __tablename__ = "sla_excluded_windows"
    __table_args__ = (sa.Index("ix_sla_excluded_windows_tenant_first_day", "tenant_id", "first_day"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    first_day: Mapped[date] = mapped_column(sa.Date)
    last_day: Mapped[date] = mapped_column(sa.Date)
    kind: Mapped[str] = mapped_column(sa.String(30))  # force_majeure | client_outage
    reason: Mapped[str] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200))
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(sa.String(200))


class SlaStatus(ControlBase):
    """The last tracking status of one SLA of one tenant's period (on_track | at_risk | breached)."""

    __tablename__ = "sla_statuses"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    sla: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    evaluated_at: Mapped[datetime]
    changed_at: Mapped[datetime]


class SlaAlert(ControlBase):
    """One status change to at_risk or breached: shown in the app, published as an event (merchant webhooks)."""

    __tablename__ = "sla_alerts"
    __table_args__ = (sa.Index("ix_sla_alerts_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    period: Mapped[str] = mapped_column(sa.String(7))
    sla: Mapped[str] = mapped_column(sa.String(40))
    previous_status: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20))
    actual: Mapped[str | None] = mapped_column(sa.String(40))
    projected: Mapped[str | None] = mapped_column(sa.String(40))
    target: Mapped[str] = mapped_column(sa.String(40))
    message: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(200))


class AlertEmails(ControlBase):
    """Who is e-mailed when one of the tenant's SLAs goes at risk or is breached: its operations contacts."""

    __tablename__ = "sla_alert_emails"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    emails: Mapped[list[str]] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(200))
