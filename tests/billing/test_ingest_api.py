"""The ingest API contract of DESIGN.md ("Contacts") on every backend."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import sqlalchemy as sa

from billing.metering.models import Contact
from tests.billing.conftest import T0, cell_contacts, contact, ts


class TestIngestAnswer:
    async def test_mixed_batch_counts_are_exact(self, client, dbs, ingest_tenant):
        t = await ingest_tenant()
        first = [contact("a"), contact("b"), contact("c")]
        resp = await client.post(t.path(), json={"contacts": first}, headers=t.headers)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"accepted": 3, "updated": 0, "duplicates": 0, "rejected": []}

        later = ts(T0 + timedelta(hours=1))
        batch = [
            contact("a"),  # same version: duplicate
            contact("b", resolution="human_resolved", handoff_at=later, resolved_at=later, updated_at=later),
            contact("c", updated_at=ts(T0)),  # older than stored: stale, no-op
            contact("d"),  # new
            contact("e", channel="pigeon", csat=9),  # rejected, the rest is kept
            contact("d", updated_at=ts(T0 + timedelta(hours=2)), csat=2),  # second version in one batch
        ]
        resp = await client.post(t.path(), json=batch, headers=t.headers)
        body = resp.json()
        assert resp.status_code == 200
        assert (body["accepted"], body["updated"], body["duplicates"]) == (1, 2, 2)
        assert body["rejected"] == [
            {
                "index": 4,
                "external_id": "e",
                "errors": [
                    {"field": "channel", "message": "must be one of chat, email, marketplace, sms, social, voice"},
                    {"field": "csat", "message": "must be an integer from 1 to 5"},
                ],
            }
        ]
        stored = (await cell_contacts(dbs, t.id))["eu"]
        assert sorted(stored) == ["a", "b", "c", "d"]
        assert stored["b"].resolution == "human_resolved"
        assert stored["c"].updated_at == T0 + timedelta(minutes=4)
        assert stored["d"].csat == 2

    async def test_ai_resolved_with_handoff_and_every_bad_field(self, client, ingest_tenant):
        t = await ingest_tenant()
        bad = contact(
            "x",
            handoff_at=ts(T0 + timedelta(minutes=1)),
            opened_at="2026-10-14 09:00",
            market="Germany",
            language="German!",
            first_response_at=ts(T0 - timedelta(days=1)),
            colour="red",
        )
        resp = await client.post(t.path(), json=[bad, {"external_id": ""}, "nope"], headers=t.headers)
        rejected = {r["index"]: r for r in resp.json()["rejected"]}
        fields = {e["field"]: e["message"] for e in rejected[0]["errors"]}
        assert fields["handoff_at"] == "an ai_resolved contact cannot have been handed to a human"
        assert fields["opened_at"].startswith("needs a time zone offset")
        assert set(fields) >= {"market", "language", "colour"}
        assert {e["field"] for e in rejected[1]["errors"]} >= {"external_id", "channel", "opened_at", "updated_at"}
        assert rejected[2]["errors"] == [{"field": "contact", "message": "must be a JSON object"}]
        assert resp.json()["accepted"] == 0

    async def test_rejections_never_echo_the_customer_ref(self, client, ingest_tenant):
        t = await ingest_tenant()
        resp = await client.post(t.path(), json=[contact("r", customer_ref="x" * 400)], headers=t.headers)
        assert resp.json()["rejected"][0]["errors"] == [
            {"field": "customer_ref", "message": "must be a string of 1 to 320 characters"}
        ]
        assert "xxxx" not in resp.text


class TestIngestAccess:
    async def test_bad_key_is_401_and_other_tenant_is_404(self, client, ingest_tenant):
        t, other = await ingest_tenant(), await ingest_tenant()
        bad = await client.post(t.path(), json=[contact()], headers={"Authorization": "Bearer bpo_live_dead_beef"})
        assert bad.status_code == 401
        none = await client.post(t.path(), json=[contact()])
        assert none.status_code == 401
        cross = await client.post(other.path(), json=[contact()], headers=t.headers)
        assert cross.status_code == 404

    async def test_staff_token_is_not_an_ingest_key(self, client, staff_headers, ingest_tenant):
        t = await ingest_tenant()
        resp = await client.post(t.path(), json=[contact()], headers=staff_headers)
        assert resp.status_code == 403


class TestIngestLimits:
    async def test_more_than_1000_contacts_is_413_with_the_limit(self, client, ingest_tenant):
        t = await ingest_tenant()
        resp = await client.post(t.path(), json=[{"external_id": str(i)} for i in range(1001)], headers=t.headers)
        assert resp.status_code == 413
        assert resp.json()["limit"] == {"contacts": 1000, "bytes": 1048576}
        assert resp.json()["contacts"] == 1001

    async def test_more_than_1_mib_is_413(self, client, ingest_tenant):
        t = await ingest_tenant()
        big = [contact(str(i), customer_ref="y" * 300) for i in range(1000)]
        body = json.dumps(big) + " " * (1024 * 1024)
        resp = await client.post(t.path(), content=body, headers=t.headers | {"Content-Type": "application/json"})
        assert resp.status_code == 413
        assert resp.json()["limit"]["bytes"] == 1048576

    async def test_malformed_json_is_400(self, client, ingest_tenant):
        t = await ingest_tenant()
        resp = await client.post(t.path(), content=b"{nope", headers=t.headers | {"Content-Type": "application/json"})
        assert resp.status_code == 400 and resp.json()["code"] == "malformed_json"

    async def test_a_flood_gets_429_with_retry_after(self, settings, dbs, ingest_tenant, monkeypatch):
        from litestar.testing import AsyncTestClient

        from control_plane.app import create_app

        t = await ingest_tenant()
        monkeypatch.setenv("BPO_INGEST_RATE", "0.01")
        monkeypatch.setenv("BPO_INGEST_BURST", "3")
        async with AsyncTestClient(app=create_app(settings, db=dbs)) as flood:
            codes = [(await flood.post(t.path(), json=[contact()], headers=t.headers)) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        assert int(codes[3].headers["Retry-After"]) >= 1
        assert codes[3].json()["code"] == "rate_limited"


class TestResidencyRouting:
    async def test_each_contact_lands_only_in_its_markets_cell(self, client, dbs, ingest_tenant):
        t = await ingest_tenant(markets=["DE", "CN", "US"], home_region="eu", residency={"DE": "eu", "US": "eu"})
        batch = [
            contact("de-1", market="DE"),
            contact("cn-1", market="CN", language="zh-Hans"),
            contact("us-1", market="US", language="en"),
        ]
        resp = await client.post(t.path(), json=batch, headers=t.headers)
        assert resp.json()["accepted"] == 3
        cells = {region: sorted(rows) for region, rows in (await cell_contacts(dbs, t.id)).items()}
        # DE and US are listed in the policy (home region eu); CN is pinned to cn by PIPL.
        assert cells == {"eu": ["de-1", "us-1"], "us": [], "sg": [], "cn": ["cn-1"]}

    async def test_customer_ref_is_stored_only_as_its_hmac(self, client, dbs, keyring, ingest_tenant):
        from tenants import service as tenants
        from tenants.models import Tenant

        t = await ingest_tenant()
        refs = {"h1": " Grep.Me@Example.COM ", "h2": "Order-Ref-ABC"}
        batch = [contact(i, customer_ref=ref) for i, ref in refs.items()]
        await client.post(t.path(), json=batch, headers=t.headers)
        async with dbs.cell_session("eu") as cell:
            stmt = sa.select(Contact.external_id, Contact.customer_hash).where(Contact.tenant_id == t.id)
            digests = {external_id: digest for external_id, digest in await cell.execute(stmt)}
        async with dbs.control_session() as session:
            key = tenants.customer_hash_key(await session.get(Tenant, t.id), keyring)
        # HMAC-SHA256 under the tenant's key of the trimmed reference, e-mail addresses lower-cased.
        assert digests == {
            "h1": hmac.new(key, b"grep.me@example.com", hashlib.sha256).hexdigest(),
            "h2": hmac.new(key, b"Order-Ref-ABC", hashlib.sha256).hexdigest(),
        }


class TestNoRawCustomerRef:
    async def test_no_database_holds_the_raw_reference(self, client, dbs, settings, ingest_tenant):
        t = await ingest_tenant(markets=["DE", "CN"], residency={"DE": "eu"})
        raw = f"needle-{t.slug}@example.cn"
        resp = await client.post(
            t.path(),
            json=[
                contact("n1", customer_ref=raw),
                contact("n2", market="CN", customer_ref=raw),
                contact("n3", customer_ref=raw, channel="x"),
            ],
            headers=t.headers,
        )
        assert resp.json()["accepted"] == 2 and raw not in resp.text
        if settings.extra["backend"] == "sqlite":
            files = [p for p in settings.data_dir.iterdir() if ".db" in p.name]
            assert len(files) >= 5  # control and four cells, with their WAL files
            for path in files:
                assert raw.encode() not in path.read_bytes(), path.name
        else:
            engines = {"control": dbs.control, **dbs.cells}
            for name, engine in engines.items():
                async with engine.connect() as conn:
                    tables = (
                        (await conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname='public'")))
                        .scalars()
                        .all()
                    )
                    for table in tables:
                        hit = await conn.scalar(
                            sa.text(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE :n'), {"n": f"%{raw}%"}
                        )
                        assert hit == 0, (name, table)
