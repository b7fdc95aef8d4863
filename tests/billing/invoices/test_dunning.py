"""Payment lifecycle and dunning (issue 16, acceptance 2): a payment failure reported by the Stripe
fake (a signed webhook posted to our endpoint) makes the invoice ``payment_failed``; reminders go out
on the schedule's days, once each; the invoice turns ``overdue`` after its due date; the tenant is
suspended when the contract says so, and an account manager overrides that; every step is audited.

The dunning job is driven with a controlled clock (``run_dunning(db, now=…)``).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing.invoices import service
from billing.invoices.dunning import run_dunning
from billing.invoices.models import DunningStep, Invoice, PaymentWebhookEvent
from compliance.models import AuditEntry
from compliance.service import SystemActor
from control_plane.models import OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers as handlers
from tests.billing.invoices.conftest import NOW, contact, ingest
from tests.conftest import contract_body
from tests.fakes.polar_server import TOKEN, FakePolar
from tests.fakes.stripe_server import FakeStripe

ACTOR = SystemActor("tests", "system")
STRIPE_SECRET = "whsec_stripe_fake"
POLAR_SECRET = "whsec_" + base64.b64encode(b"polar-webhook-key-for-tests").decode()
DUE = date(2026, 12, 20)  # finalized on 2026-11-20 (Berlin), net 30


def on(day: date, days: int = 0) -> datetime:
    """11:00 in Berlin on ``day`` + ``days``: the job's clock."""
    return datetime.combine(day + timedelta(days=days), datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)


@pytest.fixture(scope="module")
def fakes():
    polar, stripe = FakePolar().start(), FakeStripe().start()
    yield polar, stripe
    polar.stop()
    stripe.stop()


@pytest.fixture
def ctx(settings, dbs, keyring, fakes, monkeypatch):
    polar, stripe = fakes
    env = {
        "BPO_POLAR_TOKEN": TOKEN, "BPO_POLAR_BASE_URL": polar.url, "BPO_POLAR_PRODUCT_ID": "prod-invoice",
        "BPO_POLAR_WEBHOOK_SECRET": POLAR_SECRET, "BPO_STRIPE_API_KEY": "sk_test_fake",
        "BPO_STRIPE_BASE_URL": stripe.url, "BPO_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
    }  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return JobContext(replace(settings, extra={**settings.extra, **env}), dbs, keyring)


async def open_invoice(dbs, client, staff_headers, ingest_tenant, *, dunning=None, provider="none"):
    """A tenant with one October contact and its finalized (open) October invoice; ``dunning``: the
    contract's schedule (a new contract version), else the default."""
    tenant = await ingest_tenant()
    if dunning is not None:
        resp = await client.put(
            f"/api/v1/tenants/{tenant.slug}/contract", json=contract_body(dunning=dunning), headers=staff_headers
        )
        assert resp.status_code in (200, 201), resp.text
    await ingest(client, tenant, [contact(opened=datetime(2026, 10, 14, 9, 0, tzinfo=UTC))])
    async with dbs.control_transaction() as session:
        draft, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
        invoice = await service.finalize_invoice(session, ACTOR, draft.id, now=NOW, provider=provider)
    assert invoice.payment_status == "open" and invoice.due_date == DUE
    return tenant, invoice


async def send_to_stripe(ctx, invoice_id: uuid.UUID) -> str:
    """Drain the outbox's provider call; the Stripe invoice id it created."""
    await dispatch_due(ctx.db, handlers(ctx), now=NOW, kinds={"payments.send_invoice"})
    async with ctx.db.control_session() as session:
        provider_id = (await session.get(Invoice, invoice_id)).provider_invoice_id
    assert provider_id and provider_id.startswith("in_")
    return provider_id


async def payment_status(dbs, invoice_id) -> str:
    async with dbs.control_session() as session:
        return (await session.get(Invoice, invoice_id)).payment_status


async def mails(dbs, invoice_id) -> list[tuple[str, str, str]]:
    """``(template, key, to)`` of the e-mails queued about an invoice, oldest first."""
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail"))).all()
    found = [m for m in rows if m.payload["context"].get("invoice_id") == str(invoice_id)]
    return [(m.payload["template"], m.payload["key"], m.payload["to"]) for m in sorted(found, key=lambda m: m.id)]


