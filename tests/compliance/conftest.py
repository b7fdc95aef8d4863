"""Compliance fixtures: auditor and merchant headers, a multi-cell tenant with contacts ingested
through the API (so customer references are hashed exactly as ingest hashes them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from billing.metering.models import Contact
from control_plane.database import ControlBase, Databases

T0 = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
SUBJECT = "Anna.Schmidt@example.de"
OTHER = "ben.ng@example.sg"


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def contact(market: str, ref: str | None, opened: datetime = T0, **overrides: Any) -> dict[str, Any]:
    body = {
        "external_id": f"c-{uuid.uuid4().hex[:10]}",
        "channel": "chat",
        "language": "en",
        "market": market,
        "intent": "wismo",
        "opened_at": ts(opened),
        "first_response_at": ts(opened + timedelta(seconds=20)),
        "resolved_at": ts(opened + timedelta(minutes=4)),
        "resolution": "ai_resolved",
        "csat": 5,
        "customer_ref": ref,
        "updated_at": ts(opened + timedelta(minutes=4)),
    } | overrides
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class CellTenant:
    slug: str
    id: uuid.UUID
    key: dict[str, str]


@pytest.fixture
async def auditor(issue_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token('compliance_officer')}"}


@pytest.fixture
async def cell_tenant(client, staff_headers, make_tenant):
    """``await cell_tenant(markets=…)``: a tenant whose markets DE, US and SG live in eu, us and sg."""

    async def make(**overrides: Any) -> CellTenant:
        t = await make_tenant(markets=["DE", "US", "SG"], **overrides)
        slug = t["slug"]
        r = await client.put(
            f"/api/v1/tenants/{slug}/residency",
            json={"markets": {"DE": "eu", "US": "us", "SG": "sg"}},
            headers=staff_headers,
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/api/v1/tenants/{slug}/api-keys", json={"scopes": ["contacts:write"]}, headers=staff_headers
        )
        assert r.status_code == 201, r.text
        return CellTenant(slug, uuid.UUID(t["id"]), {"Authorization": f"Bearer {r.json()['secret']}"})

    return make


async def ingest(client, tenant: CellTenant, contacts: list[dict[str, Any]]) -> None:
    r = await client.post(f"/api/v1/tenants/{tenant.slug}/contacts", json=contacts, headers=tenant.key)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(contacts), r.text


async def cell_rows(dbs: Databases, tenant_id: uuid.UUID) -> dict[str, dict[str, Contact]]:
    out = {}
    for region in dbs.cells:
        async with dbs.cell_session(region) as cell:
            rows = (await cell.scalars(sa.select(Contact).where(Contact.tenant_id == tenant_id))).all()
        out[region] = {r.external_id: r for r in rows}
    return out


# Who may call (tokens and keys record their last use) is not billing; neither are the requests themselves.
BILLING_EXCLUDED = {"subject_requests", "dsr_policies", "tenants", "bearer_tokens", "api_keys", "users"}


async def billing_snapshot(dbs: Databases, tenant_id: uuid.UUID) -> dict[str, list[tuple]]:
    """Every control-database row of the tenant outside the compliance and tenant tables (rollups,
    invoices, SLA results, …), as sorted tuples of their column values."""
    out = {}
    async with dbs.control_session() as session:
        for name, table in sorted(ControlBase.metadata.tables.items()):
            if name in BILLING_EXCLUDED or "tenant_id" not in table.c:
                continue
            rows = (await session.execute(sa.select(table).where(table.c.tenant_id == tenant_id))).all()
            out[name] = sorted(tuple(repr(v) for v in r) for r in rows)
    return out
