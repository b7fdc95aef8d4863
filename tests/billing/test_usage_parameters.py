"""Issue 14: ``month=`` on usage (JSON and page) is parsed by the one month parser: 2000-01 up to a year
ahead, else 422 naming ``month`` (``9999-12``, ``0000-01`` and ``0001-01`` answered 500)."""

from __future__ import annotations

import re

import pytest

BAD_MONTHS = ["9999-12", "0000-01", "0001-01", "1999-12", "2026-13", "2026-10\n", "€", "x"]


class TestUsageMonth:
    @pytest.mark.parametrize("month", BAD_MONTHS)
    async def test_the_api_answers_422_naming_month(self, client, staff_headers, make_tenant, month):
        t = await make_tenant(onboard=True)
        resp = await client.get(f"/api/v1/tenants/{t['slug']}/usage", params={"month": month}, headers=staff_headers)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        body = resp.json()
        assert body["code"] == "invalid_input" and [e["field"] for e in body["errors"]] == ["month"]

    async def test_a_valid_month_is_read_as_before(self, client, staff_headers, make_tenant):
        t = await make_tenant(onboard=True)
        resp = await client.get(
            f"/api/v1/tenants/{t['slug']}/usage", params={"month": "2000-01"}, headers=staff_headers
        )
        assert resp.status_code == 200 and resp.json()["month"] == "2000-01"

    @pytest.mark.parametrize("month", ["9999-12", "0001-01"])
    async def test_the_page_shows_the_error_beside_the_month_field(self, client, staff_headers, make_tenant, month):
        t = await make_tenant(onboard=True)
        resp = await client.get(f"/tenants/{t['slug']}/usage", params={"month": month}, headers=staff_headers)
        assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
        tag = re.search(r'<input[^>]*id="month"[^>]*>', resp.text).group(0)
        assert 'aria-invalid="true"' in tag and 'aria-describedby="month-error"' in tag and f'value="{month}"' in tag
        error = re.search(r'<p class="error" id="month-error"[^>]*>([^<]*)</p>', resp.text)
        assert error and error.group(1).startswith("Must be a month as YYYY-MM from 2000-01 to ")
