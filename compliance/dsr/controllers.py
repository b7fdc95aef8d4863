"""Data-subject request routes (thin): intake, list, read, access export, erasure, extension, closing."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.dsr import service
from compliance.dsr.schemas import request_out
from control_plane.auth import Principal, Role, policy
from control_plane.database import utcnow
from control_plane.keyring import KeyRing
from control_plane.settings import Settings

HANDLERS = policy(roles=(Role.platform_admin, Role.compliance_officer, Role.merchant_admin))
BASE = "/api/v1/tenants/{slug:str}/subject-requests"


async def _out(session: AsyncSession, principal: Principal, slug: str, req) -> dict[str, Any]:
    tenant = await service.tenants.find_tenant(session, principal, slug)
    return request_out(req, service.tenant_today(tenant, utcnow()))


@post(BASE, opt=HANDLERS, tags=["subject requests"])
async def file_request(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    slug: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """File a request: ``{"kind": "access|erasure|correction|opt_out_sale_share", "subject": "…", "regime"?}``."""
    req = await service.file_request(
        session, request.app.state.db, keyring, principal, slug, data, regions=settings.regions
    )
    return await _out(session, principal, slug, req)


@get(BASE, opt=HANDLERS, tags=["subject requests"])
async def list_requests(session: AsyncSession, principal: Principal, slug: str, status: str | None = None) -> list:
    tenant, reqs = await service.list_requests(session, principal, slug, status=status)
    today = service.tenant_today(tenant, utcnow())
    return [request_out(r, today) for r in reqs]


@get(BASE + "/{request_id:str}", opt=HANDLERS, tags=["subject requests"])
async def read_request(session: AsyncSession, principal: Principal, slug: str, request_id: str) -> dict[str, Any]:
    tenant, req = await service.get_request(session, principal, slug, request_id)
    return request_out(req, service.tenant_today(tenant, utcnow()))


@get(BASE + "/{request_id:str}/export", opt=HANDLERS, tags=["subject requests"])
async def access_export(
    request: Request, session: AsyncSession, principal: Principal, slug: str, request_id: str
) -> dict[str, Any]:
    """An access request's answer: the subject's contacts from the tenant's cells (audited)."""
    return await service.access_export(session, request.app.state.db, principal, slug, request_id)


@post(BASE + "/{request_id:str}/erase", opt=HANDLERS, status_code=200, tags=["subject requests"])
async def erase(request: Request, session: AsyncSession, principal: Principal, slug: str, request_id: str) -> dict:
    req = await service.erase_subject(session, request.app.state.db, principal, slug, request_id)
    return await _out(session, principal, slug, req)


@post(BASE + "/{request_id:str}/extend", opt=HANDLERS, status_code=200, tags=["subject requests"])
async def extend(session: AsyncSession, principal: Principal, slug: str, request_id: str, data: dict) -> dict:
    req = await service.extend_request(session, principal, slug, request_id, data)
    return await _out(session, principal, slug, req)


@post(BASE + "/{request_id:str}/complete", opt=HANDLERS, status_code=200, tags=["subject requests"])
async def complete(
    session: AsyncSession, principal: Principal, slug: str, request_id: str, data: dict | None = None
) -> dict:
    req = await service.complete_request(session, principal, slug, request_id, data)
    return await _out(session, principal, slug, req)


@post(BASE + "/{request_id:str}/reject", opt=HANDLERS, status_code=200, tags=["subject requests"])
async def reject(session: AsyncSession, principal: Principal, slug: str, request_id: str, data: dict) -> dict:
    req = await service.reject_request(session, principal, slug, request_id, data)
    return await _out(session, principal, slug, req)


@get("/api/v1/tenants/{slug:str}/subject-request-policy", opt=HANDLERS, tags=["subject requests"])
async def read_policy(session: AsyncSession, principal: Principal, slug: str) -> dict[str, Any]:
    tenant = await service.tenants.find_tenant(session, principal, slug)
    return {"pipl_days": (await service.dsr_policy(session, tenant.id)).pipl_days}


@put(
    "/api/v1/tenants/{slug:str}/subject-request-policy",
    opt=policy(roles=(Role.platform_admin, Role.compliance_officer)),
    tags=["subject requests"],
)
async def write_policy(session: AsyncSession, principal: Principal, slug: str, data: dict) -> dict[str, Any]:
    """The tenant's PIPL deadline in days (PIPL leaves it to the tenant's policy)."""
    return {"pipl_days": (await service.set_dsr_policy(session, principal, slug, data)).pipl_days}


ROUTES = [
    file_request,
    list_requests,
    read_request,
    access_export,
    erase,
    extend,
    complete,
    reject,
    read_policy,
    write_policy,
]
