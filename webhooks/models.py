"""Merchant webhook tables of the control database: endpoints, deliveries, usage thresholds and the
periods in which each threshold fired."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, UUIDPrimaryKey


class WebhookEndpoint(UUIDPrimaryKey, ControlBase):
    """Where a tenant's events go: the URL, the event types it subscribes to, the signing secret
    (sealed by the key ring). ``signing`` is ``standard`` (a ``whsec_`` base64 key) or ``sla_legacy``
    (an alert webhook of the SLA settings, moved here: its secret text is the HMAC key as before)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (sa.Index("ix_webhook_endpoints_tenant", "tenant_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    events: Mapped[list[str]] = mapped_column(sa.JSON)
    secret: Mapped[str] = mapped_column(sa.Text)
    signing: Mapped[str] = mapped_column(sa.String(20), default="standard")
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    disabled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime]


class WebhookDelivery(UUIDPrimaryKey, ControlBase):
    """One event for one endpoint: pending until a 2xx answer (``succeeded``) or the end of the retry
    schedule (``failed``). ``key`` is unique (event key + endpoint, or ``replay:<id>``); ``message_id``
    is the ``webhook-id`` header, the same for a replay of the event. ``attempt_log``: one entry per
    attempt ``{"at", "status_code", "error"}``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),)

    endpoint_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    message_id: Mapped[str] = mapped_column(sa.String(100))
    event_type: Mapped[str] = mapped_column(sa.String(60))
    body: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    next_attempt_at: Mapped[datetime | None]
    replay_of: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class UsageThreshold(UUIDPrimaryKey, ControlBase):
    """A tenant's alert: ``metric`` ``contacts`` (contacts in the period) or ``amount`` (the estimated
    amount of the period, in the contract's currency), reached at ``value``."""

    __tablename__ = "usage_thresholds"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "metric", "value"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    metric: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[str] = mapped_column(sa.String(40))  # a whole number of contacts or a decimal amount
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200))


class UsageThresholdHit(ControlBase):
    """A threshold reached in a period: it fires once per period."""

    __tablename__ = "usage_threshold_hits"

    threshold_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("usage_thresholds.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    observed: Mapped[str] = mapped_column(sa.String(40))
    fired_at: Mapped[datetime]
