"""Product events (``invoice.finalized``, ``sla.breached`` ...): a domain publishes one inside the
transaction of the change it reports, and every domain's subscriber (``Domain.event_subscribers``)
enqueues what it sends because of it (merchant webhook deliveries, e-mails) in that same transaction.
Nothing is sent here: sending is the outbox's job, so an event is sent exactly when its change commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.database import utcnow

EVENT_TYPES: tuple[str, ...] = (
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.overdue",
    "credit_note.issued",
    "sla.at_risk",
    "sla.breached",
    "usage.threshold_reached",
    "subject_request.due_soon",
)


@dataclass(frozen=True)
class Event:
    """One event: ``key`` is stable for the fact it reports (e.g. ``invoice.finalized:<invoice id>``),
    so publishing it again (a retried job) enqueues nothing new; ``data`` is JSON, with no secret and
    no customer reference."""

    type: str
    tenant_id: uuid.UUID
    key: str
    data: dict[str, Any]
    occurred_at: datetime = field(default_factory=utcnow)


async def publish(
    session: AsyncSession,
    *,
    type: str,
    tenant_id: uuid.UUID,
    key: str,
    data: dict[str, Any],
    now: datetime | None = None,
) -> Event:
    """Hand the event to every subscriber in the caller's transaction."""
    from control_plane.plugins import event_subscribers

    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event = Event(type=type, tenant_id=tenant_id, key=key, data=data, occurred_at=now or utcnow())
    for subscriber in event_subscribers():
        await subscriber(session, event)
    return event
