"""Control-plane identities: staff and merchant users, and bearer tokens for scripts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase, Timestamps, UUIDPrimaryKey


class User(UUIDPrimaryKey, Timestamps, ControlBase):
    """A person: staff or a merchant user bound to one tenant.

    Invited users have no ``password_hash`` until they follow their invitation link; staff may also
    sign in with OIDC. ``totp_secret`` (sealed by the key ring) is set once a second factor is enrolled.
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
    password_changed_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(sa.String(300))


class UserSession(UUIDPrimaryKey, ControlBase):
    """A browser session, server-side: the cookie holds an opaque id whose SHA-256 is ``token_hash``.
    Ended (``ended_at``) by sign-out, deactivation, a password change or the end of its tenant."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(sa.String(40))
    client_address: Mapped[str] = mapped_column(sa.String(100), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")


class UserLink(UUIDPrimaryKey, ControlBase):
    """A one-time link: an invitation (``purpose`` = invitation) or a password reset; stored hashed."""

    __tablename__ = "user_links"

    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")


class SignInThrottle(ControlBase):
    """Failed sign-ins per account (``account:<email>``) and per client address (``address:<ip>``)."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class PlatformSetting(ControlBase):
    """Platform-wide switches a platform admin sets (e.g. ``require_totp_for_staff``)."""

    __tablename__ = "platform_settings"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(400))


class BearerToken(UUIDPrimaryKey, ControlBase):
    """A token for scripts (``bpoctl token issue``): stored as a SHA-256 hash, shown once."""

    __tablename__ = "bearer_tokens"

    prefix: Mapped[str] = mapped_column(sa.String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(40))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tenants.id"))
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))  # ends with the user
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


class JobRunCount(ControlBase):
    """How often each periodic job ran (as leader), across every process: one row per job."""

    __tablename__ = "job_run_counts"

    job: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    runs: Mapped[int] = mapped_column(sa.BigInteger)
    last_run_at: Mapped[datetime]
    last_holder: Mapped[str] = mapped_column(sa.String(120))


class OutboxMessage(ControlBase):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(60))
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(12), default="pending")  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class MailMessage(ControlBase):
    """One e-mail as rendered from its outbox row (control_plane.mail), kept whether it was sent or not:
    ``kept`` (no SMTP configured), ``sending`` (claimed before the SMTP transaction), ``sent``, ``failed``
    (the last attempt failed; the outbox retries it)."""

    __tablename__ = "mail_messages"
    __table_args__ = (sa.Index("ix_mail_messages_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)  # the outbox row's
    message_id: Mapped[str] = mapped_column(sa.String(255))
    to_address: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(500))
    text: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str] = mapped_column(sa.Text)
    template: Mapped[str] = mapped_column(sa.String(100))
    locale: Mapped[str] = mapped_column(sa.String(20))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    attachments: Mapped[list[Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(12))  # kept | sending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class KeyRingState(ControlBase):
    """The key ring's one row: its active key and a version bumped by every change, which each
    instance polls to see a rotation made by another (``control_plane.keystore``)."""

    __tablename__ = "key_ring"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    active: Mapped[str] = mapped_column(sa.String(40))
    version: Mapped[int] = mapped_column(sa.BigInteger)


class KeyRingKey(ControlBase):
    """A data key of the key ring, sealed (AES-GCM) by the master key; never stored in the clear."""

    __tablename__ = "key_ring_keys"

    kid: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    sealed: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class SealedSecret(ControlBase):
    """A platform secret shared by every instance (the cookie-session key), sealed by the master key."""

    __tablename__ = "sealed_secrets"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    sealed: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


# The placement table lives beside its rules (control_plane.cells); imported here so that the
# metadata (and Alembic) know it wherever the models are loaded.
from control_plane.cells import TenantCell  # noqa: E402, F401
