"""Transfer mechanisms as a list (API): added and revoked one at a time, never dropped from under
a routed market or an active integration, refused when expired or for a market the tenant does
not sell in, every message a sentence."""

from __future__ import annotations

from datetime import date, timedelta

from tests.conftest import STAFF

FUTURE = (date.today() + timedelta(days=400)).isoformat()
SCCS = {"regime": "GDPR", "to_region": "us", "mechanism": "sccs", "reference": "SCC-2026-7", "valid_until": FUTURE}
PIPL_US = {
    "regime": "PIPL",
    "market": "CN",
    "to_region": "us",
    "mechanism": "standard_contract",
    "reference": "CAC filing 2026-0113",
    "valid_until": FUTURE,
}
GORGIAS = {"kind": "gorgias", "name": "Gorgias helpdesk", "credentials": {"api_key": "g-secret"}}


def _sentence(message: str) -> bool:
    return message[:1].isupper() and message.endswith(".")


async def _with_gorgias(client, staff_headers, make_tenant) -> tuple[str, dict[str, str]]:
    """DE, FR and CN markets, both mechanisms to 'us' recorded, a US-hosted Gorgias depending on both."""
    t = await make_tenant(markets=["DE", "FR", "CN"])
    path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
    ids = {}
    for body in (SCCS, PIPL_US):
        r = await client.post(path, json=body, headers=staff_headers)
        assert r.status_code == 201, r.text
        ids[body["regime"]] = r.json()["id"]
    r = await client.post(f"/api/v1/tenants/{t['slug']}/integrations", json=GORGIAS, headers=staff_headers)
    assert r.status_code == 201, r.text
    return t["slug"], ids


