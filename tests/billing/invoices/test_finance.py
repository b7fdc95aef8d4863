"""Issuers, billing profiles and tax (issue 15, acceptance 1 and 2): the tax rule end to end, exact to
the cent, tax IDs checked per country, and one gapless series per issuer under parallel finalizes."""

from __future__ import annotations

import asyncio
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal, localcontext
from types import SimpleNamespace

import pytest

from billing.finance.tax import EU_REVERSE_CHARGE, _line
from billing.invoices import service as invoices
from compliance.service import SystemActor
from tests.billing.conftest import give_profile
from tests.billing.invoices.conftest import contact, ingest
from tests.billing.invoices.test_pages import _pdf_text as pdf_text
from tests.conftest import contract_body

NET = Decimal("4998.68")  # 2 AI + 2 human contacts of October (tests/billing/invoices/test_api.py)
DE_VAT = "DE136695976"


@pytest.fixture
async def admin_headers(issue_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token('platform_admin')}"}


def de_profile(**overrides) -> dict:
    body = {
        "legal_name": "Acme Apparel GmbH",
        "address": {"lines": ["Friedrichstraße 1"], "postal_code": "10117", "city": "Berlin", "country": "DE"},
        "tax_id": DE_VAT,
        "billing_emails": ["ap@acme.example"],
        "locale": "de",
    }
    return body | overrides


def _code() -> str:
    return "t" + uuid.uuid4().hex[:8]


def _prefix() -> str:
    return "P" + uuid.uuid4().hex[:5].upper()


