"""Tenant routes: the JSON API of DESIGN.md and the account managers' onboarding pages (thin)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from litestar import Request, delete, get, patch, post, put
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Principal, Role, policy
from control_plane.errors import DomainError, InvalidInput
from control_plane.keyring import KeyRing
from control_plane.settings import Settings
from tenants import service
from tenants.catalogue import INTEGRATION_KINDS
from tenants.schemas import MECHANISMS, api_key_out, contract_out, integration_out, tenant_out

ADMINS = (*ONBOARDING, Role.merchant_admin)
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
    return {"markets": view.markets, "transfer_mechanisms": view.transfer_mechanisms, "cells": view.cells}


@put(API + "/{slug:str}/residency", opt=policy(roles=(*ONBOARDING, Role.compliance_officer)), tags=["residency"])
async def put_residency(
    session: AsyncSession, principal: Principal, settings: Settings, slug: str, data: dict[str, Any]
) -> dict[str, Any]:
    await service.set_residency(session, principal, slug, data, regions=settings.regions, today=date.today())
    tenant = await service.find_tenant(session, principal, slug)
    return _residency_out(await service.residency_view(session, tenant, settings.regions))


@get(API + "/{slug:str}/residency", opt=READERS, tags=["residency"])
async def get_residency(session: AsyncSession, principal: Principal, settings: Settings, slug: str) -> dict[str, Any]:
    tenant = await service.find_tenant(session, principal, slug)
    return _residency_out(await service.residency_view(session, tenant, settings.regions))


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


# --- pages -------------------------------------------------------------------------------------
def _nest(form: dict[str, str]) -> dict[str, Any]:
    """``{"ai_resolved.unit_price": "1.40"}`` -> ``{"ai_resolved": {"unit_price": "1.40"}}``; blanks dropped."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith("_") or value is None or str(value).strip() == "":
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.strip() if isinstance(value, str) else value
    return out


def _pairs(text: str) -> dict[str, str]:
    """``"DE=eu\\nCN=cn"`` -> ``{"DE": "eu", "CN": "cn"}``."""
    out = {}
    for line in (text or "").replace(",", "\n").splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            out[key.strip()] = value.strip()
    return out


async def _tenant_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    errors: dict[str, dict] | None = None,
    values: dict[str, dict] | None = None,
    notice: str | None = None,
    new_secret: str | None = None,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    tenant = await service.find_tenant(session, principal, slug)
    return Template(
        "tenant_detail.html",
        status_code=status_code,
        context={
            "principal": principal,
            "tenant": tenant,
            "checklist": await service.checklist(session, tenant),
            "contracts": await service.contract_versions(session, principal, slug),
            "residency": await service.residency_view(session, tenant, settings.regions),
            "integrations": await service.list_integrations(session, principal, slug)
            if principal.is_staff or principal.role == Role.merchant_admin
            else [],
            "api_keys": await service.list_api_keys(session, principal, slug)
            if principal.is_staff or principal.role == Role.merchant_admin
            else [],
            "kinds": INTEGRATION_KINDS,
            "regions": settings.regions,
            "mechanisms": MECHANISMS,
            "transitions": sorted(service.TRANSITIONS[tenant.status]),
            "can_edit": principal.role in ONBOARDING,
            "errors": errors or {},
            "values": values or {},
            "notice": notice,
            "new_secret": new_secret,
        },
    )


def _form_errors(exc: DomainError, rename: dict[str, str] | None = None) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        rename = rename or {}
        return {rename.get(e.field, e.field): e.message for e in exc.errors}
    return {"_form": exc.message}


@get("/tenants", opt=READERS, include_in_schema=False)
async def tenants_page(session: AsyncSession, principal: Principal) -> Template | Redirect:
    if principal.tenant_bound:
        return Redirect(f"/tenants/{principal.tenant_slug}")
    return Template(
        "tenant_list.html",
        context={
            "principal": principal,
            "tenants": await service.list_tenants(session, principal),
            "errors": {},
            "values": {},
            "can_edit": principal.role in ONBOARDING,
        },
    )


