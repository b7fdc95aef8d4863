"""Metering fixtures: an onboarded tenant with its own contacts:write key, and contact builders."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from billing.metering.models import Contact, ContactKey
from control_plane.database import Databases

T0 = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
_seq = itertools.count()


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def contact(external_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid contact resolved by the AI in 4 minutes; override any field (``None`` drops it)."""
    opened = overrides.pop("opened", T0)
    body = {
        "external_id": external_id or f"c-{next(_seq)}-{uuid.uuid4().hex[:6]}",
        "channel": "chat",
        "language": "de",
        "market": "DE",
        "intent": "wismo",
        "opened_at": ts(opened),
        "first_response_at": ts(opened + timedelta(seconds=20)),
        "resolved_at": ts(opened + timedelta(minutes=4)),
        "resolution": "ai_resolved",
        "csat": 5,
        "customer_ref": "anna.schmidt@example.de",
        "updated_at": ts(opened + timedelta(minutes=4)),
    }
    body |= overrides
    return {k: v for k, v in body.items() if v is not None}


# A complete billing profile that adds no tax under the default issuer (registered in DE only): a US
# business with a valid EIN is reverse-charged at 0 %, so the totals of these tests are their nets.
# Tests of the tax rule itself give their tenants their own profiles (tests/billing/invoices/test_finance.py).
UNTAXED_PROFILE = {
    "legal_name": "Test Merchant Inc.",
    "address": {"lines": ["1 Test Way"], "postal_code": "94105", "city": "San Francisco", "country": "US"},
    "tax_id": "91-1144442",
    "billing_emails": ["ap@merchant.example"],
}


async def give_profile(client, staff_headers, slug: str, profile: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await client.put(
        f"/api/v1/tenants/{slug}/billing-profile", json=profile or UNTAXED_PROFILE, headers=staff_headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


@dataclass
class IngestTenant:
    slug: str
    id: uuid.UUID
    headers: dict[str, str]
    timezone: str

    def path(self) -> str:
        return f"/api/v1/tenants/{self.slug}/contacts"


@pytest.fixture
async def ingest_tenant(client, staff_headers, make_tenant):
    """``await ingest_tenant(**tenant_overrides)``: an active tenant and the headers of its own API key."""

    async def make(*, residency: dict[str, str] | None = None, **overrides: Any) -> IngestTenant:
        # A tenant with its own residency policy is not onboarded further: ingest needs no more.
        tenant = await make_tenant(onboard=residency is None, **overrides)
        if residency is not None:
            resp = await client.put(
                f"/api/v1/tenants/{tenant['slug']}/residency", json={"markets": residency}, headers=staff_headers
            )
            assert resp.status_code == 200, resp.text
        await give_profile(client, staff_headers, tenant["slug"])
        resp = await client.post(
            f"/api/v1/tenants/{tenant['slug']}/api-keys", json={"scopes": ["contacts:write"]}, headers=staff_headers
        )
        assert resp.status_code == 201, resp.text
        return IngestTenant(
            tenant["slug"],
            uuid.UUID(tenant["id"]),
            {"Authorization": f"Bearer {resp.json()['secret']}"},
            tenant["timezone"],
        )

    return make


async def cell_contacts(dbs: Databases, tenant_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """``{region: {external_id: row}}`` across every cell."""
    out: dict[str, dict[str, Any]] = {}
    for region in dbs.cells:
        async with dbs.cell_session(region) as cell:
            rows = (await cell.execute(sa.select(Contact).where(Contact.tenant_id == tenant_id))).scalars().all()
        out[region] = {r.external_id: r for r in rows}
    return out


async def cell_keys(dbs: Databases, cell: str, tenant_id: uuid.UUID) -> set[str]:
    """The tenant's rows of ``contact_keys`` in ``cell`` (PostgreSQL keeps one per stored contact)."""
    async with dbs.cell_session(cell) as session:
        rows = await session.scalars(sa.select(ContactKey.external_id).where(ContactKey.tenant_id == tenant_id))
        return set(rows)
