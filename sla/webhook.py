"""Sending SLA alerts to a tenant's webhook: the outbox handler, signed like Standard Webhooks.

Headers: ``webhook-id`` (the outbox idempotency key, stable across retries, so the receiver can
deduplicate), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` =
``v1,`` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")), the secret being the string
shown once when the webhook was set. A non-2xx answer is retried with the outbox's backoff.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from control_plane.outbound import private_destination
from control_plane.outbox import RetryLater
from sla.configuration import alert_webhook_secret
from sla.models import AlertWebhook

if TYPE_CHECKING:
    from control_plane.outbox import Handler
    from control_plane.periodic import JobContext


def signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def alert_webhook_handler(ctx: JobContext) -> Handler:
    async def send(payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        async with ctx.db.control_session() as session:
            row = await session.get(AlertWebhook, uuid.UUID(payload["tenant_id"]))
        if row is None or not row.active:
            return {"skipped": "no active webhook"}
        refused = None if ctx.settings.allow_private_webhooks else await private_destination(row.url)
        if refused:  # the name may resolve elsewhere than when it was saved
            return {"skipped": refused}
        body = json.dumps(payload["event"], sort_keys=True, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "webhook-id": idempotency_key,
            "webhook-timestamp": stamp,
            "webhook-signature": signature(alert_webhook_secret(row, ctx.keyring), idempotency_key, stamp, body),
        }
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(row.url, content=body, headers=headers)
        if not 200 <= resp.status_code < 300:
            raise RetryLater(f"the alert webhook answered {resp.status_code}")
        return {"status": resp.status_code}

    return send
