"""The append-only audit log: one hash chain per stream (a tenant slug, or ``platform``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.database import ControlBase


class AuditEntry(ControlBase):
    """One entry; UPDATE and DELETE are refused by a trigger (see the control migrations)."""

    __tablename__ = "audit_entries"
    __table_args__ = (sa.UniqueConstraint("stream", "seq"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    stream: Mapped[str] = mapped_column(sa.String(80))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40))
    action: Mapped[str] = mapped_column(sa.String(80), index=True)
    target: Mapped[str] = mapped_column(sa.String(300))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class SigningKey(ControlBase):
    """An Ed25519 key that signs audit checkpoints; retired keys stay to verify old exports."""

    __tablename__ = "audit_signing_keys"

    kid: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    public_key: Mapped[str] = mapped_column(sa.String(64))  # raw 32 bytes, base64url
    private_key: Mapped[str] = mapped_column(sa.Text)  # sealed by the key ring
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class Checkpoint(ControlBase):
    """A signed statement that ``stream`` had head ``hash`` at ``seq``; chained to the stream's previous one."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (sa.Index("ix_audit_checkpoints_stream_seq", "stream", "seq"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    stream: Mapped[str] = mapped_column(sa.String(80))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(sa.String(64))
    signed_at: Mapped[datetime]
    prev_checkpoint: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = mapped_column(sa.String(40))
    signature: Mapped[str] = mapped_column(sa.String(200))
