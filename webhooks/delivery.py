"""Delivering events to merchant endpoints, signed per Standard Webhooks (the ``standardwebhooks``
package: headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; body ``{"type",
"timestamp", "data"}``).

The subscriber turns an event into one delivery per enabled endpoint subscribed to its type, with an
outbox row (kind ``webhook``) in the publisher's transaction. Each outbox row is one attempt: the
handler POSTs, records the answer on the delivery and, on failure, queues the next attempt after
``RETRY_DELAYS`` (fixed, no jitter: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 14 h, 16 h — the
last attempt 71.6 h after the first, so retries last up to 3 days). After the last one the delivery
is ``failed``; if the endpoint had no successful delivery since that delivery was created (3 days of
failures), the endpoint is disabled with a notice on its page and an audit entry.

A replay is a new delivery of the same body with the same ``webhook-id``: a receiver that processed the
event already recognises it, one that lost it processes it now.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from compliance.service import SystemActor, append_audit_entry
from control_plane.database import utcnow
from control_plane.errors import Conflict, NotFound
from control_plane.events import Event
from control_plane.outbound import private_destination
from control_plane.outbox import enqueue
from tenants.models import Tenant
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.service import LEGACY, endpoint_secret, get_endpoint

if TYPE_CHECKING:
    from control_plane.outbox import Handler
    from control_plane.periodic import JobContext

KIND = "webhook"
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000, 50400, 50400, 57600))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_SECONDS = 10


def now() -> datetime:
    """The clock of attempts and schedules (tests replace it)."""
    return utcnow()


def message_id(key: str) -> str:
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:26]


async def _queue_attempt(session: AsyncSession, delivery: WebhookDelivery, attempt: int, at: datetime) -> None:
    key = delivery.key if attempt == 1 else f"{delivery.key}:attempt:{attempt}"
    delivery.next_attempt_at = at
    payload = {"delivery_id": str(delivery.id), "attempt": attempt}
    await enqueue(session, kind=KIND, payload=payload, idempotency_key=f"webhook:{key}", now=at)


async def on_event(session: AsyncSession, event: Event) -> None:
    """The event subscriber: a delivery (and its first attempt) per enabled endpoint subscribed."""
    stmt = sa.select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == event.tenant_id, WebhookEndpoint.enabled.is_(True)
    )
    for endpoint in (await session.scalars(stmt.order_by(WebhookEndpoint.created_at))).all():
        if event.type not in endpoint.events:
            continue
        key = f"{event.key}:{endpoint.id}"
        if await session.scalar(sa.select(WebhookDelivery.id).where(WebhookDelivery.key == key)) is not None:
            continue  # published again (a retried job): delivered once
        body = {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data}
        delivery = WebhookDelivery(
            id=uuid.uuid4(), endpoint_id=endpoint.id, tenant_id=event.tenant_id, key=key, message_id=message_id(key),
            event_type=event.type, body=body, status="pending", attempts=0, attempt_log=[],
            created_at=event.occurred_at,
        )  # fmt: skip
        session.add(delivery)
        await session.flush()
        await _queue_attempt(session, delivery, 1, event.occurred_at)


def sign(endpoint: WebhookEndpoint, secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    # Legacy SLA alert webhooks: the secret text itself is the HMAC key, as it was before the move.
    signer = Webhook(secret.encode()) if endpoint.signing == LEGACY else Webhook(secret)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(msg_id, at, body),
    }


async def _post(ctx: JobContext, endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str | None]:
    refused = None if ctx.settings.allow_private_webhooks else await private_destination(endpoint.url)
    if refused:  # the name may resolve elsewhere than when it was saved
        return None, refused
    body = json.dumps(delivery.body, separators=(",", ":"), sort_keys=True)
    # The signature's timestamp is the real time of the attempt (receivers check it against theirs).
    headers = sign(endpoint, endpoint_secret(endpoint, ctx.keyring), delivery.message_id, body, datetime.now(UTC))
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            resp = await client.post(endpoint.url, content=body.encode(), headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:  # no answer: an attempt that failed
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= resp.status_code < 300:
        return resp.status_code, None
    return resp.status_code, f"the endpoint answered {resp.status_code}"


def webhook_handler(ctx: JobContext) -> Handler:
    async def deliver(payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        attempt = int(payload["attempt"])
        async with ctx.db.control_session() as session:
            delivery = await session.get(WebhookDelivery, uuid.UUID(payload["delivery_id"]))
            endpoint = delivery and await session.get(WebhookEndpoint, delivery.endpoint_id)
        if delivery is None or delivery.status != "pending" or delivery.attempts != attempt - 1:
            return {"skipped": "not due"}
        gone = endpoint is None or not endpoint.enabled
        code, error = (None, "the endpoint is disabled") if gone else await _post(ctx, endpoint, delivery)
        async with ctx.db.control_transaction() as session:
            return await record_attempt(session, delivery.id, attempt, code, error, final=gone)

    return deliver


async def record_attempt(
    session: AsyncSession, delivery_id: uuid.UUID, attempt: int, code: int | None, error: str | None, *, final: bool
) -> dict[str, Any]:
    at = now()
    delivery = await session.get_one(WebhookDelivery, delivery_id)
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    delivery.attempts = attempt
    delivery.attempt_log = [*delivery.attempt_log, {"at": at.isoformat(), "status_code": code, "error": error}]
    delivery.last_status_code, delivery.last_error = code, error
    if error is None:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = "succeeded", at, None
        if endpoint is not None:
            endpoint.last_success_at = at
    elif attempt < MAX_ATTEMPTS and not final:
        await _queue_attempt(session, delivery, attempt + 1, at + RETRY_DELAYS[attempt - 1])
    else:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = "failed", at, None
        if endpoint is not None and endpoint.enabled and not final:
            if endpoint.last_success_at is None or endpoint.last_success_at < delivery.created_at:
                await _disable(session, endpoint, at, error)
    await session.flush()
    return {"delivery": str(delivery.id), "attempt": attempt, "status": delivery.status, "status_code": code}


async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, at: datetime, error: str) -> None:
    endpoint.enabled, endpoint.disabled_at = False, at
    endpoint.disabled_reason = (
        f"Disabled on {at:%Y-%m-%d %H:%M} UTC: every delivery failed for 3 days (last: {error}). "
        "Fix the receiver, then enable the endpoint again."
    )[:500]
    slug = await session.scalar(sa.select(Tenant.slug).where(Tenant.id == endpoint.tenant_id))
    await append_audit_entry(
        session, stream=slug, actor=SystemActor("webhooks"), action="webhook.endpoint_disabled",
        target=f"tenant:{slug}/webhook-endpoints/{endpoint.id}", data={"url": endpoint.url, "last_error": error},
        now=at,
    )  # fmt: skip


async def list_deliveries(
    session: AsyncSession, actor: Any, slug: str, endpoint_id: str, *, limit: int = 100
) -> tuple[Tenant, WebhookEndpoint, list[WebhookDelivery]]:
    tenant, endpoint = await get_endpoint(session, actor, slug, endpoint_id)
    stmt = sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    rows = await session.scalars(stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit))
    return tenant, endpoint, list(rows.all())


async def replay(session: AsyncSession, actor: Any, slug: str, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    """A new delivery of a logged one's body and ``webhook-id``, attempted now (audited)."""
    tenant, endpoint = await get_endpoint(session, actor, slug, endpoint_id)
    try:
        original = await session.get(WebhookDelivery, uuid.UUID(str(delivery_id)))
    except ValueError:
        original = None
    if original is None or original.endpoint_id != endpoint.id:
        raise NotFound(f"no delivery {delivery_id!r} of this endpoint")
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it to replay deliveries", code="endpoint_disabled")
    at = now()
    new_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=new_id, endpoint_id=endpoint.id, tenant_id=tenant.id, key=f"replay:{new_id}", message_id=original.message_id,
        event_type=original.event_type, body=original.body, status="pending", attempts=0, attempt_log=[],
        replay_of=original.id, created_at=at,
    )  # fmt: skip
    session.add(delivery)
    await session.flush()
    await _queue_attempt(session, delivery, 1, at)
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="webhook.delivery_replayed",
        target=f"tenant:{tenant.slug}/webhook-endpoints/{endpoint.id}", data={"delivery": str(original.id)}, now=at,
    )  # fmt: skip
    return delivery


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "webhook_id": row.message_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "response_code": row.last_status_code,
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "replay_of": str(row.replay_of) if row.replay_of else None,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "attempt_log": row.attempt_log,
    }
