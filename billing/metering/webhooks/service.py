"""Receiving a helpdesk delivery: verify, pseudonymise, store by delivery id, then map and ingest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from billing.metering import service as metering
from billing.metering.models import WebhookEvent
from billing.metering.schemas import has_control_characters
from billing.metering.webhooks import mapping, signatures
from control_plane import cells
from control_plane.database import Databases, utcnow
from control_plane.errors import DomainError, FieldError, InvalidInput, NotFound, Refusal, Unauthenticated
from control_plane.keyring import KeyRing
from tenants import service as tenants
from tenants.models import Integration, Tenant

log = logging.getLogger(__name__)
SOURCES = ("gorgias", "zendesk", "generic")


async def _integration(db: Databases, source: str, integration_id: str) -> tuple[Integration, Tenant]:
    try:
        iid = uuid.UUID(integration_id)
    except ValueError:
        raise NotFound(f"no integration {integration_id!r}") from None
    async with db.control_session() as session:
        integration = await session.get(Integration, iid)
        tenant = await session.get(Tenant, integration.tenant_id) if integration else None
    if integration is None or tenant is None or (source != "generic" and integration.kind != source):
        raise NotFound(f"no {source} integration {integration_id!r}")
    return integration, tenant


def _refused(tenant: Tenant, integration: Integration, source: str) -> Refusal:
    """A delivery whose signature does not verify, as the tenant's audit stream records it."""
    target = f"tenant:{tenant.slug}/integration/{integration.id}"
    return Refusal("webhook.signature_refused", target, stream=tenant.slug, data={"source": source})


def _verify(source: str, headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    {"zendesk": signatures.verify_zendesk, "gorgias": signatures.verify_gorgias, "generic": signatures.verify_generic}[
        source
    ](headers, body, secret, now)


async def receive_webhook(
    db: Databases,
    keyring: KeyRing,
    source: str,
    integration_id: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify and store one delivery, then map and ingest it; a delivery id seen before is a duplicate."""
    now = now or utcnow()
    integration, tenant = await _integration(db, source, integration_id)
    secret = tenants.integration_webhook_secret(integration, keyring)
    if not secret:
        raise Unauthenticated("this integration has no webhook secret, so no delivery can be verified")
    try:
        _verify(source, headers, body, secret, now)
    except signatures.SignatureError as exc:
        raise Unauthenticated(str(exc), code="bad_signature", refusal=_refused(tenant, integration, source)) from None
    try:  # msgspec, like the ingest API: no lone surrogates (they cannot be hashed or stored)
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise DomainError("the body is not valid JSON", code="malformed_json") from None
    except RecursionError:
        raise DomainError("the body nests arrays or objects too deeply", code="malformed_json") from None
    if not isinstance(payload, dict):
        raise InvalidInput([FieldError("body", "must be a JSON object")])
    delivery = mapping.delivery_id(source, payload, headers)
    if not delivery:
        raise InvalidInput([FieldError("id", "the delivery carries no id to deduplicate it by")])
    if has_control_characters(delivery):
        raise InvalidInput([FieldError("id", "the delivery id must not contain control characters")])
    hasher = metering.CustomerRefHasher(tenants.customer_hash_key(tenant, keyring))
    region = integration.processing_region if db.cells_of(integration.processing_region) else tenant.home_region
    async with cells.tenant_cell(db, tenant.id, region) as (cell_name, cell):
        insert = postgresql.insert if cell.bind.dialect.name == "postgresql" else sqlite.insert
        stored = await cell.execute(
            insert(WebhookEvent.__table__)
            .values(
                tenant_id=tenant.id,
                integration_id=integration.id,
                source=source,
                delivery_id=delivery[:200],
                event_type=mapping.event_type(source, payload),
                payload=mapping.PSEUDONYMISE[source](payload, hasher),
                received_at=now,
                status="received",
            )
            .on_conflict_do_nothing()
            .returning(WebhookEvent.__table__.c.id)
        )
        fresh = stored.scalar() is not None
        event = await cell.scalar(
            sa.select(WebhookEvent).where(
                WebhookEvent.integration_id == integration.id, WebhookEvent.delivery_id == delivery[:200]
            )
        )
    if not fresh and event.status != "received":
        return {"status": "duplicate", "delivery_id": delivery}
    return {"delivery_id": delivery, **await process_event(db, keyring, cell_name, event.id)}


async def process_event(db: Databases, keyring: KeyRing, region: str, event_id: int) -> dict[str, Any]:
    """Map a stored event to a contact and ingest it; records ``mapped`` or ``failed`` with the reason.
    ``region`` names the cell that stored the event (``Databases.cells``)."""
    async with db.cell_session(region) as cell:
        event = await cell.get(WebhookEvent, event_id)
    async with db.control_session() as session:
        tenant = await session.get(Tenant, event.tenant_id)
    status, error, result, contact = "failed", None, None, None
    try:
        contact = mapping.MAP[event.source](
            event.payload, default_market=(tenant.markets or ["US"])[0], default_language="en"
        )
    except mapping.MappingError as exc:
        error = str(exc)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a field of an unexpected JSON type
        error = f"the {event.source} delivery does not have the expected shape ({type(exc).__name__})"
    if contact is not None:
        result = await metering.ingest_contacts(
            db, keyring, None, tenant.slug, [contact], source=f"webhook:{event.source}", prehashed=True
        )
        if result.rejected:
            error = "; ".join(f"{e['field']}: {e['message']}" for e in result.rejected[0].errors)
        else:
            status = "mapped"
    async with db.cell_session(region) as cell, cell.begin():
        await cell.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == event_id)
            .values(status=status, error=error, processed_at=utcnow())
        )
    out: dict[str, Any] = {"status": status}
    if error:
        out["error"] = error
    if result is not None:
        out["result"] = result.as_dict()
    return out


async def replay_events(db: Databases, keyring: KeyRing, *, statuses: tuple[str, ...] = ("failed", "received")) -> int:
    """Map stored events again (after a mapping fix); returns how many are now mapped."""
    mapped = 0
    for region in db.cells:
        async with db.cell_session(region) as cell:
            ids = list(
                (
                    await cell.scalars(
                        sa.select(WebhookEvent.id).where(WebhookEvent.status.in_(statuses)).order_by(WebhookEvent.id)
                    )
                ).all()
            )
        for event_id in ids:
            mapped += (await process_event(db, keyring, region, event_id))["status"] == "mapped"
    return mapped
