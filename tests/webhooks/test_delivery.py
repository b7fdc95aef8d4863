"""Merchant webhooks end to end on SQLite and PostgreSQL: an endpoint on a loopback receiver gets
``invoice.finalized`` signed per Standard Webhooks (verified with the ``standardwebhooks`` library); a
failing endpoint is retried on the fixed schedule for up to 3 days (controlled clock), the log shows
every attempt, and it is then disabled with a notice and an audit entry; replays keep the webhook-id;
the SLA alert webhooks moved from the SLA settings keep their signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from standardwebhooks import Webhook

from compliance.service import list_entries
from control_plane.events import publish
from control_plane.models import OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from tests.billing.conftest import contact
from tests.billing.invoices.conftest import NOW, ingest
from tests.fakes.webhook_receiver import WebhookReceiver
from webhooks.delivery import MAX_ATTEMPTS, RETRY_DELAYS
from webhooks.models import WebhookEndpoint

T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def add_endpoint(client, headers, slug: str, url: str, events: list[str]) -> dict:
    resp = await client.post(f"/api/v1/tenants/{slug}/webhook-endpoints", json={"url": url, "events": events},
                             headers=headers)  # fmt: skip
    assert resp.status_code == 201, resp.text
    return resp.json()


async def run(settings, dbs, keyring, now: datetime) -> dict[str, int]:
    return await dispatch_due(dbs, outbox_handlers(JobContext(settings, dbs, keyring)), kinds=["webhook"], now=now)


async def deliveries(client, headers, slug: str, endpoint_id: str) -> list[dict]:
    resp = await client.get(f"/api/v1/tenants/{slug}/webhook-endpoints/{endpoint_id}/deliveries", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def publish_one(dbs, tenant_id: str, type_: str, key: str, at: datetime, data: dict | None = None) -> None:
    async with dbs.control_transaction() as session:
        await publish(session, type=type_, tenant_id=uuid.UUID(tenant_id), key=key, data=data or {"n": key}, now=at)


class TestInvoiceEvents:
    async def test_a_finalized_invoice_and_its_credit_note_reach_the_endpoint_signed(
        self, client, staff_headers, ingest_tenant, frozen, dbs, settings, keyring, receiver
    ):
        tenant = await ingest_tenant()
        ep = await add_endpoint(client, staff_headers, tenant.slug, receiver.url + "/hooks/bpo",
                                ["invoice.finalized", "credit_note.issued"])  # fmt: skip
        assert ep["secret"].startswith("whsec_") and ep["enabled"] is True
        await ingest(client, tenant, [contact(), contact()])
        draft = await client.post(f"/api/v1/tenants/{tenant.slug}/invoices?period=2026-10", headers=staff_headers)
        fin = await client.post(f"/api/v1/invoices/{draft.json()['id']}/finalize", headers=staff_headers)
        assert fin.status_code == 200, fin.text

        await run(settings, dbs, keyring, NOW)
        assert len(receiver.received) == 1
        got = receiver.received[0]
        body = Webhook(ep["secret"]).verify(got.body, got.headers)  # raises unless the signature verifies
        assert got.path == "/hooks/bpo" and got.headers["content-type"] == "application/json"
        assert body["type"] == "invoice.finalized" and body["timestamp"] == NOW.isoformat()
        data = body["data"]
        assert (data["invoice_id"], data["number"], data["total"], data["currency"], data["tenant"]) == (
            fin.json()["id"], fin.json()["number"], fin.json()["total"], "EUR", tenant.slug,
        )  # fmt: skip
        assert "customer_ref" not in got.body.decode()
        [logged] = await deliveries(client, staff_headers, tenant.slug, ep["id"])
        assert (logged["event_type"], logged["status"], logged["response_code"], logged["attempts"]) == (
            "invoice.finalized", "succeeded", 200, 1,
        )  # fmt: skip
        assert logged["webhook_id"] == got.headers["webhook-id"]

        note = await client.post(f"/api/v1/invoices/{fin.json()['id']}/credit-notes",
                                 json={"amount": "10.00", "reason": "goodwill"}, headers=staff_headers)  # fmt: skip
        assert note.status_code in (200, 201), note.text
        await run(settings, dbs, keyring, NOW)
        second = Webhook(ep["secret"]).verify(receiver.received[1].body, receiver.received[1].headers)
        assert second["type"] == "credit_note.issued"
        assert (second["data"]["amount"], second["data"]["invoice_number"]) == ("10.00", fin.json()["number"])
        await run(settings, dbs, keyring, NOW + timedelta(days=4))
        assert len(receiver.received) == 2  # each event once

    async def test_an_event_published_twice_is_delivered_once_and_only_to_subscribed_enabled_endpoints(
        self, client, staff_headers, make_tenant, dbs, settings, keyring, receiver
    ):
        t = await make_tenant()
        paid = await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/paid", ["invoice.paid"])
        await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/sla", ["sla.breached"])
        off = await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/off", ["invoice.paid"])
        resp = await client.patch(f"/api/v1/tenants/{t['slug']}/webhook-endpoints/{off['id']}",
                                  json={"enabled": False}, headers=staff_headers)  # fmt: skip
        assert resp.status_code == 200 and resp.json()["enabled"] is False
        for _ in range(2):
            await publish_one(dbs, t["id"], "invoice.paid", f"invoice.paid:{t['id']}", T)
        await run(settings, dbs, keyring, T)
        assert [r.path for r in receiver.received] == ["/paid"]
        assert len(await deliveries(client, staff_headers, t["slug"], paid["id"])) == 1
        assert await deliveries(client, staff_headers, t["slug"], off["id"]) == []


class TestRetries:
    async def test_a_failing_endpoint_is_retried_for_three_days_then_disabled_with_a_notice(
        self, client, staff_headers, make_tenant, dbs, settings, keyring, receiver, clock
    ):
        t = await make_tenant()
        receiver.status = 500
        ep = await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/down", ["invoice.overdue"])
        await publish_one(dbs, t["id"], "invoice.overdue", f"invoice.overdue:{t['id']}", T)
        at, times = T, []
        for n in range(1, MAX_ATTEMPTS + 1):
            clock[:] = [at]
            if n > 1:  # not a second early
                await run(settings, dbs, keyring, at - timedelta(seconds=1))
                assert len(receiver.received) == n - 1
            await run(settings, dbs, keyring, at)
            assert len(receiver.received) == n
            times.append(at)
            [d] = await deliveries(client, staff_headers, t["slug"], ep["id"])
            assert (d["attempts"], d["response_code"], len(d["attempt_log"])) == (n, 500, n)
            if n < MAX_ATTEMPTS:
                assert d["status"] == "pending"
                at = datetime.fromisoformat(d["next_attempt_at"])
                assert at - times[-1] == RETRY_DELAYS[n - 1]
        assert [b - a for a, b in itertools.pairwise(times)] == list(RETRY_DELAYS)  # growing gaps
        assert timedelta(days=2, hours=23) < times[-1] - times[0] <= timedelta(days=3)
        assert (d["status"], d["next_attempt_at"], d["last_error"]) == ("failed", None, "the endpoint answered 500")
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message, retried

        endpoint = (await client.get(f"/api/v1/tenants/{t['slug']}/webhook-endpoints/{ep['id']}",
                                     headers=staff_headers)).json()  # fmt: skip
        assert endpoint["enabled"] is False and "every delivery failed for 3 days" in endpoint["disabled_reason"]
        async with dbs.control_session() as session:
            actions = [e.action for e in await list_entries(session, t["slug"])]
        assert "webhook.endpoint_disabled" in actions

        page = await client.get(
            f"/tenants/{t['slug']}/webhooks/{ep['id']}", headers=staff_headers | {"Accept": "text/html"}
        )
        assert page.status_code == 200 and 'id="disabled-notice"' in page.text and "failed" in page.text
        await publish_one(dbs, t["id"], "invoice.overdue", f"invoice.overdue:{t['id']}:2", times[-1])
        await run(settings, dbs, keyring, times[-1] + timedelta(days=1))
        assert len(await deliveries(client, staff_headers, t["slug"], ep["id"])) == 1  # disabled: nothing new

    async def test_an_endpoint_that_recovers_succeeds_and_stays_enabled(
        self, client, staff_headers, make_tenant, dbs, settings, keyring, receiver, clock
    ):
        t = await make_tenant()
        ep = await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/flaky", ["invoice.paid"])
        receiver.fail("500", "500")
        await publish_one(dbs, t["id"], "invoice.paid", f"invoice.paid:flaky:{t['id']}", T)
        clock[:] = [T]
        await run(settings, dbs, keyring, T)
        clock[:] = [T + RETRY_DELAYS[0]]
        await run(settings, dbs, keyring, T + RETRY_DELAYS[0])
        clock[:] = [T + RETRY_DELAYS[0] + RETRY_DELAYS[1]]
        await run(settings, dbs, keyring, clock[0])
        [d] = await deliveries(client, staff_headers, t["slug"], ep["id"])
        assert (d["status"], d["attempts"], [a["status_code"] for a in d["attempt_log"]]) == (
            "succeeded", 3, [500, 500, 200],
        )  # fmt: skip

    async def test_an_endpoint_that_does_not_answer_is_logged_and_retried(
        self, client, staff_headers, make_tenant, dbs, settings, keyring, clock
    ):
        t = await make_tenant()
        closed = WebhookReceiver().start()
        url = closed.url + "/nobody"
        closed.stop()  # the port refuses connections now
        ep = await add_endpoint(client, staff_headers, t["slug"], url, ["invoice.paid"])
        await publish_one(dbs, t["id"], "invoice.paid", f"invoice.paid:closed:{t['id']}", T)
        clock[:] = [T]
        await run(settings, dbs, keyring, T)
        [d] = await deliveries(client, staff_headers, t["slug"], ep["id"])
        assert (d["status"], d["attempts"], d["response_code"]) == ("pending", 1, None)
        assert d["last_error"].startswith("ConnectError") and d["next_attempt_at"] == (T + RETRY_DELAYS[0]).isoformat()


class TestReplay:
    async def test_a_replay_is_a_new_delivery_with_the_same_webhook_id_and_body(
        self, client, staff_headers, make_tenant, dbs, settings, keyring, receiver
    ):
        t = await make_tenant()
        ep = await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/r", ["invoice.paid"])
        await publish_one(dbs, t["id"], "invoice.paid", f"invoice.paid:replay:{t['id']}", T)
        await run(settings, dbs, keyring, T)
        [first] = await deliveries(client, staff_headers, t["slug"], ep["id"])
        path = f"/api/v1/tenants/{t['slug']}/webhook-endpoints/{ep['id']}/deliveries/{first['id']}/replay"
        resp = await client.post(path, headers=staff_headers)
        assert resp.status_code == 201, resp.text
        assert (resp.json()["replay_of"], resp.json()["status"]) == (first["id"], "pending")
        await run(settings, dbs, keyring, datetime.now(UTC) + timedelta(seconds=1))
        a, b = receiver.received
        assert a.headers["webhook-id"] == b.headers["webhook-id"] and json.loads(a.body) == json.loads(b.body)
        Webhook(ep["secret"]).verify(b.body, b.headers)
        log = await deliveries(client, staff_headers, t["slug"], ep["id"])
        assert [(d["status"], d["replay_of"]) for d in log] == [("succeeded", first["id"]), ("succeeded", None)]
        other = await client.post(path.replace(first["id"], str(uuid.uuid4())), headers=staff_headers)
        assert other.status_code == 404


class TestMovedSlaWebhook:
    async def test_a_moved_alert_webhook_signs_with_its_secret_text_as_before(
        self, client, staff_headers, make_tenant, dbs, settings, keyring, receiver
    ):
        t = await make_tenant()
        secret = "whsec_page_" + "s3cr3t" * 6  # an SLA webhook secret as the old settings page took it
        tenant_id = uuid.UUID(t["id"])
        async with dbs.control_transaction() as session:
            session.add(WebhookEndpoint(
                id=uuid.uuid4(), tenant_id=tenant_id, url=receiver.url + "/sla", description="", signing="sla_legacy",
                events=["sla.at_risk", "sla.breached"], enabled=True, created_at=T, created_by="migration",
                updated_at=T, secret=keyring.encrypt(secret, f"tenant:{tenant_id}:sla_alert_webhook"),
            ))  # fmt: skip
        await publish_one(dbs, t["id"], "sla.breached", f"sla.alert:legacy:{t['id']}", T, {"status": "breached"})
        await run(settings, dbs, keyring, T)
        [got] = receiver.received
        signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
        expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
        assert got.headers["webhook-signature"] == f"v1,{expected}"
        assert Webhook(secret.encode()).verify(got.body, got.headers)["data"] == {"status": "breached"}


async def test_deleting_an_endpoint_drops_its_log_and_queued_attempts_do_nothing(
    client, staff_headers, make_tenant, dbs, settings, keyring, receiver
):
    t = await make_tenant()
    ep = await add_endpoint(client, staff_headers, t["slug"], receiver.url + "/gone", ["invoice.paid"])
    await publish_one(dbs, t["id"], "invoice.paid", f"invoice.paid:gone:{t['id']}", T)
    resp = await client.delete(f"/api/v1/tenants/{t['slug']}/webhook-endpoints/{ep['id']}", headers=staff_headers)
    assert resp.status_code == 200
    await run(settings, dbs, keyring, T)
    assert receiver.received == []
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "webhook"))).all()
    assert all(r.status == "sent" for r in rows if r.payload.get("delivery_id") and r.next_attempt_at <= T)
    gone = await client.get(f"/api/v1/tenants/{t['slug']}/webhook-endpoints/{ep['id']}", headers=staff_headers)
    assert gone.status_code == 404
