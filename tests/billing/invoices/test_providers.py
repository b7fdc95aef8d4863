"""Invoices reach Polar and Stripe exactly once through outages and crashes; webhooks mark them paid once.

The real SDKs (`PolarAsync`, `StripeClient`) talk to the fakes in tests/fakes over loopback.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing.invoices import service
from billing.invoices.models import Invoice, PaymentWebhookEvent
from billing.providers.handlers import send_invoice_factory
from compliance.service import SystemActor
from control_plane.models import OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers as handlers
from tests.billing.invoices.conftest import NOW, contact, ingest
from tests.fakes.polar_server import TOKEN, FakePolar
from tests.fakes.stripe_server import FakeStripe

ACTOR = SystemActor("tests", "system")
KIND = "payments.send_invoice"
STRIPE_SECRET = "whsec_stripe_fake"
POLAR_SECRET = "whsec_" + base64.b64encode(b"polar-webhook-key-for-tests").decode()


@pytest.fixture(scope="module")
def fakes():
    polar, stripe = FakePolar().start(), FakeStripe().start()
    yield polar, stripe
    polar.stop()
    stripe.stop()


@pytest.fixture
def provider_env(fakes, monkeypatch):
    polar, stripe = fakes
    env = {
        "BPO_POLAR_TOKEN": TOKEN, "BPO_POLAR_BASE_URL": polar.url, "BPO_POLAR_PRODUCT_ID": "prod-invoice",
        "BPO_POLAR_WEBHOOK_SECRET": POLAR_SECRET, "BPO_STRIPE_API_KEY": "sk_test_fake",
        "BPO_STRIPE_BASE_URL": stripe.url, "BPO_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "BPO_PROVIDER_TIMEOUT_SECONDS": "0.5",
    }  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def ctx(settings, dbs, keyring, provider_env):
    return JobContext(replace(settings, extra={**settings.extra, **provider_env}), dbs, keyring)


async def _finalized(dbs, client, ingest_tenant, provider: str, n: int) -> list[Invoice]:
    """n tenants, each with one AI and one human contact in October: a missed deflection floor gives a credit."""
    out = []
    opened = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
    for _ in range(n):
        tenant = await ingest_tenant()
        human = contact(
            opened=opened, resolution="human_resolved", handoff_at=(opened + timedelta(minutes=1)).isoformat()
        )
        await ingest(client, tenant, [contact(opened=opened), human])
        async with dbs.control_transaction() as session:
            draft, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
            out.append(await service.finalize_invoice(session, ACTOR, draft.id, now=NOW, provider=provider))
    return out


async def _drain(ctx, ids: set[uuid.UUID]) -> list[OutboxMessage]:
    clock = NOW
    for _ in range(12):  # scheduler ticks, the clock moved past each backoff
        await dispatch_due(ctx.db, handlers(ctx), now=clock, kinds={KIND})
        clock += timedelta(hours=2)
    async with ctx.db.control_session() as session:
        rows = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == KIND))).all()
    return [m for m in rows if uuid.UUID(m.payload["invoice_id"]) in ids]


class TestOutageThenRecovery:
    async def test_stripe_gets_each_invoice_once_with_every_line(self, fakes, ctx, dbs, client, ingest_tenant):
        _, stripe = fakes
        invoices = await _finalized(dbs, client, ingest_tenant, "stripe", 3)
        stripe.fail("500", "429", "timeout", "500", "timeout", "429")
        msgs = await _drain(ctx, {i.id for i in invoices})
        assert {m.status for m in msgs} == {"sent"} and len(msgs) == 3
        assert max(m.attempts for m in msgs) > 1  # the outage was met
        for invoice in invoices:
            made = [s for s in stripe.invoices.values() if s["metadata"].get("invoice_id") == str(invoice.id)]
            assert len(made) == 1 and made[0]["status"] == "open"
            items = stripe.items_of(made[0]["id"])
            assert [i["amount"] for i in items] == [line.amount_minor for line in invoice.lines]
            assert made[0]["total"] == invoice.total_minor and any(i["amount"] < 0 for i in items)  # the SLA credit
            async with dbs.control_session() as session:
                assert (await session.get(Invoice, invoice.id)).provider_invoice_id == made[0]["id"]

    async def test_polar_gets_one_checkout_of_the_exact_total(self, fakes, ctx, dbs, client, ingest_tenant):
        polar, _ = fakes
        invoices = await _finalized(dbs, client, ingest_tenant, "polar", 2)
        polar.fail("timeout", "500", "429", "timeout")
        msgs = await _drain(ctx, {i.id for i in invoices})
        assert {m.status for m in msgs} == {"sent"}
        for invoice in invoices:
            made = [c for c in polar.checkouts if c["metadata"].get("invoice_id") == str(invoice.id)]
            assert len(made) == 1 and made[0]["amount"] == invoice.total_minor == 499934
            tenant_slug = made[0]["external_customer_id"]
            assert polar.customers[tenant_slug]["external_id"] == tenant_slug


class TestKilledWorker:
    async def test_a_crash_between_commit_and_send_loses_nothing(self, fakes, ctx, dbs, client, ingest_tenant):
        _, stripe = fakes
        (invoice,) = await _finalized(dbs, client, ingest_tenant, "stripe", 1)
        # The worker that committed the finalization died before sending: the row waits, nothing was sent.
        assert not [s for s in stripe.invoices.values() if s["metadata"].get("invoice_id") == str(invoice.id)]
        # Another worker died after the provider accepted the call but before marking the row sent.
        async with dbs.control_session() as session:
            row = await session.scalar(
                sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == f"invoice:{invoice.id}:send:stripe")
            )
        await send_invoice_factory(ctx)(dict(row.payload), row.idempotency_key)
        (msg,) = await _drain(ctx, {invoice.id})
        assert msg.status == "sent"
        made = [s for s in stripe.invoices.values() if s["metadata"].get("invoice_id") == str(invoice.id)]
        assert len(made) == 1 and len(stripe.items_of(made[0]["id"])) == len(invoice.lines)


async def _status(dbs, invoice_id) -> tuple[str, int]:
    async with dbs.control_session() as session:
        invoice = await session.get(Invoice, invoice_id)
        events = await session.scalar(
            sa.select(sa.func.count())
            .select_from(PaymentWebhookEvent)
            .where(PaymentWebhookEvent.invoice_id == invoice_id)
        )
    return invoice.status, events


class TestWebhooks:
    async def test_stripe_paid_once_duplicate_ignored_bad_signature_refused(
        self, fakes, provider_env, dbs, client, ingest_tenant
    ):
        (invoice,) = await _finalized(dbs, client, ingest_tenant, "stripe", 1)
        obj = {"id": "in_x", "object": "invoice", "metadata": {"invoice_id": str(invoice.id)}}
        body, headers = FakeStripe.signed_event("whsec_wrong", "evt_1" + invoice.id.hex, "invoice.paid", obj)
        resp = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["code"] == "bad_signature"
        assert await _status(dbs, invoice.id) == ("finalized", 0)
        body, headers = FakeStripe.signed_event(STRIPE_SECRET, "evt_1" + invoice.id.hex, "invoice.paid", obj)
        resp = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert resp.status_code == 200 and resp.json() == {
            "event_id": "evt_1" + invoice.id.hex, "duplicate": False, "outcome": "paid"
        }  # fmt: skip
        assert await _status(dbs, invoice.id) == ("paid", 1)
        again = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert await _status(dbs, invoice.id) == ("paid", 1)

    async def test_polar_order_paid_through_validate_event(self, fakes, provider_env, dbs, client, ingest_tenant):
        (invoice,) = await _finalized(dbs, client, ingest_tenant, "polar", 1)
        body, headers = FakePolar.order_paid(POLAR_SECRET, f"msg_{invoice.id.hex}", str(invoice.id))
        bad = dict(headers, **{"webhook-signature": "v1," + base64.b64encode(b"0" * 32).decode()})
        resp = await client.post("/api/v1/payments/webhooks/polar", content=body, headers=bad)
        assert resp.status_code == 401
        assert await _status(dbs, invoice.id) == ("finalized", 0)
        for duplicate in (False, True):
            resp = await client.post("/api/v1/payments/webhooks/polar", content=body, headers=headers)
            assert resp.status_code == 200 and resp.json()["duplicate"] is duplicate, resp.text
            assert await _status(dbs, invoice.id) == ("paid", 1)


class TestProviderWebhookTimestamps:
    """Issue 14: a timestamp header out of any range is a 401 problem JSON from both providers, never a 500."""

    @pytest.mark.parametrize("stamp", ["99999999999999", "-99999999999999", "9" * 400, "1e400", "nan", "soon"])
    async def test_polar_webhook_timestamp(self, fakes, provider_env, dbs, client, stamp):
        import hashlib
        import hmac

        event_id = f"msg_{uuid.uuid4().hex}"
        body, headers = FakePolar.order_paid(POLAR_SECRET, event_id, str(uuid.uuid4()))
        key = base64.b64decode(POLAR_SECRET.removeprefix("whsec_"))
        mac = hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        for signature in ("v1," + base64.b64encode(mac).decode(), "v1,AAAA"):
            resp = await client.post(
                "/api/v1/payments/webhooks/polar",
                content=body,
                headers=headers | {"webhook-timestamp": stamp, "webhook-signature": signature},
            )
            assert resp.status_code == 401, resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["code"] == "bad_signature"
        async with dbs.control_session() as session:
            stored = sa.select(sa.func.count()).where(PaymentWebhookEvent.event_id == event_id)
            assert await session.scalar(stored) == 0

    @pytest.mark.parametrize("stamp", ["99999999999999", "-99999999999999", "9" * 400, "1e400", "soon"])
    async def test_stripe_webhook_timestamp(self, fakes, provider_env, dbs, client, stamp):
        import hashlib
        import hmac

        obj = {"id": "in_ts", "object": "invoice", "metadata": {"invoice_id": str(uuid.uuid4())}}
        event_id = f"evt_{uuid.uuid4().hex}"
        body, headers = FakeStripe.signed_event(STRIPE_SECRET, event_id, "invoice.paid", obj)
        sig = hmac.new(STRIPE_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        for signature in (f"t={stamp},v1={sig}", f"t={stamp},v1=00"):
            resp = await client.post(
                "/api/v1/payments/webhooks/stripe", content=body, headers=headers | {"Stripe-Signature": signature}
            )
            assert resp.status_code == 401, resp.text
            assert resp.json()["code"] == "bad_signature"
        async with dbs.control_session() as session:
            stored = sa.select(sa.func.count()).where(PaymentWebhookEvent.event_id == event_id)
            assert await session.scalar(stored) == 0
