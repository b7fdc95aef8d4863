"""An account manager, in Debian's Chromium, bills a merchant's month: from the tenant's Invoices tab
they draft last month, go to Drafts from the header, finalize with the confirmation step, issue a
credit note on the invoice page (a bad amount first, shown beside its field) and read the balance
after it. The last page is saved as ``test-output/billing-journey.png``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from billing.finance import service as finance
from billing.metering.service import ingest_contacts
from billing.money import format_money
from control_plane.auth import Principal
from control_plane.database import utcnow
from tenants import service as tenants
from tenants.demo import CONTRACT
from tests.billing.conftest import UNTAXED_PROFILE, contact
from tests.browser.conftest import password_user, sign_in_with_password

pytestmark = pytest.mark.browser

ZONE = "Europe/Berlin"
CREDIT = Decimal("150.00")


def _last_month_contacts() -> tuple[str, list[dict]]:
    """Last month in Berlin: 40 contacts over ten days, one in four resolved by a human."""
    zone = ZoneInfo(ZONE)
    first = datetime.now(zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    out = []
    for i in range(40):
        opened = start + timedelta(days=i // 4, hours=9 + i % 4)
        if i % 4 == 3:
            handoff = (opened + timedelta(minutes=1)).isoformat()
            out.append(contact(opened=opened, resolution="human_resolved", handoff_at=handoff))
        else:
            out.append(contact(opened=opened))
    return f"{start:%Y-%m}", out


STAFF = Principal("user", "am@bpo.test", "account_manager")


async def berlin_tenant(settings, dbs, keyring, slug: str, name: str, profile: dict | None = None) -> None:
    """A Berlin/EUR tenant routed to the eu cell, its contracts settling at once (no reopen window, no
    grace: last month can be drafted on any day), with ``profile`` as its billing profile if given."""
    terms = CONTRACT | {"currency": "EUR", "effective_from": "2020-01-01", "reopen_window_hours": 0,
                        "late_grace_hours": 0}  # fmt: skip
    async with dbs.control_transaction() as session:
        spec = {"slug": slug, "name": name, "home_region": "eu", "timezone": ZONE, "currency": "EUR", "markets": ["DE"]}
        await tenants.create_tenant(session, STAFF, spec, regions=settings.regions, keyring=keyring)
        await tenants.add_contract_version(session, STAFF, slug, terms)
        await tenants.set_residency(
            session, STAFF, slug, {"markets": {"DE": "eu"}}, regions=settings.regions, today=utcnow().date()
        )
        if profile is not None:
            await finance.put_profile(session, STAFF, slug, profile, now=utcnow())


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_an_account_manager_drafts_finalizes_and_credits_an_invoice(
    settings, live, dbs, keyring, page, output_dir
):
    slug, name = f"bill-{uuid.uuid4().hex[:6]}", "Brisk Outfitters"
    await berlin_tenant(settings, dbs, keyring, slug, name, UNTAXED_PROFILE)
    period, contacts = _last_month_contacts()
    result = await ingest_contacts(dbs, keyring, None, slug, contacts)
    assert not result.rejected and result.accepted == len(contacts), result.rejected[:3]

    email, password = await password_user(dbs, "account_manager")
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(name)

    # The tenant's Invoices tab: the form offers last month; drafting it opens the draft.
    await page.get_by_role("navigation", name="Tenant").get_by_role("link", name="Invoices").click()
    await expect(page.get_by_role("heading", name=f"{name} · invoices")).to_be_visible()
    await expect(page.get_by_label("Period (YYYY-MM)")).to_have_value(period)
    await page.get_by_role("button", name="Draft invoice").click()
    await expect(page.get_by_role("status")).to_contain_text(f"Invoice of {period} drafted: total €")
    await expect(page.locator("#invoice-status")).to_have_text("draft")
    total = Decimal(await page.locator("#invoice-total").get_attribute("data-amount"))
    assert total > 0

    # Drafts, from the header: finalize, through its confirmation step.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Drafts").click()
    await expect(page.get_by_role("heading", name="Drafts awaiting finalization")).to_be_visible()
    card = page.locator(".draft").filter(has_text=f"{slug} · {period}")
    await card.get_by_role("button", name="Finalize").click()
    await expect(page.get_by_role("heading", name=f"Finalize invoice {period} for {name}?")).to_be_visible()
    await page.get_by_role("button", name="Confirm: finalize invoice").click()
    await expect(page.get_by_role("status")).to_contain_text("Invoice INV-")
    await expect(page.get_by_role("status")).to_contain_text("finalized")
    number = (await page.locator("#invoice-number").inner_text()).strip()
    await expect(page.get_by_role("status")).to_have_text(f"Invoice {number} finalized")
    await expect(page.locator("#invoice-status")).to_have_text("finalized")

    # A credit note on the invoice page: a bad amount is shown beside its field, then the right one.
    amount = page.get_by_label("Amount (EUR)")
    await amount.fill("a lot")
    await page.get_by_label("Reason").fill("Goodwill for the delayed launch")
    await page.get_by_role("button", name="Issue credit note").click()
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(page.locator('[id="credit-amount-error"]')).to_have_text('A decimal string such as "120.00".')
    await expect(page.get_by_label("Reason")).to_have_value("Goodwill for the delayed launch")
    await amount.fill(str(CREDIT))
    await page.get_by_role("button", name="Issue credit note").click()
    await expect(page.get_by_role("status")).to_contain_text("Credit note CN-")
    await expect(page.locator("#invoice-credit-notes")).to_contain_text("Goodwill for the delayed launch")
    balance = total - CREDIT
    await expect(page.locator("#invoice-balance")).to_have_text(format_money(balance, "EUR"))
    await expect(page.locator("#invoice-balance")).to_have_attribute("data-amount", f"{balance:.2f}")
    await page.screenshot(path=str(output_dir / "billing-journey.png"), full_page=True)

    # On a 390 px phone the invoice page still fits: wide tables scroll inside their cards.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(output_dir / "billing-journey-390.png"), full_page=True)
