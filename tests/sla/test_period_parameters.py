"""``period=`` on the SLA report (JSON, CSV, PDF, page): one parser, 2000-01 up to a year ahead, else 422 naming it.

Reproducers of issue 14: ``9999-12``, ``0000-01`` and ``0001-01`` answered 500; so could anything unparsable."""

from __future__ import annotations

import pytest

from tests.sla.test_settings_pages import error_beside, html_of, value_of

BAD_PERIODS = [
    "9999-12",
    "0000-01",
    "0001-01",
    "1999-12",
    "2026-13",
    "2026-1",
    "€",
    'x";filename="evil.html',
    "2026-10\n",
]
ROUTES = ["/api/v1/tenants/{slug}/sla", "/api/v1/tenants/{slug}/sla.csv", "/api/v1/tenants/{slug}/sla.pdf"]


def assert_problem(resp, field: str) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "invalid_input"
    assert [e["field"] for e in body["errors"]] == [field]


class TestBadPeriod:
    @pytest.mark.parametrize("route", ROUTES)
    @pytest.mark.parametrize("period", BAD_PERIODS)
    async def test_the_api_answers_422_naming_period(self, sla_tenant, client, staff_headers, route, period):
        t = await sla_tenant(contract={})
        resp = await client.get(route.format(slug=t.slug), params={"period": period}, headers=staff_headers)
        assert_problem(resp, "period")

    @pytest.mark.parametrize("period", ["9999-12", "0000-01", "0001-01", "2026-13"])
    async def test_the_page_names_the_error_beside_the_month_and_shows_this_month(
        self, sla_tenant, client, staff_headers, period
    ):
        t = await sla_tenant(contract={})
        resp = await client.get(f"/tenants/{t.slug}/sla", params={"period": period}, headers=staff_headers)
        assert resp.status_code == 422
        html = html_of(resp)
        assert error_beside(html, "period").startswith("Must be a month as YYYY-MM from 2000-01 to ")
        assert value_of(html, "period") == period
        assert 'id="kpis"' in html  # the current month's report below the selector


class TestValidPeriod:
    async def test_the_report_and_its_files_are_as_before(self, sla_tenant, client, staff_headers):
        t = await sla_tenant(contract={})
        api = await client.get(f"/api/v1/tenants/{t.slug}/sla", params={"period": "2000-01"}, headers=staff_headers)
        assert api.status_code == 200 and api.json()["period"] == "2000-01"
        csv = await client.get(f"/api/v1/tenants/{t.slug}/sla.csv?period=2026-10", headers=staff_headers)
        assert csv.status_code == 200
        assert csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert csv.headers["content-disposition"] == f'attachment; filename="sla-{t.slug}-2026-10.csv"'
        pdf = await client.get(f"/api/v1/tenants/{t.slug}/sla.pdf?period=2026-10", headers=staff_headers)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"] == f'attachment; filename="sla-{t.slug}-2026-10.pdf"'

    async def test_the_page_offers_no_link_outside_the_range(self, sla_tenant, client, staff_headers):
        t = await sla_tenant(contract={})
        html = html_of(await client.get(f"/tenants/{t.slug}/sla?period=2000-01", headers=staff_headers))
        assert 'id="prev-month"' not in html and 'href="?period=2000-02" id="next-month"' in html
        assert 'min="2000-01"' in html
