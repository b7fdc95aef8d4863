"""An account manager, in Debian's Chromium, records a tenant's transfer mechanisms one at a time:
an expired one is refused beside its date with what was typed kept, two are kept side by side, a
US-hosted helpdesk can then be added, and revoking the mechanism it depends on is refused with its
name. The last page, at phone width, is saved as ``test-output/residency.png``."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from playwright.async_api import Browser, expect

from control_plane.auth import Principal
from tests.browser.conftest import new_page, password_user, sign_in_with_password

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_mechanisms_are_added_one_by_one_and_one_in_use_is_kept(
    settings, live, dbs, keyring, chromium: Browser, output_dir
):
    from tenants import service as tenants

    slug = f"res-{uuid.uuid4().hex[:6]}"
    async with dbs.control_transaction() as session:
        spec = {"slug": slug, "name": "Acme Global", "home_region": "eu", "timezone": "Europe/Berlin",
                "currency": "EUR", "markets": ["DE", "FR", "CN"]}  # fmt: skip
        await tenants.create_tenant(
            session, Principal("user", "am@bpo.test", "account_manager"), spec, regions=settings.regions,
            keyring=keyring,
        )  # fmt: skip
    email, password = await password_user(dbs, "account_manager")
    page = await new_page(chromium, width=390)
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}")
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}")
    valid = (date.today() + timedelta(days=365)).isoformat()

    # GDPR SCCs for every GDPR market, first with a date in the past.
    await page.get_by_text("Add a mechanism").click()
    await page.get_by_label("Mechanism", exact=True).select_option("GDPR:sccs")
    await page.get_by_label("To region").select_option("us")
    await page.get_by_label("Reference").fill("SCC-2026-7")
    await page.get_by_label("Valid until").fill("2020-01-31")
    await page.get_by_role("button", name="Add mechanism").click()
    error = page.locator('[id="mechanism-valid_until-error"]')
    await expect(error).to_contain_text("expired on 2020-01-31")
    await expect(page.get_by_label("Reference")).to_have_value("SCC-2026-7")
    await expect(page.get_by_label("To region")).to_have_value("us")
    await page.get_by_label("Valid until").fill(valid)
    await page.get_by_role("button", name="Add mechanism").click()
    await expect(page.get_by_role("status").filter(has_text="Transfer mechanism recorded")).to_be_visible()

    # The PIPL standard contract for CN: the first mechanism stays.
    await page.get_by_text("Add a mechanism").click()
    await page.get_by_label("Mechanism", exact=True).select_option("PIPL:standard_contract")
    await page.get_by_label("Market", exact=True).select_option("CN")
    await page.get_by_label("To region").select_option("us")
    await page.get_by_label("Reference").fill("CAC filing 2026-0113")
    await page.get_by_label("Valid until").fill(valid)
    await page.get_by_role("button", name="Add mechanism").click()
    rows = page.locator("#transfer-mechanisms tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("SCC-2026-7")
    await expect(rows.nth(1)).to_contain_text("CAC filing 2026-0113")

    # Now a US-hosted helpdesk is lawful for both cells.
    await page.select_option("#integration-kind", "gorgias")
    await page.fill('[id="integration-name"]', "Gorgias helpdesk")
    await page.fill("#integration-credentials", "api_key=g-secret")
    await page.get_by_role("button", name="Add integration").click()
    await expect(page.locator("#integrations")).to_contain_text("Gorgias helpdesk")

    # Revoking the PIPL contract would strand the helpdesk: asked to confirm, then refused by name.
    pipl = rows.filter(has_text="CAC filing 2026-0113")
    await expect(pipl).to_contain_text("Gorgias helpdesk")  # the "depends on it" column
    await pipl.get_by_text("Revoke", exact=True).click()
    await pipl.get_by_role("button", name="Confirm: revoke").click()
    alert = page.locator('[data-section="mechanisms"]')
    await expect(alert).to_contain_text("Gorgias helpdesk")
    await expect(rows).to_have_count(2)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # usable on a phone: wide tables scroll inside their card
    await page.screenshot(path=str(output_dir / "residency.png"), full_page=True)
    await page.context.close()
