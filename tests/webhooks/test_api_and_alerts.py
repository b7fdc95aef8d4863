"""The endpoints API (validation, who may do what, the secret returned once), the Webhooks pages
through HTTP, usage thresholds firing once per period (event + e-mail), and data-subject deadlines
announced once, 7 days ahead."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from compliance.dsr.due_soon import publish_due_soon
from compliance.dsr.models import SubjectRequest
from control_plane.models import OutboxMessage
from tenants.models import Tenant
from tests.billing.conftest import contact
from tests.billing.invoices.conftest import ingest
from webhooks.models import WebhookDelivery
from webhooks.thresholds import check_tenant

EVENTS = ["invoice.paid"]


def ep_path(slug: str) -> str:
    return f"/api/v1/tenants/{slug}/webhook-endpoints"


class TestEndpointsApi:
    async def test_bad_input_is_422_naming_the_field(self, client, staff_headers, make_tenant):
        t = await make_tenant()
        for body, field in [
            ({"url": "https://hooks.example.com/a", "events": ["invoice.eaten"]}, "events"),
            ({"url": "https://hooks.example.com/a", "events": []}, "events"),
            ({"url": "ftp://files.example.com", "events": EVENTS}, "url"),
            ({"events": EVENTS}, "url"),
            ({"url": "https://hooks.example.com/a", "events": EVENTS, "colour": "red"}, "colour"),
        ]:
            resp = await client.post(ep_path(t["slug"]), json=body, headers=staff_headers)
            assert resp.status_code == 422, body
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert field in [e["field"] for e in resp.json()["errors"]], resp.json()
        unknown = await client.post(ep_path(t["slug"]), json={"url": "https://h.example.com", "events": ["x.y"]},
                                    headers=staff_headers)  # fmt: skip
        assert "invoice.finalized" in unknown.json()["errors"][0]["message"]

    async def test_merchant_admins_manage_their_own_viewers_read_and_the_secret_is_shown_once(
        self, client, make_tenant, issue_token, staff_headers
    ):
        mine, other = await make_tenant(), await make_tenant()
        admin = {"Authorization": f"Bearer {await issue_token('merchant_admin', mine['slug'])}"}
        viewer = {"Authorization": f"Bearer {await issue_token('merchant_viewer', mine['slug'])}"}
        body = {"url": "https://hooks.example.com/mine", "events": ["invoice.paid", "invoice.finalized"]}
        created = await client.post(ep_path(mine["slug"]), json=body, headers=admin)
        assert created.status_code == 201, created.text
        ep = created.json()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", ep["secret"])
        assert ep["events"] == ["invoice.finalized", "invoice.paid"]  # in the catalogue's order
        listed = await client.get(ep_path(mine["slug"]), headers=viewer)
        assert listed.status_code == 200 and [e["id"] for e in listed.json()] == [ep["id"]]
        assert "secret" not in listed.json()[0] and ep["secret"] not in listed.text
        one = await client.get(f"{ep_path(mine['slug'])}/{ep['id']}", headers=viewer)
        assert one.status_code == 200 and "secret" not in one.json()

        assert (await client.post(ep_path(mine["slug"]), json=body, headers=viewer)).status_code == 403
        patch = await client.patch(f"{ep_path(mine['slug'])}/{ep['id']}", json={"enabled": False}, headers=viewer)
        assert patch.status_code == 403
        assert (await client.post(ep_path(other["slug"]), json=body, headers=admin)).status_code == 404
        assert (await client.get(f"{ep_path(other['slug'])}/{ep['id']}", headers=staff_headers)).status_code == 404

        change = {"events": ["sla.breached"], "description": "ops"}
        changed = await client.patch(f"{ep_path(mine['slug'])}/{ep['id']}", json=change, headers=admin)
        assert changed.status_code == 200 and (changed.json()["events"], changed.json()["description"]) == (
            ["sla.breached"], "ops",
        )  # fmt: skip
        gone = await client.delete(f"{ep_path(mine['slug'])}/{ep['id']}", headers=admin)
        assert gone.status_code == 200
        assert (await client.get(ep_path(mine["slug"]), headers=admin)).json() == []


class TestPages:
    async def test_a_bad_address_is_named_beside_the_field_and_kept_and_the_secret_shows_once(
        self, client, make_tenant, issue_token
    ):
        t = await make_tenant()
        token = await issue_token("merchant_admin", t["slug"])
        await client.get("/login")
        headers = {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", ""),
                   "Accept": "text/html"}  # fmt: skip
        page = f"/tenants/{t['slug']}/webhooks"
        resp = await client.post(page, data={"url": "ftp://files.example.com", "events": "invoice.paid"},
                                 headers=headers, follow_redirects=False)  # fmt: skip
        assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
        assert 'value="ftp://files.example.com"' in resp.text and 'id="endpoint-url-error"' in resp.text
        assert re.search(r'value="invoice.paid" checked', resp.text)

        resp = await client.post(page, data={"url": "https://hooks.example.com/p", "events": "invoice.paid"},
                                 headers=headers, follow_redirects=False)  # fmt: skip
        assert resp.status_code in (302, 303)
        first = await client.get(resp.headers["location"], headers=headers)
        secret = re.search(r'id="endpoint-secret" readonly value="(whsec_[^"]+)"', first.text).group(1)
        again = await client.get(resp.headers["location"], headers=headers)
        assert again.status_code == 200 and secret not in again.text and 'id="endpoint-secret"' not in again.text
        assert secret not in (await client.get(page, headers=headers)).text


async def _tenant_row(dbs, slug: str) -> Tenant:
    async with dbs.control_session() as session:
        return await session.scalar(sa.select(Tenant).where(Tenant.slug == slug))


class TestUsageThresholds:
    async def test_each_threshold_fires_once_per_period_as_an_event_and_an_email(
        self, client, staff_headers, ingest_tenant, frozen, dbs
    ):
        tenant = await ingest_tenant()
        hook = await client.post(ep_path(tenant.slug), json={"url": "https://hooks.example.com/u",
                                 "events": ["usage.threshold_reached"]}, headers=staff_headers)  # fmt: skip
        assert hook.status_code == 201
        path = f"/api/v1/tenants/{tenant.slug}/usage-thresholds"
        for body in ({"metric": "contacts", "value": "3"}, {"metric": "contacts", "value": "100"},
                     {"metric": "amount", "value": "4.20"}):  # fmt: skip
            assert (await client.post(path, json=body, headers=staff_headers)).status_code == 201
        for body, field in [({"metric": "contacts", "value": "2.5"}, "value"), ({"metric": "spend", "value": "1"},
                            "metric"), ({"metric": "amount", "value": "-1"}, "value")]:  # fmt: skip
            resp = await client.post(path, json=body, headers=staff_headers)
            assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == field
        dup = await client.post(path, json={"metric": "contacts", "value": "3"}, headers=staff_headers)
        assert dup.status_code == 409

        # October: 3 AI contacts = 4.20 EUR so far; November: 4 contacts.
        await ingest(client, tenant, [contact() for _ in range(3)])
        nov = datetime(2026, 11, 10, 9, tzinfo=UTC)
        await ingest(client, tenant, [contact(opened=nov + timedelta(minutes=i)) for i in range(4)])
        row = await _tenant_row(dbs, tenant.slug)
        oct_now = datetime(2026, 10, 25, 12, tzinfo=UTC)
        async with dbs.control_transaction() as session:
            hits = await check_tenant(session, row, now=oct_now)
        assert sorted((h.period, h.observed) for h in hits) == [("2026-10", "3"), ("2026-10", "4.20")]
        async with dbs.control_transaction() as session:
            assert await check_tenant(session, row, now=oct_now + timedelta(hours=1)) == []  # once per period
        async with dbs.control_transaction() as session:
            hits = await check_tenant(session, row, now=datetime(2026, 11, 20, 12, tzinfo=UTC))
        assert sorted((h.period, h.observed) for h in hits) == [("2026-11", "4"), ("2026-11", "5.60")]

        async with dbs.control_session() as session:
            deliveries = (await session.scalars(sa.select(WebhookDelivery).where(
                WebhookDelivery.tenant_id == tenant.id))).all()  # fmt: skip
            queued = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail"))).all()
        mails = [m for m in queued if m.payload.get("tenant_id") == str(tenant.id)]
        assert sorted((d.body["data"]["period"], d.body["data"]["metric"]) for d in deliveries) == [
            ("2026-10", "amount"), ("2026-10", "contacts"), ("2026-11", "amount"), ("2026-11", "contacts"),
        ]  # fmt: skip
        assert {d.event_type for d in deliveries} == {"usage.threshold_reached"}
        assert len(mails) == 4 and {m.payload["to"] for m in mails} == {"ap@merchant.example"}
        assert {m.payload["template"] for m in mails} == {"usage_threshold_reached"}
        amount = next(d.body["data"] for d in deliveries if d.body["data"]["metric"] == "amount")
        assert (amount["threshold"], amount["currency"]) == ("4.20", "EUR")


class TestSubjectRequestDueSoon:
    async def test_announced_once_seven_days_before_the_deadline(self, client, staff_headers, make_tenant, dbs):
        t = await make_tenant()
        hook = await client.post(ep_path(t["slug"]), json={"url": "https://hooks.example.com/d",
                                 "events": ["subject_request.due_soon"]}, headers=staff_headers)  # fmt: skip
        assert hook.status_code == 201
        due = date(2026, 12, 20)
        async with dbs.control_transaction() as session:
            session.add(SubjectRequest(
                tenant_id=uuid.UUID(t["id"]), number=1, kind="access", regime="GDPR", status="open", subject_hash=None,
                cells={}, details={}, received_at=datetime(2026, 11, 20, tzinfo=UTC), received_on=date(2026, 11, 20),
                due_on=due, created_by="tests",
            ))  # fmt: skip

        async def run(day: datetime) -> list[WebhookDelivery]:
            async with dbs.control_transaction() as session:
                await publish_due_soon(session, now=day)
            async with dbs.control_session() as session:
                stmt = sa.select(WebhookDelivery).where(WebhookDelivery.tenant_id == uuid.UUID(t["id"]))
                return list((await session.scalars(stmt)).all())

        assert await run(datetime(2026, 12, 12, 12, tzinfo=UTC)) == []  # 8 days ahead
        [d] = await run(datetime(2026, 12, 13, 12, tzinfo=UTC))
        assert (d.event_type, d.body["data"]["due_on"], d.body["data"]["days_left"]) == (
            "subject_request.due_soon", "2026-12-20", 7,
        )  # fmt: skip
        assert len(await run(datetime(2026, 12, 15, 12, tzinfo=UTC))) == 1  # once per request
