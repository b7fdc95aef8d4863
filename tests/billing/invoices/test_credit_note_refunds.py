"""Credit notes reach Stripe and Polar exactly once (a refund on a paid invoice, less due on an open one)
through an outage and a ``bpoctl worker`` killed with SIGKILL mid-call; ``bpoctl payments reconcile``
finds no difference afterwards and names the one a test introduces.

Each test has fresh databases (the worker runs every periodic job on them) and fresh fakes (reconcile
reads everything a fake holds). The real SDKs talk to the fakes over loopback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from billing.invoices import payments, service
from billing.invoices.models import CreditNote, Invoice, InvoiceLineRow
from billing.providers.cli import payments_group
from billing.providers.credits import CREDIT_NOTE, follow_up_awaiting
from billing.providers.port import ProviderConfig
from billing.providers.reconcile import reconcile
from compliance.service import SystemActor
from control_plane.database import Databases
from control_plane.keystore import load_keyring_sync
from control_plane.migrate import upgrade_all
from control_plane.models import OutboxMessage
from control_plane.outbox import dispatch_due, enqueue
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from tenants import service as tenants
from tests.conftest import build_settings, drop_databases, tenant_body
from tests.fakes.polar_server import TOKEN, FakePolar
from tests.fakes.stripe_server import FakeStripe

ROOT = Path(__file__).resolve().parents[3]
BPOCTL = Path(sys.executable).parent / "bpoctl"
ACTOR = SystemActor("tests", "system")
SEND = "payments.send_invoice"
REFUND_PATH = {"stripe": ("POST", "/v1/credit_notes"), "polar": ("POST", "/v1/refunds/")}


class World:
    """Fresh databases of one backend, fresh fakes, the environment a ``bpoctl`` process needs."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.settings, self.created = build_settings(backend, tmp / "data")
        upgrade_all(self.settings)
        self.stripe, self.polar = FakeStripe().start(), FakePolar().start()
        self.provider_env = {
            "BPO_POLAR_TOKEN": TOKEN, "BPO_POLAR_BASE_URL": self.polar.url, "BPO_POLAR_PRODUCT_ID": "prod-invoice",
            "BPO_STRIPE_API_KEY": "sk_test_fake", "BPO_STRIPE_BASE_URL": self.stripe.url,
            "BPO_PROVIDER_TIMEOUT_SECONDS": "5",
        }  # fmt: skip
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")} | self.provider_env
        self.env["BPO_DATA_DIR"] = str(self.settings.data_dir)
        if backend == "postgres":
            self.env["BPO_DATABASE_URL"] = self.settings.database.control_url
            self.env["BPO_CELL_URLS"] = ",".join(f"{r}={u}" for r, u in self.settings.database.cell_urls.items())
        self.db = Databases(self.settings.database)
        self.keyring = load_keyring_sync(self.settings)
        self.ctx = JobContext(replace(self.settings, extra=self.provider_env), self.db, self.keyring)
        self.config = ProviderConfig.load(self.provider_env)
        self.log = tmp / "worker.log"

    def fake(self, provider: str):
        return self.stripe if provider == "stripe" else self.polar

    async def reconcile_command(self, *args: str) -> tuple[int, list[str]]:
        """``bpoctl payments reconcile …`` in this process (a thread: the command runs its own event loop),
        with the environment a ``bpoctl`` process would have; every ``bpoctl`` start costs seconds."""
        env = {k: None for k in os.environ if k.startswith("BPO_")} | {
            k: v for k, v in self.env.items() if k.startswith("BPO_")
        }
        result = await asyncio.to_thread(CliRunner().invoke, payments_group, ["reconcile", *args], env=env)
        # The command's lines, without the JSON log lines of the SDKs (logging may be configured by then).
        return result.exit_code, [line for line in result.output.splitlines() if not line.startswith("{")]

    async def close(self) -> None:
        await self.db.dispose()
        self.stripe.stop()
        self.polar.stop()
        drop_databases(self.created)


@pytest.fixture
async def world(backend, tmp_path):
    w = World(backend, tmp_path)
    yield w
    await w.close()


async def _invoice(db: Databases, settings, keyring, provider: str, now: datetime) -> Invoice:
    """A tenant and its finalized October invoice of 1,000.00 EUR bound for ``provider`` (its send row
    written as finalization writes it)."""
    async with db.control_transaction() as session:
        tenant = await tenants.create_tenant(session, ACTOR, tenant_body(), regions=settings.regions, keyring=keyring)
        invoice = Invoice(
            id=uuid.uuid4(), tenant_id=tenant.id, period="2026-10", period_start=datetime(2026, 9, 30, 22, tzinfo=UTC),
            period_end=datetime(2026, 10, 31, 23, tzinfo=UTC), timezone=tenant.timezone, currency="EUR",
            status="finalized", number=f"INV-T-{uuid.uuid4().hex[:8]}", contract_version=1,
            usage_subtotal_minor=100000, credit_total_minor=0, total_minor=100000, net_total_minor=100000,
            tax_total_minor=0, tax_lines=[], counts={}, drafts=1, drafted_at=now, finalized_at=now, provider=provider,
            payment_status="open", payment_status_at=now,
            lines=[InvoiceLineRow(position=1, kind="ai_resolved", description="AI-resolved contacts", quantity=1000,
                                  unit_price=Decimal(1), amount_minor=100000)],
        )  # fmt: skip
        session.add(invoice)
        await session.flush()
        await enqueue(
            session, kind=SEND, payload={"invoice_id": str(invoice.id), "provider": provider},
            idempotency_key=f"invoice:{invoice.id}:send:{provider}", now=now,
        )  # fmt: skip
    return invoice


