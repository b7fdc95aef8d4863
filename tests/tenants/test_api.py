"""Tenant onboarding through the JSON API: validation, lifecycle, residency, integrations, keys."""

from __future__ import annotations

from tests.conftest import contract_body, tenant_body, unique_slug


class TestCreateTenant:
    async def test_every_bad_field_is_named_in_one_answer(self, client, staff_headers):
        body = {
            "slug": "Bad Slug!",
            "name": "",
            "home_region": "mars",
            "timezone": "Europe/Atlantis",
            "currency": "EURO",
            "markets": ["DE", "XX", "fr"],
            "colour": "red",
        }
        resp = await client.post("/api/v1/tenants", json=body, headers=staff_headers)
        assert resp.status_code == 422
        fields = {e["field"]: e["message"] for e in resp.json()["errors"]}
        assert set(fields) == {"slug", "name", "home_region", "timezone", "currency", "markets", "colour"}
        assert "XX" in fields["markets"] and "'FR'" in fields["markets"]
        assert "registry" in fields["home_region"]

    async def test_created_read_and_listed(self, client, staff_headers):
        slug = unique_slug("acme")
        resp = await client.post("/api/v1/tenants", json=tenant_body(slug), headers=staff_headers)
        assert resp.status_code == 201
        assert resp.json()["status"] == "onboarding"
        assert resp.json()["onboarding_checklist"] == {
            "contract": False,
            "residency": False,
            "integration": False,
            "api_key": False,
        }
        got = await client.get(f"/api/v1/tenants/{slug}", headers=staff_headers)
        assert got.json()["currency"] == "EUR"
        listed = await client.get("/api/v1/tenants", headers=staff_headers)
        assert slug in [t["slug"] for t in listed.json()]

    async def test_duplicate_slug_conflicts(self, client, staff_headers):
        body = tenant_body()
        assert (await client.post("/api/v1/tenants", json=body, headers=staff_headers)).status_code == 201
        again = await client.post("/api/v1/tenants", json=body, headers=staff_headers)
        assert again.status_code == 409
        assert "exists" in again.json()["detail"]

    async def test_update(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        resp = await client.patch(
            f"/api/v1/tenants/{t['slug']}", json={"name": "Acme Two", "timezone": "Nowhere/X"}, headers=staff_headers
        )
        assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "timezone"
        resp = await client.patch(f"/api/v1/tenants/{t['slug']}", json={"name": "Acme Two"}, headers=staff_headers)
        assert resp.json()["name"] == "Acme Two"


class TestLifecycle:
    async def test_activation_needs_a_complete_checklist(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        resp = await client.post(f"/api/v1/tenants/{t['slug']}/status", json={"to": "active"}, headers=staff_headers)
        assert resp.status_code == 409
        assert "contract, residency, integration, api_key" in resp.json()["detail"]

    async def test_allowed_and_forbidden_moves(self, client, staff_headers, make_tenant):
        t = await make_tenant(onboard=True)
        assert t["status"] == "active"
        path = f"/api/v1/tenants/{t['slug']}/status"
        bad = await client.post(path, json={"to": "onboarding"}, headers=staff_headers)
        assert bad.status_code == 409 and "from active to onboarding" in bad.json()["detail"]
        for to in ("suspended", "active", "offboarded"):
            r = await client.post(path, json={"to": to, "reason": "test"}, headers=staff_headers)
            assert r.status_code == 200 and r.json()["status"] == to
        final = await client.post(path, json={"to": "active"}, headers=staff_headers)
        assert final.status_code == 409 and "offboarded is final" in final.json()["detail"]
        frozen = await client.put(f"/api/v1/tenants/{t['slug']}/contract", json=contract_body(), headers=staff_headers)
        assert frozen.status_code == 409


class TestContracts:
    async def test_every_bad_contract_field_is_named(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        body = contract_body(
            currency="USD",
            ai_resolved={"unit_price": "-1"},
            human_resolved={
                "tiers": [
                    {"up_to": 500, "unit_price": "2"},
                    {"up_to": 100, "unit_price": "1"},
                    {"up_to": None, "unit_price": "1"},
                ]
            },
            deflection_floor="1.5",
            csat_target=0.87,
            deflection_exclusions=["chargeback", "teleport"],
            response_targets=[{"channel": "pigeon", "first_response_seconds": 0, "attainment": "0.9"}],
        )
        resp = await client.put(f"/api/v1/tenants/{t['slug']}/contract", json=body, headers=staff_headers)
        assert resp.status_code == 422
        fields = {e["field"] for e in resp.json()["errors"]}
        assert {
            "currency",
            "ai_resolved.unit_price",
            "human_resolved.tiers",
            "deflection_floor",
            "csat_target",
            "deflection_exclusions.1",
            "response_targets.0.channel",
            "response_targets.0.first_response_seconds",
        } <= fields

    async def test_versions_accumulate(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/contract"
        v1 = await client.put(path, json=contract_body(), headers=staff_headers)
        v2 = await client.put(path, json=contract_body(effective_from="2026-12-01"), headers=staff_headers)
        assert (v1.json()["version"], v2.json()["version"]) == (1, 2)
        assert v2.json()["terms"]["human_resolved"]["tiers"][1] == {"up_to": None, "unit_price": "4.80"}
        listed = await client.get(path, headers=staff_headers)
        assert [v["version"] for v in listed.json()] == [2, 1]


class TestResidency:
    async def test_cn_outside_cn_needs_a_pipl_mechanism(self, client, staff_headers, make_tenant):
        t = await make_tenant(markets=["DE", "CN"])
        path = f"/api/v1/tenants/{t['slug']}/residency"
        refused = await client.put(path, json={"markets": {"DE": "eu", "CN": "eu"}}, headers=staff_headers)
        assert refused.status_code == 409
        assert "PIPL" in refused.json()["detail"] and "CN" in refused.json()["detail"]
        mechanism = {
            "regime": "PIPL",
            "market": "CN",
            "to_region": "eu",
            "mechanism": "standard_contract",
            "reference": "CAC filing 2026-0113",
            "valid_until": "2029-01-31",
        }
        ok = await client.put(
            path, json={"markets": {"DE": "eu", "CN": "eu"}, "transfer_mechanisms": [mechanism]}, headers=staff_headers
        )
        assert ok.status_code == 200
        assert ok.json()["cells"] == {"eu": ["CN", "DE"]}
        audit = await client.get(f"/api/v1/tenants/{t['slug']}/audit", headers=staff_headers)
        entry = [e for e in audit.json() if e["action"] == "residency.updated"][-1]
        assert entry["data"]["transfer_mechanisms"][0]["reference"] == "CAC filing 2026-0113"

    async def test_eea_market_outside_eu_refused_and_mechanism_must_fit_regime(
        self, client, staff_headers, make_tenant
    ):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/residency"
        refused = await client.put(path, json={"markets": {"FR": "us"}}, headers=staff_headers)
        assert refused.status_code == 409 and "GDPR" in refused.json()["detail"]
        wrong = {
            "regime": "GDPR",
            "market": "FR",
            "to_region": "us",
            "mechanism": "standard_contract",
            "reference": "x",
        }
        bad = await client.put(
            path, json={"markets": {"FR": "us"}, "transfer_mechanisms": [wrong]}, headers=staff_headers
        )
        # The bad mechanism is named at its own field, in a sentence that says what GDPR accepts.
        assert bad.status_code == 422
        [error] = bad.json()["errors"]
        assert error["field"] == "transfer_mechanisms.0.mechanism"
        assert error["message"].startswith("The mechanism 'standard_contract' is not one GDPR recognises")
        assert "sccs" in error["message"] and error["message"].endswith(".")
        # An expired mechanism is refused as input (it would cover nothing), naming its date.
        expired = wrong | {"mechanism": "sccs", "valid_until": "2020-01-01"}
        late = await client.put(
            path, json={"markets": {"FR": "us"}, "transfer_mechanisms": [expired]}, headers=staff_headers
        )
        assert late.status_code == 422
        assert [e["field"] for e in late.json()["errors"]] == ["transfer_mechanisms.0.valid_until"]


class TestIntegrations:
    async def test_cross_border_processing_refused_without_mechanism(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/integrations"
        refused = await client.post(
            path, json={"kind": "zendesk", "credentials": {"token": "zd-secret-1"}}, headers=staff_headers
        )
        assert refused.status_code == 409
        assert "'eu' cell (GDPR" in refused.json()["detail"] and "'us'" in refused.json()["detail"]
        in_region = await client.post(
            path,
            json={"kind": "zendesk", "processing_region": "eu", "credentials": {"token": "zd-secret-1"}},
            headers=staff_headers,
        )
        assert in_region.status_code == 201
        assert in_region.json()["credentials"] == "set"
        assert "zd-secret-1" not in in_region.text

    async def test_unknown_kind_and_missing_credentials(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        resp = await client.post(
            f"/api/v1/tenants/{t['slug']}/integrations", json={"kind": "myspace"}, headers=staff_headers
        )
        assert resp.status_code == 422
        assert {e["field"] for e in resp.json()["errors"]} == {"kind", "credentials"}


class TestApiKeys:
    async def test_issue_use_and_revoke(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/api-keys"
        issued = await client.post(path, json={"scopes": ["contacts:write"]}, headers=staff_headers)
        assert issued.status_code == 201
        key = issued.json()
        assert key["secret"].startswith(key["prefix"]) and key["prefix"].startswith("bpo_live_")
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key['secret']}"})
        assert me.json() == {
            "actor": f"api_key:{key['prefix']}",
            "role": "api_key",
            "tenant": t["slug"],
            "scopes": ["contacts:write"],
        }
        listed = (await client.get(path, headers=staff_headers)).json()
        assert "secret" not in listed[0] and listed[0]["last_used_at"] is not None
        revoked = await client.delete(f"{path}/{key['id']}", headers=staff_headers)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        after = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key['secret']}"})
        assert after.status_code == 401

    async def test_unknown_scope(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        resp = await client.post(
            f"/api/v1/tenants/{t['slug']}/api-keys", json={"scopes": ["root"]}, headers=staff_headers
        )
        assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "scopes"
