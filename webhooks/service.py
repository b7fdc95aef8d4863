"""Merchant webhook endpoints of a tenant, each change audited: the URL (public addresses only unless
``BPO_ALLOW_PRIVATE_WEBHOOKS=1``), the events it subscribes to, the signing secret (``whsec_`` + base64,
shown once, sealed by the key ring at rest and re-sealed by ``bpoctl keys rotate``) and the enabled flag.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.service import append_audit_entry
from control_plane.database import utcnow
from control_plane.errors import NotFound
from control_plane.keyring import KeyRing
from control_plane.outbound import check_destination
from control_plane.validation import parse
from tenants.models import Tenant
from tenants.repository import find_tenant
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.schemas import EndpointIn, EndpointPatch

LEGACY = "sla_legacy"


def secret_aad(row: WebhookEndpoint) -> str:
    # Alert webhooks moved from the SLA settings keep the sealed secret they had (and its AAD).
    if row.signing == LEGACY:
        return f"tenant:{row.tenant_id}:sla_alert_webhook"
    return f"webhook_endpoint:{row.id}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def endpoint_secret(row: WebhookEndpoint, keyring: KeyRing) -> str:
    return keyring.decrypt(row.secret, secret_aad(row)).decode()


def endpoint_json(row: WebhookEndpoint, slug: str, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": str(row.id),
        "tenant": slug,
        "url": row.url,
        "description": row.description,
        "events": list(row.events),
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "disabled_at": row.disabled_at.isoformat() if row.disabled_at else None,
        "created_at": row.created_at.isoformat(),
    }
    if secret is not None:
        out["secret"] = secret
    return out


async def create_endpoint(
    session: AsyncSession, actor: Any, slug: str, data: Any, *, keyring: KeyRing, allow_private: bool
) -> tuple[Tenant, WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once)."""
    tenant = await find_tenant(session, actor, slug)
    spec = parse(EndpointIn, data)
    await check_destination(str(spec.url), allow_private=allow_private)
    now = utcnow()
    row = WebhookEndpoint(
        id=uuid.uuid4(), tenant_id=tenant.id, url=str(spec.url), description=spec.description, events=spec.events,
        signing="standard", enabled=spec.enabled, created_at=now, created_by=actor.actor, updated_at=now,
    )  # fmt: skip
    secret = new_secret()
    row.secret = keyring.encrypt(secret, secret_aad(row))
    session.add(row)
    await session.flush()
    await _audit(session, actor, tenant, row, "webhook.endpoint_created", {"url": row.url, "events": row.events})
    return tenant, row, secret


async def list_endpoints(session: AsyncSession, actor: Any, slug: str) -> tuple[Tenant, list[WebhookEndpoint]]:
    tenant = await find_tenant(session, actor, slug)
    stmt = sa.select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant.id)
    return tenant, list((await session.scalars(stmt.order_by(WebhookEndpoint.created_at))).all())


async def get_endpoint(
    session: AsyncSession, actor: Any, slug: str, endpoint_id: str
) -> tuple[Tenant, WebhookEndpoint]:
    tenant = await find_tenant(session, actor, slug)
    try:
        eid = uuid.UUID(str(endpoint_id))
    except ValueError:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}") from None
    row = await session.get(WebhookEndpoint, eid)
    if row is None or row.tenant_id != tenant.id:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return tenant, row


async def update_endpoint(
    session: AsyncSession, actor: Any, slug: str, endpoint_id: str, data: Any, *, allow_private: bool
) -> tuple[Tenant, WebhookEndpoint]:
    """Change the URL, events, description or enabled flag; enabling clears the disabled notice."""
    tenant, row = await get_endpoint(session, actor, slug, endpoint_id)
    spec = parse(EndpointPatch, data)
    changes = spec.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    if spec.url is not None:
        await check_destination(str(spec.url), allow_private=allow_private)
        row.url = str(spec.url)
    if spec.events is not None:
        row.events = spec.events
    if spec.description is not None:
        row.description = spec.description
    if spec.enabled is not None:
        row.enabled = spec.enabled
        if spec.enabled:
            row.disabled_reason = row.disabled_at = None
    row.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor, tenant, row, "webhook.endpoint_changed", changes)
    return tenant, row


async def delete_endpoint(session: AsyncSession, actor: Any, slug: str, endpoint_id: str) -> None:
    """Remove the endpoint and its delivery log (audited); queued attempts then do nothing."""
    tenant, row = await get_endpoint(session, actor, slug, endpoint_id)
    await session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    await _audit(session, actor, tenant, row, "webhook.endpoint_deleted", {"url": row.url})
    await session.delete(row)
    await session.flush()


async def _audit(session, actor, tenant: Tenant, row: WebhookEndpoint, action: str, data: dict[str, Any]) -> None:
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action=action,
        target=f"tenant:{tenant.slug}/webhook-endpoints/{row.id}", data=data,
    )  # fmt: skip


async def reseal_endpoint_secrets(session: AsyncSession, keyring: KeyRing) -> int:
    """Seal every endpoint secret again under the ring's active key; returns how many changed."""
    changed = 0
    for row in (await session.scalars(sa.select(WebhookEndpoint))).all():
        new = keyring.reencrypt(row.secret, secret_aad(row))
        changed += new != row.secret
        row.secret = new
    await session.flush()
    return changed


async def endpoint_key_ids_in_use(session: AsyncSession) -> set[str]:
    return {KeyRing.key_id_of(t) for t in (await session.scalars(sa.select(WebhookEndpoint.secret))).all() if t}
