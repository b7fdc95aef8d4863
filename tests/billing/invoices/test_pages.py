"""The billing console's pages and forms over HTTP: drafting a period from the tenant's Invoices tab,
finalize and void with their confirmation steps, the invoice page, credit notes (form, page, PDF),
and what merchants may read. Forms are posted urlencoded with a bearer token and the CSRF header."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pypdfium2 as pdfium
import pytest

from tests.billing.invoices.conftest import contact, ingest

OPENED = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
TOTAL = "4998.68"  # 2 AI + 2 human contacts of October: 13.20 usage + 4986.80 true-up - 1.32 credit


class Html(HTMLParser):
    """The elements of a page by id (attributes and text), and its flash messages."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self.flashes: list[str] = []
        self._open: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        node = {"tag": tag, "attrs": attrs, "text": ""}
        for _, outer in self._open:
            outer["text"] += " "  # cells and lines read apart, as on screen
        if "id" in attrs:
            self.by_id[attrs["id"]] = node
        if tag not in ("input", "br", "meta", "link"):
            self._open.append((tag, node))

    def handle_endtag(self, tag):
        while self._open:
            open_tag, node = self._open.pop()
            if "flash" in (node["attrs"].get("class") or ""):
                self.flashes.append(node["text"].strip())
            if open_tag == tag:
                break

    def handle_data(self, data):
        for _, node in self._open:
            node["text"] += data

    def text(self, element_id: str) -> str:
        return " ".join(self.by_id[element_id]["text"].split())

    def error_beside(self, field_id: str) -> str:
        """The error shown for a field: the input is invalid and names the error as its description."""
        attrs = self.by_id[field_id]["attrs"]
        assert attrs.get("aria-invalid") == "true", attrs
        assert attrs["aria-describedby"] == f"{field_id}-error"
        return self.text(f"{field_id}-error")


def _mixed(n_ai: int, n_human: int) -> list[dict]:
    out = [contact(opened=OPENED + timedelta(hours=i)) for i in range(n_ai)]
    out += [
        contact(
            opened=OPENED + timedelta(hours=i),
            resolution="human_resolved",
            handoff_at=(OPENED + timedelta(hours=i, minutes=1)).isoformat(),
        )
        for i in range(n_human)
    ]
    return out


