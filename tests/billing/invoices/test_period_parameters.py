"""Issue 14: ``period=`` when drafting (API and page form) and on ``invoices.csv``: one parser, a range
(2000-01 up to a year ahead), 422 naming ``period``; the CSV's ``Content-Disposition`` is built from the
parsed month only (raw input once reached the header: ``%E2%82%AC`` was a 500, ``%0A``/``%1F``/``%00``
dropped the connection, ``x";filename="evil.html`` injected a second filename)."""

from __future__ import annotations

import pytest

from tests.billing.invoices.test_pages import _html

REPRODUCERS = ["9999-12", "0000-01", "0001-01", "1999-12", "2028-01", "2026-13", "2026-10\n", "", "soon"]
HEADER_BREAKERS = ["€", "\n", "\x1f", "\x00", 'x";filename="evil.html', "2026-10\r\nSet-Cookie: a=b"]


@pytest.fixture
async def am(client, issue_token) -> dict[str, str]:
    """An account manager's headers for the page form (bearer token and CSRF header)."""
    await client.get("/login")
    token = await issue_token("account_manager")
    return {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", "")}


def assert_problem(resp, field: str = "period") -> None:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "invalid_input" and [e["field"] for e in body["errors"]] == [field]
    assert "2000-01" in body["errors"][0]["message"]


class TestDraftingApi:
    @pytest.mark.parametrize("period", REPRODUCERS)
    async def test_a_month_out_of_range_or_unparsable_is_422(
        self, client, staff_headers, ingest_tenant, frozen, period
    ):
        tenant = await ingest_tenant()
        resp = await client.post(
            f"/api/v1/tenants/{tenant.slug}/invoices", params={"period": period}, headers=staff_headers
        )
        assert_problem(resp)

    async def test_no_period_at_all_is_422(self, client, staff_headers, ingest_tenant, frozen):
        tenant = await ingest_tenant()
        assert_problem(await client.post(f"/api/v1/tenants/{tenant.slug}/invoices", headers=staff_headers))


class TestDraftingForm:
    @pytest.mark.parametrize("period", ["9999-12", "0000-01", "0001-01", "1999-12"])
    async def test_the_error_is_beside_the_field_with_the_value_kept(self, client, am, ingest_tenant, frozen, period):
        tenant = await ingest_tenant()
        page = _html(await client.post(f"/tenants/{tenant.slug}/invoices", data={"period": period}, headers=am), 422)
        assert page.error_beside("draft-period").startswith("Must be a month as YYYY-MM from 2000-01 to ")
        assert page.by_id["draft-period"]["attrs"]["value"] == period


class TestInvoicesCsv:
    @pytest.mark.parametrize("period", [*REPRODUCERS, *HEADER_BREAKERS])
    async def test_a_bad_period_is_422_and_never_reaches_a_header(self, client, staff_headers, period):
        resp = await client.get("/api/v1/invoices.csv", params={"period": period}, headers=staff_headers)
        assert_problem(resp)
        assert "content-disposition" not in resp.headers

    async def test_the_file_is_named_from_the_parsed_month(self, client, staff_headers):
        resp = await client.get("/api/v1/invoices.csv", params={"period": "2026-10"}, headers=staff_headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "text/csv; charset=utf-8"
        assert resp.headers["content-disposition"] == 'attachment; filename="invoices-2026-10.csv"'
        assert resp.text.splitlines()[0].startswith("number,tenant,period,status")