async def actions(dbs, slug: str) -> list[tuple[str, str, dict]]:
    async with dbs.control_session() as session:
        rows = await session.scalars(sa.select(AuditEntry).where(AuditEntry.stream == slug).order_by(AuditEntry.seq))
        return [(e.action, e.actor, e.data) for e in rows.all()]


async def tenant_status(client, staff_headers, slug: str) -> str:
    resp = await client.get(f"/api/v1/tenants/{slug}", headers=staff_headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["status"]


class TestProviderWebhooks:
    async def test_a_failure_from_the_stripe_fake_makes_the_invoice_payment_failed_then_paid(
        self, fakes, ctx, dbs, client, staff_headers, ingest_tenant
    ):
        _, stripe = fakes
        tenant, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant, provider="stripe")
        stripe_id = await send_to_stripe(ctx, invoice.id)
        body, headers = stripe.invoice_event(STRIPE_SECRET, "invoice.payment_failed", stripe_id)
        resp = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert resp.status_code == 200 and resp.json()["outcome"] == "payment_failed", resp.text
        assert await payment_status(dbs, invoice.id) == "payment_failed"
        event_id = resp.json()["event_id"]
        assert await mails(dbs, invoice.id) == [
            ("payment_failed", f"invoice.payment_failed:{invoice.id}:{event_id}", "ap@merchant.example")
        ]
        again = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert again.json() == {"event_id": event_id, "duplicate": True, "outcome": "ignored"}
        assert len(await mails(dbs, invoice.id)) == 1
        # A second failed attempt (Stripe's retry) changes nothing and sends nothing.
        body, headers = stripe.invoice_event(STRIPE_SECRET, "invoice.payment_failed", stripe_id)
        resp = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert resp.json()["outcome"] == "already_payment_failed"
        assert len(await mails(dbs, invoice.id)) == 1
        # Stripe's retry succeeds: paid.
        body, headers = stripe.invoice_event(STRIPE_SECRET, "invoice.paid", stripe_id)
        resp = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert resp.json()["outcome"] == "paid"
        async with dbs.control_session() as session:
            stored = await session.get(Invoice, invoice.id)
            assert (stored.status, stored.payment_status) == ("paid", "paid")
        audited = [(a, actor, d.get("from"), d.get("to")) for a, actor, d in await actions(dbs, tenant.slug)]
        assert ("invoice.payment_failed", "webhook:stripe", "open", "payment_failed") in audited
        assert ("invoice.paid", "webhook:stripe", "payment_failed", "paid") in audited
        api = await client.get(f"/api/v1/invoices/{invoice.id}", headers=staff_headers)
        assert api.json()["status"] == "paid" and api.json()["payment_status"] == "paid"

    async def test_charge_refunded_is_recorded_against_the_invoice_it_names(
        self, fakes, ctx, dbs, client, staff_headers, ingest_tenant
    ):
        _, stripe = fakes
        tenant, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant, provider="stripe")
        stripe_id = await send_to_stripe(ctx, invoice.id)
        body, headers = stripe.refund_event(STRIPE_SECRET, stripe_id, 12345)
        resp = await client.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
        assert resp.status_code == 200 and resp.json()["outcome"] == "refund_recorded", resp.text
        refunds = [d for a, _, d in await actions(dbs, tenant.slug) if a == "invoice.refund_recorded"]
        assert refunds == [{"number": invoice.number, "source": resp.json()["event_id"], "amount": "123.45",
                            "currency": "EUR"}]  # fmt: skip
        async with dbs.control_session() as session:
            row = await session.get(PaymentWebhookEvent, ("stripe", resp.json()["event_id"]))
            assert row.invoice_id == invoice.id and row.event_type == "charge.refunded"

    async def test_polar_order_paid_then_refunded(self, ctx, dbs, client, staff_headers, ingest_tenant):
        tenant, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant)
        body, headers = FakePolar.order_event(POLAR_SECRET, f"msg_p{invoice.id.hex}", str(invoice.id), "order.paid")
        resp = await client.post("/api/v1/payments/webhooks/polar", content=body, headers=headers)
        assert resp.json()["outcome"] == "paid", resp.text
        body, headers = FakePolar.order_event(
            POLAR_SECRET, f"msg_r{invoice.id.hex}", str(invoice.id), "order.refunded", refunded_amount=500
        )
        resp = await client.post("/api/v1/payments/webhooks/polar", content=body, headers=headers)
        assert resp.json()["outcome"] == "refund_recorded", resp.text
        assert await payment_status(dbs, invoice.id) == "paid"
        refunds = [d["amount"] for a, _, d in await actions(dbs, tenant.slug) if a == "invoice.refund_recorded"]
        assert refunds == ["5.00"]