@post("/tenants", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def tenants_create_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = _nest(data)
    if "markets" in form:
        form["markets"] = [m.strip() for m in form["markets"].replace(",", " ").split() if m.strip()]
    try:
        tenant = await service.create_tenant(session, principal, form, regions=settings.regions, keyring=keyring)
    except DomainError as exc:
        await session.rollback()
        return Template(
            "tenant_list.html",
            status_code=exc.status_code,
            context={
                "principal": principal,
                "tenants": await service.list_tenants(session, principal),
                "errors": _form_errors(exc),
                "values": data,
                "can_edit": True,
            },
        )
    return Redirect(f"/tenants/{tenant.slug}")


@get("/tenants/{slug:str}", opt=READERS, include_in_schema=False)
async def tenant_page(request: Request, session: AsyncSession, principal: Principal, slug: str) -> Template:
    return await _tenant_page(request, session, principal, slug)


async def _form_action(
    request, session, principal, slug, section, data, action, *, notice, rename=None
) -> Template | Redirect:
    # Pages must say what they return: with ``Any`` Litestar would serve the rendered page as JSON.
    try:
        result = await action()
    except DomainError as exc:
        await session.rollback()
        if exc.status_code == 404:
            raise
        return await _tenant_page(
            request,
            session,
            principal,
            slug,
            errors={section: _form_errors(exc, rename)},
            values={section: data},
            status_code=exc.status_code,
        )
    await session.commit()
    secret = result[1] if isinstance(result, tuple) else None
    if secret:
        return await _tenant_page(request, session, principal, slug, notice=notice, new_secret=secret)
    return Redirect(f"/tenants/{slug}?done={section}")


@post("/tenants/{slug:str}/contract", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def contract_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:

    form = _nest(data)
    terms = form.pop("terms_json", None)
    errors = {}
    if terms:
        try:
            form |= json.loads(terms)
        except ValueError as exc:
            errors["terms_json"] = f"is not valid JSON: {exc}"
    if errors:
        return await _tenant_page(
            request, session, principal, slug, errors={"contract": errors}, values={"contract": data}, status_code=422
        )
    form.setdefault("currency", (await service.find_tenant(session, principal, slug)).currency)
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "contract",
        data,
        lambda: service.add_contract_version(session, principal, slug, form),
        notice="Contract version added",
    )


@post(
    "/tenants/{slug:str}/residency", opt=policy(roles=(*ONBOARDING, Role.compliance_officer)), include_in_schema=False
)
async def residency_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = _nest(data)
    body: dict[str, Any] = {"markets": _pairs(form.get("markets", ""))}
    mech = form.get("mechanism") or {}
    if any(mech.values()):
        body["transfer_mechanisms"] = [mech]
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "residency",
        data,
        lambda: service.set_residency(session, principal, slug, body, regions=settings.regions, today=date.today()),
        notice="Residency saved",
        rename={
            "transfer_mechanisms.0." + k: "mechanism." + k
            for k in ("regime", "market", "to_region", "mechanism", "reference", "valid_until")
        },
    )


@post("/tenants/{slug:str}/integrations", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def integration_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = _nest(data)
    body = {k: form[k] for k in ("kind", "name", "processing_region", "webhook_secret") if k in form}
    body["credentials"] = _pairs(form.get("credentials", ""))
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "integration",
        {k: v for k, v in data.items() if k == "kind"},
        lambda: service.add_integration(
            session, principal, slug, body, regions=settings.regions, keyring=keyring, today=date.today()
        ),
        notice="Integration added",
    )


@post("/tenants/{slug:str}/api-keys", opt=policy(roles=ADMINS), include_in_schema=False)
async def api_key_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, Any], FORM]
) -> Template | Redirect:
    scopes = data.get("scopes") or []
    body = {"scopes": scopes if isinstance(scopes, list) else [scopes], "label": data.get("label", "")}
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "api_key",
        {},
        lambda: service.issue_api_key(session, principal, slug, body),
        notice="API key issued: copy its secret now, it is not shown again",
    )


@post("/tenants/{slug:str}/status", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def status_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "status",
        data,
        lambda: service.transition_tenant(session, principal, slug, _nest(data)),
        notice="Status changed",
    )


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
    tenants_page,
    tenants_create_form,
    tenant_page,
    contract_form,
    residency_form,
    integration_form,
    api_key_form,
    status_form,
]
