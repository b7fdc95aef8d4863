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
