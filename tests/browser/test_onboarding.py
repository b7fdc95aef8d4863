"""An account manager, in Debian's Chromium, from sign-in to an active tenant.

Sign-in goes through ``oidc-provider-mock`` (its own authorize page, filled in the browser); the
app runs under uvicorn at its public URL (``tests/live.py``). Every step uses the pages' forms, as
a person would; the last page is saved as ``test-output/onboarding.png``.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from compliance.service import SystemActor
from control_plane import service
from tenants.models import Integration, Tenant

pytestmark = pytest.mark.browser

CREDENTIAL = "shpat_browser_" + uuid.uuid4().hex


async def error_beside(page: Page, field_id: str) -> str:
    """The error text the form shows right after the field (the input names it as its description)."""
    field = page.locator(f'[id="{field_id}"]')
    await expect(field).to_have_attribute("aria-invalid", "true")
    described_by = await field.get_attribute("aria-describedby")
    error = page.locator(f'[id="{described_by}"]')
    await expect(error).to_be_visible()
    adjacent = await field.evaluate("el => el.nextElementSibling && el.nextElementSibling.id")
    assert adjacent == described_by
    return await error.inner_text()


# The browser walk is one scenario; it runs on SQLite only (the OIDC tests cover both databases).
@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_an_account_manager_onboards_a_merchant_to_active(settings, live, provider, dbs, page, output_dir):
    email, sub = f"am-{uuid.uuid4().hex[:8]}@staff.example.com", f"idp-{uuid.uuid4().hex[:8]}"
    async with dbs.control_transaction() as session:
        await service.create_user(
            session, SystemActor("tests"), {"email": email, "role": "account_manager", "name": "Ada"}
        )
    provider.set_user(sub, email=email, email_verified=True, name="Ada Lovelace")

    # Sign in: the tenant list sends us to the sign-in page, single sign-on to the provider.
    await page.goto(f"{live.url}/tenants")
    await expect(page).to_have_url(f"{live.url}/login?next=/tenants")
    await page.click("#sso")
    await expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    assert page.url.startswith(provider.issuer)
    await page.fill('input[name="sub"]', sub)
    await page.get_by_role("button", name="Authorize").click()
    await expect(page).to_have_url(f"{live.url}/tenants")
    await expect(page.locator("header .who")).to_have_text(f"{email} · account_manager")

    # Create a tenant: first with bad fields, each error shown beside its field, the input kept.
    slug = f"acme-{uuid.uuid4().hex[:6]}"
    await page.fill('[id="tenant-slug"]', "Bad Slug!")
    await page.fill('[id="tenant-name"]', "Acme Apparel EU")
    await page.fill('[id="tenant-home_region"]', "mars")
    await page.fill('[id="tenant-timezone"]', "Europe/Atlantis")
    await page.fill('[id="tenant-currency"]', "EURO")
    await page.fill('[id="tenant-markets"]', "DE XX")
    await page.click("#create-tenant")
    await expect(page.get_by_role("heading", name="Onboard a merchant")).to_be_visible()
    assert "lower-case letters, digits and inner hyphens" in await error_beside(page, "tenant-slug")
    assert "registry" in await error_beside(page, "tenant-home_region")
    assert "'Europe/Atlantis' is not an IANA time zone" in await error_beside(page, "tenant-timezone")
    assert "'EURO' is not an ISO 4217 currency code" in await error_beside(page, "tenant-currency")
    assert "XX" in await error_beside(page, "tenant-markets")
    await expect(page.locator('[id="tenant-name"]')).not_to_have_attribute("aria-invalid", "true")
    await expect(page.locator('[id="tenant-timezone"]')).to_have_value("Europe/Atlantis")
    await page.screenshot(path=str(output_dir / "onboarding-errors.png"), full_page=True)

    await page.fill('[id="tenant-slug"]', slug)
    await page.fill('[id="tenant-home_region"]', "eu")
    await page.fill('[id="tenant-timezone"]', "Europe/Berlin")
    await page.fill('[id="tenant-currency"]', "EUR")
    await page.fill('[id="tenant-markets"]', "DE FR ES")
    await page.click("#create-tenant")
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}")
    await expect(page.locator("#tenant-status")).to_have_text("onboarding")
    for item in ("contract", "residency", "integration", "api_key"):
        await expect(page.locator(f'.checklist li[data-item="{item}"]')).to_have_class("todo")

    # Contract: a rate above 1 and a negative price are named beside their fields, then corrected.
    await page.fill('[id="contract-effective_from"]', "2026-10-01")
    await page.fill('[id="contract-ai_resolved.unit_price"]', "-1.40")
    await page.fill('[id="contract-human_resolved.unit_price"]', "5.20")
    await page.fill('[id="contract-minimum_monthly_fee"]', "5000.00")
    await page.fill('[id="contract-deflection_floor"]', "1.70")
    await page.fill('[id="contract-csat_target"]', "0.87")
    await page.click("#add-contract")
    assert "greater than 0" in await error_beside(page, "contract-ai_resolved.unit_price")
    assert "less than or equal to 1" in await error_beside(page, "contract-deflection_floor")
    await expect(page.locator('[id="contract-human_resolved.unit_price"]')).to_have_value("5.20")
    await expect(page.locator('.checklist li[data-item="contract"]')).to_have_class("todo")
    await page.fill('[id="contract-ai_resolved.unit_price"]', "1.40")
    await page.fill('[id="contract-deflection_floor"]', "0.70")
    await page.click("#add-contract")
    await expect(page.locator('.checklist li[data-item="contract"]')).to_have_class("done")
    await expect(page.locator("#contract-versions tbody tr")).to_have_count(1)
    await expect(page.locator("#contract-versions tbody tr").first).to_contain_text("v1")
    await expect(page.locator("#contract-versions tbody tr").first).to_contain_text("2026-10-01")

    # Residency: every market in the EU cell.
    await page.fill("#residency-markets", "DE=eu\nFR=eu\nES=eu")
    await page.click("#save-residency")
    await expect(page.locator('.checklist li[data-item="residency"]')).to_have_class("done")
    await expect(page.locator("#residency-cells")).to_contain_text("DE, ES, FR")

    # Integration: its credential is written, never shown again.
    await page.select_option("#integration-kind", "shopify")
    await page.fill('[id="integration-name"]', "Shopify EU store")
    await page.select_option("#integration-processing_region", "eu")
    await page.fill("#integration-credentials", f"access_token={CREDENTIAL}")
    await page.click("#add-integration")
    await expect(page.locator('.checklist li[data-item="integration"]')).to_have_class("done")
    await expect(page.locator("#integrations")).to_contain_text("Shopify EU store")
    assert CREDENTIAL not in await page.content()

    # API key: the secret is shown once, on the answer to the form, and never again.
    await page.fill('[id="api_key-label"]', "Helpdesk ingest")
    await page.click("#issue-key")
    secret = (await page.locator("#new-secret").inner_text()).strip()
    assert secret.startswith("bpo_live_") and len(secret) > 40
    await expect(page.locator('.checklist li[data-item="api_key"]')).to_have_class("done")
    await page.goto(f"{live.url}/tenants/{slug}")
    await expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in await page.content()
    await expect(page.locator("#api-keys")).to_contain_text(secret.split("_")[2])

    # Activate.
    await page.select_option("#status-to", "active")
    await page.click("#change-status")
    await expect(page.locator("#tenant-status")).to_have_text("active")
    for item in ("contract", "residency", "integration", "api_key"):
        await expect(page.locator(f'.checklist li[data-item="{item}"]')).to_have_class("done")

    shot = output_dir / "onboarding.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    async with dbs.control_session() as session:
        tenant = await session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        assert tenant.status == "active"
        integration = await session.scalar(sa.select(Integration).where(Integration.tenant_id == tenant.id))
        assert integration.kind == "shopify" and integration.processing_region == "eu"
