"""A merchant, in Debian's Chromium, checks what it is billed for: on its Invoices tab the running
month's estimate card (labelled an estimate, so far and projected), then last month's invoice and its
itemised usage downloaded as CSV, whose rows per resolution are the invoice's quantities. The page is
saved as ``test-output/merchant-billing.png``."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from billing.invoices import service as invoices
from billing.metering.service import ingest_contacts
from control_plane.database import utcnow
from tests.billing.conftest import UNTAXED_PROFILE, contact
from tests.browser.conftest import password_user, sign_in_with_password
from tests.browser.test_billing_journey import STAFF, ZONE, _last_month_contacts, berlin_tenant

pytestmark = pytest.mark.browser


def _this_month_contacts(n: int) -> list[dict]:
    """``n`` AI-resolved contacts opened earlier this month (local time), an hour ago at the latest."""
    now = datetime.now(ZoneInfo(ZONE))
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    latest = max(first, now - timedelta(hours=1))
    return [contact(opened=first + (latest - first) * i / n) for i in range(n)]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_merchant_reads_the_estimate_and_the_itemised_usage_of_its_invoice(
    settings, live, dbs, keyring, page, output_dir
):
    slug, name = f"est-{uuid.uuid4().hex[:6]}", "Estimate Outfitters"
    await berlin_tenant(settings, dbs, keyring, slug, name, UNTAXED_PROFILE)
    period, last_month = _last_month_contacts()
    running = _this_month_contacts(8)
    result = await ingest_contacts(dbs, keyring, None, slug, last_month + running)
    assert not result.rejected and result.accepted == len(last_month) + len(running), result.rejected[:3]
    async with dbs.control_transaction() as session:
        draft, _changed = await invoices.draft_invoice(session, STAFF, slug, period, now=utcnow())
        invoice = await invoices.finalize_invoice(session, STAFF, draft.id, now=utcnow())
        number = invoice.number
        usage = [line for line in invoice.lines if line.kind.endswith("_resolved")]
        quantities, charges = {line.kind: line.quantity for line in usage}, {line.description for line in usage}
    assert quantities == {"ai_resolved": 30, "human_resolved": 10}

    email, password = await password_user(dbs, "merchant_viewer", slug)
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}/invoices")
    await expect(page.get_by_role("heading", name=f"{name} · invoices")).to_be_visible()

    # The running month: an estimate, said so, with what was billed so far and the month-end projection.
    card = page.locator("#estimate")
    this_month = f"{datetime.now(ZoneInfo(ZONE)):%Y-%m}"
    await expect(card.get_by_role("heading")).to_have_text(f"Estimate for {this_month} (running month)")
    await expect(card).to_contain_text("Estimate, not an invoice.")
    await expect(card.locator("#estimate-lines")).to_contain_text("AI-resolved contacts")
    so_far = await card.locator('[data-estimate="so-far"]').inner_text()
    assert so_far.startswith("€") and so_far != "€0.00", so_far
    await page.screenshot(path=str(output_dir / "merchant-billing.png"), full_page=True)

    # Last month's invoice, and every billed contact behind it.
    await page.get_by_role("link", name=f"View invoice {number}").click()
    await expect(page.locator("#invoice-number")).to_have_text(number)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Itemised usage (CSV, every billed contact)").click()
    download = await download_info.value
    rows = list(csv.DictReader(io.StringIO((await download.path()).read_text(encoding="utf-8"))))
    assert Counter(row["resolution"] for row in rows) == Counter(quantities)
    assert {row["charge"] for row in rows} == charges and "customer_ref" not in rows[0]
    assert download.suggested_filename.endswith(".csv")
