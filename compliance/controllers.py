"""Audit routes: read a tenant's audit stream (signing and export arrive with the compliance issue)."""

from __future__ import annotations

from typing import Any

from litestar import get
from sqlalchemy.ext.asyncio import AsyncSession

from compliance import service
from compliance.models import AuditEntry
from control_plane.auth import STAFF, Principal, Role, policy
from tenants.service import find_tenant


def entry_out(e: AuditEntry) -> dict[str, Any]:
    return service.entry_body(e) | {"hash": e.hash}


@get("/api/v1/tenants/{slug:str}/audit", opt=policy(roles=(*STAFF, Role.merchant_admin)), tags=["audit"])
async def tenant_audit(session: AsyncSession, principal: Principal, slug: str, limit: int = 200) -> list[dict]:
    """The tenant's audit stream, oldest first (the last ``limit`` entries)."""
    await find_tenant(session, principal, slug)
    entries = await service.list_entries(session, slug, limit=min(max(limit, 1), 1000))
    return [entry_out(e) for e in reversed(entries)]


@get("/api/v1/audit/platform", opt=policy(roles=(Role.platform_admin, Role.compliance_officer)), tags=["audit"])
async def platform_audit(session: AsyncSession, limit: int = 200) -> list[dict]:
    entries = await service.list_entries(session, "platform", limit=min(max(limit, 1), 1000))
    return [entry_out(e) for e in reversed(entries)]


ROUTES = [tenant_audit, platform_audit]
