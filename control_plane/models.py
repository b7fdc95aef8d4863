"""Control-plane identities: staff and merchant users, and bearer tokens for scripts."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, Timestamps, UUIDPrimaryKey


class User(UUIDPrimaryKey, Timestamps, ControlBase):
    """A person: staff (signs in with OIDC) or a merchant user bound to one tenant.

    ``password_hash`` is set only for the local bootstrap admin (argon2id).
    """

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    role: Mapped[str] = mapped_column(sa.String(40))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(300))
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]


class BearerToken(UUIDPrimaryKey, ControlBase):
    """A token for scripts (``bpoctl token issue``): stored as a SHA-256 hash, shown once."""

    __tablename__ = "bearer_tokens"

    prefix: Mapped[str] = mapped_column(sa.String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(40))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tenants.id"))
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class SchedulerLease(ControlBase):
    """Leader election for the scheduler: one holder per name until ``expires_at``."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(120))
    expires_at: Mapped[datetime]
