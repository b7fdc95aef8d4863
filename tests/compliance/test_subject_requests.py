"""Data-subject requests: intake in the right cells, access, erasure (billing untouched), deadlines."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from billing.metering.models import Contact, WebhookEvent
from billing.metering.service import hash_customer_ref
from compliance.dsr import deadlines
from compliance.dsr import service as dsr
from compliance.dsr.schemas import request_out
from compliance.models import AuditEntry
from control_plane.auth import Principal
from tenants import service as tenants
from tenants.models import Tenant
from tests.compliance.conftest import OTHER, SUBJECT, T0, billing_snapshot, cell_rows, contact, ingest

OFFICER = Principal("user", "co@bpo.test", "compliance_officer")


async def _file(client, headers, slug, **body):
    r = await client.post(f"/api/v1/tenants/{slug}/subject-requests", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _subject_hash(dbs, keyring, slug: str, ref: str) -> str:
    async with dbs.control_session() as session:
        tenant = await session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        return hash_customer_ref(tenants.customer_hash_key(tenant, keyring), ref)


class TestAccess:
    async def test_access_returns_exactly_the_subjects_contacts_from_the_right_cells(
        self, client, cell_tenant, auditor, dbs, keyring
    ):
        t = await cell_tenant()
        mine = [contact("DE", SUBJECT), contact("US", "anna.schmidt@example.de "), contact("SG", SUBJECT)]
        theirs = [contact("DE", OTHER), contact("US", None), contact("SG", OTHER)]
        await ingest(client, t, mine + theirs)
        # A row of the subject in a cell the tenant does not use (cn) must not be searched.
        digest = await _subject_hash(dbs, keyring, t.slug, SUBJECT)
        async with dbs.cell_session("cn") as cell, cell.begin():
            stray = dict(
                tenant_id=t.id,
                external_id="stray-cn",
                channel="chat",
                language="zh",
                market="CN",
                intent="wismo",
                opened_at=T0,
                resolution="open",
                customer_hash=digest,
                updated_at=T0,
                received_at=T0,
            )
            await cell.execute(sa.insert(Contact), [stray])

        req = await _file(client, auditor, t.slug, kind="access", subject=SUBJECT)
        assert req["regime"] == "GDPR" and req["status"] == "open"
        assert req["cells"] == {"eu": 1, "sg": 1, "us": 1}  # the cells searched: the tenant's, not cn
        r = await client.get(f"/api/v1/tenants/{t.slug}/subject-requests/{req['id']}/export", headers=auditor)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["cells_searched"] == ["eu", "sg", "us"]
        got = {(c["region"], c["external_id"]) for c in body["contacts"]}
        assert got == {("eu", mine[0]["external_id"]), ("us", mine[1]["external_id"]), ("sg", mine[2]["external_id"])}
        assert all("customer_hash" not in c for c in body["contacts"])
        async with dbs.control_session() as session:
            actions = (
                await session.scalars(
                    sa.select(AuditEntry.action).where(AuditEntry.stream == t.slug).order_by(AuditEntry.seq)
                )
            ).all()
            logged = " ".join(
                str(d) for d in (await session.scalars(sa.select(AuditEntry.data).where(AuditEntry.stream == t.slug)))
            )
        assert actions[-2:] == ["dsr.received", "dsr.access_exported"]
        assert SUBJECT.lower() not in logged.lower() and digest not in logged

        done = await client.post(
            f"/api/v1/tenants/{t.slug}/subject-requests/{req['id']}/complete", json={}, headers=auditor
        )
        assert done.json()["status"] == "completed"
        again = await client.get(f"/api/v1/tenants/{t.slug}/subject-requests/{req['id']}/export", headers=auditor)
        assert again.status_code == 409


class TestErasure:
    async def test_erasure_clears_every_cell_and_leaves_billing_byte_identical(
        self, client, cell_tenant, auditor, dbs, keyring, issue_token
    ):
        t = await cell_tenant()
        mine = [contact("DE", SUBJECT), contact("US", SUBJECT), contact("SG", SUBJECT)]
        theirs = [contact("DE", OTHER), contact("SG", OTHER)]
        await ingest(client, t, mine + theirs)
        digest = await _subject_hash(dbs, keyring, t.slug, SUBJECT)
        other = await _subject_hash(dbs, keyring, t.slug, OTHER)
        integration = uuid.uuid4()
        async with dbs.cell_session("eu") as cell, cell.begin():
            await cell.execute(
                sa.insert(WebhookEvent),
                [
                    dict(
                        tenant_id=t.id,
                        integration_id=integration,
                        source="zendesk",
                        delivery_id=f"d-{i}",
                        event_type="ticket.updated",
                        payload={"ticket": {"requester": ref, "tags": ["x"]}, "n": i},
                        received_at=T0,
                        status="mapped",
                    )
                    for i, ref in enumerate([digest, other])
                ],
            )
        before = await billing_snapshot(dbs, t.id)
        assert before["contact_rollups"], "the ingest produced rollups to protect"

        merchant = {"Authorization": f"Bearer {await issue_token('merchant_admin', t.slug)}"}
        req = await _file(client, merchant, t.slug, kind="erasure", subject=SUBJECT, note="by e-mail")
        r = await client.post(f"/api/v1/tenants/{t.slug}/subject-requests/{req['id']}/erase", headers=merchant)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["status"] == "open"  # carried out; completing it (the subject told) is the next step
        assert out["details"]["erased"] == {
            "eu": {"contacts": 1, "webhook_events": 1},
            "sg": {"contacts": 1, "webhook_events": 0},
            "us": {"contacts": 1, "webhook_events": 0},
        }

        rows = await cell_rows(dbs, t.id)
        for c in mine:
            region = {"DE": "eu", "US": "us", "SG": "sg"}[c["market"]]
            assert rows[region][c["external_id"]].customer_hash is None
        assert {
            rows["eu"][theirs[0]["external_id"]].customer_hash,
            rows["sg"][theirs[1]["external_id"]].customer_hash,
        } == {other}
        assert sum(len(v) for v in rows.values()) == 5  # rows stay: they still count for billing
        async with dbs.cell_session("eu") as cell:
            payloads = {
                e.delivery_id: e.payload
                for e in (await cell.scalars(sa.select(WebhookEvent).where(WebhookEvent.tenant_id == t.id))).all()
            }
        assert payloads == {
            "d-0": {"ticket": {"requester": "[erased]", "tags": ["x"]}, "n": 0},
            "d-1": {"ticket": {"requester": other, "tags": ["x"]}, "n": 1},
        }
        assert await billing_snapshot(dbs, t.id) == before

        base = f"/api/v1/tenants/{t.slug}/subject-requests/{req['id']}"
        # Done is done: a second erase is a conflict; completing closes the request.
        again_erase = await client.post(f"{base}/erase", headers=merchant)
        assert again_erase.status_code == 409 and again_erase.json()["code"] == "erased_already"
        done = await client.post(f"{base}/complete", json={"note": "subject told"}, headers=merchant)
        assert done.status_code == 200 and done.json()["status"] == "completed"
        async with dbs.control_session() as session:
            erased = await session.scalar(
                sa.select(AuditEntry).where(AuditEntry.stream == t.slug, AuditEntry.action == "dsr.erased")
            )
            stored = await dsr.get_request(session, None, t.slug, req["id"])
        assert erased.actor.startswith("token:") and erased.data["erased"]["eu"]["contacts"] == 1
        assert stored[1].subject_hash is None  # the reference leaves the control database when it closes
        assert (await client.post(f"{base}/erase", headers=merchant)).json()["code"] == "request_closed"
        again = await _file(client, auditor, t.slug, kind="erasure", subject=SUBJECT)
        assert again["cells"] == {"eu": 0, "sg": 0, "us": 0}


class TestIntakeRules:
    async def test_roles_tenants_and_bad_input(self, client, cell_tenant, make_tenant, issue_token, auditor):
        t = await cell_tenant()
        other = await make_tenant()
        base = f"/api/v1/tenants/{t.slug}/subject-requests"
        viewer = {"Authorization": f"Bearer {await issue_token('merchant_viewer', t.slug)}"}
        foreign = {"Authorization": f"Bearer {await issue_token('merchant_admin', other['slug'])}"}
        body = {"kind": "access", "subject": SUBJECT}
        assert (await client.post(base, json=body)).status_code == 401
        assert (await client.post(base, json=body, headers=viewer)).status_code == 403
        assert (await client.post(base, json=body, headers=foreign)).status_code == 404
        bad = await client.post(base, json={"kind": "forget", "subject": ""}, headers=auditor)
        assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"kind", "subject"}
        opt = await client.post(base, json={"kind": "opt_out_sale_share", "subject": SUBJECT}, headers=auditor)
        assert opt.status_code == 422 and opt.json()["errors"][0]["field"] == "kind"  # GDPR home region
        ccpa = await _file(client, auditor, t.slug, kind="opt_out_sale_share", subject=SUBJECT, regime="CCPA")
        assert ccpa["details"]["opt_out"]["sale"] is True and ccpa["due_on"] == _plus(ccpa["received_on"], 45)
        fix = await _file(
            client, auditor, t.slug, kind="correction", subject=SUBJECT, regime="CCPA", correction={"language": "de"}
        )
        assert fix["details"]["correction"] == {"language": "de"}
        listed = (await client.get(base, headers=auditor)).json()
        assert [r["number"] for r in listed] == [fix["number"], ccpa["number"]] == [2, 1]
        missing = await client.get(f"{base}/{uuid.uuid4()}", headers=auditor)
        assert missing.status_code == 404
        not_ext = await client.post(
            f"{base}/{ccpa['id']}/reject", json={"reason": "identity not verified"}, headers=auditor
        )
        assert not_ext.json()["status"] == "rejected" and not_ext.json()["details"]["rejection_reason"]


def _plus(day: str, n: int) -> str:
    from datetime import timedelta

    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


REGIME_CASES = [
    # regime, received (UTC instant), tenant zone, due day, extended due day (None: not extendable)
    ("GDPR", datetime(2027, 1, 31, 10, tzinfo=UTC), "Europe/Berlin", date(2027, 2, 28), date(2027, 4, 28)),
    ("GDPR", datetime(2027, 12, 31, 23, 30, tzinfo=UTC), "Europe/Berlin", date(2028, 2, 1), date(2028, 4, 1)),
    ("CCPA", datetime(2027, 3, 1, 7, 59, tzinfo=UTC), "America/Los_Angeles", date(2027, 4, 14), date(2027, 5, 29)),
    ("PDPA", datetime(2027, 2, 20, 16, 30, tzinfo=UTC), "Asia/Singapore", date(2027, 3, 23), None),
    ("PIPL", datetime(2027, 5, 1, 2, tzinfo=UTC), "Asia/Shanghai", date(2027, 5, 21), None),
]


class TestDeadlines:
    @pytest.mark.parametrize(("regime", "received", "zone", "due", "extended"), REGIME_CASES)
    async def test_overdue_is_flagged_on_the_day_the_deadline_passes(
        self, make_tenant, dbs, keyring, settings, regime, received, zone, due, extended
    ):
        """A frozen clock per regime: not overdue on the due day, overdue the day after (tenant zone)."""
        t = await make_tenant(timezone=zone)
        async with dbs.control_transaction() as session:
            if regime == "PIPL":
                await dsr.set_dsr_policy(session, OFFICER, t["slug"], {"pipl_days": 20})
            req = await dsr.file_request(
                session,
                dbs,
                keyring,
                OFFICER,
                t["slug"],
                {"kind": "access", "subject": SUBJECT, "regime": regime},
                regions=settings.regions,
                now=received,
            )
        assert req.due_on == due
        assert request_out(req, due)["overdue"] is False and request_out(req, due)["urgency"] == "due_soon"
        day_after = date.fromordinal(due.toordinal() + 1)
        assert request_out(req, day_after)["overdue"] is True and request_out(req, day_after)["urgency"] == "overdue"
        async with dbs.control_transaction() as session:
            if extended is None:
                with pytest.raises(Exception, match="cannot be extended"):
                    await dsr.extend_request(session, OFFICER, t["slug"], str(req.id), {"reason": "complex request"})
                return
            req = await dsr.extend_request(session, OFFICER, t["slug"], str(req.id), {"reason": "notice sent 2027"})
        assert req.extended_due_on == extended
        assert request_out(req, day_after)["overdue"] is False
        assert request_out(req, extended)["overdue"] is False
        assert request_out(req, date.fromordinal(extended.toordinal() + 1))["overdue"] is True
        async with dbs.control_transaction() as session:
            with pytest.raises(Exception, match="extended already"):
                await dsr.extend_request(session, OFFICER, t["slug"], str(req.id), {"reason": "again"})

    def test_month_arithmetic(self):
        assert deadlines.add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
        assert deadlines.add_months(date(2027, 11, 30), 2) == date(2028, 1, 30)
        assert deadlines.due_on("PIPL", date(2027, 1, 1), pipl_days=10) == date(2027, 1, 11)