class TestDunningSchedule:
    async def test_reminders_on_the_schedules_days_once_each_and_overdue_after_the_due_date(
        self, dbs, client, staff_headers, ingest_tenant
    ):
        tenant, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant)  # default -3, 1, 7, 14
        key = f"invoice.reminder:{invoice.id}"
        expected: list[tuple[str, str, str]] = []
        for days, status, new in [
            (-4, "open", None),
            (-3, "open", ("due_soon", f"{key}:-3")),
            (0, "open", None),  # the due date itself: still open
            (1, "overdue", ("overdue", f"{key}:1")),
            (6, "overdue", None),
            (7, "overdue", ("overdue", f"{key}:7")),
            (14, "overdue", ("overdue", f"{key}:14")),
            (40, "overdue", None),
        ]:
            for _ in range(2):  # the job runs twice (a retry, a second worker): nothing twice
                await run_dunning(dbs, now=on(DUE, days))
            if new:
                expected.append((*new, "ap@merchant.example"))
            assert await mails(dbs, invoice.id) == expected, days
            assert await payment_status(dbs, invoice.id) == status, days
        audited = await actions(dbs, tenant.slug)
        assert [d["day"] for a, _, d in audited if a == "invoice.reminder_sent"] == [-3, 1, 7, 14]
        overdue = [(actor, d["from"], d["to"]) for a, actor, d in audited if a == "invoice.overdue"]
        assert overdue == [("dunning", "open", "overdue")]
        assert await tenant_status(client, staff_headers, tenant.slug) == "active"  # the default never suspends

    async def test_a_job_that_missed_days_sends_only_the_latest_reminder(
        self, dbs, client, staff_headers, ingest_tenant
    ):
        _, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant)
        await run_dunning(dbs, now=on(DUE, 8))
        assert await mails(dbs, invoice.id) == [("overdue", f"invoice.reminder:{invoice.id}:7", "ap@merchant.example")]
        async with dbs.control_session() as session:
            steps = {s.step: s.detail for s in (await session.scalars(sa.select(DunningStep).where(
                DunningStep.invoice_id == invoice.id))).all()}  # fmt: skip
        assert steps == {"overdue": {"days_late": 8}, "reminder:-3": {"skipped": True},
                         "reminder:1": {"skipped": True}, "reminder:7": {"template": "overdue"}}  # fmt: skip

    async def test_paid_and_uncollectible_invoices_are_not_dunned(self, dbs, client, staff_headers, ingest_tenant):
        tenant, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant)
        url = f"/api/v1/invoices/{invoice.id}/uncollectible"
        bad = await client.post(url, json={"reason": " "}, headers=staff_headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason", bad.text
        resp = await client.post(url, json={"reason": "Customer insolvent"}, headers=staff_headers)
        assert resp.status_code == 200 and resp.json()["payment_status"] == "uncollectible", resp.text
        again = await client.post(url, json={"reason": "again"}, headers=staff_headers)
        assert again.status_code == 409 and again.json()["code"] == "not_unpaid"
        await run_dunning(dbs, now=on(DUE, 20))
        assert await mails(dbs, invoice.id) == [] and await payment_status(dbs, invoice.id) == "uncollectible"
        audited = [d for a, _, d in await actions(dbs, tenant.slug) if a == "invoice.uncollectible"]
        expected = {"number": invoice.number, "from": "open", "to": "uncollectible", "reason": "Customer insolvent"}
        assert audited == [expected]

    async def test_overdue_filter_in_the_api(self, dbs, client, staff_headers, ingest_tenant):
        tenant, invoice = await open_invoice(dbs, client, staff_headers, ingest_tenant)
        url = f"/api/v1/tenants/{tenant.slug}/invoices"
        assert (await client.get(url, params={"payment_status": "overdue"}, headers=staff_headers)).json() == []
        await run_dunning(dbs, now=on(DUE, 1))
        found = (await client.get(url, params={"payment_status": "overdue"}, headers=staff_headers)).json()
        assert [i["id"] for i in found] == [str(invoice.id)]
        bad = await client.get(url, params={"payment_status": "late"}, headers=staff_headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "payment_status"
        page = await client.get("/billing/drafts", params={"payment": "overdue"}, headers=staff_headers)
        assert page.status_code == 200 and f'data-invoice="{invoice.id}"' in page.text


class TestSuspension:
    async def test_suspended_after_n_days_overdue_then_an_account_manager_overrides(
        self, dbs, client, staff_headers, ingest_tenant
    ):
        tenant, invoice = await open_invoice(
            dbs, client, staff_headers, ingest_tenant, dunning={"reminders_days": [3], "suspend_after_days": 10}
        )
        await run_dunning(dbs, now=on(DUE, 9))
        assert await tenant_status(client, staff_headers, tenant.slug) == "active"
        for _ in range(2):
            await run_dunning(dbs, now=on(DUE, 10))
        assert await tenant_status(client, staff_headers, tenant.slug) == "suspended"
        audited = await actions(dbs, tenant.slug)
        assert [d for a, _, d in audited if a == "invoice.tenant_suspended"] == [
            {"number": invoice.number, "days_late": 10, "suspended": True}
        ]
        changes = [(actor, d["to"]) for a, actor, d in audited if a == "tenant.status_changed"]
        assert changes[-1] == ("dunning", "suspended")
        assert [t for t, _, _ in await mails(dbs, invoice.id)] == ["overdue"]  # only day 3 of [3]

        url = f"/api/v1/invoices/{invoice.id}/suspension-override"
        bad = await client.post(url, json={}, headers=staff_headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
        resp = await client.post(url, json={"reason": "Payment promised by Jan 5"}, headers=staff_headers)
        assert resp.status_code == 200 and resp.json()["tenant_reactivated"] is True, resp.text
        assert await tenant_status(client, staff_headers, tenant.slug) == "active"
        again = await client.post(url, json={"reason": "twice"}, headers=staff_headers)
        assert again.status_code == 409 and again.json()["code"] == "already_overridden"
        await run_dunning(dbs, now=on(DUE, 30))  # the override holds
        assert await tenant_status(client, staff_headers, tenant.slug) == "active"
        audited = await actions(dbs, tenant.slug)
        overrides = [(actor, d) for a, actor, d in audited if a == "invoice.suspension_overridden"]
        assert len(overrides) == 1 and overrides[0][1] == {
            "number": invoice.number, "reason": "Payment promised by Jan 5", "reactivated": True
        }  # fmt: skip
        assert [(d["from"], d["to"]) for a, _, d in audited if a == "tenant.status_changed"][-1] == (
            "suspended", "active"
        )  # fmt: skip

    async def test_an_override_before_the_suspension_prevents_it(self, dbs, client, staff_headers, ingest_tenant):
        tenant, invoice = await open_invoice(
            dbs, client, staff_headers, ingest_tenant, dunning={"reminders_days": [], "suspend_after_days": 5}
        )
        resp = await client.post(
            f"/api/v1/invoices/{invoice.id}/suspension-override", json={"reason": "Key account"}, headers=staff_headers
        )
        assert resp.status_code == 200 and resp.json()["tenant_reactivated"] is False
        await run_dunning(dbs, now=on(DUE, 6))
        assert await payment_status(dbs, invoice.id) == "overdue"
        assert await tenant_status(client, staff_headers, tenant.slug) == "active"
        assert await mails(dbs, invoice.id) == []  # no reminder days

    async def test_the_schedule_is_validated_with_field_errors(self, client, staff_headers, make_tenant):
        tenant = await make_tenant()
        body = contract_body(dunning={"reminders_days": [1, 1, 400], "suspend_after_days": 0})
        resp = await client.put(f"/api/v1/tenants/{tenant['slug']}/contract", json=body, headers=staff_headers)
        assert resp.status_code == 422, resp.text
        fields = {e["field"] for e in resp.json()["errors"]}
        assert {"dunning.reminders_days.2", "dunning.suspend_after_days"} <= fields, fields
