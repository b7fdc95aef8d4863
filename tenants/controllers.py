"""Tenant routes: the JSON API of DESIGN.md (thin); the onboarding pages are ``tenants.pages``."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import delete, get, patch, post, put
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Principal, Role, policy
from control_plane.keyring import KeyRing
from control_plane.settings import Settings
from tenants import residency_service, service
from tenants.catalogue import INTEGRATION_KINDS
from tenants.schemas import api_key_out, contract_out, integration_out, tenant_out

ADMINS = (*ONBOARDING, Role.merchant_admin)
RESIDENCY_WRITERS = (*ONBOARDING, Role.compliance_officer)
READERS = policy(roles=EVERYONE)
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
API = "/api/v1/tenants"


# --- JSON API ----------------------------------------------------------------------------------
@post(API, opt=policy(roles=ONBOARDING), tags=["tenants"])
async def create_tenant(
    session: AsyncSession, principal: Principal, settings: Settings, keyring: KeyRing, data: dict[str, Any]
) -> dict[str, Any]:
    tenant = await service.create_tenant(session, principal, data, regions=settings.regions, keyring=keyring)
    return tenant_out(tenant, await service.checklist(session, tenant))


@get(API, opt=READERS, tags=["tenants"])
async def list_tenants(session: AsyncSession, principal: Principal, status: str | None = None) -> list[dict]:
    return [tenant_out(t) for t in await service.list_tenants(session, principal, status)]


@get(API + "/{slug:str}", opt=READERS, tags=["tenants"])
async def read_tenant(session: AsyncSession, principal: Principal, slug: str) -> dict[str, Any]:
    tenant = await service.find_tenant(session, principal, slug)
    return tenant_out(tenant, await service.checklist(session, tenant))


@patch(API + "/{slug:str}", opt=policy(roles=ONBOARDING), tags=["tenants"])
async def update_tenant(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    return tenant_out(await service.update_tenant(session, principal, slug, data))


@post(API + "/{slug:str}/status", opt=policy(roles=ONBOARDING), status_code=200, tags=["tenants"])
async def change_status(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    """Lifecycle: onboarding -> active -> suspended -> offboarded (409 with the reason otherwise)."""
    return tenant_out(await service.transition_tenant(session, principal, slug, data))


@put(API + "/{slug:str}/contract", opt=policy(roles=ONBOARDING), tags=["contracts"])
async def add_contract(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    return contract_out(await service.add_contract_version(session, principal, slug, data))


@get(API + "/{slug:str}/contract", opt=READERS, tags=["contracts"])
async def list_contracts(session: AsyncSession, principal: Principal, slug: str) -> list[dict[str, Any]]:
    return [contract_out(v) for v in await service.contract_versions(session, principal, slug)]


def _residency_out(view: service.ResidencyView) -> dict[str, Any]:
    today = date.today()
    return {
        "markets": view.markets,
        "transfer_mechanisms": [residency_service.mechanism_out(m, today) for m in view.transfer_mechanisms],
        "cells": view.cells,
    }


@put(API + "/{slug:str}/residency", opt=policy(roles=RESIDENCY_WRITERS), tags=["residency"])
async def put_residency(
    session: AsyncSession, principal: Principal, settings: Settings, slug: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Markets -> regions. ``transfer_mechanisms``, when given, replaces the list (409
    ``mechanism_in_use`` if that strands a routed market or an active integration); left out, the
    recorded mechanisms stay: add and revoke them one by one at ``.../transfer-mechanisms``."""
    await service.set_residency(session, principal, slug, data, regions=settings.regions, today=date.today())
    tenant = await service.find_tenant(session, principal, slug)
    return _residency_out(await service.residency_view(session, tenant, settings.regions))


@get(API + "/{slug:str}/residency", opt=READERS, tags=["residency"])
async def get_residency(session: AsyncSession, principal: Principal, settings: Settings, slug: str) -> dict[str, Any]:
    tenant = await service.find_tenant(session, principal, slug)
    return _residency_out(await service.residency_view(session, tenant, settings.regions))


