"""An account manager, in Debian's Chromium, configures a tenant's SLA on its settings page: business
hours, an excluded window added then withdrawn, an endpoint for SLA alerts on the Webhooks page; then
the SLA tab's downloads. Every step goes through the page's forms by their labels; the last page is saved as
``test-output/sla-settings.png``."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import expect

from control_plane.auth import Principal
from tenants import service as tenants
from tests.browser.conftest import password_user, sign_in_with_password

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_an_account_manager_sets_hours_windows_and_the_webhook(settings, live, dbs, keyring, page, output_dir):
    slug = f"slas-{uuid.uuid4().hex[:6]}"
    async with dbs.control_transaction() as session:
        spec = {"slug": slug, "name": "Brisk Outfitters", "home_region": "eu", "timezone": "Europe/Berlin"}
        spec |= {"currency": "EUR", "markets": ["DE"]}
        staff = Principal("user", "am@bpo.test", "account_manager")
        await tenants.create_tenant(session, staff, spec, regions=settings.regions, keyring=keyring)
    email, password = await password_user(dbs, "account_manager")
    settings_path = f"/tenants/{slug}/settings"
    await sign_in_with_password(page, live.url, email, password, settings_path)
    await expect(page).to_have_url(f"{live.url}{settings_path}")
    await expect(page.locator("nav.tabs a.current")).to_have_text("Settings")
    await expect(page.locator("#timezone")).to_have_text("Europe/Berlin")

    # Business hours: weekdays 09:00-17:00, the weekend closed, a holiday.
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        await page.get_by_label(f"{day} opens", exact=True).fill("09:00")
        await page.get_by_label(f"{day} closes", exact=True).fill("17:00")
    for day in ("Saturday", "Sunday"):
        await page.get_by_label(f"{day} closed", exact=True).check()
    await page.get_by_label("Holidays").fill("2026-12-25")
    await page.get_by_role("button", name="Save business hours").click()
    await expect(page.locator(".flash")).to_have_text("Business hours saved")
    await expect(page.get_by_label("Monday opens", exact=True)).to_have_value("09:00")
    await expect(page.get_by_label("Sunday closed", exact=True)).to_be_checked()

    # An excluded window: first a reason too short (the error beside it, the days kept), then added.
    await page.get_by_label("First day").fill("2026-10-10")
    await page.get_by_label("Last day").fill("2026-10-11")
    await page.get_by_label("Cause").select_option("client_outage")
    await page.get_by_label("Reason").fill("x")
    await page.get_by_role("button", name="Add excluded window").click()
    await expect(page.locator("#window-reason-error")).to_have_text("The reason needs at least 3 characters.")
    await expect(page.get_by_label("First day")).to_have_value("2026-10-10")
    await page.get_by_label("Reason").fill("Shop platform down for two days")
    await page.get_by_role("button", name="Add excluded window").click()
    await expect(page.locator(".flash")).to_have_text("Excluded window added: its days no longer count in the SLA")
    row = page.locator("#windows-table tr.in-force")
    await expect(row).to_contain_text("Shop platform down for two days")

    # Withdrawn after the confirmation step.
    await row.get_by_text("Withdraw…").click()
    await expect(row.get_by_text("Withdraw the window 2026-10-10 \u2013 2026-10-11?")).to_be_visible()
    await row.get_by_role("button", name="Withdraw window").click()
    await expect(page.locator(".flash")).to_have_text("Excluded window withdrawn: its days count in the SLA again")
    await expect(page.locator("#windows-table tr.withdrawn")).to_contain_text("Withdrawn")
    await expect(page.locator("#windows-table tr.in-force")).to_have_count(0)

    # Alerts go to webhook endpoints: the section links to the Webhooks page, where one subscribes to them.
    await page.get_by_role("link", name="Manage webhook endpoints").click()
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/webhooks")
    await page.get_by_label("Endpoint URL").fill("https://hooks.example.com/sla")
    await page.get_by_label("sla.at_risk").check()
    await page.get_by_label("sla.breached").check()
    await page.get_by_role("button", name="Add endpoint").click()
    secret = await page.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_")
    await page.get_by_role("link", name="All endpoints").click()
    await expect(page.locator("#endpoints-table")).to_contain_text("sla.at_risk, sla.breached")
    assert secret not in await page.content()
    await page.locator("nav.tabs").get_by_role("link", name="Settings").click()

    # The SLA tab, and its downloads from this browser session.
    await page.locator("nav.tabs").get_by_role("link", name="SLA").click()
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/sla")
    await expect(page.locator("nav.tabs a.current")).to_have_text("SLA")
    for link, kind in (("CSV", "text/csv"), ("PDF", "application/pdf")):
        href = await page.get_by_role("link", name=link, exact=True).get_attribute("href")
        resp = await page.request.get(f"{live.url}{href}")
        assert resp.status == 200 and resp.headers["content-type"].startswith(kind), href
    await expect(page.locator("header").get_by_role("link", name="SLA alerts")).to_be_visible()

    await page.locator("nav.tabs").get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("link", name="Manage webhook endpoints")).to_be_visible()
    await page.screenshot(path=str(output_dir / "sla-settings.png"), full_page=True)

    # Usable on a phone: at 390 px the page and the week of business hours fit the screen.
    await page.set_viewport_size({"width": 390, "height": 900})
    await page.reload()
    await page.screenshot(path=str(output_dir / "sla-settings-390.png"), full_page=True)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    hours = page.locator("#hours .table-wrap")
    assert await hours.evaluate("e => e.scrollWidth <= e.clientWidth"), "the business hours need a sideways scroll"
