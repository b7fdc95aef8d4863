"""An account manager, in Debian's Chromium, deals with an overdue invoice: the dunning job (run with
a clock 40 days on) made a merchant's invoice overdue and suspended the merchant. From Drafts in the
header they switch to the overdue filter, see the invoice with its badge, open it, read the dunning
steps, and override the suspension (an empty reason first, shown beside its field); the merchant is
active again. The last page is saved as ``test-output/dunning-journey.png``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.async_api import expect

from billing.finance import service as finance
from billing.invoices import service as invoices
from billing.invoices.dunning import run_dunning
from billing.metering.service import ingest_contacts
from compliance.service import SystemActor
from control_plane.auth import Principal
from control_plane.database import utcnow
from tenants import service as tenants
from tenants.demo import CONTRACT
from tenants.models import Tenant
from tests.billing.conftest import UNTAXED_PROFILE
from tests.browser.conftest import password_user, sign_in_with_password
from tests.browser.test_billing_journey import ZONE, _last_month_contacts

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_an_account_manager_finds_an_overdue_invoice_and_overrides_the_suspension(
    settings, live, dbs, keyring, page, output_dir
):
    slug, name = f"dun-{uuid.uuid4().hex[:6]}", "Tardy Textiles"
    staff = Principal("user", "am@bpo.test", "account_manager")
    dunning = {"reminders_days": [-3, 7], "suspend_after_days": 30}
    terms = CONTRACT | {"currency": "EUR", "effective_from": "2020-01-01", "reopen_window_hours": 0,
                        "late_grace_hours": 0, "dunning": dunning}  # fmt: skip
    async with dbs.control_transaction() as session:
        spec = {"slug": slug, "name": name, "home_region": "eu", "timezone": ZONE, "currency": "EUR", "markets": ["DE"]}
        await tenants.create_tenant(session, staff, spec, regions=settings.regions, keyring=keyring)
        await tenants.add_contract_version(session, staff, slug, terms)
        await tenants.set_residency(
            session, staff, slug, {"markets": {"DE": "eu"}}, regions=settings.regions, today=utcnow().date()
        )
        await finance.put_profile(session, staff, slug, UNTAXED_PROFILE, now=utcnow())
        await session.execute(sa.update(Tenant).where(Tenant.slug == slug).values(status="active"))  # onboarded
    period, contacts = _last_month_contacts()
    result = await ingest_contacts(dbs, keyring, None, slug, contacts)
    assert not result.rejected
    async with dbs.control_transaction() as session:
        draft, _ = await invoices.draft_invoice(session, SystemActor("tests"), slug, period, now=utcnow())
        invoice = await invoices.finalize_invoice(session, SystemActor("tests"), draft.id, now=utcnow())
    # Net 30: 70 days on, the invoice is 40 days overdue, past the 30 after which the tenant is suspended.
    await run_dunning(dbs, now=utcnow() + timedelta(days=70))

    email, password = await password_user(dbs, "account_manager")
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}")
    await expect(page.locator("#tenant-status")).to_have_text("suspended")

    # Drafts in the header, then the overdue filter: the invoice with its badge.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Drafts").click()
    await page.get_by_role("navigation", name="Invoice filter").get_by_role("link", name="Overdue").click()
    await expect(page.get_by_role("heading", name="Overdue invoices")).to_be_visible()
    row = page.locator("#payment-invoices tr").filter(has_text=slug)
    await expect(row.locator(".badge")).to_have_text("overdue")
    await row.get_by_role("link", name=invoice.number).click()

    # The invoice page: its payment badge and the dunning steps the job took.
    await expect(page.locator("#invoice-payment-status")).to_have_text("overdue")
    steps = page.locator("#dunning-steps")
    await expect(steps.locator('tr[data-step="suspend"]')).to_contain_text("tenant suspended")
    await expect(steps.locator('tr[data-step="reminder:7"]')).to_contain_text("e-mail: overdue")

    # Override, through its confirmation step: a reason is required.
    await page.get_by_role("button", name="Override suspension").click()
    await expect(
        page.get_by_role("heading", name=f"Override the suspension for invoice {invoice.number}?")
    ).to_be_visible()
    await page.get_by_role("button", name="Confirm: override suspension").click()
    reason = page.get_by_label("Reason")
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(page.locator('[id="suspension-override-reason-error"]')).to_have_text("Say why, in a few words.")
    await reason.fill("Payment promised by Friday")
    await page.get_by_role("button", name="Confirm: override suspension").click()
    await expect(page.get_by_role("status")).to_have_text("Suspension overridden: the tenant is active again")
    await expect(page.locator('#dunning-steps tr[data-step="suspend"]')).to_contain_text(
        f"suspension overridden by user:{email}: Payment promised by Friday"
    )
    await expect(page.get_by_role("button", name="Override suspension")).to_have_count(0)

    # The tenant's Invoices tab has the same filter; the tenant is active again.
    await page.get_by_role("navigation", name="Tenant").get_by_role("link", name="Invoices").click()
    await page.get_by_role("navigation", name="Payment filter").get_by_role("link", name="Overdue").click()
    await expect(page.locator(f'#invoices tr[data-invoice="{invoice.id}"] .badge')).to_have_text("overdue")
    await page.screenshot(path=str(output_dir / "dunning-journey.png"), full_page=True)
    await page.goto(f"{live.url}/tenants/{slug}")
    await expect(page.locator("#tenant-status")).to_have_text("active")
