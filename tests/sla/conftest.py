"""SLA fixtures: an active tenant with a contract of our choosing, and contacts ingested through metering."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from billing.metering.service import ingest_contacts
from tenants.models import Tenant
from tests.conftest import contract_body

_seq = itertools.count()


def ts(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def contact(opened: datetime, **overrides: Any) -> dict[str, Any]:
    """A chat contact resolved by the AI 4 minutes after `opened`, answered in 20 s, rated 5."""
    body = {
        "external_id": f"s-{next(_seq)}-{uuid.uuid4().hex[:6]}",
        "channel": "chat",
        "language": "de",
        "market": "DE",
        "intent": "wismo",
        "opened_at": ts(opened),
        "first_response_at": ts(opened + timedelta(seconds=20)),
        "resolved_at": ts(opened + timedelta(minutes=4)),
        "resolution": "ai_resolved",
        "csat": 5,
        "updated_at": ts(opened + timedelta(minutes=4)),
    }
    body |= overrides
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class SlaTenant:
    slug: str
    id: uuid.UUID
    timezone: str
    currency: str

    async def ingest(self, dbs, keyring, contacts: list[dict[str, Any]]) -> None:
        for i in range(0, len(contacts), 1000):
            result = await ingest_contacts(dbs, keyring, None, self.slug, contacts[i : i + 1000])
            assert not result.rejected, result.rejected[:3]

    async def model(self, dbs) -> Tenant:
        async with dbs.control_session() as session:
            return await session.scalar(sa.select(Tenant).where(Tenant.slug == self.slug))


@pytest.fixture
async def sla_tenant(client, staff_headers, make_tenant):
    """``await sla_tenant(contract={...overrides}, **tenant_overrides)``: an active tenant with that contract."""

    async def make(*, contract: dict[str, Any] | None = None, **overrides: Any) -> SlaTenant:
        tenant = await make_tenant(onboard=True, **overrides)
        if contract is not None:
            body = contract_body(currency=tenant["currency"]) | contract
            resp = await client.put(f"/api/v1/tenants/{tenant['slug']}/contract", json=body, headers=staff_headers)
            assert resp.status_code in (200, 201), resp.text
        return SlaTenant(tenant["slug"], uuid.UUID(tenant["id"]), tenant["timezone"], tenant["currency"])

    return make
