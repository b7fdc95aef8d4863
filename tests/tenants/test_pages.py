"""The tenant page's forms over HTTP: transfer mechanisms added and revoked, typed values kept on
error, post-redirect-get with flashes, and an API key's secret shown once."""

from __future__ import annotations

from datetime import date, timedelta
from html.parser import HTMLParser

FUTURE = (date.today() + timedelta(days=400)).isoformat()
PIPL_US = {
    "regime": "PIPL",
    "market": "CN",
    "to_region": "us",
    "mechanism": "standard_contract",
    "reference": "CAC filing 2026-0113",
    "valid_until": FUTURE,
}
SCCS_US = {"regime": "GDPR", "to_region": "us", "mechanism": "sccs", "reference": "SCC-2026-7", "valid_until": FUTURE}


class Page(HTMLParser):
    """The page's elements by id (their attributes), textarea texts, the selected option of each
    select, the flash messages and the rows of the mechanisms table."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self.selected: dict[str, str] = {}
        self.flashes: list[str] = []
        self.mechanism_rows: list[str] = []
        self._select: str | None = None
        self._capture: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.by_id[a["id"]] = a | {"tag": tag}
        if tag == "select":
            self._select = a.get("id")
        if tag == "option" and self._select and "selected" in a:
            self.selected[self._select] = a.get("value", "")
        if "data-mechanism" in a:
            self.mechanism_rows.append(a["data-mechanism"])
        if tag in ("textarea", "p") and ("id" in a or "flash" in a.get("class", "")):
            self._capture = a.get("id") or f"flash-{len(self.flashes)}"
            self.text[self._capture] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag in ("textarea", "p") and self._capture:
            if self._capture.startswith("flash-"):
                self.flashes.append(self.text.pop(self._capture).strip())
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture:
            self.text[self._capture] += data

    def error_of(self, field_id: str) -> str:
        """The error the form shows for ``field_id`` (the element its aria-describedby names)."""
        field = self.by_id[field_id]
        assert field.get("aria-invalid") == "true", field
        return self.text[field["aria-describedby"]].strip()


async def _form(client, token: str) -> dict[str, str]:
    await client.get("/login")  # the CSRF cookie
    return {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", "")}


async def _page(client, slug: str, headers: dict[str, str]) -> Page:
    resp = await client.get(f"/tenants/{slug}", headers=headers)
    assert resp.status_code == 200, resp.text
    return Page(resp.text)


async def _post(client, path: str, headers: dict[str, str], data: dict | None = None):
    return await client.post(path, data=data or {}, headers=headers, follow_redirects=False)


async def _keys(client, slug: str, staff_headers) -> list[dict]:
    return (await client.get(f"/api/v1/tenants/{slug}/api-keys", headers=staff_headers)).json()


class TestMechanismForms:
    async def test_two_mechanisms_added_through_the_form_are_both_kept(
        self, client, make_tenant, issue_token, staff_headers
    ):
        t = await make_tenant(markets=["DE", "FR", "CN"])
        slug, headers = t["slug"], await _form(client, await issue_token("account_manager"))
        for choice, market, ref in (("GDPR:sccs", "", "SCC-2026-7"), ("PIPL:standard_contract", "CN", "CAC-1")):
            form = {"choice": choice, "market": market, "to_region": "us", "reference": ref, "valid_until": FUTURE}
            resp = await _post(client, f"/tenants/{slug}/transfer-mechanisms", headers, form)
            assert resp.status_code in (302, 303) and resp.headers["location"] == f"/tenants/{slug}"
        page = await _page(client, slug, headers)
        assert len(page.mechanism_rows) == 2
        assert any("Transfer mechanism recorded: PIPL standard_contract" in f for f in page.flashes)
        listed = (await client.get(f"/api/v1/tenants/{slug}/transfer-mechanisms", headers=staff_headers)).json()
        assert [(m["regime"], m["market"], m["reference"]) for m in listed] == [
            ("GDPR", None, "SCC-2026-7"),
            ("PIPL", "CN", "CAC-1"),
        ]

    async def test_a_refused_mechanism_keeps_every_typed_value(self, client, make_tenant, issue_token):
        t = await make_tenant(markets=["DE", "FR", "CN"])
        headers = await _form(client, await issue_token("account_manager"))
        form = {
            "choice": "GDPR:sccs",
            "market": "DE",
            "to_region": "us",
            "reference": "SCC typed by hand",
            "valid_until": "2020-01-31",
        }
        resp = await _post(client, f"/tenants/{t['slug']}/transfer-mechanisms", headers, form)
        assert resp.status_code == 422
        page = Page(resp.text)
        assert "expired on 2020-01-31" in page.error_of("mechanism-valid_until")
        assert page.by_id["mechanism-reference"]["value"] == "SCC typed by hand"
        assert page.by_id["mechanism-valid_until"]["value"] == "2020-01-31"
        assert page.selected["mechanism-choice"] == "GDPR:sccs"
        assert page.selected["mechanism-market"] == "DE"
        assert page.selected["mechanism-to_region"] == "us"
        assert "open" in page.by_id["add-mechanism-section"]
        assert page.mechanism_rows == []

    async def test_a_form_without_a_mechanism_says_so(self, client, make_tenant, issue_token):
        t = await make_tenant()
        headers = await _form(client, await issue_token("account_manager"))
        resp = await _post(client, f"/tenants/{t['slug']}/transfer-mechanisms", headers, {"reference": "R-1"})
        assert resp.status_code == 422
        page = Page(resp.text)
        assert page.error_of("mechanism-choice") == "Choose a mechanism; its regime comes with it."
        assert page.error_of("mechanism-to_region") == "Give the region the data goes to."
        assert page.by_id["mechanism-reference"]["value"] == "R-1"

    async def test_revoking_a_mechanism_in_use_is_refused_naming_the_integration(
        self, client, make_tenant, issue_token, staff_headers
    ):
        t = await make_tenant(markets=["DE", "FR", "CN"])
        slug = t["slug"]
        api = f"/api/v1/tenants/{slug}/transfer-mechanisms"
        pipl = (await client.post(api, json=PIPL_US, headers=staff_headers)).json()
        await client.post(api, json=SCCS_US, headers=staff_headers)
        gorgias = {"kind": "gorgias", "name": "Gorgias helpdesk", "credentials": {"api_key": "g"}}
        added = await client.post(f"/api/v1/tenants/{slug}/integrations", json=gorgias, headers=staff_headers)
        assert added.status_code == 201, added.text
        headers = await _form(client, await issue_token("account_manager"))
        resp = await _post(client, f"/tenants/{slug}/transfer-mechanisms/{pipl['id']}/revoke", headers)
        assert resp.status_code == 409
        page = Page(resp.text)
        assert "Gorgias helpdesk" in resp.text and "mechanism_in_use" not in resp.text
        assert len(page.mechanism_rows) == 2
        # With a second PIPL mechanism covering the same transfer, the first one can go.
        spare = PIPL_US | {"mechanism": "certification", "reference": "CERT-9"}
        assert (await client.post(api, json=spare, headers=staff_headers)).status_code == 201
        resp = await _post(client, f"/tenants/{slug}/transfer-mechanisms/{pipl['id']}/revoke", headers)
        assert resp.status_code in (302, 303)
        page = await _page(client, slug, headers)
        assert pipl["id"] not in page.mechanism_rows and len(page.mechanism_rows) == 2
        assert "Transfer mechanism revoked" in page.flashes

    async def test_the_markets_form_keeps_what_was_typed(self, client, make_tenant, issue_token):
        t = await make_tenant()  # DE, FR, ES
        headers = await _form(client, await issue_token("account_manager"))
        typed = "DE=eu\nIT=eu"
        resp = await _post(client, f"/tenants/{t['slug']}/residency", headers, {"markets": typed})
        assert resp.status_code == 422
        page = Page(resp.text)
        assert "does not sell in IT" in page.error_of("residency-markets")
        assert page.text["residency-markets"].strip() == typed
        ok = await _post(client, f"/tenants/{t['slug']}/residency", headers, {"markets": "DE=eu"})
        assert ok.status_code in (302, 303)
        assert "Residency saved" in (await _page(client, t["slug"], headers)).flashes


class TestApiKeyForms:
    async def test_reloading_after_issuing_shows_no_secret_and_issues_nothing(
        self, client, make_tenant, issue_token, staff_headers
    ):
        t = await make_tenant()
        slug, headers = t["slug"], await _form(client, await issue_token("account_manager"))
        form = {"scopes": "contacts:write", "label": "Helpdesk ingest"}
        resp = await _post(client, f"/tenants/{slug}/api-keys", headers, form)
        assert resp.status_code in (302, 303) and "bpo_live_" not in resp.text
        first = await _page(client, slug, headers)
        secret = first.text["new-secret"].strip()
        assert secret.startswith("bpo_live_")
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.json()["tenant"] == slug
        again = await client.get(f"/tenants/{slug}", headers=headers)
        assert again.status_code == 200 and "new-secret" not in again.text and secret not in again.text
        keys = await _keys(client, slug, staff_headers)
        assert [(k["label"], k["revoked_at"]) for k in keys] == [("Helpdesk ingest", None)]

    async def test_a_key_without_a_scope_keeps_its_label(self, client, make_tenant, issue_token, staff_headers):
        t = await make_tenant()
        headers = await _form(client, await issue_token("account_manager"))
        resp = await _post(client, f"/tenants/{t['slug']}/api-keys", headers, {"label": "Typed label"})
        assert resp.status_code == 422
        page = Page(resp.text)
        assert page.error_of("api_key-scopes").startswith("Choose at least one scope")
        assert page.by_id["api_key-label"]["value"] == "Typed label"
        assert await _keys(client, t["slug"], staff_headers) == []

    async def test_a_merchant_admin_issues_and_revokes_a_key_of_its_own(
        self, client, make_tenant, issue_token, staff_headers
    ):
        t = await make_tenant()
        slug = t["slug"]
        headers = await _form(client, await issue_token("merchant_admin", slug))
        form = {"scopes": ["sla:read", "invoices:read"], "label": "Finance export"}
        assert (await _post(client, f"/tenants/{slug}/api-keys", headers, form)).status_code in (302, 303)
        [key] = await _keys(client, slug, staff_headers)
        assert key["label"] == "Finance export" and key["scopes"] == ["invoices:read", "sla:read"]
        page = await _page(client, slug, headers)
        assert page.text["new-secret"].startswith(key["prefix"])
        resp = await _post(client, f"/tenants/{slug}/api-keys/{key['id']}/revoke", headers)
        assert resp.status_code in (302, 303)
        [key] = await _keys(client, slug, staff_headers)
        assert key["revoked_at"] is not None
        assert "API key revoked: it no longer authenticates" in (await _page(client, slug, headers)).flashes
        # Revoking it twice is refused on the page, with the reason.
        twice = await _post(client, f"/tenants/{slug}/api-keys/{key['id']}/revoke", headers)
        assert twice.status_code == 409 and "revoked already" in twice.text


class TestOtherForms:
    async def test_contract_and_status_redirect_with_a_flash(self, client, make_tenant, issue_token):
        t = await make_tenant()
        slug, headers = t["slug"], await _form(client, await issue_token("account_manager"))
        contract = {"effective_from": "2026-10-01", "ai_resolved.unit_price": "1.40", "human_resolved.unit_price": "5"}
        resp = await _post(client, f"/tenants/{slug}/contract", headers, contract)
        assert resp.status_code in (302, 303) and resp.headers["location"] == f"/tenants/{slug}"
        assert "Contract version added" in (await _page(client, slug, headers)).flashes
        refused = await _post(client, f"/tenants/{slug}/status", headers, {"to": "active", "reason": "go live"})
        assert refused.status_code == 409
        page = Page(refused.text)
        assert page.selected["status-to"] == "active" and page.by_id["status-reason"]["value"] == "go live"
        resp = await _post(client, f"/tenants/{slug}/status", headers, {"to": "offboarded", "reason": "test"})
        assert resp.status_code in (302, 303)
        assert "Status changed to offboarded" in (await _page(client, slug, headers)).flashes

    async def test_a_refused_integration_keeps_its_name_and_region_not_its_credentials(
        self, client, make_tenant, issue_token
    ):
        t = await make_tenant()
        headers = await _form(client, await issue_token("account_manager"))
        form = {"kind": "zendesk", "name": "Zendesk US", "processing_region": "us", "credentials": "token=zd-secret"}
        resp = await _post(client, f"/tenants/{t['slug']}/integrations", headers, form)
        assert resp.status_code == 409 and "GDPR" in resp.text
        page = Page(resp.text)
        assert page.by_id["integration-name"]["value"] == "Zendesk US"
        assert page.selected["integration-processing_region"] == "us"
        assert "zd-secret" not in resp.text
        empty = await _post(client, f"/tenants/{t['slug']}/integrations", headers, {"kind": "zendesk"})
        assert empty.status_code == 422
        assert Page(empty.text).error_of("integration-credentials").startswith("Give at least one credential")
