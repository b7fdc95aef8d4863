"""Issue 14: the audit export's and the audit search's ``from``/``to`` go through the one time parser
(2000-01-01 up to the end of the month a year ahead): out of range or unparsable is 422 naming the
field, never 500; the export's file name and content type are as documented."""

from __future__ import annotations

import re

import pytest

OUT_OF_RANGE = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",  # no UTC equivalent
    "0001-01-01T00:00:00+14:00",  # no UTC equivalent
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2030-01-01T00:00:00Z",
]
UNPARSABLE = ["yesterday", "2026-13-01T00:00:00Z", "2026-11-01T00:00:00Z\x00", "€", "2026-11-01T25:00:00Z"]


@pytest.fixture
async def auditor(issue_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token('compliance_officer')}"}


def assert_problem(resp, fields: list[str]) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "invalid_input" and [e["field"] for e in body["errors"]] == fields


class TestAuditExport:
    @pytest.mark.parametrize("field", ["from", "to"])
    @pytest.mark.parametrize("value", OUT_OF_RANGE + UNPARSABLE)
    async def test_a_bad_time_is_422_naming_it(self, client, make_tenant, auditor, field, value):
        t = await make_tenant()
        resp = await client.get("/api/v1/audit/export", params={"stream": t["slug"], field: value}, headers=auditor)
        assert_problem(resp, [field])
        assert "content-disposition" not in resp.headers

    async def test_out_of_range_names_the_range(self, client, make_tenant, auditor):
        t = await make_tenant()
        params = {"stream": t["slug"], "from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}
        resp = await client.get("/api/v1/audit/export", params=params, headers=auditor)
        assert_problem(resp, ["from", "to"])
        assert resp.json()["errors"][0]["message"].startswith("must be a time from 2000-01-01 to ")

    async def test_an_offset_is_still_required(self, client, make_tenant, auditor):
        t = await make_tenant()
        resp = await client.get(
            "/api/v1/audit/export", params={"stream": t["slug"], "from": "2026-11-01T00:00:00"}, headers=auditor
        )
        assert_problem(resp, ["from"])
        assert resp.json()["errors"][0]["message"].startswith("needs a time zone offset")

    @pytest.mark.parametrize(
        ("format", "media"), [("jsonl", "application/x-ndjson"), ("csv", "text/csv; charset=utf-8")]
    )
    async def test_a_valid_range_exports_with_one_content_type_and_a_plain_file_name(
        self, client, make_tenant, auditor, format, media
    ):
        t = await make_tenant()
        params = {"stream": t["slug"], "from": "2000-01-01T00:00:00Z", "to": "2026-12-01T00:00:00+01:00"}
        resp = await client.get("/api/v1/audit/export", params=params | {"format": format}, headers=auditor)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == media
        assert resp.headers["content-disposition"] == f'attachment; filename="audit-{t["slug"]}.{format}"'
        assert "tenant.created" in resp.text


class TestAuditSearch:
    @pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "9999-12-31T23:59", "0001-01-01T00:00:00+14:00"])
    async def test_a_time_out_of_range_is_named_beside_its_field(self, client, make_tenant, auditor, value):
        t = await make_tenant()
        page = await client.get("/compliance/audit", params={"tenant": t["slug"], "to": value}, headers=auditor)
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        error = re.search(r'id="audit-to-error" data-field="to">([^<]*)<', page.text)
        assert error and error.group(1).startswith("To must be a time from 2000-01-01 to "), page.text
        assert 'aria-describedby="audit-to-error"' in page.text
