"""The tenant lookups every tenant service starts from, scoped in one place: a tenant the actor may
not see is 404 (never 403), an offboarded tenant no longer changes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import Principal
from control_plane.errors import Conflict, NotFound
from tenants.models import Tenant

OFFBOARDED = "offboarded"


async def find_tenant(session: AsyncSession, actor: Principal | None, slug: str) -> Tenant:
    """The tenant ``slug`` if it exists and ``actor`` may see it; 404 otherwise (never 403)."""
    return visible(await session.scalar(sa.select(Tenant).where(Tenant.slug == slug)), actor, slug)


def visible(tenant: Tenant | None, actor: Principal | None, slug: str) -> Tenant:
    """``tenant`` (found by ``slug``) if it exists and ``actor`` may see it; 404 otherwise (never 403)."""
    if tenant is None or (actor is not None and actor.tenant_bound and actor.tenant_id != tenant.id):
        raise NotFound(f"no tenant {slug!r}")
    return tenant


async def writable_tenant(session: AsyncSession, actor: Principal, slug: str, *, lock: bool = False) -> Tenant:
    """The tenant, refused once offboarded. ``lock``: hold its row until commit (PostgreSQL), so that
    changes checked against the residency policy (mechanisms, integrations) happen one at a time."""
    stmt = sa.select(Tenant).where(Tenant.slug == slug)
    if lock:
        stmt = stmt.with_for_update()
    tenant = visible(await session.scalar(stmt), actor, slug)
    if tenant.status == OFFBOARDED:
        raise Conflict(f"tenant {slug!r} is offboarded; it can no longer change", code="tenant_offboarded")
    return tenant
