"""The billing-profile form and the issuers pages over HTTP (urlencoded forms with a bearer token and
the CSRF header): errors beside their fields with the typed values kept, post-redirect-get."""

from __future__ import annotations

import uuid


async def _headers(client, token: str) -> dict[str, str]:
    await client.get("/login")
    return {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", "")}


FORM = {
    "legal_name": "Acme Apparel GmbH", "address_line1": "Friedrichstraße 1", "address_line2": "",
    "postal_code": "10117", "city": "Berlin", "country": "DE", "tax_id": "DE136695976",
    "billing_emails": "ap@acme.example, controller@acme.example", "purchase_order": "", "locale": "de", "issuer": "",
}  # fmt: skip


async def test_a_merchant_admin_fills_in_the_billing_profile(client, make_tenant, issue_token, staff_headers):
    tenant = await make_tenant()
    headers = await _headers(client, await issue_token("merchant_admin", tenant["slug"]))
    path = f"/tenants/{tenant['slug']}/billing-profile"
    page = await client.get(path, headers=headers)
    assert (
        page.status_code == 200 and 'id="profile-missing"' in page.text and "text/html" in page.headers["content-type"]
    )

    bad = await client.post(path, data=FORM | {"tax_id": "DE123", "billing_emails": "not-an-address"}, headers=headers)
    assert bad.status_code == 422
    assert 'id="profile-tax_id-error"' in bad.text and "EU VAT number of DE" in bad.text
    assert 'id="profile-billing_emails-error"' in bad.text and 'value="Friedrichstraße 1"' in bad.text

    ok = await client.post(path, data=FORM, headers=headers, follow_redirects=False)
    assert ok.status_code in (302, 303) and ok.headers["location"] == path
    shown = await client.get(path, headers=headers)
    assert "Billing profile saved" in shown.text and 'id="profile-complete"' in shown.text
    api = (await client.get(f"/api/v1/tenants/{tenant['slug']}/billing-profile", headers=staff_headers)).json()
    assert api["billing_emails"] == ["ap@acme.example", "controller@acme.example"] and api["tax_id"] == "DE136695976"


async def test_platform_admins_add_and_edit_issuers(client, issue_token):
    admin = await _headers(client, await issue_token("platform_admin"))
    code, prefix = "p" + uuid.uuid4().hex[:6], "Q" + uuid.uuid4().hex[:4].upper()
    form = {"code": code, "legal_name": "SyncSoft Pte. Ltd.", "address_line1": "1 Raffles Place", "address_line2": "",
            "postal_code": "048616", "city": "Singapore", "country": "SG", "tax_registrations": "SG 00192200M",
            "invoice_prefix": prefix, "credit_note_prefix": "", "payment_instructions": "DBS",
            "regions": ""}  # fmt: skip
    bad = await client.post("/billing/issuers", data=form | {"tax_registrations": "SG nope"}, headers=admin)
    assert bad.status_code == 422 and 'id="issuer-tax_registrations-error"' in bad.text and "UEN" in bad.text
    ok = await client.post("/billing/issuers", data=form, headers=admin, follow_redirects=False)
    assert ok.status_code in (302, 303), ok.text
    listing = await client.get("/billing/issuers", headers=admin)
    assert f'data-issuer="{code}"' in listing.text and f"Issuer {code} created" in listing.text
    edit = await client.post(f"/billing/issuers/{code}", data=form | {"legal_name": "SyncSoft Asia"}, headers=admin,
                             follow_redirects=False)  # fmt: skip
    assert edit.status_code in (302, 303), edit.text
    page = await client.get(f"/billing/issuers/{code}", headers=admin)
    assert 'value="SyncSoft Asia"' in page.text

    manager = await _headers(client, await issue_token("account_manager"))
    assert (await client.get("/billing/issuers", headers=manager)).status_code == 200
    assert (await client.post("/billing/issuers", data=form, headers=manager)).status_code == 403
