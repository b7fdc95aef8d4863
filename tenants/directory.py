"""What the kernel asks of tenants without importing the tenants domain (``control_plane.plugins``
ports): a tenant's id from its slug and back, and the principal of a tenant API key."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import API_KEY_ROLE, Principal
from tenants.models import ApiKey, Tenant


class TenantDirectory:
    @staticmethod
    async def id_of(session: AsyncSession, slug: str) -> uuid.UUID | None:
        return await session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug))

    @staticmethod
    async def slug_and_status(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[str | None, str | None]:
        row = (await session.execute(sa.select(Tenant.slug, Tenant.status).where(Tenant.id == tenant_id))).first()
        return (None, None) if row is None else (row.slug, row.status)

    @staticmethod
    async def slugs_of(session: AsyncSession, tenant_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not tenant_ids:
            return {}
        rows = await session.execute(sa.select(Tenant.id, Tenant.slug).where(Tenant.id.in_(tenant_ids)))
        return {row.id: row.slug for row in rows}

    @staticmethod
    async def slug_of(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
        return await session.scalar(sa.select(Tenant.slug).where(Tenant.id == tenant_id))


async def api_key_principal(
    session: AsyncSession, prefix: str, digest: str, now: datetime
) -> tuple[Principal | None, Any]:
    """The principal of a ``bpo_live_`` key and its row (for its last use); ``(None, None)`` when the
    key is unknown, revoked, wrong, or its tenant offboarded."""
    row = (
        await session.execute(
            sa.select(ApiKey, Tenant.slug, Tenant.status)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.prefix == prefix)
        )
    ).first()
    if row is None or row.ApiKey.revoked_at is not None or row.status == "offboarded":
        return None, None
    key = row.ApiKey
    if not hmac.compare_digest(key.secret_hash, digest):
        return None, None
    return Principal("api_key", prefix, API_KEY_ROLE, key.tenant_id, row.slug, frozenset(key.scopes)), key
