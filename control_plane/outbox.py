"""The outbox: every call to an outside service is a row written in the same transaction as the change
that needs it, then sent after commit by the scheduler with retries, backoff and an idempotency key.

Outbox rules: enqueue inside the caller's transaction; dispatch due rows after commit.

A handler receives the payload and the idempotency key and must be safe to call again with the same
key (providers deduplicate on it), because a crash between the outside call and marking the row sent
makes the row due again. Failures back off exponentially (2^attempts seconds, capped at an hour);
after ``MAX_ATTEMPTS`` the row is parked as ``dead`` for an operator.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import telemetry
from control_plane.database import Databases, utcnow
from control_plane.metrics import OUTBOX_DELIVERIES
from control_plane.models import OutboxMessage

Handler = Callable[[dict[str, Any], str], Awaitable[dict[str, Any] | None]]
MAX_ATTEMPTS = 20
log = structlog.get_logger("bpo.outbox")


class RetryLater(Exception):
    """A handler's way to say: not now (e.g. the provider answered 429 or 5xx)."""


async def enqueue(
    session: AsyncSession, *, kind: str, payload: dict[str, Any], idempotency_key: str, now: datetime | None = None
) -> OutboxMessage:
    """Add a message in the caller's transaction; the same key twice is one message."""
    existing = await session.scalar(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    msg = OutboxMessage(
        kind=kind,
        payload=payload,
        idempotency_key=idempotency_key,
        status="pending",
        attempts=0,
        next_attempt_at=now or utcnow(),
        created_at=now or utcnow(),
    )
    session.add(msg)
    await session.flush()
    return msg


def backoff(attempts: int) -> timedelta:
    base = min(2**attempts, 3600)
    return timedelta(seconds=base * (0.5 + random.random() / 2))


async def _claim(
    session: AsyncSession, now: datetime, limit: int, kinds: Collection[str] | None
) -> list[OutboxMessage]:
    stmt = (
        sa.select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if kinds is not None:
        stmt = stmt.where(OutboxMessage.kind.in_(list(kinds)))
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.scalars(stmt)).all())


async def _deliver(handler: Handler | None, msg: OutboxMessage) -> dict[str, Any] | None:
    """One attempt, in its own span (a failure's span keeps the exception's type, not its message)."""
    with telemetry.span(f"outbox {msg.kind}", outbox_kind=msg.kind, outbox_attempt=msg.attempts):
        if handler is None:
            raise LookupError(f"no handler for outbox kind {msg.kind!r}")
        return await handler(dict(msg.payload), msg.idempotency_key)


async def dispatch_due(
    db: Databases,
    handlers: Mapping[str, Handler],
    *,
    now: datetime | None = None,
    limit: int = 50,
    kinds: Collection[str] | None = None,
) -> dict[str, int]:
    """Send every due message (of ``kinds``, default all) once; returns counts by outcome."""
    counts = {"sent": 0, "retry": 0, "dead": 0}
    now = now or utcnow()
    async with db.control_transaction() as session:
        for msg in await _claim(session, now, limit, kinds):
            handler = handlers.get(msg.kind)
            msg.attempts += 1
            try:
                msg.result = await _deliver(handler, msg)
            except Exception as exc:  # every failure is recorded and retried
                msg.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                if msg.attempts >= MAX_ATTEMPTS:
                    msg.status = "dead"
                    counts["dead"] += 1
                else:
                    msg.next_attempt_at = now + backoff(msg.attempts)
                    counts["retry"] += 1
                log.warning("outbox.retry", kind=msg.kind, id=msg.id, attempts=msg.attempts, error=msg.last_error)
                OUTBOX_DELIVERIES.labels(msg.kind, "dead" if msg.status == "dead" else "retry").inc()
                continue
            msg.status, msg.sent_at, msg.last_error = "sent", utcnow(), None
            counts["sent"] += 1
            OUTBOX_DELIVERIES.labels(msg.kind, "sent").inc()
    return counts


async def pending_count(session: AsyncSession) -> int:
    return await session.scalar(sa.select(sa.func.count()).where(OutboxMessage.status == "pending")) or 0