async def _dispatch(world: World, clock: datetime, kinds: set[str]) -> dict[str, int]:
    return await dispatch_due(world.db, outbox_handlers(world.ctx), now=clock, kinds=kinds)


async def _row(db: Databases, key: str) -> OutboxMessage:
    async with db.control_session() as session:
        return await session.scalar(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == key))


async def _note(db: Databases, note_id: uuid.UUID) -> CreditNote:
    async with db.control_session() as session:
        return await session.get(CreditNote, note_id)


async def _sent_and_paid(world: World, provider: str, clock: datetime) -> Invoice:
    """The invoice at the provider, paid there and (as its webhook would) here."""
    invoice = await _invoice(world.db, world.settings, world.keyring, provider, clock)
    assert (await _dispatch(world, clock, {SEND}))["sent"] == 1
    async with world.db.control_transaction() as session:
        invoice = await session.get_one(Invoice, invoice.id)
        if provider == "stripe":
            world.stripe.pay(invoice.provider_invoice_id)
        else:
            world.polar.pay(invoice.provider_invoice_id)
        assert await payments.mark_paid(session, ACTOR, invoice, now=clock, source="test")
    return invoice


def _refunds(world: World, provider: str, invoice: Invoice) -> list[dict]:
    if provider == "stripe":
        return world.stripe.refunds_of(invoice.provider_invoice_id)
    return world.polar.refunds_of(str(invoice.id))


