"""Invoice and credit-note documents in a document language: ja and de in HTML and PDF (the PDF's text read
back), English unchanged, ``?lang=`` validated, and every label of the code and templates in every catalog."""

from __future__ import annotations

import io
import re
import string
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from billing.invoices import pdf as pdf_module
from billing.invoices.i18n import CLDR, DATA_MESSAGES, DEFAULT, SUPPORTED, Document, document_locale
from billing.invoices.pdf import render_invoice_pdf
from control_plane.errors import InvalidInput
from tests.billing.invoices.test_pages import TOTAL, _finalized, _html

PACKAGE = Path(pdf_module.__file__).resolve().parent
KEYWORDS = {"_": None, "pgettext": ((1, "c"), 2)}


@pytest.fixture
async def am(client, issue_token) -> dict[str, str]:
    """An account manager's page headers (bearer token and CSRF header)."""
    await client.get("/login")
    token = await issue_token("account_manager", None)
    return {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", "")}


def _pdf_text(content: bytes) -> str:
    doc = pdfium.PdfDocument(io.BytesIO(content))
    return " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


def _messages() -> set[tuple[str | None, str]]:
    """Every message id the documents use: gettext calls in the code and templates, and the data ones."""
    found: set[tuple[str | None, str]] = set(DATA_MESSAGES)
    for name in ("pdf.py", "i18n.py"):
        with (PACKAGE / name).open("rb") as handle:
            for _line, message, _comments, context in extract("python", handle, keywords=KEYWORDS):
                if message != "label":  # the usage line's label, a variable (its values are DATA_MESSAGES)
                    found.add((context, message))
    for name in ("invoice.html", "credit_note.html"):
        with (PACKAGE / "templates" / name).open("rb") as handle:
            for _line, _func, message, _comments in babel_extract(handle, ["_"], [], {}):
                found.add((None, message[0] if isinstance(message, tuple) else message))
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", [lang for lang in SUPPORTED if lang != DEFAULT])
def test_every_label_is_translated_and_keeps_its_placeholders(lang):
    with (PACKAGE / "locales" / lang / "LC_MESSAGES" / "invoices.po").open("rb") as handle:
        catalog = read_po(handle)
    entries = {(m.context, m.id): m.string for m in catalog if m.id}
    wanted = _messages()
    assert len(wanted) > 40
    assert wanted - entries.keys() == set(), "labels missing from the catalog"
    assert entries.keys() - wanted == set(), "labels no code uses any more"
    for (_context, message), translated in entries.items():
        assert translated and translated != "", message
        assert _fields(translated) == _fields(message), (message, translated)


def test_document_locale_takes_a_profile_tag_and_refuses_the_rest():
    assert [document_locale(v) for v in (None, "", "de", "de-DE", "fr_FR", "JA", "zh_Hans_CN", "zh-CN")] == [
        "en", "en", "de", "de", "fr", "ja", "zh", "zh",
    ]  # fmt: skip
    for bad in ("xx", "es", "de DE", "../de", "ja\n", " "):
        with pytest.raises(InvalidInput) as raised:
            document_locale(bad)
        assert raised.value.errors[0].field == "lang"


def test_formats_follow_the_locale():
    de, ja, en = Document("de"), Document("ja"), Document("en")
    assert de.money("1234.56", "EUR") == "1.234,56\xa0€" and en.money("1234.56", "EUR") == "€1,234.56"
    assert ja.money("1235", "JPY") == "￥1,235" and de.number(12345) == "12.345"
    assert (de.day("2026-11-03"), ja.day("2026-11-03"), en.day("2026-11-03")) == (
        "03.11.2026",
        "2026/11/03",
        "2026-11-03",
    )
    assert (de.period("2026-10"), ja.period("2026-10"), en.period("2026-10")) == (
        "Oktober 2026",
        "2026年10月",
        "2026-10",
    )
    assert (
        de.description("AI-resolved contacts, tier 2 (1,001 to 5,000)")
        == "Durch KI gelöste Kontakte, Staffel 2 (1.001 bis 5.000)"
    )
    assert ja.description("Minimum monthly fee 100 EUR") == "Minimum monthly fee 100 EUR"  # not a usage line: as stored
    assert (en.decimal("1.40"), de.decimal("1.40"), de.decimal("4906.00"), ja.decimal("0.0125")) == (
        "1.40", "1,40", "4.906,00", "0.0125",
    )  # fmt: skip
    minimum = "Minimum monthly fee 5000.00 EUR: true-up over usage of 94.00"
    assert de.description(minimum) == "Mindestgebühr 5.000,00\xa0€: Ausgleich zur Nutzung von 94,00\xa0€"
    assert en.description(minimum) == minimum
    assert set(CLDR) == {"en", "de", "fr", "ja", "zh"}


def test_a_jpy_invoice_in_japanese_reads_back_from_the_pdf():
    invoice = {"number": "INV-2026-000042", "status": "finalized", "finalized_at": "2026-11-02T00:30:00+00:00",
               "period": "2026-10", "timezone": "Asia/Tokyo", "currency": "JPY", "usage_subtotal": "1234567",
               "lines": [{"kind": "ai_resolved", "description": "AI-resolved contacts", "quantity": 12345,
                          "unit_price": "100.0043", "amount": "1234567"}],
               "credit_total": "0", "total": "1234567"}  # fmt: skip
    text = _pdf_text(render_invoice_pdf(invoice, {"name": "さくら商事", "slug": "sakura"}, locale="ja"))
    assert "請求書 INV-2026-000042" in text and "発行日: 2026/11/02" in text and "2026年10月" in text
    assert "AIが解決したコンタクト" in text and "12,345" in text and "100.0043" in text
    assert "合計 ￥1,234,567" in text and "API上の合計: JPY 1234567" in text and "さくら商事" in text


def test_without_a_cjk_font_a_japanese_pdf_says_it_is_in_english(monkeypatch):
    monkeypatch.setattr(pdf_module, "CJK_FONTS", (Path("/nonexistent/cjk.ttc"),))
    pdf_module.cjk_font.cache_clear()
    try:
        invoice = {"number": None, "status": "draft", "period": "2026-10", "timezone": "Asia/Tokyo", "currency": "JPY",
                   "lines": [], "usage_subtotal": "0", "credit_total": "0", "total": "0"}  # fmt: skip
        text = _pdf_text(render_invoice_pdf(invoice, {"name": "Sakura", "slug": "sakura"}, locale="ja"))
    finally:
        pdf_module.cjk_font.cache_clear()
    assert "This document is in English: its language (ja) needs a CJK font (fonts-wqy-zenhei)." in text
    assert "Draft invoice" in text and "請求書" not in text


class TestDocumentLanguage:
    async def test_japanese_page_and_pdf(self, client, am, ingest_tenant, frozen):
        tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        page = _html(await client.get(f"/invoices/{invoice_id}?lang=ja", headers=am))
        assert page.text("invoice-issued") == "2026/11/20" and page.text("invoice-status") == "確定済み"
        resp = await client.get(f"/invoices/{invoice_id}?lang=ja", headers=am)
        assert f"請求書 {number}" in resp.text and "請求先" in resp.text and 'lang="ja"' in resp.text
        assert f'href="/api/v1/invoices/{invoice_id}.pdf?lang=ja"' in resp.text

        pdf = await client.get(f"/api/v1/invoices/{invoice_id}.pdf?lang=ja", headers=am)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = _pdf_text(pdf.content)
        assert f"請求書 {number}" in text and "発行日: 2026/11/20" in text and "品目 数量 単価 金額" in text
        assert f"API上の合計: EUR {TOTAL}" in text and "担当者が解決したコンタクト" in text
        assert tenant.slug in text

    async def test_german_page_and_pdf_with_german_numbers(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        euros, cents = TOTAL.split(".")
        german = f"{int(euros):,}".replace(",", ".") + f",{cents}\xa0€"  # 4998.68 -> "4.998,68 €"
        page = _html(await client.get(f"/invoices/{invoice_id}?lang=de", headers=am))
        assert page.text("invoice-total") == german.replace("\xa0", " ") and page.text("invoice-issued") == "20.11.2026"
        assert page.text("invoice-status") == "abgeschlossen"
        resp = await client.get(f"/invoices/{invoice_id}?lang=de", headers=am)
        assert f"Rechnung {number}" in resp.text and "Gesamtbetrag" in resp.text and "Oktober 2026" in resp.text

        text = _pdf_text((await client.get(f"/api/v1/invoices/{invoice_id}.pdf?lang=de", headers=am)).content)
        assert f"Rechnung {number}" in text and "Ausstellungsdatum: 20.11.2026" in text
        assert f"Gesamtbetrag {german}" in text and f"Gesamtbetrag laut API: EUR {TOTAL}" in text
        assert "Beschreibung Menge Einzelpreis Betrag" in text and "Durch KI gelöste Kontakte" in text

    async def test_credit_note_in_german_and_japanese(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        await client.post(f"/invoices/{invoice_id}/credit-notes", data={"amount": "1234.50", "reason": "Kulanz"},
                          headers=am)  # fmt: skip
        page = await client.get(f"/invoices/{invoice_id}?lang=de", headers=am)
        note_id = re.search(r'href="/credit-notes/([0-9a-f-]{36})\?lang=de"', page.text)[1]
        shown = _html(await client.get(f"/credit-notes/{note_id}?lang=de", headers=am))
        assert shown.text("credit-note-amount") == "1.234,50 €" and shown.text("credit-note-issued") == "20.11.2026"
        text = _pdf_text((await client.get(f"/credit-notes/{note_id}.pdf?lang=de", headers=am)).content)
        assert f"Korrigiert Rechnung {number}" in text and "Gutgeschriebener Betrag 1.234,50\xa0€" in text
        text = _pdf_text((await client.get(f"/credit-notes/{note_id}.pdf?lang=ja", headers=am)).content)
        assert "クレジットノート" in text and f"訂正対象の請求書 {number}" in text and "クレジット額 €1,234.50" in text

    async def test_english_is_the_default_and_unchanged(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        plain = _pdf_text((await client.get(f"/api/v1/invoices/{invoice_id}.pdf", headers=am)).content)
        english = _pdf_text((await client.get(f"/api/v1/invoices/{invoice_id}.pdf?lang=en", headers=am)).content)
        assert plain == english and f"Invoice {number}" in plain and "Issue date: 2026-11-20" in plain
        assert "Description Quantity Unit price Amount" in plain and f"Total as in the API: EUR {TOTAL}" in plain
        page = _html(await client.get(f"/invoices/{invoice_id}", headers=am))
        assert page.text("invoice-issued") == "2026-11-20" and page.text("invoice-status") == "finalized"

    async def test_the_billing_profiles_locale_is_the_default_language(
        self, client, am, staff_headers, ingest_tenant, frozen
    ):
        from tests.billing.conftest import UNTAXED_PROFILE, give_profile

        tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        await give_profile(client, staff_headers, tenant.slug, UNTAXED_PROFILE | {"locale": "de"})
        page = await client.get(f"/invoices/{invoice_id}", headers=am)
        assert f"Rechnung {number}" in page.text and f'href="/api/v1/invoices/{invoice_id}.pdf?lang=de"' in page.text
        text = _pdf_text((await client.get(f"/api/v1/invoices/{invoice_id}.pdf", headers=am)).content)
        assert f"Rechnung {number}" in text
        asked = await client.get(f"/invoices/{invoice_id}?lang=en", headers=am)
        assert f"Invoice {number}" in asked.text  # asking wins over the profile

    async def test_an_unsupported_language_is_a_422_naming_lang(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id, _number = await _finalized(client, am, ingest_tenant)
        for path in (f"/api/v1/invoices/{invoice_id}.pdf?lang=xx", f"/api/v1/invoices/{invoice_id}?lang=es"):
            resp = await client.get(path, headers={**am, "Accept": "application/json"})
            assert resp.status_code == 422, resp.text
            assert "lang" in resp.text
        resp = await client.get(f"/invoices/{invoice_id}?lang=klingon", headers={**am, "Accept": "text/html"})
        assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