@pytest.fixture
async def as_role(client, issue_token):
    """``await as_role(role, tenant=None)``: headers for page requests (bearer token and CSRF header)."""

    async def make(role: str, tenant: str | None = None) -> dict[str, str]:
        await client.get("/login")
        token = await issue_token(role, tenant)
        return {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", "")}

    return make


@pytest.fixture
async def am(as_role):
    return await as_role("account_manager")


async def _drafted(client, am, ingest_tenant) -> tuple[object, str]:
    """A tenant with October's usage and its draft made through the form: ``(tenant, invoice id)``."""
    tenant = await ingest_tenant()
    await ingest(client, tenant, _mixed(2, 2))
    resp = await client.post(
        f"/tenants/{tenant.slug}/invoices", data={"period": "2026-10"}, headers=am, follow_redirects=False
    )
    assert resp.status_code in (302, 303), resp.text
    invoice_id = resp.headers["location"].rsplit("/", 1)[1]
    return tenant, invoice_id


async def _finalized(client, am, ingest_tenant) -> tuple[object, str, str]:
    tenant, invoice_id = await _drafted(client, am, ingest_tenant)
    page = await client.post(f"/invoices/{invoice_id}/finalize", headers=am)
    number = Html(page.text).text("invoice-number")
    assert number.startswith("INV-2026-"), page.text
    return tenant, invoice_id, number


def _html(resp, status: int = 200) -> Html:
    assert resp.status_code == status, resp.text[:2000]
    assert resp.headers["content-type"].startswith("text/html"), resp.headers["content-type"]
    return Html(resp.text)


class TestDraftAPeriod:
    async def test_the_invoices_tab_offers_last_month_and_drafts_it(self, client, am, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        await ingest(client, tenant, _mixed(2, 2))
        resp = await client.get(f"/tenants/{tenant.slug}/invoices", headers=am)
        assert _html(resp).by_id["draft-period"]["attrs"]["value"] == "2026-10"  # last month in Berlin on Nov 20
        assert 'data-tab="invoices" aria-current="page"' in resp.text

        resp = await client.post(
            f"/tenants/{tenant.slug}/invoices", data={"period": "2026-10"}, headers=am, follow_redirects=False
        )
        assert resp.status_code in (302, 303) and re.fullmatch(r"/invoices/[0-9a-f-]{36}", resp.headers["location"])
        shown = _html(await client.get(resp.headers["location"], headers=am))
        assert shown.flashes == ["Invoice of 2026-10 drafted: total €4,998.68"]
        assert shown.text("invoice-status") == "draft" and shown.by_id["invoice-total"]["attrs"]["data-amount"] == TOTAL

        again = _html(await client.post(f"/tenants/{tenant.slug}/invoices", data={"period": "2026-10"}, headers=am))
        assert again.flashes == ["The draft of 2026-10 is unchanged: nothing new since it was drafted"]
        await ingest(client, tenant, _mixed(1, 0))
        redrafted = _html(await client.post(f"/tenants/{tenant.slug}/invoices", data={"period": "2026-10"}, headers=am))
        invoice_id = resp.headers["location"].rsplit("/", 1)[1]
        total = (await client.get(f"/api/v1/invoices/{invoice_id}", headers=am)).json()["total"]
        assert total == "4998.54"  # one more AI contact: the deflection credit moves, the true-up absorbs the rest
        assert redrafted.flashes == ["The draft of 2026-10 was re-drafted: total €4,998.54"]

        listing = _html(await client.get(f"/tenants/{tenant.slug}/invoices", headers=am))
        assert "— 2026-10 draft €4,998.54 €4,998.54 View draft 2026-10" in listing.text("invoices")

    @pytest.mark.parametrize(
        ("period", "status", "reason"),
        [
            ("2026-13", 422, "Must be a month as YYYY-MM"),
            ("", 422, "Must be a month as YYYY-MM"),
            ("2026-11", 409, "Period 2026-11 can be drafted from 2026-12-04T23:00:00+00:00"),
            ("2026-09", 409, "No contract is in force on 2026-09-01"),
        ],
    )
    async def test_a_refused_period_is_shown_beside_the_field_with_the_value_kept(
        self, client, am, ingest_tenant, frozen, period, status, reason
    ):
        tenant = await ingest_tenant()
        page = _html(await client.post(f"/tenants/{tenant.slug}/invoices", data={"period": period}, headers=am), status)
        assert page.error_beside("draft-period").startswith(reason)
        assert page.by_id["draft-period"]["attrs"]["value"] == period
        assert "/api/" not in page.text("draft-form")

    async def test_merchants_read_their_list_without_the_form_and_may_not_draft(
        self, client, as_role, ingest_tenant, frozen
    ):
        tenant = await ingest_tenant()
        viewer = await as_role("merchant_viewer", tenant.slug)
        page = _html(await client.get(f"/tenants/{tenant.slug}/invoices", headers=viewer))
        assert "draft-form" not in page.by_id and "No invoices yet." in page.text("invoices")
        resp = await client.post(f"/tenants/{tenant.slug}/invoices", data={"period": "2026-10"}, headers=viewer)
        assert resp.status_code == 403


class TestDraftsFinalizeAndVoid:
    async def test_finalize_has_a_confirmation_step_then_a_flash(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id = await _drafted(client, am, ingest_tenant)
        drafts = await client.get("/billing/drafts", headers=am)
        assert drafts.status_code == 200 and "/api/" not in drafts.text and "POST" not in drafts.text
        assert f'action="/invoices/{invoice_id}/finalize"' in drafts.text
        assert f'action="/invoices/{invoice_id}/void"' in drafts.text

        resp = await client.get(f"/invoices/{invoice_id}/finalize", headers=am)
        assert _html(resp).text("confirm-total") == "€4,998.68"
        assert "<h1>Finalize invoice 2026-10 for Acme Apparel EU?</h1>" in resp.text
        resp = await client.post(f"/invoices/{invoice_id}/finalize", headers=am, follow_redirects=False)
        assert resp.status_code in (302, 303) and resp.headers["location"] == f"/invoices/{invoice_id}"
        page = _html(await client.get(resp.headers["location"], headers=am))
        number = page.text("invoice-number")
        assert re.fullmatch(r"INV-2026-\d{6}", number) and page.flashes == [f"Invoice {number} finalized"]
        assert page.text("invoice-status") == "finalized" and page.text("invoice-issued") == "2026-11-20"
        assert f'data-invoice="{invoice_id}"' not in (await client.get("/billing/drafts", headers=am)).text

        again = _html(await client.post(f"/invoices/{invoice_id}/finalize", headers=am), 409)
        assert again.text("confirm-problem").startswith(f"Invoice {number} is finalized, not a draft.")

    async def test_an_outdated_draft_is_a_409_sentence_with_a_redraft_button(self, client, am, ingest_tenant, frozen):
        tenant, invoice_id = await _drafted(client, am, ingest_tenant)
        await ingest(client, tenant, _mixed(3, 0))  # arrives after the review
        resp = await client.post(f"/invoices/{invoice_id}/finalize", headers=am)
        page = _html(resp, 409)
        assert page.text("confirm-problem").startswith(
            "The draft of 2026-10 is out of date: usage or the contract changed since it was drafted. "
            "Re-draft it, review what changed, then finalize it."
        )
        assert "/api/" not in resp.text and 'name="period" value="2026-10"' in resp.text
        assert f'action="/tenants/{tenant.slug}/invoices"' in resp.text
        redrafted = _html(await client.post(f"/tenants/{tenant.slug}/invoices", data={"period": "2026-10"}, headers=am))
        total = (await client.get(f"/api/v1/invoices/{invoice_id}", headers=am)).json()["total"]
        assert redrafted.flashes == [f"The draft of 2026-10 was re-drafted: total €{total[0]},{total[1:]}"]
        final = _html(await client.post(f"/invoices/{invoice_id}/finalize", headers=am))
        assert final.text("invoice-status") == "finalized"

    async def test_void_asks_for_a_reason_beside_its_field(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id = await _drafted(client, am, ingest_tenant)
        confirm = _html(await client.get(f"/invoices/{invoice_id}/void", headers=am))
        assert "void-reason" in confirm.by_id
        refused = _html(await client.post(f"/invoices/{invoice_id}/void", data={"reason": "  "}, headers=am), 422)
        assert refused.error_beside("void-reason") == "Say why, in a few words."
        assert refused.by_id["void-reason"]["attrs"]["value"] == "  "
        resp = await client.post(f"/invoices/{invoice_id}/void", data={"reason": "signed in error"}, headers=am)
        page = _html(resp)
        assert page.flashes == ["The draft of 2026-10 was voided: it will not be billed"]
        assert page.text("invoice-status") == "void" and "signed in error" in resp.text
        assert _html(await client.post(f"/invoices/{invoice_id}/finalize", headers=am), 409).text("confirm-problem")


class TestInvoicePage:
    async def test_the_page_is_html_and_the_api_html_path_leads_to_it(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        page = _html(await client.get(f"/invoices/{invoice_id}", headers=am))
        assert page.text("invoice-number") == number and page.text("invoice-issued") == "2026-11-20"
        assert "Human-resolved contacts" in page.text("invoice-lines")
        assert page.by_id["invoice-balance"]["attrs"]["data-amount"] == TOTAL
        resp = await client.get(f"/api/v1/invoices/{invoice_id}.html", headers=am, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == f"/invoices/{invoice_id}"
        followed = await client.get(f"/api/v1/invoices/{invoice_id}.html", headers=am)
        assert followed.headers["content-type"].startswith("text/html") and number in followed.text
        assert (await client.get(f"/api/v1/invoices/{invoice_id}", headers=am)).json()["number"] == number

    async def test_merchants_read_their_own_and_get_404_or_403_elsewhere(
        self, client, am, as_role, ingest_tenant, frozen
    ):
        tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        await client.post(f"/invoices/{invoice_id}/credit-notes", data={"amount": "10.00", "reason": "x"}, headers=am)
        note_id = re.search(
            r'/credit-notes/([0-9a-f-]{36})"', (await client.get(f"/invoices/{invoice_id}", headers=am)).text
        )[1]
        other = await ingest_tenant()
        own = await as_role("merchant_admin", tenant.slug)
        page = _html(await client.get(f"/invoices/{invoice_id}", headers=own))
        assert page.text("invoice-number") == number and "credit-note-form" not in page.by_id
        _html(await client.get(f"/credit-notes/{note_id}", headers=own))
        stranger = await as_role("merchant_admin", other.slug)
        for path in (
            f"/invoices/{invoice_id}",
            f"/credit-notes/{note_id}",
            f"/credit-notes/{note_id}.pdf",
            f"/api/v1/invoices/{invoice_id}.html",
        ):
            resp = await client.get(path, headers=stranger)
            assert resp.status_code == 404 and number not in resp.text, path
        for method, path, data in [
            ("GET", f"/invoices/{invoice_id}/finalize", None),
            ("POST", f"/invoices/{invoice_id}/finalize", {}),
            ("GET", f"/invoices/{invoice_id}/void", None),
            ("POST", f"/invoices/{invoice_id}/void", {"reason": "x"}),
            ("POST", f"/invoices/{invoice_id}/credit-notes", {"amount": "1.00", "reason": "x"}),
        ]:
            assert (await client.request(method, path, data=data, headers=own)).status_code == 403, path


class TestCreditNotes:
    async def test_bad_fields_are_shown_beside_them_with_the_values_kept(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id, _number = await _finalized(client, am, ingest_tenant)
        bad = _html(
            await client.post(
                f"/invoices/{invoice_id}/credit-notes", data={"amount": "12,5", "reason": ""}, headers=am
            ),
            422,
        )
        assert bad.error_beside("credit-amount") == 'A decimal string such as "120.00".'
        assert bad.error_beside("credit-reason") == "Say why, in a few words."
        assert bad.by_id["credit-amount"]["attrs"]["value"] == "12,5"
        over = _html(
            await client.post(
                f"/invoices/{invoice_id}/credit-notes", data={"amount": "5000.00", "reason": "all of it"}, headers=am
            ),
            409,
        )
        assert over.error_beside("credit-amount") == "Only 4998.68 EUR of this invoice is left to credit."
        assert over.by_id["credit-reason"]["attrs"]["value"] == "all of it"
        assert over.by_id["invoice-balance"]["attrs"]["data-amount"] == TOTAL

    async def test_a_draft_has_no_credit_note_form_and_refuses_one(self, client, am, ingest_tenant, frozen):
        _tenant, invoice_id = await _drafted(client, am, ingest_tenant)
        assert "credit-note-form" not in _html(await client.get(f"/invoices/{invoice_id}", headers=am)).by_id
        resp = await client.post(
            f"/invoices/{invoice_id}/credit-notes", data={"amount": "1.00", "reason": "x"}, headers=am
        )
        assert _html(resp, 409).text("credit-note-problem") == (
            "Credit notes are issued against finalized invoices; this one is draft."
        )

    async def test_issued_note_shows_everywhere_with_the_balance(self, client, am, ingest_tenant, frozen):
        tenant, invoice_id, number = await _finalized(client, am, ingest_tenant)
        resp = await client.post(
            f"/invoices/{invoice_id}/credit-notes",
            data={"amount": " 120.00 ", "reason": "Goodwill for the outage"},
            headers=am,
        )
        page = _html(resp)
        [flash] = page.flashes
        note_number = re.fullmatch(r"Credit note (CN-2026-\d{6}) issued: €120.00", flash)[1]
        assert page.by_id["invoice-total"]["attrs"]["data-amount"] == TOTAL  # the invoice never changes
        assert page.by_id["invoice-balance"]["attrs"]["data-amount"] == "4878.68"
        assert page.text("invoice-balance") == "€4,878.68"
        assert f"{note_number} 2026-11-20 €120.00 Goodwill for the outage" in page.text("invoice-credit-notes")
        note_id = re.search(r'href="/credit-notes/([0-9a-f-]{36})"', resp.text)[1]

        shown = await client.get(f"/credit-notes/{note_id}", headers=am)
        note_page = _html(shown)
        assert note_page.text("credit-note-number") == note_number
        assert note_page.by_id["credit-note-amount"]["attrs"]["data-amount"] == "120.00"
        assert f'<a href="/invoices/{invoice_id}">Invoice {number}</a>' in shown.text

        listing = _html(await client.get(f"/tenants/{tenant.slug}/invoices", headers=am))
        assert f"{number} 2026-10 finalized €4,998.68 €4,878.68" in listing.text("invoices")
        assert f"{note_number} 2026-11-20 {number} (2026-10) €120.00 Goodwill for the outage" in listing.text(
            "credit-notes"
        )

        pdf = await client.get(f"/credit-notes/{note_id}.pdf", headers=am)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"] == f'inline; filename="{note_number}.pdf"'
        text = _pdf_text(pdf.content)
        assert f"Credit note {note_number}" in text and f"Corrects invoice {number}" in text
        assert "Amount as in the API: EUR 120.00" in text and "Goodwill for the outage" in text

        invoice_pdf = await client.get(f"/api/v1/invoices/{invoice_id}.pdf", headers=am)
        assert invoice_pdf.headers["content-type"] == "application/pdf"
        assert invoice_pdf.headers["content-disposition"] == f'inline; filename="{number}.pdf"'
        text = _pdf_text(invoice_pdf.content)
        assert f"{note_number} (2026-11-20): Goodwill for the outage" in text and "-€120.00" in text
        assert "Balance as in the API: EUR 4878.68" in text and f"Total as in the API: EUR {TOTAL}" in text

        rows = list(
            csv.DictReader(io.StringIO((await client.get("/api/v1/invoices.csv?period=2026-10", headers=am)).text))
        )
        [row] = [r for r in rows if r["tenant"] == tenant.slug]
        assert (row["number"], row["status"], row["total"]) == (number, "finalized", TOTAL)
        assert (row["credit_notes"], row["credited"], row["balance"]) == (note_number, "120.00", "4878.68")


def _pdf_text(content: bytes) -> str:
    doc = pdfium.PdfDocument(io.BytesIO(content))
    return " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


async def test_the_usage_page_shows_the_tenant_tabs(client, am, ingest_tenant):
    tenant = await ingest_tenant()
    resp = await client.get(f"/tenants/{tenant.slug}/usage", headers=am)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert 'data-tab="usage" aria-current="page"' in resp.text
    assert f'href="/tenants/{tenant.slug}/invoices" data-tab="invoices"' in resp.text
