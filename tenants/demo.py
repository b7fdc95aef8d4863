"""Demo tenants for ``make demo``: four merchants onboarded in four regions, through the same
services as the API (so the demo's audit log is a real one). Seeding again changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from control_plane.auth import Principal
from tenants import service as tenants
from tenants.models import Tenant

SEEDER = Principal("user", "demo-seed@bpo.local", "account_manager")

CONTRACT = {
    "effective_from": "2026-01-01",
    "ai_resolved": {"unit_price": "1.40"},
    "human_resolved": {"tiers": [{"up_to": 20000, "unit_price": "5.20"}, {"up_to": None, "unit_price": "4.80"}]},
    "minimum_monthly_fee": "5000.00",
    "deflection_floor": "0.70",
    "csat_target": "0.87",
    "response_targets": [
        {"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"},
        {"channel": "email", "first_response_seconds": 14400, "attainment": "0.95"},
    ],
    "credits": {
        "deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"},
        "csat": {"percent_per_point": "1.0", "cap_percent": "5.0"},
        "response": {"percent_per_point": "0.5", "cap_percent": "5.0"},
    },
    "total_credit_cap_percent": "15.0",
}

TENANTS = [
    {
        "tenant": {
            "slug": "acme-eu",
            "name": "Acme Apparel EU",
            "home_region": "eu",
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "markets": ["DE", "FR", "ES"],
        },
        "residency": {"markets": {"DE": "eu", "FR": "eu", "ES": "eu"}},
        "integration": {
            "kind": "shopify",
            "processing_region": "eu",
            "credentials": {"shop": "acme-eu", "access_token": "demo-shpat-1"},
        },
    },
    {
        "tenant": {
            "slug": "lumen-us",
            "name": "Lumen Home Goods",
            "home_region": "us",
            "timezone": "America/New_York",
            "currency": "USD",
            "markets": ["US", "CA"],
        },
        "residency": {"markets": {"US": "us", "CA": "us"}},
        "integration": {
            "kind": "gorgias",
            "credentials": {"domain": "lumen", "api_key": "demo-gorgias-key"},
            "webhook_secret": "demo-webhook-secret-lumen",
        },
    },
    {
        "tenant": {
            "slug": "orchid-sg",
            "name": "Orchid Beauty SEA",
            "home_region": "sg",
            "timezone": "Asia/Singapore",
            "currency": "SGD",
            "markets": ["SG", "MY", "TH"],
        },
        "residency": {"markets": {"SG": "sg", "MY": "sg", "TH": "sg"}},
        "integration": {"kind": "shopee", "credentials": {"partner_id": "1001", "partner_key": "demo-shopee-key"}},
    },
    {
        "tenant": {
            "slug": "panda-cn",
            "name": "Panda Tea Co.",
            "home_region": "cn",
            "timezone": "Asia/Shanghai",
            "currency": "CNY",
            "markets": ["CN"],
        },
        "residency": {"markets": {"CN": "cn"}},
        "integration": {
            "kind": "tiktok_shop",
            "processing_region": "cn",
            "credentials": {"app_key": "demo-tts", "app_secret": "demo-tts-secret"},
        },
    },
]


async def seed_demo_tenants(ctx: Any) -> None:
    """Create and activate the demo tenants that do not exist yet; lists every demo tenant's spec in
    ``ctx.tenants`` for the seeders of the domains that follow."""
    for spec in TENANTS:
        slug = spec["tenant"]["slug"]
        ctx.tenants.append(spec["tenant"])
        ctx.report.tenants.append(slug)
        async with ctx.db.control_transaction() as session:
            if await session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)):
                continue
            tenant = await tenants.create_tenant(
                session, SEEDER, spec["tenant"], regions=ctx.settings.regions, keyring=ctx.keyring
            )
            contract = CONTRACT | {"currency": tenant.currency}
            await tenants.add_contract_version(session, SEEDER, slug, contract)
            await tenants.set_residency(
                session, SEEDER, slug, spec["residency"], regions=ctx.settings.regions, today=date.today()
            )
            await tenants.add_integration(
                session,
                SEEDER,
                slug,
                spec["integration"],
                regions=ctx.settings.regions,
                keyring=ctx.keyring,
                today=date.today(),
            )
            await tenants.issue_api_key(session, SEEDER, slug, {"scopes": ["contacts:write"], "label": "demo"})
            await tenants.transition_tenant(session, SEEDER, slug, {"to": "active", "reason": "demo"})
