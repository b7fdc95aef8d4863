"""Compliance pages over HTTP: officers search and see residency; merchants get 403."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from compliance.transfers import unsupported_transfers
from control_plane.auth import Principal
from tenants import service as tenants
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
        later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")  # in range (a year ahead)
        future = await client.get("/compliance/audit", params=base | {"from": later}, headers=auditor)
        assert future.status_code == 200 and "No entries match." in future.text
        bad = await client.get("/compliance/audit", params=base | {"to": "tomorrow"}, headers=auditor)
        assert bad.status_code == 422 and 'id="audit-to-error"' in bad.text
        far = await client.get("/compliance/audit", params=base | {"from": "2999-01-01T00:00:00Z"}, headers=auditor)
        assert far.status_code == 422 and 'id="audit-from-error"' in far.text
        assert f'href="/api/v1/audit/export?stream={t["slug"]}' in everything.text


class TestTransferFlags:
    async def test_the_overview_flags_missing_and_expired_mechanisms(self, client, make_tenant, auditor, dbs, settings):
        staff = Principal("user", "am@bpo.test", "account_manager")
        missing = await make_tenant(markets=["DE", "SG"])
        expired = await make_tenant(markets=["DE", "CN"])
        valid = await make_tenant(markets=["DE", "CN"])
        mechanism = {"regime": "PIPL", "market": "CN", "to_region": "eu", "mechanism": "standard_contract"}
        async with dbs.control_transaction() as session:
            # PDPA does not pin SG, so this policy is accepted, but its data leaves Singapore with no mechanism.
            await tenants.set_residency(
                session,
                staff,
                missing["slug"],
                {"markets": {"SG": "eu"}},
                regions=settings.regions,
                today=date(2026, 1, 1),
            )
            for t, until in ((expired, "2026-03-31"), (valid, "2099-12-31")):
                await tenants.set_residency(
                    session,
                    staff,
                    t["slug"],
                    {
                        "markets": {"CN": "eu"},
                        "transfer_mechanisms": [mechanism | {"reference": f"CAC {until}", "valid_until": until}],
                    },
                    regions=settings.regions,
                    today=date(2026, 1, 1),
                )
        page = await client.get("/compliance", headers=auditor)
        summary = page.text.split('id="transfer-flags"', 1)[1].split("</div>", 1)[0]
        flags = dict(
            re.findall(r'class="transfer-flag" data-tenant="([^"]+)" data-market="\w+" data-problem="(\w+)"', summary)
        )
        assert flags.get(missing["slug"]) == "missing" and flags.get(expired["slug"]) == "expired"
        assert valid["slug"] not in flags
        assert (
            "SG contacts (PDPA) are stored in &#39;eu&#39;, outside PDPA&#39;s region (sg), with no recorded" in summary
        )
        assert "standard_contract (CAC 2026-03-31) expired on 2026-03-31" in summary
        card = page.text.split(f'id="tenant-{expired["slug"]}"', 1)[1].split('class="card tenant-residency"', 1)[0]
        assert 'data-market="CN" data-problem="expired"' in card

    def test_the_rule(self):
        regions = {"eu": "GDPR", "us": "CCPA", "sg": "PDPA", "cn": "PIPL"}
        cells = {"eu": ["DE", "CN"], "us": ["US", "SG"], "sg": []}
        mechanisms = [
            {
                "regime": "PIPL",
                "market": None,
                "to_region": "eu",
                "mechanism": "certification",
                "valid_until": "2027-06-30",
            }
        ]
        today = date(2027, 6, 30)
        assert [(f.market, f.problem) for f in unsupported_transfers(cells, mechanisms, regions, today)] == [
            ("SG", "missing")
        ]
        later = unsupported_transfers(cells, mechanisms, regions, date(2027, 7, 1))
        assert [(f.market, f.problem, f.expired_on) for f in later] == [
            ("CN", "expired", "2027-06-30"),
            ("SG", "missing", None),
        ]
        # CCPA controls no export: US data anywhere is not flagged; data in its own regime's region neither.
        assert unsupported_transfers({"eu": ["US"], "cn": ["CN"]}, [], regions, today) == []


class TestOverviewLinks:
    async def test_every_request_links_to_its_page(self, client, cell_tenant, auditor):
        t = await cell_tenant()
        ids = []
        for kind in ("access", "erasure"):
            r = await client.post(
                f"/api/v1/tenants/{t.slug}/subject-requests", json={"kind": kind, "subject": SUBJECT}, headers=auditor
            )
            ids.append(r.json()["id"])
        page = await client.get("/compliance", headers=auditor)
        for rid in ids:
            assert f'href="/tenants/{t.slug}/privacy/requests/{rid}" class="request-link"' in page.text