async def sg_issuer(client, headers, **overrides) -> dict:
    body = {
        "code": _code(),
        "legal_name": "SyncSoft Pte. Ltd.",
        "address": {"lines": ["1 Raffles Place"], "postal_code": "048616", "city": "Singapore", "country": "SG"},
        "tax_registrations": [{"country": "SG", "tax_id": "00192200M"}],
        "invoice_prefix": _prefix(),
        "payment_instructions": "DBS 012-345678-9",
        "regions": [],
    } | overrides
    resp = await client.post("/api/v1/issuers", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def billed(client, staff_headers, ingest_tenant, profile: dict, *, n: int = 2) -> dict:
    """A tenant with ``profile`` and October's usage: its draft (2 AI + 2 human contacts by default)."""
    from tests.billing.invoices.test_api import _mixed

    tenant = await ingest_tenant()
    await give_profile(client, staff_headers, tenant.slug, profile)
    await ingest(client, tenant, _mixed(n, n))
    resp = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def half_up(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class TestTaxRule:
    async def test_de_customer_billed_by_a_non_eu_issuer_is_reverse_charged(
        self, client, admin_headers, staff_headers, ingest_tenant, frozen
    ):
        sg = await sg_issuer(client, admin_headers)
        draft = await billed(client, staff_headers, ingest_tenant, de_profile(issuer=sg["code"]))
        assert draft["tax_lines"] == [] and draft["total"] == str(NET)
        resp = await client.post(f"/api/v1/invoices/{draft['id']}/finalize", headers=staff_headers)
        assert resp.status_code == 200, resp.text
        inv = resp.json()
        assert inv["tax_lines"] == [
            {"code": "REVERSE-CHARGE", "rate": "0", "base": str(NET), "amount": "0.00", "note": EU_REVERSE_CHARGE}
        ]
        assert (inv["net_total"], inv["tax_total"], inv["total"]) == (str(NET), "0.00", str(NET))
        assert inv["number"] == f"{sg['invoice_prefix']}-2026-000001"
        assert inv["issuer"]["code"] == sg["code"] and inv["issuer"]["legal_name"] == "SyncSoft Pte. Ltd."
        assert inv["bill_to"]["legal_name"] == "Acme Apparel GmbH" and inv["bill_to"]["tax_id"] == DE_VAT
        assert (inv["issue_date"], inv["payment_terms_days"], inv["due_date"]) == ("2026-11-20", 30, "2026-12-20")

    async def test_de_customer_billed_by_an_issuer_registered_in_de_pays_19_percent_of_the_net(
        self, client, staff_headers, ingest_tenant, frozen
    ):
        draft = await billed(client, staff_headers, ingest_tenant, de_profile())  # the default issuer: DE
        inv = (await client.post(f"/api/v1/invoices/{draft['id']}/finalize", headers=staff_headers)).json()
        tax = half_up(NET * Decimal("0.19"))
        assert tax == Decimal("949.75")
        assert inv["tax_lines"] == [{"code": "DE-VAT-19", "rate": "0.19", "base": "4998.68", "amount": "949.75",
                                     "note": None}]  # fmt: skip
        assert (inv["net_total"], inv["tax_total"], inv["total"]) == ("4998.68", "949.75", "5948.43")
        assert inv["issuer"]["code"] == "default" and inv["number"].startswith("INV-2026-")

        # The PDF and the page print the issuer, the bill-to block, the tax line and the due date.
        pdf = await client.get(
            f"/api/v1/invoices/{inv['id']}.pdf?lang=en", headers=staff_headers
        )  # the profile says de
        text = pdf_text(pdf.content)
        for printed in ("BPO Operations Ltd", "Acme Apparel GmbH", "Tax ID: DE136695976", "DE-VAT-19",
                        "Due date: 2026-12-20", "Net total"):  # fmt: skip
            assert printed in text, printed
        page = await client.get(f"/invoices/{inv['id']}?lang=en", headers=staff_headers)
        assert 'id="invoice-due">2026-12-20' in page.text and 'data-tax="DE-VAT-19"' in page.text
        assert "Friedrichstraße 1" in page.text

        # In the profile's German and in Japanese, the finance labels are translated and the numbers local.
        text = pdf_text((await client.get(f"/api/v1/invoices/{inv['id']}.pdf", headers=staff_headers)).content)
        for printed in ("USt-IdNr.: DE136695976", "Fällig am: 20.12.2026", "Zahlungsziel: 30 Tage netto",
                        "Nettobetrag 4.998,68\xa0€", "Steuer DE-VAT-19 (19\xa0% von 4.998,68\xa0€) 949,75\xa0€",
                        "Gesamtbetrag 5.948,43\xa0€", "USt-IdNr. (DE):"):  # fmt: skip
            assert printed in text, (printed, text)
        page = await client.get(f"/invoices/{inv['id']}", headers=staff_headers)
        for shown in ("<dt>Fälligkeitsdatum</dt>", "Zahlungsziel: 30 Tage netto", "Nettobetrag",
                      "Steuer DE-VAT-19 (19\xa0% von 4.998,68\xa0€)", "USt-IdNr.: DE136695976"):  # fmt: skip
            assert shown in page.text, shown
        text = pdf_text((await client.get(f"/api/v1/invoices/{inv['id']}.pdf?lang=ja", headers=staff_headers)).content)
        for printed in ("登録番号：DE136695976", "支払期日：2026/12/20", "支払条件：30日以内", "小計（税抜） €4,998.68",
                        "税 DE-VAT-19（€4,998.68の19%） €949.75"):  # fmt: skip
            assert printed in text, (printed, text)

        # A credit note gives back tax in proportion, in the issuer's credit-note series.
        resp = await client.post(
            f"/api/v1/invoices/{inv['id']}/credit-notes", json={"amount": "594.84", "reason": "goodwill"},
            headers=staff_headers,
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        note = resp.json()["credit_notes"][0]
        with localcontext() as ctx:
            ctx.prec = 50
            expected = half_up(Decimal("949.75") * Decimal("594.84") / Decimal("5948.43"))
        assert note["tax_lines"][0]["amount"] == str(expected) == "94.97"
        assert note["tax_total"] == "94.97" and note["net"] == "499.87" and note["number"].startswith("CN-2026-")
        assert resp.json()["balance"] == "5353.59"
        page = await client.get(f"/credit-notes/{note['id']}", headers=staff_headers)
        assert 'data-tax="DE-VAT-19" data-amount="94.97"' in page.text and 'id="credit-note-issuer"' in page.text
        pdf = pdf_text((await client.get(f"/credit-notes/{note['id']}.pdf?lang=en", headers=staff_headers)).content)
        assert "Tax DE-VAT-19 credited" in pdf and "BPO Operations Ltd" in pdf
        pdf = pdf_text((await client.get(f"/credit-notes/{note['id']}.pdf", headers=staff_headers)).content)  # de
        assert "Gutgeschriebene Steuer DE-VAT-19 94,97\xa0€" in pdf and "Gutgeschrieben (netto) 499,87\xa0€" in pdf

    async def test_without_a_tax_id_the_issuers_domestic_rate_applies(
        self, client, admin_headers, staff_headers, ingest_tenant, frozen
    ):
        sg = await sg_issuer(client, admin_headers)
        draft = await billed(client, staff_headers, ingest_tenant, de_profile(issuer=sg["code"], tax_id=None))
        inv = (await client.post(f"/api/v1/invoices/{draft['id']}/finalize", headers=staff_headers)).json()
        assert [(t["code"], t["amount"]) for t in inv["tax_lines"]] == [("SG-GST-9", "449.88")]
        assert inv["total"] == str(NET + half_up(NET * Decimal("0.09"))) == "5448.56"

    async def test_payment_terms_come_from_the_contract(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        resp = await client.put(
            f"/api/v1/tenants/{tenant.slug}/contract", json=contract_body(payment_terms_days=14), headers=staff_headers
        )
        assert resp.status_code in (200, 201), resp.text
        await give_profile(client, staff_headers, tenant.slug, de_profile())
        await ingest(client, tenant, [contact()])
        draft = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        inv = (await client.post(f"/api/v1/invoices/{draft.json()['id']}/finalize", headers=staff_headers)).json()
        assert (inv["payment_terms_days"], inv["due_date"]) == (14, "2026-12-04")

    def test_each_tax_line_is_rounded_once_half_up(self) -> None:
        rate = SimpleNamespace(code="JP-CT-10", rate=Decimal("0.10"), note=None)
        assert _line(rate, 5, "JPY").amount_minor == 1  # 0.5 yen: half up, not half even
        assert _line(rate, 15, "JPY").amount_minor == 2
        assert _line(SimpleNamespace(code="X", rate=Decimal("0.19"), note=None), 1050, "EUR").amount_minor == 200


class TestProfiles:
    async def test_bad_tax_ids_are_422_naming_the_field_and_the_form(self, client, staff_headers, make_tenant):
        tenant = await make_tenant()
        for country, bad, form in [("DE", "DE123456789", "EU VAT number of DE"), ("FR", "FR00000000000", "EU VAT"),
                                   ("GB", "GB123", "UK VAT number"), ("JP", "1234567890123", "corporate number"),
                                   ("SG", "12345", "UEN"), ("US", "00-0000000", "EIN"),
                                   ("CN", "91110000600037341X", "unified social credit code")]:  # fmt: skip
            profile = de_profile(tax_id=bad, address={"lines": ["x"], "city": "c", "country": country})
            resp = await client.put(f"/api/v1/tenants/{tenant['slug']}/billing-profile", json=profile,
                                    headers=staff_headers)  # fmt: skip
            assert resp.status_code == 422, (country, resp.text)
            errors = {e["field"]: e["message"] for e in resp.json()["errors"]}
            assert list(errors) == ["tax_id"] and form in errors["tax_id"], (country, errors)

    async def test_valid_tax_ids_are_kept_in_their_compact_form(self, client, staff_headers, make_tenant):
        tenant = await make_tenant()
        cases = [
            ("DE", "DE 136 695 976", "DE136695976"),
            ("JP", "T5835678256246", "T5835678256246"),
            ("SG", "00192200M", "00192200M"),
            ("US", "911144442", "91-1144442"),
            ("CN", "91110000600037341L", "91110000600037341L"),
            ("GB", "980780684", "GB980780684"),
        ]
        for country, good, kept in cases:
            profile = de_profile(tax_id=good, address={"lines": ["x"], "city": "c", "country": country})
            body = await give_profile(client, staff_headers, tenant["slug"], profile)
            assert body["tax_id"] == kept

    async def test_finalizing_without_a_complete_profile_is_409_naming_what_is_missing(
        self, client, staff_headers, ingest_tenant, make_tenant, frozen
    ):
        draft = await billed(client, staff_headers, ingest_tenant, de_profile(billing_emails=[],
                             address={"lines": [], "city": "Berlin", "country": "DE"}))  # fmt: skip
        resp = await client.post(f"/api/v1/invoices/{draft['id']}/finalize", headers=staff_headers)
        assert resp.status_code == 409 and resp.json()["code"] == "billing_profile_incomplete"
        for missing in ("address.lines", "address.postal_code", "billing_emails"):
            assert missing in resp.json()["detail"]

        bare = await make_tenant(onboard=True)  # no profile at all
        draft = await client.post(f"/api/v1/tenants/{bare['slug']}/invoices?period=2026-10", headers=staff_headers)
        resp = await client.post(f"/api/v1/invoices/{draft.json()['id']}/finalize", headers=staff_headers)
        assert resp.status_code == 409 and "billing profile" in resp.json()["detail"]

    async def test_a_merchant_admin_writes_its_own_profile_a_viewer_reads_it(self, client, make_tenant, issue_token):
        tenant = await make_tenant()
        admin = {"Authorization": f"Bearer {await issue_token('merchant_admin', tenant['slug'])}"}
        viewer = {"Authorization": f"Bearer {await issue_token('merchant_viewer', tenant['slug'])}"}
        path = f"/api/v1/tenants/{tenant['slug']}/billing-profile"
        assert (await client.get(path, headers=viewer)).json() is None
        assert (await client.put(path, json=de_profile(), headers=viewer)).status_code == 403
        assert (await client.put(path, json=de_profile(), headers=admin)).status_code == 200
        got = (await client.get(path, headers=viewer)).json()
        assert got["legal_name"] == "Acme Apparel GmbH" and got["missing"] == [] and got["locale"] == "de"
        bad_issuer = await client.put(path, json=de_profile(issuer="no-such-issuer"), headers=admin)
        assert bad_issuer.status_code == 422 and bad_issuer.json()["errors"][0]["field"] == "issuer"


class TestIssuersAndRates:
    async def test_issuers_are_listed_created_and_patched(self, client, admin_headers, staff_headers, issue_token):
        sg = await sg_issuer(client, admin_headers, regions=["sg"])
        listed = (await client.get("/api/v1/issuers", headers=admin_headers)).json()
        assert listed[0]["code"] == "default" and sg["code"] in [i["code"] for i in listed]
        resp = await client.patch(f"/api/v1/issuers/{sg['code']}", json={"legal_name": "SyncSoft Asia Pte. Ltd."},
                                  headers=admin_headers)  # fmt: skip
        assert resp.status_code == 200 and resp.json()["legal_name"] == "SyncSoft Asia Pte. Ltd."
        clash = await client.post("/api/v1/issuers", json={**sg, "code": _code(), "default": None},
                                  headers=admin_headers)  # fmt: skip
        assert clash.status_code == 422
        bad = await client.post("/api/v1/issuers", headers=admin_headers, json={
            "code": _code(), "legal_name": "X", "invoice_prefix": _prefix(),
            "address": {"lines": [], "city": "Berlin", "country": "DE"},
            "tax_registrations": [{"country": "DE", "tax_id": "DE000"}]})  # fmt: skip
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "tax_registrations[0].tax_id"
        manager = {"Authorization": f"Bearer {await issue_token('account_manager')}"}
        assert (await client.get("/api/v1/issuers", headers=manager)).status_code == 200
        assert (await client.patch(f"/api/v1/issuers/{sg['code']}", json={}, headers=manager)).status_code == 403

    async def test_a_tenant_is_billed_by_the_issuer_of_its_home_region(self, client, admin_headers):
        # A region of its own, so that no other test's tenant changes issuer.
        region = "r" + uuid.uuid4().hex[:6]
        issuer = await sg_issuer(client, admin_headers, regions=[region])
        from billing.finance.service import issuer_for

        async with client.app.state.db.control_session() as session:
            found = await issuer_for(session, SimpleNamespace(home_region=region), None)
            default = await issuer_for(session, SimpleNamespace(home_region="nowhere"), None)
            chosen = await issuer_for(
                session, SimpleNamespace(home_region=region), SimpleNamespace(issuer_code="default")
            )
        assert (found.code, default.code, chosen.code) == (issuer["code"], "default", "default")

    async def test_tax_rates_are_versioned(self, client, admin_headers, staff_headers):
        code = "AT" + uuid.uuid4().hex[:4].upper()
        first = {"code": f"{code}-20", "country": "AT", "name": "USt 20 %", "rate": "0.20", "valid_from": "2016-01-01"}
        assert (await client.post("/api/v1/tax-rates", json=first, headers=admin_headers)).status_code == 201
        later = first | {"code": f"{code}-21", "rate": "0.21", "valid_from": "2031-01-01"}
        assert (await client.post("/api/v1/tax-rates", json=later, headers=admin_headers)).status_code == 201
        rates = {r["code"]: r for r in (await client.get("/api/v1/tax-rates?country=AT", headers=staff_headers)).json()}
        assert rates[f"{code}-20"]["valid_to"] == "2030-12-31" and rates[f"{code}-21"]["valid_to"] is None
        bad = await client.post("/api/v1/tax-rates", json=first | {"code": "X-1", "rate": "1.5"}, headers=admin_headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rate"
        seeded = {r["code"] for r in (await client.get("/api/v1/tax-rates", headers=staff_headers)).json()}
        assert {"DE-VAT-19", "FR-TVA-20", "ES-IVA-21", "JP-CT-10", "SG-GST-9", "CN-VAT-6", "US-0"} <= seeded


class TestSeries:
    async def test_two_issuers_keep_two_gapless_series_under_parallel_finalizes(
        self, client, admin_headers, staff_headers, ingest_tenant, dbs, frozen
    ):
        a, b = await sg_issuer(client, admin_headers), await sg_issuer(client, admin_headers)
        drafts = []
        for issuer in (a, b) * 4:
            tenant = await ingest_tenant()
            await give_profile(client, staff_headers, tenant.slug, de_profile(issuer=issuer["code"]))
            await ingest(client, tenant, [contact()])
            resp = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
            drafts.append(resp.json()["id"])

        async def finalize(invoice_id: str) -> str:
            async with dbs.control_transaction() as session:
                invoice = await invoices.finalize_invoice(session, SystemActor("tests"), invoice_id, now=frozen[0])
                return invoice.number

        numbers = await asyncio.gather(*(finalize(i) for i in drafts))
        for issuer in (a, b):
            mine = sorted(n for n in numbers if n.startswith(issuer["invoice_prefix"] + "-"))
            assert mine == [f"{issuer['invoice_prefix']}-2026-{k:06d}" for k in range(1, 5)], numbers
        assert all(re.fullmatch(r"P[0-9A-F]{5}-2026-\d{6}", n) for n in numbers)
