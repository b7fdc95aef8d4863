"""Tenant tables of the control database."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, Timestamps, UUIDPrimaryKey


class Tenant(UUIDPrimaryKey, Timestamps, ControlBase):
    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="onboarding")
    home_region: Mapped[str] = mapped_column(sa.String(20))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    currency: Mapped[str] = mapped_column(sa.String(3))
    markets: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    retention_days: Mapped[int] = mapped_column(default=730)
    # HMAC key that pseudonymises customer references at ingest, sealed by the key ring.
    customer_hash_key: Mapped[str] = mapped_column(sa.String(200))


class ContractVersion(UUIDPrimaryKey, ControlBase):
    """One version of a tenant's contract; the version in force at a period's start rates it."""

    __tablename__ = "contract_versions"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "version"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    version: Mapped[int]
    effective_from: Mapped[date] = mapped_column(sa.Date)
    terms: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200))


class ResidencyPolicy(ControlBase):
    """A tenant's market -> region map and its recorded transfer mechanisms."""

    __tablename__ = "residency_policies"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    markets: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    transfer_mechanisms: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(200))


class Integration(UUIDPrimaryKey, Timestamps, ControlBase):
    """A connected system of a merchant; credentials and webhook secret are sealed, write-only."""

    __tablename__ = "integrations"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(200))
    processing_region: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    credentials: Mapped[str] = mapped_column(sa.Text)
    webhook_secret: Mapped[str | None] = mapped_column(sa.Text)


class ApiKey(UUIDPrimaryKey, ControlBase):
    """A tenant-scoped API key: only its SHA-256 hash is kept; its secret is shown once."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    prefix: Mapped[str] = mapped_column(sa.String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class SupportCalendar(ControlBase):
    """A tenant's weekly opening hours (local wall clock in `timezone`) and holidays: its support
    calendar, which ingest uses for business-hours response times and SLA reports read."""

    __tablename__ = "sla_support_calendars"

    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    weekly: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    holidays: Mapped[list[str]] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(200))
