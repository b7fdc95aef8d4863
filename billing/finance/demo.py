"""The demo's issuers and billing profiles (idempotent): the default issuer (registered in DE) bills
the EU and US regions, SyncSoft Singapore (registered in SG) bills SG and CN; every demo tenant has a
complete billing profile, so its invoices can be finalized and carry tax by the rule in the README."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from billing.finance import service
from billing.finance.models import BillingProfile, Issuer
from tenants.models import Tenant

SG_ISSUER = {
    "code": "syncsoft-sg",
    "legal_name": "SyncSoft Pte. Ltd.",
    "address": {"lines": ["1 Raffles Place", "#20-61"], "postal_code": "048616", "city": "Singapore", "country": "SG"},
    "tax_registrations": [{"country": "SG", "tax_id": "201912345R"}],
    "invoice_prefix": "SGINV",
    "credit_note_prefix": "SGCN",
    "payment_instructions": "DBS Bank, account 012-345678-9, SWIFT DBSSSGSG; quote the invoice number.",
    "regions": ["sg", "cn"],
}

PROFILES: dict[str, dict[str, Any]] = {
    "acme-eu": {
        "legal_name": "Acme Apparel GmbH",
        "address": {"lines": ["Friedrichstraße 68"], "postal_code": "10117", "city": "Berlin", "country": "DE"},
        "tax_id": "DE136695976", "billing_emails": ["ap@acme-apparel.example"], "locale": "de",
    },
    "lumen-us": {
        "legal_name": "Lumen Home Inc.",
        "address": {"lines": ["500 Market Street"], "postal_code": "94105", "city": "San Francisco", "country": "US"},
        "tax_id": "91-1144442", "billing_emails": ["payables@lumen-home.example"], "locale": "en",
        "purchase_order": "PO-2026-0042",
    },
    "orchid-sg": {
        "legal_name": "Orchid Living Pte. Ltd.",
        "address": {"lines": ["8 Marina Boulevard"], "postal_code": "018981", "city": "Singapore", "country": "SG"},
        "tax_id": "00192200M", "billing_emails": ["finance@orchid-living.example"], "locale": "en",
    },
    "panda-cn": {
        "legal_name": "熊猫生活上海有限公司",
        "address": {"lines": ["世纪大道 100 号"], "postal_code": "200120", "city": "上海", "country": "CN"},
        "tax_id": "91110000600037341L", "billing_emails": ["caiwu@panda-living.example"], "locale": "zh",
    },
}  # fmt: skip


async def seed_demo_finance(session, actor: Any, slugs: list[str], *, now: datetime) -> None:
    default = await session.get(Issuer, "default")
    if default is not None and not default.regions:
        await service.update_issuer(session, actor, "default", {"regions": ["eu", "us"]}, now=now)
    if await session.get(Issuer, SG_ISSUER["code"]) is None:
        await service.create_issuer(session, actor, SG_ISSUER, now=now)
    for slug in slugs:
        tenant = await session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        if tenant is None or slug not in PROFILES or await session.get(BillingProfile, tenant.id) is not None:
            continue
        await service.put_profile(session, actor, slug, PROFILES[slug], now=now)