@get(API + "/{slug:str}/transfer-mechanisms", opt=READERS, tags=["residency"])
async def list_mechanisms(
    session: AsyncSession, principal: Principal, settings: Settings, slug: str
) -> list[dict[str, Any]]:
    """Each mechanism with its ``status`` (active, expired) and ``used_by``: what it alone covers."""
    return await residency_service.list_mechanisms(
        session, principal, slug, regions=settings.regions, today=date.today()
    )


@post(API + "/{slug:str}/transfer-mechanisms", opt=policy(roles=RESIDENCY_WRITERS), tags=["residency"])
async def add_mechanism(
    session: AsyncSession, principal: Principal, settings: Settings, slug: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Record one more mechanism (the others stay); it must be valid today, for a market sold in."""
    today = date.today()
    entry = await residency_service.add_mechanism(session, principal, slug, data, regions=settings.regions, today=today)
    return residency_service.mechanism_out(entry, today)


@delete(
    API + "/{slug:str}/transfer-mechanisms/{mechanism_id:str}",
    opt=policy(roles=RESIDENCY_WRITERS),
    status_code=200,
    tags=["residency"],
)
async def revoke_mechanism(
    session: AsyncSession, principal: Principal, settings: Settings, slug: str, mechanism_id: str
) -> dict[str, Any]:
    """Revoke one mechanism: 409 ``mechanism_in_use`` naming each routed market or active
    integration that it alone covers."""
    today = date.today()
    revoked = await residency_service.revoke_mechanism(
        session, principal, slug, mechanism_id, regions=settings.regions, today=today
    )
    return residency_service.mechanism_out(revoked, today)


@post(API + "/{slug:str}/integrations", opt=policy(roles=ONBOARDING), tags=["integrations"])
async def add_integration(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    slug: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    integration = await service.add_integration(
        session, principal, slug, data, regions=settings.regions, keyring=keyring, today=date.today()
    )
    return integration_out(integration)


@get(API + "/{slug:str}/integrations", opt=policy(roles=(*STAFF, Role.merchant_admin)), tags=["integrations"])
async def list_integrations(session: AsyncSession, principal: Principal, slug: str) -> list[dict[str, Any]]:
    return [integration_out(i) for i in await service.list_integrations(session, principal, slug)]


@get("/api/v1/integration-kinds", opt=READERS, tags=["integrations"])
async def integration_kinds() -> dict[str, dict[str, str]]:
    return INTEGRATION_KINDS


@post(API + "/{slug:str}/api-keys", opt=policy(roles=ADMINS), tags=["api-keys"])
async def issue_api_key(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    """Issue a key; its ``secret`` is in this answer only."""
    key, secret = await service.issue_api_key(session, principal, slug, data)
    return api_key_out(key, secret)


@get(API + "/{slug:str}/api-keys", opt=policy(roles=(*STAFF, Role.merchant_admin)), tags=["api-keys"])
async def list_api_keys(session: AsyncSession, principal: Principal, slug: str) -> list[dict[str, Any]]:
    return [api_key_out(k) for k in await service.list_api_keys(session, principal, slug)]


@delete(API + "/{slug:str}/api-keys/{key_id:str}", opt=policy(roles=ADMINS), status_code=200, tags=["api-keys"])
async def revoke_api_key(session: AsyncSession, principal: Principal, slug: str, key_id: str) -> dict[str, Any]:
    return api_key_out(await service.revoke_api_key(session, principal, slug, key_id))


ROUTES = [
    create_tenant,
    list_tenants,
    read_tenant,
    update_tenant,
    change_status,
    add_contract,
    list_contracts,
    put_residency,
    get_residency,
    add_integration,
    list_integrations,
    integration_kinds,
    issue_api_key,
    list_api_keys,
    revoke_api_key,
    list_mechanisms,
    add_mechanism,
    revoke_mechanism,
]
