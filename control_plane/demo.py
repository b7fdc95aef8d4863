"""Demo data for ``make demo``: the bootstrap admin and merchants onboarded in four regions.

Seeding goes through the same services as the API, so the demo's audit log is a real one.
Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from control_plane.auth import Principal
from control_plane.database import Databases
from control_plane.keyring import KeyRing
from control_plane.service import ensure_bootstrap_admin
from control_plane.settings import Settings
from tenants import service as tenants
from tenants.models import Tenant

ADMIN_EMAIL = "admin@bpo.local"
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


@dataclass
class DemoReport:
    admin_email: str
    admin_password: str | None
    tenants: list[str] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)


async def seed_demo(settings: Settings) -> DemoReport:
    dbs = Databases(settings.database)
    keyring = KeyRing.load_or_create(settings.keyring_path)
    try:
        async with dbs.control_transaction() as session:
            password = await ensure_bootstrap_admin(session, ADMIN_EMAIL)
        report = DemoReport(ADMIN_EMAIL, password)
        for spec in TENANTS:
            slug = spec["tenant"]["slug"]
            report.tenants.append(slug)
            async with dbs.control_transaction() as session:
                if await session.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)):
                    continue
                tenant = await tenants.create_tenant(
                    session, SEEDER, spec["tenant"], regions=settings.regions, keyring=keyring
                )
                contract = CONTRACT | {"currency": tenant.currency}
                await tenants.add_contract_version(session, SEEDER, slug, contract)
                await tenants.set_residency(
                    session, SEEDER, slug, spec["residency"], regions=settings.regions, today=date.today()
                )
                await tenants.add_integration(
                    session,
                    SEEDER,
                    slug,
                    spec["integration"],
                    regions=settings.regions,
                    keyring=keyring,
                    today=date.today(),
                )
                await tenants.issue_api_key(session, SEEDER, slug, {"scopes": ["contacts:write"], "label": "demo"})
                await tenants.transition_tenant(session, SEEDER, slug, {"to": "active", "reason": "demo"})
        # Metering: a realistic month of contacts per demo tenant, through the ingest service (idempotent).
        from billing.metering.demo import seed_demo_contacts

        for spec in TENANTS:
            t = spec["tenant"]
            await seed_demo_contacts(
                dbs, keyring, slug=t["slug"], timezone=t["timezone"], markets=t["markets"], region=t["home_region"]
            )
        # Billing: last month's invoices, one finalized and paid, the others drafts (idempotent).
        from billing.invoices.demo import seed_demo_invoices

        report.invoices = await seed_demo_invoices(dbs, SEEDER, [t["tenant"]["slug"] for t in TENANTS])
        return report
    finally:
        await dbs.dispose()
