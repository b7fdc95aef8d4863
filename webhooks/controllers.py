"""Merchant webhook API (thin): endpoints, their deliveries and replays, usage thresholds."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, patch, post
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import EVERYONE, ONBOARDING, Principal, Role, policy
from control_plane.keyring import KeyRing
from control_plane.settings import Settings
from webhooks import delivery, service, thresholds

API = "/api/v1/tenants/{slug:str}"
EP = API + "/webhook-endpoints"
MANAGERS = (*ONBOARDING, Role.merchant_admin)
WRITE = policy(roles=MANAGERS)
READ = policy(roles=EVERYONE)


@post(EP, opt=WRITE, tags=["webhooks"])
async def create_endpoint(
    session: AsyncSession, principal: Principal, keyring: KeyRing, settings: Settings, slug: str, data: dict[str, Any]
) -> dict[str, Any]:
    """A new endpoint; its signing secret (``whsec_…``) is in this answer only. URLs whose host is a
    loopback, link-local or private address are refused (422)."""
    tenant, row, secret = await service.create_endpoint(
        session, principal, slug, data, keyring=keyring, allow_private=settings.allow_private_webhooks
    )
    return service.endpoint_json(row, tenant.slug, secret)


@get(EP, opt=READ, tags=["webhooks"])
async def list_endpoints(session: AsyncSession, principal: Principal, slug: str) -> list[dict[str, Any]]:
    tenant, rows = await service.list_endpoints(session, principal, slug)
    return [service.endpoint_json(r, tenant.slug) for r in rows]


@get(EP + "/{endpoint_id:str}", opt=READ, tags=["webhooks"])
async def get_endpoint(session: AsyncSession, principal: Principal, slug: str, endpoint_id: str) -> dict[str, Any]:
    tenant, row = await service.get_endpoint(session, principal, slug, endpoint_id)
    return service.endpoint_json(row, tenant.slug)


@patch(EP + "/{endpoint_id:str}", opt=WRITE, tags=["webhooks"])
async def patch_endpoint(
    session: AsyncSession, principal: Principal, settings: Settings, slug: str, endpoint_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    tenant, row = await service.update_endpoint(
        session, principal, slug, endpoint_id, data, allow_private=settings.allow_private_webhooks
    )
    return service.endpoint_json(row, tenant.slug)


@delete(EP + "/{endpoint_id:str}", opt=WRITE, status_code=200, tags=["webhooks"])
async def delete_endpoint(session: AsyncSession, principal: Principal, slug: str, endpoint_id: str) -> dict[str, Any]:
    await service.delete_endpoint(session, principal, slug, endpoint_id)
    return {"deleted": endpoint_id}


@get(EP + "/{endpoint_id:str}/deliveries", opt=READ, tags=["webhooks"])
async def list_deliveries(session: AsyncSession, principal: Principal, slug: str, endpoint_id: str) -> list[dict]:
    """The endpoint's last 100 deliveries, newest first, each with its attempts."""
    _, _, rows = await delivery.list_deliveries(session, principal, slug, endpoint_id)
    return [delivery.delivery_json(r) for r in rows]


@post(EP + "/{endpoint_id:str}/deliveries/{delivery_id:str}/replay", opt=WRITE, tags=["webhooks"])
async def replay_delivery(
    session: AsyncSession, principal: Principal, slug: str, endpoint_id: str, delivery_id: str
) -> dict[str, Any]:
    """Send a logged delivery again now, as a new delivery with the same ``webhook-id``."""
    return delivery.delivery_json(await delivery.replay(session, principal, slug, endpoint_id, delivery_id))


@get(API + "/usage-thresholds", opt=READ, tags=["webhooks"])
async def list_thresholds(session: AsyncSession, principal: Principal, slug: str) -> list[dict[str, Any]]:
    return [thresholds.threshold_json(r) for r in await thresholds.list_thresholds(session, principal, slug)]


@post(API + "/usage-thresholds", opt=WRITE, tags=["webhooks"])
async def add_threshold(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    """A threshold on the running period (``contacts`` or ``amount``), fired once per period."""
    return thresholds.threshold_json(await thresholds.add_threshold(session, principal, slug, data))


@delete(API + "/usage-thresholds/{threshold_id:str}", opt=WRITE, status_code=200, tags=["webhooks"])
async def remove_threshold(session: AsyncSession, principal: Principal, slug: str, threshold_id: str) -> dict:
    await thresholds.remove_threshold(session, principal, slug, threshold_id)
    return {"deleted": threshold_id}


ROUTES = [
    create_endpoint, list_endpoints, get_endpoint, patch_endpoint, delete_endpoint, list_deliveries, replay_delivery,
    list_thresholds, add_threshold, remove_threshold,
]  # fmt: skip
