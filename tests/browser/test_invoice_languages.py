"""A merchant's accounts-payable reader, in Debian's Chromium, switches the invoice to its document
language: from the invoice page they pick Deutsch (German labels, ``1.234,56 €``), then 日本語, and
download the Japanese PDF, whose text reads back in Japanese. The last page is saved as
``test-output/invoice-languages.png``."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
from playwright.async_api import expect

from billing.invoices.i18n import Document
from billing.metering.service import ingest_contacts
from tests.browser.conftest import password_user, sign_in_with_password
from tests.browser.test_billing_journey import _last_month_contacts, berlin_tenant

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_the_invoice_in_german_then_japanese_page_and_pdf(settings, live, dbs, keyring, page, output_dir):
    slug, name = f"lang-{uuid.uuid4().hex[:6]}", "Kirschblüte GmbH"
    await berlin_tenant(settings, dbs, keyring, slug, name)
    _period, contacts = _last_month_contacts()
    result = await ingest_contacts(dbs, keyring, None, slug, contacts)
    assert not result.rejected, result.rejected[:3]

    email, password = await password_user(dbs, "account_manager")
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}/invoices")
    await page.get_by_role("button", name="Draft invoice").click()
    await expect(page.locator("#invoice-status")).to_have_text("draft")
    total = Decimal(await page.locator("#invoice-total").get_attribute("data-amount"))

    languages = page.get_by_role("navigation", name="Document language")
    await languages.get_by_role("link", name="Deutsch").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Rechnungsentwurf")
    await expect(page.locator("#invoice-status")).to_have_text("Entwurf")
    await expect(page.locator("#invoice-total")).to_have_text(Document("de").money(total, "EUR").replace("\xa0", " "))
    await expect(page.get_by_role("columnheader", name="Einzelpreis")).to_be_visible()

    await languages.get_by_role("link", name="日本語").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("下書き")
    await expect(languages.locator('[aria-current="true"]')).to_have_text("日本語")
    href = await page.get_by_role("link", name="Download the PDF").get_attribute("href")
    assert href.endswith(".pdf?lang=ja"), href
    pdf = await page.request.get(f"{live.url}{href}")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    doc = pdfium.PdfDocument(io.BytesIO(await pdf.body()))
    text = doc[0].get_textpage().get_text_range()
    assert "下書き" in text and "品目" in text and f"API上の合計: EUR {total:.2f}" in text
    await page.screenshot(path=str(output_dir / "invoice-languages.png"), full_page=True)

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
