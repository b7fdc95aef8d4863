"""Records of processing: generated from configuration, as JSON, HTML and PDF; merchants see their own."""

from __future__ import annotations

import pypdfium2

MECHANISM = {
    "regime": "PIPL",
    "market": "CN",
    "to_region": "eu",
    "mechanism": "standard_contract",
    "reference": "CAC filing 2026-0113",
    "valid_until": "2029-01-31",
}


async def _configured(client, staff_headers, make_tenant) -> str:
    t = await make_tenant(markets=["DE", "CN"], retention_days=400, name="Acme Records")
    slug = t["slug"]
    r = await client.put(
        f"/api/v1/tenants/{slug}/residency",
        json={"markets": {"DE": "eu", "CN": "cn"}, "transfer_mechanisms": [MECHANISM]},
        headers=staff_headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/tenants/{slug}/integrations",
        json={"kind": "zendesk", "name": "Zendesk EU", "processing_region": "eu", "credentials": {"token": "z"}},
        headers=staff_headers,
    )
    assert r.status_code == 201, r.text
    return slug


class TestRecordsOfProcessing:
    async def test_json_is_generated_from_configuration(self, client, staff_headers, make_tenant, auditor, keyring):
        slug = await _configured(client, staff_headers, make_tenant)
        r = await client.get(f"/api/v1/tenants/{slug}/records-of-processing", headers=auditor)
        assert r.status_code == 200, r.text
        rec = r.json()
        assert rec["tenant"]["slug"] == slug and rec["controller"]["name"] == "Acme Records"
        assert [(x["region"], x["regime"], x["markets"]) for x in rec["regions"]] == [
            ("cn", "PIPL", ["CN"]),
            ("eu", "GDPR", ["DE"]),
        ]
        assert [(p["name"], p["kind"], p["processing_region"], p["cross_border_from"]) for p in rec["recipients"]] == [
            ("Zendesk EU", "zendesk", "eu", ["cn"])
        ]
        assert rec["transfers"] == [
            {
                "from_region": "cn",
                "regime": "PIPL",
                "markets": ["CN"],
                "to_region": "eu",
                "recipient": "Zendesk EU",
                "mechanism": "standard_contract (CAC filing 2026-0113)",
                "valid_until": "2029-01-31",
            }
        ]
        assert rec["retention"]["contacts_days"] == 400
        measures = {m["measure"]: m["detail"] for m in rec["security_measures"]}
        assert f"active key {keyring.active}" in measures["Encryption of secrets at rest"]
        assert "HMAC-SHA256" in measures["Pseudonymisation of customer references"]
        assert "Ed25519" in measures["Tamper-evident audit log"]
        assert {d["regime"] for d in rec["data_subject_rights"]} == {"GDPR", "CCPA", "PDPA", "PIPL"}

    async def test_html_and_pdf_beside_it(self, client, staff_headers, make_tenant, issue_token):
        slug = await _configured(client, staff_headers, make_tenant)
        merchant = {"Authorization": f"Bearer {await issue_token('merchant_viewer', slug)}"}
        html = await client.get(f"/api/v1/tenants/{slug}/records-of-processing.html", headers=merchant)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "Record of processing: Acme Records" in html.text and "CAC filing 2026-0113" in html.text
        pdf = await client.get(f"/api/v1/tenants/{slug}/records-of-processing.pdf", headers=merchant)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"] == f'inline; filename="records-of-processing-{slug}.pdf"'
        doc = pypdfium2.PdfDocument(pdf.content)
        text = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
        for expected in ("Acme Records", "Zendesk EU", "standard_contract (CAC filing 2026-0113)", "400 days", "PIPL"):
            assert expected in text, expected
        other = await make_tenant()
        assert (
            await client.get(f"/api/v1/tenants/{other['slug']}/records-of-processing", headers=merchant)
        ).status_code == 404