class TestAddingMechanisms:
    async def test_adding_a_second_mechanism_keeps_the_first(self, client, staff_headers, make_tenant):
        slug, ids = await _with_gorgias(client, staff_headers, make_tenant)
        listed = (await client.get(f"/api/v1/tenants/{slug}/transfer-mechanisms", headers=staff_headers)).json()
        assert [(m["id"], m["regime"], m["status"]) for m in listed] == [
            (ids["GDPR"], "GDPR", "active"),
            (ids["PIPL"], "PIPL", "active"),
        ]
        # Each one alone covers a cell the helpdesk reads: each names it as depending on it.
        helpdesk = "the Gorgias integration 'Gorgias helpdesk' (processes data in 'us')"
        assert [m["used_by"] for m in listed] == [[helpdesk], [helpdesk]]
        residency = (await client.get(f"/api/v1/tenants/{slug}/residency", headers=staff_headers)).json()
        assert len(residency["transfer_mechanisms"]) == 2

    async def test_the_same_mechanism_twice_conflicts(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
        assert (await client.post(path, json=SCCS, headers=staff_headers)).status_code == 201
        again = await client.post(path, json=SCCS, headers=staff_headers)
        assert again.status_code == 409 and again.json()["code"] == "mechanism_exists"
        assert "recorded already" in again.json()["detail"]

    async def test_a_reader_lists_and_a_merchant_cannot_add(self, client, staff_headers, make_tenant, issue_token):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
        assert (await client.post(path, json=SCCS, headers=staff_headers)).status_code == 201
        r = await client.post(f"/api/v1/tenants/{t['slug']}/integrations", json=GORGIAS, headers=staff_headers)
        assert r.status_code == 201, r.text
        viewer = {"Authorization": f"Bearer {await issue_token('merchant_viewer', t['slug'])}"}
        [seen] = (await client.get(path, headers=viewer)).json()
        # A viewer may not list integrations: it learns that one depends on the mechanism, not its name.
        assert seen["reference"] == "SCC-2026-7"
        assert seen["used_by"] == ["an active integration (processes data in 'us')"]
        admin = {"Authorization": f"Bearer {await issue_token('merchant_admin', t['slug'])}"}
        assert (await client.post(path, json=SCCS | {"reference": "x"}, headers=admin)).status_code == 403


class TestRefusedInput:
    async def test_an_expired_mechanism_is_refused_at_valid_until(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
        resp = await client.post(path, json=SCCS | {"valid_until": "2020-01-31"}, headers=staff_headers)
        assert resp.status_code == 422
        [error] = resp.json()["errors"]
        assert error["field"] == "valid_until" and _sentence(error["message"])
        assert "expired on 2020-01-31" in error["message"]
        assert (await client.get(path, headers=staff_headers)).json() == []

    async def test_a_market_the_tenant_does_not_sell_in_is_refused(self, client, staff_headers, make_tenant):
        t = await make_tenant()  # DE, FR, ES
        path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
        resp = await client.post(path, json=SCCS | {"market": "IT"}, headers=staff_headers)
        assert resp.status_code == 422
        [error] = resp.json()["errors"]
        assert error["field"] == "market" and _sentence(error["message"])
        assert "does not sell in IT" in error["message"]
        routed = await client.put(
            f"/api/v1/tenants/{t['slug']}/residency", json={"markets": {"IT": "eu"}}, headers=staff_headers
        )
        assert routed.status_code == 422
        assert [e["field"] for e in routed.json()["errors"]] == ["markets"]
        assert "does not sell in IT" in routed.json()["errors"][0]["message"]

    async def test_every_message_is_a_sentence(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
        empty = await client.post(path, json={}, headers=staff_headers)
        assert empty.status_code == 422
        fields = {e["field"]: e["message"] for e in empty.json()["errors"]}
        assert set(fields) == {"regime", "to_region", "mechanism", "reference"}
        assert fields["reference"] == "Give the reference."
        bad = {
            "regime": "HIPAA",
            "market": "xx",
            "to_region": "mars",
            "mechanism": "handshake",
            "reference": "",
            "valid_until": "soon",
            "colour": "red",
        }
        resp = await client.post(path, json=bad, headers=staff_headers)
        fields = {e["field"]: e["message"] for e in resp.json()["errors"]}
        assert set(fields) == {"regime", "market", "to_region", "reference", "valid_until", "colour"}
        assert all(_sentence(m) for m in fields.values()), fields
        assert "GDPR, PIPL, PDPA or CCPA" in fields["regime"] and "YYYY-MM-DD" in fields["valid_until"]
        wrong = await client.post(path, json=SCCS | {"mechanism": "standard_contract"}, headers=staff_headers)
        [error] = wrong.json()["errors"]
        assert error["field"] == "mechanism" and _sentence(error["message"]) and "sccs" in error["message"]
        inside = await client.post(path, json=SCCS | {"to_region": "eu"}, headers=staff_headers)
        assert inside.json()["errors"][0]["field"] == "to_region" and "needs no mechanism" in inside.text


class TestRevoking:
    async def test_a_mechanism_an_active_integration_depends_on_is_kept(self, client, staff_headers, make_tenant):
        slug, ids = await _with_gorgias(client, staff_headers, make_tenant)
        path = f"/api/v1/tenants/{slug}/transfer-mechanisms"
        resp = await client.delete(f"{path}/{ids['PIPL']}", headers=staff_headers)
        assert resp.status_code == 409
        assert resp.json()["code"] == "mechanism_in_use"
        assert "Gorgias helpdesk" in resp.json()["detail"] and "CAC filing 2026-0113" in resp.json()["detail"]
        assert len((await client.get(path, headers=staff_headers)).json()) == 2
        audit = (await client.get(f"/api/v1/tenants/{slug}/audit", headers=staff_headers)).json()
        assert not [e for e in audit if e["action"] == "residency.mechanism_revoked"]

    async def test_a_mechanism_a_routed_market_depends_on_is_kept(self, client, staff_headers, make_tenant):
        t = await make_tenant(markets=["DE", "CN"])
        slug = t["slug"]
        body = PIPL_US | {"to_region": "eu"}
        added = await client.post(f"/api/v1/tenants/{slug}/transfer-mechanisms", json=body, headers=staff_headers)
        routed = await client.put(
            f"/api/v1/tenants/{slug}/residency", json={"markets": {"DE": "eu", "CN": "eu"}}, headers=staff_headers
        )
        assert routed.status_code == 200 and routed.json()["cells"] == {"eu": ["CN", "DE"]}
        resp = await client.delete(
            f"/api/v1/tenants/{slug}/transfer-mechanisms/{added.json()['id']}", headers=staff_headers
        )
        assert resp.status_code == 409 and resp.json()["code"] == "mechanism_in_use"
        assert "market CN (routed to 'eu')" in resp.json()["detail"]

    async def test_revoking_one_nothing_depends_on_removes_it(self, client, staff_headers, make_tenant):
        slug, ids = await _with_gorgias(client, staff_headers, make_tenant)
        path = f"/api/v1/tenants/{slug}/transfer-mechanisms"
        # A second GDPR mechanism covers the same transfer: now neither alone is depended on.
        spare = await client.post(path, json=SCCS | {"mechanism": "bcr", "reference": "BCR-1"}, headers=staff_headers)
        resp = await client.delete(f"{path}/{ids['GDPR']}", headers=staff_headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "revoked" and resp.json()["revoked_at"]
        assert [m["id"] for m in (await client.get(path, headers=staff_headers)).json()] == [
            ids["PIPL"],
            spare.json()["id"],
        ]
        audit = (await client.get(f"/api/v1/tenants/{slug}/audit", headers=staff_headers)).json()
        [entry] = [e for e in audit if e["action"] == "residency.mechanism_revoked"]
        assert entry["data"]["reference"] == "SCC-2026-7"
        assert (await client.delete(f"{path}/{ids['GDPR']}", headers=staff_headers)).status_code == 404

    async def test_an_expired_mechanism_counts_for_nothing(self, client, staff_headers, make_tenant, dbs, settings):
        """Past its valid_until a mechanism covers nothing: listed as expired, revocable whatever used it."""
        from tenants import residency_service

        t = await make_tenant()
        async with dbs.control_transaction() as session:
            await residency_service.add_mechanism(
                session, STAFF, t["slug"], SCCS | {"valid_until": "2026-01-31"}, regions=settings.regions,
                today=date(2026, 1, 1),
            )  # fmt: skip
        path = f"/api/v1/tenants/{t['slug']}/transfer-mechanisms"
        [m] = (await client.get(path, headers=staff_headers)).json()
        assert m["status"] == "expired" and m["used_by"] == []
        refused = await client.post(f"/api/v1/tenants/{t['slug']}/integrations", json=GORGIAS, headers=staff_headers)
        assert refused.status_code == 409 and refused.json()["code"] == "cross_border_transfer_refused"
        assert (await client.delete(f"{path}/{m['id']}", headers=staff_headers)).status_code == 200


class TestResidencyPut:
    async def test_markets_alone_keep_the_mechanisms(self, client, staff_headers, make_tenant):
        slug, _ids = await _with_gorgias(client, staff_headers, make_tenant)
        resp = await client.put(
            f"/api/v1/tenants/{slug}/residency", json={"markets": {"DE": "eu", "FR": "eu"}}, headers=staff_headers
        )
        assert resp.status_code == 200 and len(resp.json()["transfer_mechanisms"]) == 2

    async def test_a_list_that_drops_a_mechanism_in_use_is_refused(self, client, staff_headers, make_tenant):
        """The bug users hit: recording SCCs through a one-mechanism form dropped the PIPL contract."""
        slug, _ids = await _with_gorgias(client, staff_headers, make_tenant)
        path = f"/api/v1/tenants/{slug}/residency"
        resp = await client.put(path, json={"markets": {}, "transfer_mechanisms": [SCCS]}, headers=staff_headers)
        assert resp.status_code == 409 and resp.json()["code"] == "mechanism_in_use"
        assert "Gorgias helpdesk" in resp.json()["detail"] and "CAC filing 2026-0113" in resp.json()["detail"]
        kept = await client.put(
            path, json={"markets": {}, "transfer_mechanisms": [PIPL_US, SCCS]}, headers=staff_headers
        )
        assert kept.status_code == 200 and len(kept.json()["transfer_mechanisms"]) == 2

    async def test_rerouting_a_market_that_strands_an_integration_is_refused(self, client, staff_headers, make_tenant):
        t = await make_tenant(markets=["DE", "SG"])
        slug = t["slug"]
        await client.post(f"/api/v1/tenants/{slug}/transfer-mechanisms", json=SCCS, headers=staff_headers)
        r = await client.post(f"/api/v1/tenants/{slug}/integrations", json=GORGIAS, headers=staff_headers)
        assert r.status_code == 201, r.text
        # SG in the 'sg' cell would be PDPA data read from 'us' with no PDPA mechanism.
        resp = await client.put(
            f"/api/v1/tenants/{slug}/residency", json={"markets": {"SG": "sg"}}, headers=staff_headers
        )
        assert resp.status_code == 409 and resp.json()["code"] == "mechanism_in_use"
        assert "Gorgias helpdesk" in resp.json()["detail"]
