"""Invoice routes end to end: rollups from real ingest -> draft -> finalize; 409s and 404s; HTML, PDF, CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.billing.invoices.conftest import contact, ingest

OPENED = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)


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


class TestDraftAndFinalize:
    async def test_draft_rates_the_period_and_finalize_numbers_it(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        await ingest(client, tenant, _mixed(2, 2))
        resp = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        assert resp.status_code == 200, resp.text
        inv = resp.json()
        assert inv["status"] == "draft" and inv["number"] is None and inv["currency"] == "EUR"
        assert [(line["kind"], line["quantity"], line["unit_price"], line["amount"]) for line in inv["lines"]] == [
            ("ai_resolved", 2, "1.40", "2.80"),
            ("human_resolved", 2, "5.20", "10.40"),
            ("minimum_true_up", 1, "4986.80", "4986.80"),
            ("sla_credit", 1, "-1.32", "-1.32"),
        ]
        assert (inv["usage_subtotal"], inv["credit_total"], inv["total"]) == ("13.20", "-1.32", "4998.68")

        again = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        assert again.status_code == 200 and again.json()["id"] == inv["id"]

        fin = await client.post(f"/api/v1/invoices/{inv['id']}/finalize", headers=staff_headers)
        assert fin.status_code == 200, fin.text
        body = fin.json()
        assert body["status"] == "finalized" and body["number"].startswith("INV-2026-")
        assert body["lines"] == inv["lines"] and body["total"] == "4998.68"

    async def test_refused_before_the_period_has_settled(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        frozen[0] = datetime(2026, 11, 4, 22, 59, tzinfo=UTC)  # Nov 1 00:00 Berlin = Oct 31 23:00 UTC; +96 h
        resp = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        assert resp.status_code == 409 and resp.json()["code"] == "period_not_settled"
        frozen[0] = datetime(2026, 11, 4, 23, 0, tzinfo=UTC)
        resp = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        assert resp.status_code == 200, resp.text

    async def test_bad_period_is_422(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        resp = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-13", headers=staff_headers)
        assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "period"


class TestFinalizedNeverChanges:
    async def test_every_changing_route_answers_409(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        await ingest(client, tenant, _mixed(1, 0))
        inv = (
            await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        ).json()
        await client.post(f"/api/v1/invoices/{inv['id']}/finalize", headers=staff_headers)
        before = (await client.get(f"/api/v1/invoices/{inv['id']}", headers=staff_headers)).json()
        await ingest(client, tenant, _mixed(3, 0))  # late contacts of the finalized period
        for method, path, body in [
            ("POST", f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", None),
            ("POST", f"/api/v1/invoices/{inv['id']}/finalize", None),
            ("POST", f"/api/v1/invoices/{inv['id']}/void", {"reason": "wrong"}),
        ]:
            resp = await client.request(method, path, json=body, headers=staff_headers)
            assert resp.status_code == 409, (path, resp.text)
            assert resp.json()["detail"]
        after = (await client.get(f"/api/v1/invoices/{inv['id']}", headers=staff_headers)).json()
        assert after == before

    async def test_credit_note_is_the_correction(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        inv = (
            await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        ).json()
        note = await client.post(f"/api/v1/invoices/{inv['id']}/credit-notes", json={"amount": "10.00", "reason": "x"},
                                 headers=staff_headers)  # fmt: skip
        assert note.status_code == 409  # a draft gets no credit note
        await client.post(f"/api/v1/invoices/{inv['id']}/finalize", headers=staff_headers)
        note = await client.post(
            f"/api/v1/invoices/{inv['id']}/credit-notes", json={"amount": "120.00", "reason": "goodwill"},
            headers=staff_headers,
        )  # fmt: skip
        assert note.status_code == 201, note.text
        body = note.json()
        assert body["total"] == "5000.00" and [(n["amount"], n["reason"]) for n in body["credit_notes"]] == [
            ("120.00", "goodwill")
        ]
        assert body["credit_notes"][0]["number"].startswith("CN-2026-")
        over = await client.post(
            f"/api/v1/invoices/{inv['id']}/credit-notes", json={"amount": "4880.01", "reason": "too much"},
            headers=staff_headers,
        )  # fmt: skip
        assert over.status_code == 409 and "4880.00" in over.json()["detail"]


class TestTenantIsolation:
    async def test_another_tenants_invoice_is_404(self, client, staff_headers, ingest_tenant, issue_token, frozen):
        mine, theirs = await ingest_tenant(), await ingest_tenant()
        inv = (
            await client.post(f"/api/v1/tenants/{theirs.slug}/invoices?period=2026-10", headers=staff_headers)
        ).json()
        merchant = {"Authorization": f"Bearer {await issue_token('merchant_admin', mine.slug)}"}
        for suffix in ("", ".html", ".pdf"):
            resp = await client.get(f"/api/v1/invoices/{inv['id']}{suffix}", headers=merchant)
            assert resp.status_code == 404, suffix
        own = await client.get(f"/api/v1/tenants/{mine.slug}/invoices", headers=merchant)
        assert own.status_code == 200 and own.json() == []
        resp = await client.get(f"/api/v1/tenants/{theirs.slug}/invoices", headers=merchant)
        assert resp.status_code == 404
        csv_text = (await client.get("/api/v1/invoices.csv?period=2026-10", headers=merchant)).text
        assert theirs.slug not in csv_text


class TestDocuments:
    async def test_html_csv_and_drafts_page(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        await ingest(client, tenant, _mixed(2, 2))
        inv = (
            await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        ).json()
        html = (await client.get(f"/api/v1/invoices/{inv['id']}.html", headers=staff_headers)).text
        assert 'data-amount="4998.68"' in html and "€4,998.68" in html and "Human-resolved contacts" in html
        rows = (await client.get("/api/v1/invoices.csv?period=2026-10", headers=staff_headers)).text.splitlines()
        assert f",{tenant.slug},2026-10,draft,EUR,13.20,-1.32,4998.68,,0.00,4998.68" in rows
        await ingest(client, tenant, _mixed(1, 0))
        await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        page = (await client.get("/billing/drafts", headers=staff_headers)).text
        assert f'data-invoice="{inv["id"]}"' in page
        assert "2 x 1.40 = 2.80" in page and "3 x 1.40 = 4.20" in page  # ai line before and after the re-draft
