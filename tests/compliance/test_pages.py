"""Compliance pages over HTTP: officers search and see residency; merchants get 403."""

from __future__ import annotations

import re

from tests.compliance.conftest import SUBJECT


class TestCompliancePages:
    async def test_merchants_and_account_managers_cannot_reach_them(self, client, make_tenant, issue_token):
        t = await make_tenant()
        for role in ("merchant_admin", "merchant_viewer"):
            merchant = {"Authorization": f"Bearer {await issue_token(role, t['slug'])}"}
            for path in ("/compliance", "/compliance/audit", f"/compliance/audit?tenant={t['slug']}"):
                assert (await client.get(path, headers=merchant)).status_code == 403, (role, path)
        manager = {"Authorization": f"Bearer {await issue_token('account_manager')}"}
        assert (await client.get("/compliance", headers=manager)).status_code == 403
        assert (await client.get("/compliance")).status_code == 401

    async def test_overview_shows_residency_and_requests(self, client, cell_tenant, auditor):
        t = await cell_tenant()
        r = await client.post(
            f"/api/v1/tenants/{t.slug}/subject-requests", json={"kind": "access", "subject": SUBJECT}, headers=auditor
        )
        assert r.status_code == 201
        page = await client.get("/compliance", headers=auditor)
        assert page.status_code == 200
        block = page.text.split(f'data-tenant="{t.slug}"', 1)[1].split('class="card tenant-residency"', 1)[0]
        assert re.search(r"<td>us</td><td>CCPA</td><td>US</td>", block)
        assert re.search(r"<td>sg</td><td>PDPA</td><td>SG</td>", block)
        assert "730 days" in block
        assert f'data-request="{r.json()["id"]}"' in page.text

    async def test_search_by_tenant_actor_action_and_time(self, client, make_tenant, auditor, staff_headers):
        t = await make_tenant(onboard=True)
        base = {"tenant": t["slug"]}
        everything = await client.get("/compliance/audit", params=base, headers=auditor)
        assert everything.text.count('<td class="action">') == 6
        by_action = await client.get("/compliance/audit", params=base | {"action": "integration."}, headers=auditor)
        assert re.findall(r'<td class="action">([^<]+)</td>', by_action.text) == ["integration.added"]
        by_actor = await client.get("/compliance/audit", params=base | {"actor": "nobody"}, headers=auditor)
        assert "No entries match." in by_actor.text
        future = await client.get("/compliance/audit", params=base | {"from": "2999-01-01T00:00:00Z"}, headers=auditor)
        assert "No entries match." in future.text
        bad = await client.get("/compliance/audit", params=base | {"to": "tomorrow"}, headers=auditor)
        assert bad.status_code == 200 and 'id="audit-to-error"' in bad.text
        assert f'href="/api/v1/audit/export?stream={t["slug"]}' in everything.text
