"""Invoice use cases on the service layer with a frozen clock: numbering under concurrency, PDF, scenarios."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium

from billing.invoices import service
from billing.invoices.pdf import render_invoice_pdf
from compliance.service import SystemActor
from tests.billing.invoices.conftest import NOW, contact, ingest

ACTOR = SystemActor("tests", "system")


def _human(opened: datetime, **kw) -> dict:
    return contact(
        opened=opened, resolution="human_resolved", handoff_at=(opened + timedelta(minutes=1)).isoformat(), **kw
    )


class TestConcurrentFinalization:
    async def test_two_finalizations_get_consecutive_numbers(self, dbs, client, ingest_tenant):
        a, b = await ingest_tenant(), await ingest_tenant()
        ids = []
        for tenant in (a, b):
            async with dbs.control_transaction() as session:
                invoice, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
                ids.append(invoice.id)

        async def finalize(invoice_id):
            async with dbs.control_transaction() as session:
                invoice = await service.finalize_invoice(session, ACTOR, invoice_id, now=NOW)
                return invoice.number

        numbers = sorted(await asyncio.gather(*(finalize(i) for i in ids)))
        first, second = (int(n.rsplit("-", 1)[1]) for n in numbers)
        assert numbers[0].startswith("INV-2026-") and second == first + 1

        async def refinalize():
            async with dbs.control_transaction() as session:
                await service.finalize_invoice(session, ACTOR, ids[0], now=NOW)

        try:
            await refinalize()
            raise AssertionError("a finalized invoice was finalized again")
        except service.Conflict as exc:
            assert exc.code == "not_draft"
        async with dbs.control_transaction() as session:
            invoice, _ = await service.draft_invoice(session, ACTOR, a.slug, "2026-11", now=NOW + timedelta(days=40))
            third = await service.finalize_invoice(session, ACTOR, invoice.id, now=NOW + timedelta(days=40))
        assert int(third.number.rsplit("-", 1)[1]) == second + 1  # the refused attempt used no number


class TestPdf:
    async def test_first_page_renders_and_shows_the_json_total(self, dbs, client, ingest_tenant, staff_headers):
        tenant = await ingest_tenant()
        opened = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
        await ingest(client, tenant, [contact(opened=opened), _human(opened)])
        async with dbs.control_transaction() as session:
            invoice, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
        body = (await client.get(f"/api/v1/invoices/{invoice.id}", headers=staff_headers)).json()
        resp = await client.get(f"/api/v1/invoices/{invoice.id}.pdf", headers=staff_headers)
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
        doc = pdfium.PdfDocument(io.BytesIO(resp.content))
        page = doc[0]
        image = page.render(scale=1).to_pil().convert("L")
        dark = sum(1 for px in image.get_flattened_data() if px < 128)
        assert dark > 2000, "the first page is blank"
        text = page.get_textpage().get_text_range()
        assert body["total"] == "4999.34"  # 6.60 usage + 4993.40 true-up - 0.66 deflection credit
        assert f"Total as in the API: EUR {body['total']}" in text and "€4,999.34" in text
        assert tenant.slug in text and "Human-resolved contacts" in text

    def test_an_empty_jpy_invoice_renders(self):
        invoice = {"number": None, "status": "draft", "period": "2026-10", "timezone": "Asia/Tokyo", "currency": "JPY",
                   "lines": [], "usage_subtotal": "0", "credit_total": "0", "total": "0"}  # fmt: skip
        pdf = render_invoice_pdf(invoice, {"name": "Sakura", "slug": "sakura"})
        assert pdf.startswith(b"%PDF")
