"""Browser journey: an account manager opens a tenant's Invoices tab, follows "Billing profile", types
a German VAT ID that does not check out (the error sits beside the field, the typed values stay),
corrects it and saves; the profile is then complete. The last page is saved as
``test-output/billing-profile.png``."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import expect

from control_plane.auth import Principal
from tenants import service as tenants
from tenants.demo import CONTRACT
from tests.browser.conftest import password_user, sign_in_with_password

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_an_account_manager_completes_a_billing_profile(settings, live, dbs, keyring, page, output_dir):
    slug, name = f"prof-{uuid.uuid4().hex[:6]}", "Brisk Outfitters"
    staff = Principal("user", "am@bpo.test", "account_manager")
    async with dbs.control_transaction() as session:
        spec = {"slug": slug, "name": name, "home_region": "eu", "timezone": "Europe/Berlin", "currency": "EUR",
                "markets": ["DE"]}  # fmt: skip
        await tenants.create_tenant(session, staff, spec, regions=settings.regions, keyring=keyring)
        await tenants.add_contract_version(session, staff, slug, CONTRACT | {"currency": "EUR"})

    email, password = await password_user(dbs, "account_manager")
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}")
    await page.get_by_role("navigation", name="Tenant").get_by_role("link", name="Invoices").click()
    await page.get_by_role("link", name="Billing profile").click()
    await expect(page.get_by_role("heading", name=f"{name} · billing profile")).to_be_visible()
    await expect(page.locator("#profile-missing")).to_contain_text("cannot be finalized")

    await page.get_by_label("Legal name").fill("Brisk Outfitters GmbH")
    await page.get_by_label("Address line 1").fill("Friedrichstraße 1")
    await page.get_by_label("Postal code").fill("10117")
    await page.get_by_label("City").fill("Berlin")
    await page.get_by_label("Country (ISO 3166 code)").fill("DE")
    await page.get_by_label("Tax ID (optional)").fill("DE123456789")
    await page.get_by_label("Billing e-mails (comma-separated)").fill("ap@brisk.example")
    await page.get_by_role("button", name="Save billing profile").click()

    tax_id = page.get_by_label("Tax ID (optional)")
    await expect(tax_id).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#profile-tax_id-error")).to_contain_text("EU VAT number of DE")
    await expect(page.get_by_label("Legal name")).to_have_value("Brisk Outfitters GmbH")

    await tax_id.fill("DE136695976")
    await page.get_by_role("button", name="Save billing profile").click()
    await expect(page.get_by_role("status")).to_contain_text("Billing profile saved")
    await expect(page.locator("#profile-complete")).to_be_visible()
    await expect(page.get_by_label("Tax ID (optional)")).to_have_value("DE136695976")
    await page.screenshot(path=str(output_dir / "billing-profile.png"), full_page=True)