@pytest.mark.parametrize("provider", ["stripe", "polar"])
async def test_one_refund_through_an_outage_and_a_killed_worker(world, provider):
    fake = world.fake(provider)
    clock = datetime.now(UTC) - timedelta(days=2)  # every backoff below has elapsed by the real clock
    invoice = await _sent_and_paid(world, provider, clock)
    async with world.db.control_transaction() as session:
        note = await service.issue_credit_note(
            session, ACTOR, invoice.id, {"amount": "120.00", "reason": "SLA breach in October"}, now=clock
        )
    key = f"credit_note:{note.id}:{provider}:refund"
    assert (note.provider, note.provider_action, note.provider_status) == (provider, "refund", "pending")
    assert (await _row(world.db, key)).kind == CREDIT_NOTE

    # The provider is down: every attempt is a 503, retried with backoff; nothing is refunded.
    fake.down = True
    for _ in range(3):
        clock += timedelta(hours=2)
        assert await _dispatch(world, clock, {CREDIT_NOTE}) == {"sent": 0, "retry": 1, "dead": 0}
    row = await _row(world.db, key)
    assert (row.status, row.attempts) == ("pending", 3) and "503" in row.last_error
    assert _refunds(world, provider, invoice) == []
    fake.down = False

    # It is back. A worker sends the refund; the provider makes it, and the worker is killed before
    # it hears the answer (so before the row is marked sent).
    fake.stall(*REFUND_PATH[provider])
    with world.log.open("w") as log:
        worker = subprocess.Popen(  # noqa: ASYNC220 (killed below, never awaited)
            [str(BPOCTL), "worker"], env=world.env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            stalled = fake.stalled.wait(120)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            fake.release.set()
    assert stalled, world.log.read_text()[-3000:]
    made = _refunds(world, provider, invoice)
    assert len(made) == 1 and made[0]["amount"] == 12000
    assert (await _row(world.db, key)).status == "pending"
    assert (await _note(world.db, note.id)).provider_status == "pending"

    # The next dispatch sends the same key: the provider's idempotency gives back the refund it made.
    for _ in range(10):  # PostgreSQL may hold the dead worker's row lock for a moment (skip locked)
        clock += timedelta(hours=2)
        if (await _dispatch(world, clock, {CREDIT_NOTE}))["sent"]:
            break
    assert (await _row(world.db, key)).status == "sent"
    made = _refunds(world, provider, invoice)
    assert len(made) == 1
    stored = await _note(world.db, note.id)
    assert (stored.provider_status, stored.provider_refund_id) == ("refunded", made[0]["id"])
    if provider == "stripe":
        (cn,) = world.stripe.credit_notes.values()
        assert stored.provider_credit_note_id == cn["id"] and cn["metadata"]["credit_note_id"] == str(note.id)
        assert cn["total"] == 12000 and cn["refunds"][0]["refund"] == made[0]["id"]
    else:
        (order,) = world.polar.orders
        assert order["refunded_amount"] == 12000 and order["status"] == "partially_refunded"

    # Reconcile: nothing differs; then an amount changed at the provider is named, exit code 1.
    assert await reconcile(world.db, world.config) == []
    assert await world.reconcile_command("--period", "2026-10") == (0, ["0 differences"])
    if provider == "stripe":
        cn["total"] = 11900
    else:
        made[0]["amount"] = 11900
    assert await world.reconcile_command() == (
        1,
        [
            f"{provider} credit_note {note.number}: amount: local 120.00 EUR, {provider} 119.00 EUR",
            "1 difference",
        ],
    )


async def test_reconcile_names_records_missing_on_either_side_and_status(world):
    clock = datetime.now(UTC) - timedelta(days=2)
    stripe_invoice = await _sent_and_paid(world, "stripe", clock)
    polar_invoice = await _invoice(world.db, world.settings, world.keyring, "polar", clock)
    assert (await _dispatch(world, clock, {SEND}))["sent"] == 1
    assert await reconcile(world.db, world.config) == []
    # A local record deleted, one paid at the provider only, one note still in the outbox.
    async with world.db.control_transaction() as session:
        await session.execute(sa.delete(InvoiceLineRow).where(InvoiceLineRow.invoice_id == stripe_invoice.id))
        await session.execute(sa.delete(Invoice).where(Invoice.id == stripe_invoice.id))
        polar_invoice = await session.get_one(Invoice, polar_invoice.id)
        world.polar.pay(polar_invoice.provider_invoice_id)
    differences = [str(d) for d in await reconcile(world.db, world.config)]
    assert differences == [
        f"polar invoice {polar_invoice.number}: status: local finalized, polar paid",
        f"stripe invoice {stripe_invoice.provider_invoice_id}: missing locally (100000 minor units, paid, "
        f"invoice_id {stripe_invoice.id})",
    ]
    async with world.db.control_transaction() as session:
        paid = await session.get_one(Invoice, polar_invoice.id)
        await payments.mark_paid(session, ACTOR, paid, now=clock, source="t")
        note = await service.issue_credit_note(
            session, ACTOR, polar_invoice.id, {"amount": "1", "reason": "x"}, now=clock
        )
    differences = [str(d) for d in await reconcile(world.db, world.config, period="2026-10")]
    assert f"polar credit_note {note.number}: not at polar yet (its refund waits in the outbox)" in differences
    assert [str(d) for d in await reconcile(world.db, world.config, period="2026-09")] == [differences[-1]]


@pytest.mark.parametrize("provider", ["stripe", "polar"])
async def test_a_credit_note_on_an_open_invoice_lowers_what_is_due(world, provider):
    clock = datetime.now(UTC) - timedelta(days=2)
    invoice = await _invoice(world.db, world.settings, world.keyring, provider, clock)
    async with world.db.control_transaction() as session:
        # Issued before the invoice has even reached the provider: the row waits for it.
        note = await service.issue_credit_note(
            session, ACTOR, invoice.id, {"amount": "250.00", "reason": "Goodwill"}, now=clock
        )
    assert note.provider_action == "reduce"
    assert await _dispatch(world, clock, {SEND, CREDIT_NOTE}) == {"sent": 2, "retry": 0, "dead": 0}
    stored = await _note(world.db, note.id)
    async with world.db.control_session() as session:
        invoice = await session.get_one(Invoice, invoice.id)
    if provider == "stripe":
        (cn,) = world.stripe.credit_notes.values()
        assert (stored.provider_status, stored.provider_credit_note_id, stored.provider_refund_id) == (
            "reduced", cn["id"], None
        )  # fmt: skip
        assert world.stripe.invoices[invoice.provider_invoice_id]["amount_due"] == 75000 and not world.stripe.refunds
        assert await reconcile(world.db, world.config) == []
        return
    # Polar cannot lower an open checkout: the note waits for the payment, then becomes a refund.
    assert stored.provider_status == "awaiting_payment" and world.polar.refunds == []
    assert await reconcile(world.db, world.config) == []
    world.polar.pay(invoice.provider_invoice_id)
    async with world.db.control_transaction() as session:
        assert await follow_up_awaiting(session, now=clock) == 0  # not paid here yet
        paid = await session.get_one(Invoice, invoice.id)
        assert await payments.mark_paid(session, ACTOR, paid, now=clock, source="test")
    async with world.db.control_transaction() as session:
        assert await follow_up_awaiting(session, now=clock) == 1
    async with world.db.control_transaction() as session:
        assert await follow_up_awaiting(session, now=clock) == 0  # once
    assert await _dispatch(world, clock, {CREDIT_NOTE}) == {"sent": 1, "retry": 0, "dead": 0}
    (refund,) = world.polar.refunds
    stored = await _note(world.db, note.id)
    assert (stored.provider_status, stored.provider_refund_id, refund["amount"]) == ("refunded", refund["id"], 25000)
    assert await reconcile(world.db, world.config) == []
