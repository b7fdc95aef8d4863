"""Audit search pages over HTTP: paging that says which rows it shows, date pickers' and RFC 3339
time ranges, expandable entries, a tenant's Audit tab and who may export from it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from compliance.service import SystemActor, append_audit_entry

T = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


async def append(dbs, stream: str, action: str, times: list[datetime]) -> None:
    async with dbs.control_transaction() as session:
        for i, when in enumerate(times):
            await append_audit_entry(
                session,
                stream=stream,
                actor=SystemActor("tests"),
                action=action,
                target=f"t:{i}",
                data={"i": i},
                now=when,
            )


@pytest.fixture
async def headers(issue_token):
    async def make(role: str, tenant: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await issue_token(role, tenant)}"}

    return make


class TestPaging:
    @pytest.mark.parametrize("where", ["compliance", "tab"])
    async def test_250_entries_are_two_pages_with_the_right_rows(self, client, make_tenant, dbs, headers, where):
        t = await make_tenant()
        slug = t["slug"]
        await append(dbs, slug, "test.ping", [T + timedelta(seconds=i) for i in range(250)])
        async with dbs.control_session() as session:
            from compliance.service import search_entries

            newest_first = [e.seq for e in await search_entries(session, stream=slug, action="test.ping", limit=1000)]
        assert len(newest_first) == 250
        auditor = await headers("compliance_officer")
        url, params = (
            ("/compliance/audit", {"tenant": slug}) if where == "compliance" else (f"/tenants/{slug}/audit", {})
        )
        first = await client.get(url, params=params | {"action": "test.ping"}, headers=auditor)
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
        assert seqs(first.text) == newest_first[:200]
        assert '<p id="audit-range">Entries 1 to 200 of 250, newest first.</p>' in first.text
        assert 'id="audit-prev"' not in first.text
        nxt = re.search(r'href="([^"]+)" rel="next" id="audit-next"', first.text).group(1).replace("&amp;", "&")
        assert parse_qs(urlsplit(nxt).query)["page"] == ["2"] and parse_qs(urlsplit(nxt).query)["action"] == [
            "test.ping"
        ]
        second = await client.get(nxt, headers=auditor)
        assert seqs(second.text) == newest_first[200:]
        assert '<p id="audit-range">Entries 201 to 250 of 250, newest first.</p>' in second.text
        assert 'id="audit-next"' not in second.text and 'id="audit-prev"' in second.text
        beyond = await client.get(url, params=params | {"action": "test.ping", "page": 9}, headers=auditor)
        assert seqs(beyond.text) == newest_first[200:]  # past the end: the last page

    async def test_an_entry_expands_to_its_data_hash_and_links(self, client, make_tenant, dbs, headers):
        t = await make_tenant()
        await append(dbs, t["slug"], "test.one", [T])
        async with dbs.control_session() as session:
            from compliance.service import list_entries

            entry = (await list_entries(session, t["slug"], limit=1))[0]
        page = await client.get(
            "/compliance/audit",
            params={"tenant": t["slug"], "action": "test.one"},
            headers=await headers("platform_admin"),
        )
        details = page.text.split('<details class="entry">', 1)[1].split("</details>", 1)[0]
        assert f"<code>{entry.hash}</code>" in details and f"<code>{entry.prev_hash}</code>" in details
        assert "&#34;i&#34;: 0" in details or '"i": 0' in details
        assert "Request id" in details


class TestTimeRange:
    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            ("2026-11-02", "", [3, 2]),  # input type=date: from that day's midnight (UTC)
            ("", "2026-11-02", [2, 1]),  # a date as the end includes that day
            ("2026-11-02T10:00", "", [3, 2]),  # datetime-local, read as UTC
            ("2026-11-02T10:00:01", "2026-11-03T10:00:00", []),
            ("2026-11-02T10:00:00Z", "2026-11-03T00:00:00+00:00", [2]),  # RFC 3339
            ("2026-11-02T11:00:00+01:00", "2026-11-02T10:00:01Z", [2]),
        ],
    )
    async def test_dates_datetimes_and_rfc3339(self, client, make_tenant, dbs, headers, start, end, expected):
        t = await make_tenant()
        await append(dbs, t["slug"], "test.when", [T, T + timedelta(days=1), T + timedelta(days=2)])
        base = {"tenant": t["slug"], "action": "test.when", "from": start, "to": end}
        page = await client.get("/compliance/audit", params=base, headers=await headers("compliance_officer"))
        assert page.status_code == 200
        got = [int(m) for m in re.findall(r"<td>t:(\d)</td>", page.text)]
        assert [i + 1 for i in got] == expected

    async def test_the_pickers_show_the_range_and_the_export_link_carries_it(self, client, make_tenant, headers):
        t = await make_tenant()
        params = {"tenant": t["slug"], "from": "2026-11-02", "to": "2026-11-03T08:30"}
        page = await client.get("/compliance/audit", params=params, headers=await headers("compliance_officer"))
        assert 'id="audit-from" name="from" type="datetime-local" step="1" value="2026-11-02T00:00:00"' in page.text
        assert 'value="2026-11-03T08:30:00"' in page.text
        link = re.search(r'id="export-jsonl" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
        query = parse_qs(urlsplit(link).query)
        assert query["from"] == ["2026-11-02T00:00:00.000000Z"] and query["to"] == ["2026-11-03T08:30:00.000000Z"]

    async def test_a_bad_time_is_named_beside_its_field(self, client, make_tenant, headers):
        t = await make_tenant()
        page = await client.get(
            f"/tenants/{t['slug']}/audit", params={"to": "tomorrow"}, headers=await headers("compliance_officer")
        )
        assert page.status_code == 422
        assert re.search(r'id="audit-to-error" data-field="to">To is not a date \(2026-11-01\)', page.text)
        assert 'aria-describedby="audit-to-error"' in page.text and "No entries match." in page.text


class TestTenantAuditTab:
    async def test_who_sees_the_stream_and_who_may_export_it(self, client, make_tenant, headers):
        t = await make_tenant(onboard=True)
        other = await make_tenant()
        url = f"/tenants/{t['slug']}/audit"
        officer = await client.get(url, headers=await headers("compliance_officer"))
        assert 'data-tab="audit" aria-current="page"' in officer.text
        assert re.findall(r'<td class="action">([^<]+)</td>', officer.text)[-1] == "tenant.created"
        assert f'href="/api/v1/audit/export?stream={t["slug"]}"' in officer.text
        for role in ("merchant_admin", "account_manager"):
            page = await client.get(
                url, headers=await headers(role, t["slug"] if role.startswith("merchant") else None)
            )
            assert page.status_code == 200, role
            assert "tenant.created" in page.text and 'id="export-jsonl"' not in page.text
        merchant = await headers("merchant_admin", t["slug"])
        assert (await client.get(f"/api/v1/audit/export?stream={t['slug']}", headers=merchant)).status_code == 403
        assert (await client.get(url, headers=await headers("merchant_admin", other["slug"]))).status_code == 404
        assert (await client.get(url, headers=await headers("merchant_viewer", t["slug"]))).status_code == 403
        mine = await client.get(f"/tenants/{other['slug']}/audit", headers=await headers("compliance_officer"))
        assert t["slug"] not in mine.text.split('id="audit-results"', 1)[1]  # one stream only
