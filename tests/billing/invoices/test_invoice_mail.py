"""The invoice e-mail through a real SMTP server on loopback (aiosmtpd, tests/fakes/smtp_server.py):
one message per billing address with the PDF attached, and none delivered twice when the worker is
killed in the middle of the SMTP transaction and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from billing.invoices import service
from compliance.service import SystemActor
from control_plane.models import MailMessage, OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from tests.billing.conftest import UNTAXED_PROFILE, give_profile
from tests.billing.invoices.conftest import NOW, contact, ingest
from tests.fakes.smtp_server import FakeSMTP, attachments, smtp_server_fixture  # noqa: F401

ACTOR = SystemActor("tests", "system")
ROOT = Path(__file__).resolve().parents[3]
FROM = "Billing <billing@bpo.test>"


async def settle_pending_mail(settings, dbs, keyring) -> None:
    """Earlier tests' messages are kept (no SMTP): only this test's reach the fake server."""
    ctx = JobContext(replace(settings, smtp_url=None), dbs, keyring)
    while sum((await dispatch_due(dbs, outbox_handlers(ctx), kinds={"mail"})).values()):
        pass


async def finalized_invoice(dbs, client, staff_headers, ingest_tenant, emails: list[str], locale: str = "en"):
    tenant = await ingest_tenant()
    await give_profile(
        client, staff_headers, tenant.slug, UNTAXED_PROFILE | {"billing_emails": emails, "locale": locale}
    )
    await ingest(client, tenant, [contact(opened=datetime(2026, 10, 14, 9, 0, tzinfo=UTC))])
    async with dbs.control_transaction() as session:
        draft, _ = await service.draft_invoice(session, ACTOR, tenant.slug, "2026-10", now=NOW)
        invoice = await service.finalize_invoice(session, ACTOR, draft.id, now=NOW)
        return invoice.id, invoice.number


def addresses() -> list[str]:
    token = uuid.uuid4().hex[:8]
    return [f"ap-{token}@merchant.example", f"controller-{token}@merchant.example"]


async def test_finalizing_mails_the_pdf_to_each_billing_address(
    settings, dbs, keyring, client, staff_headers, ingest_tenant, smtp_server: FakeSMTP
):
    await settle_pending_mail(settings, dbs, keyring)
    emails = addresses()
    _, number = await finalized_invoice(dbs, client, staff_headers, ingest_tenant, emails, locale="de")
    ctx = JobContext(replace(settings, smtp_url=smtp_server.url, mail_from=FROM), dbs, keyring)
    assert (await dispatch_due(dbs, outbox_handlers(ctx), kinds={"mail"}))["sent"] == 2

    for address in emails:
        [message] = smtp_server.to(address)
        assert message["Subject"].startswith(f"Rechnung {number} für 2026-10")
        assert message["From"] == FROM
        assert number in message.get_body(("plain",)).get_content()
        assert "fällig am" in message.get_body(("html",)).get_content()
        [(filename, content_type, data)] = attachments(message)
        assert (filename, content_type) == (f"{number}.pdf", "application/pdf")
        assert data.startswith(b"%PDF")
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(MailMessage).where(MailMessage.to_address.in_(emails)))).all()
    assert sorted(r.status for r in rows) == ["sent", "sent"]
    assert {r.message_id for r in rows} == {m["Message-ID"] for m in smtp_server.messages if m["To"] in emails}


def _worker(settings, smtp_url: str) -> subprocess.Popen:
    env = os.environ | {
        "BPO_DATA_DIR": str(settings.data_dir),
        "BPO_DATABASE_URL": settings.database.control_url,
        "BPO_CELL_URLS": ",".join(f"{r}={u}" for r, u in settings.database.cell_urls.items()),
        "BPO_SMTP_URL": smtp_url,
        "BPO_MAIL_FROM": FROM,
    }
    return subprocess.Popen([sys.executable, "-m", "tests.fakes.mail_worker"], env=env, cwd=ROOT)


async def test_a_worker_killed_mid_send_delivers_none_twice(
    settings, dbs, keyring, client, staff_headers, ingest_tenant, smtp_server: FakeSMTP
):
    """What is asserted: after kill -9 during DATA and a restart, the server holds exactly one message per
    address, counted raw (every accepted SMTP transaction) and by distinct Message-ID, and that id is the
    one the message row had before the crash; marking the outbox rows due again sends nothing more."""
    await settle_pending_mail(settings, dbs, keyring)
    emails = addresses()
    await finalized_invoice(dbs, client, staff_headers, ingest_tenant, emails)
    smtp_server.stall_for = emails[0]

    first = _worker(settings, smtp_server.url)
    try:
        assert await asyncio.to_thread(smtp_server.stalled.wait, 120), "the worker never reached DATA"
        async with dbs.control_session() as session:
            claimed = await session.scalar(sa.select(MailMessage).where(MailMessage.to_address == emails[0]))
        assert claimed is not None and claimed.status == "sending"  # the claim was committed before SMTP
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert smtp_server.to(emails[0]) == []
    smtp_server.release.set()

    second = _worker(settings, smtp_server.url)
    assert await asyncio.to_thread(second.wait) == 0

    for address in emails:
        raw = [content for rcpts, content in smtp_server.raw if address in rcpts]
        ids = {m["Message-ID"] for m in smtp_server.to(address)}
        assert len(raw) == 1, address
        assert len(ids) == 1, address
    [resent] = smtp_server.to(emails[0])
    assert resent["Message-ID"] == claimed.message_id
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(MailMessage).where(MailMessage.to_address.in_(emails)))).all()
        keys = [r.idempotency_key for r in rows]
    assert sorted(r.status for r in rows) == ["sent", "sent"]
    assert {r.to_address: r.attempts for r in rows}[emails[0]] == 2

    # A crash after the message row was marked sent but before the outbox row was: due again, sent never.
    async with dbs.control_transaction() as session:
        await session.execute(
            sa.update(OutboxMessage).where(OutboxMessage.idempotency_key.in_(keys)).values(status="pending")
        )
    ctx = JobContext(replace(settings, smtp_url=smtp_server.url, mail_from=FROM), dbs, keyring)
    await dispatch_due(dbs, outbox_handlers(ctx), kinds={"mail"}, now=NOW + timedelta(days=30))
    assert sum(1 for rcpts, _ in smtp_server.raw if set(rcpts) & set(emails)) == 2
