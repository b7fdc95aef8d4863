"""Journeys 1 and 4, in Debian's Chromium.

1. An account manager invites a merchant from the tenant's Users tab; the merchant, on a 390 px
   phone, follows the link, sets a password, signs in, lands on its own tenant, reads its SLA report,
   downloads the PDF, and gets an HTML 404 for another tenant.
4. Sign-out ends the session (the cookie copied before is refused afterwards); six wrong passwords
   lead to 429. Each browser context sends its own ``X-Forwarded-For`` (uvicorn trusts it from
   loopback, as from a proxy), so the throttle's per-address count is this journey's own.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from billing.metering.service import ingest_contacts
from tests.browser.conftest import new_page, password_user, sign_in_with_password
from tests.browser.test_sla import _last_month_contacts, _merchant_tenant

pytestmark = pytest.mark.browser
PASSWORD = "a long merchant passphrase 7"


async def fits(tab: Page, width: int) -> None:
    """Nothing on the page is wider than the screen: no sideways scrolling."""
    wide = await tab.evaluate(
        """w => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > w + 1).slice(0, 5)
            .map(e => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)""",
        width,
    )
    assert await tab.evaluate("document.documentElement.scrollWidth") <= width, wide


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_journey_1_an_invited_merchant_reads_its_sla_report(
    settings, live, dbs, keyring, page: Page, chromium: Browser, output_dir
):
    slug, other = f"j1-{uuid.uuid4().hex[:6]}", f"j1o-{uuid.uuid4().hex[:6]}"
    async with dbs.control_transaction() as session:
        await _merchant_tenant(session, settings, keyring, slug, "Brisk Outfitters")
        await _merchant_tenant(session, settings, keyring, other, "Other Merchant")
    period, contacts = _last_month_contacts()
    assert (await ingest_contacts(dbs, keyring, None, slug, contacts)).accepted == len(contacts)

    # The account manager invites the merchant from the tenant's Users tab.
    manager, password = await password_user(dbs, "account_manager")
    await sign_in_with_password(page, live.url, manager, password, f"/tenants/{slug}")
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}")
    await page.locator('nav.tabs a[data-tab="users"]').click()
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/users")
    merchant = f"ma-{uuid.uuid4().hex[:8]}@brisk.example.com"
    await page.get_by_label("Email").fill(merchant)
    await page.get_by_label("Name").fill("Mia Merchant")
    await page.get_by_label("Role", exact=True).select_option("merchant_admin")
    await page.get_by_role("button", name="Invite").click()
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/users")
    notice = await page.locator(".flash.invitation").inner_text()
    url = re.search(r"http://\S+/invitations/[\w-]+", notice).group(0)
    await expect(page.locator(f'#users tr[data-user="{merchant}"] .status')).to_have_text("invited")

    # The merchant, on a phone, follows the link and sets a password.
    phone = await new_page(chromium, width=390)
    await phone.goto(url)
    await expect(phone.locator("#account-email")).to_have_text(merchant)
    await phone.get_by_label("Password", exact=True).fill("short")
    await phone.get_by_label("Confirm password").fill("short")
    await phone.get_by_role("button", name="Set password").click()
    await expect(phone.locator("#new-password-error")).to_contain_text("at least 12 characters")
    await phone.get_by_label("Password", exact=True).fill(PASSWORD)
    await phone.get_by_label("Confirm password").fill(PASSWORD)
    await phone.get_by_role("button", name="Set password").click()
    await expect(phone.locator(".flash")).to_contain_text("Your password is set")
    await expect(phone.get_by_label("Email")).to_have_value(merchant)
    await phone.get_by_label("Password", exact=True).fill(PASSWORD)
    await phone.get_by_role("button", name="Sign in", exact=True).click()

    # It lands on its own tenant, and reads its SLA report from the tab.
    await expect(phone).to_have_url(f"{live.url}/tenants/{slug}")
    await expect(phone.locator("header .who")).to_contain_text(f"{merchant} · merchant_admin")
    await fits(phone, 390)
    await phone.locator('nav.tabs a[data-tab="sla"]').click()
    await phone.fill("#period", period)
    await phone.click("#month-selector button[type=submit]")
    await expect(phone.locator("h1")).to_have_text(f"Brisk Outfitters · SLA {period}")
    await expect(phone.locator("#m-opened")).to_have_text(str(len(contacts)))
    async with phone.expect_download() as info:
        await phone.click("#download-pdf")
    download = await info.value
    assert download.suggested_filename == f"sla-{slug}-{period}.pdf"
    pdf = output_dir / "journey-1-sla.pdf"
    await download.save_as(pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"

    # Another tenant's page is an HTML 404 page, with the merchant's navigation.
    response = await phone.goto(f"{live.url}/tenants/{other}/sla?period={period}")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    await expect(phone.get_by_role("heading", name="Not found")).to_be_visible()
    assert "Other Merchant" not in await phone.content()
    await phone.goto(f"{live.url}/tenants/{slug}/sla?period={period}")
    await phone.screenshot(path=str(output_dir / "journey-1.png"), full_page=True)
    await phone.context.close()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_journey_4_sign_out_ends_the_session_and_six_wrong_passwords_are_429(
    settings, live, dbs, chromium: Browser, output_dir
):
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    context = await chromium.new_context(extra_http_headers={"X-Forwarded-For": address}, locale="en-GB")
    tab = await context.new_page()
    tab.set_default_timeout(15_000)
    officer, password = await password_user(dbs, "compliance_officer")
    await sign_in_with_password(tab, live.url, officer, password, "/compliance")
    await expect(tab).to_have_url(f"{live.url}/compliance")
    copied = await context.cookies()

    await tab.get_by_role("button", name="Sign out").click()
    await expect(tab).to_have_url(f"{live.url}/login")
    thief = await chromium.new_context(extra_http_headers={"X-Forwarded-For": address})
    await thief.add_cookies(copied)
    stolen = await thief.new_page()
    await stolen.goto(f"{live.url}/compliance")
    await expect(stolen).to_have_url(f"{live.url}/login?next=/compliance")
    assert (await stolen.request.get(f"{live.url}/api/v1/me")).status == 401
    await thief.close()

    statuses = []
    for _ in range(6):
        await tab.get_by_label("Email").fill(officer)
        await tab.get_by_label("Password", exact=True).fill("not my password at all")
        async with tab.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as info:
            await tab.get_by_role("button", name="Sign in", exact=True).click()
        statuses.append((await info.value).status)
    assert statuses == [401, 401, 401, 401, 401, 429]
    await expect(tab.locator("#login-error")).to_contain_text("Too many failed sign-ins")
    # Locked: the right password is refused too, until the lock ends.
    await tab.get_by_label("Email").fill(officer)
    await tab.get_by_label("Password", exact=True).fill(password)
    async with tab.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as info:
        await tab.get_by_role("button", name="Sign in", exact=True).click()
    refused = await info.value
    assert refused.status == 429 and int(await refused.header_value("retry-after")) > 0
    await tab.screenshot(path=str(output_dir / "journey-4.png"), full_page=True)
    await context.close()
