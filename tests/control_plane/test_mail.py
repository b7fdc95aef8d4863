"""E-mail (control_plane.mail): rendering in the recipient's locale, the SMTP URL, invitations and
resets mailed through a real SMTP server on loopback, kept messages when none is configured (and the
staff page that shows them), and a failed delivery recorded and retried."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult

from control_plane.database import utcnow
from control_plane.mail import message_id, queue_mail, render, smtp_options
from control_plane.models import MailMessage, OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from control_plane.settings import load_settings
from tests.fakes.smtp_server import FakeSMTP, self_signed, smtp_server_fixture  # noqa: F401

INVOICE = {
    "legal_name": "Acme GmbH", "number": "BPO-2026-000042", "period": "2026-10", "total": "1234.50",
    "currency": "EUR", "issue_date": "2026-11-03", "due_date": "2026-12-03", "tenant_name": "Acme",
}  # fmt: skip


def test_the_invoice_mail_speaks_the_profile_locale():
    subject, text, html = render("invoice_finalized", INVOICE, "de")
    assert subject == "Rechnung BPO-2026-000042 für 2026-10: 1.234,50\xa0€"
    assert "fällig am 3. Dezember 2026" in text
    assert "<strong>BPO-2026-000042</strong>" in html and html.startswith("<!doctype html>")
    assert render("invoice_finalized", INVOICE, "de-AT")[0].startswith("Rechnung")  # the language's variant
    subject, text, _ = render("invoice_finalized", INVOICE, "en")
    assert subject == "Invoice BPO-2026-000042 for 2026-10: €1,234.50"
    assert "due December 3, 2026" in text
    assert render("invoice_finalized", INVOICE, "ja")[0].startswith("Invoice")  # no Japanese variant: English words
    assert render("invoice_finalized", INVOICE, "xx-nonsense")[0].startswith("Invoice")


def test_html_escapes_what_text_keeps():
    _, text, html = render("invoice_finalized", INVOICE | {"legal_name": "A <b> & Co"}, "en")
    assert "Hello A <b> & Co," in text
    assert "Hello A &lt;b&gt; &amp; Co," in html


def test_smtp_urls():
    assert smtp_options("smtp://127.0.0.1:2525") | {"timeout": 0} == {
        "hostname": "127.0.0.1", "port": 2525, "username": None, "password": None,
        "use_tls": False, "start_tls": False, "timeout": 0,
    }  # fmt: skip
    starttls = smtp_options("smtp+starttls://mailer%40bpo.example:p%3Ass@smtp.example.com")
    assert (starttls["port"], starttls["start_tls"], starttls["use_tls"]) == (587, True, False)
    assert (starttls["username"], starttls["password"]) == ("mailer@bpo.example", "p:ss")
    tls = smtp_options("smtps://u:p@smtp.example.com")
    assert (tls["port"], tls["use_tls"], tls["start_tls"]) == (465, True, False)
    assert load_settings({"BPO_SMTP_URL": "smtps://u:p@smtp.example.com"}).smtp_url == "smtps://u:p@smtp.example.com"
    with pytest.raises(ValueError, match="BPO_SMTP_URL"):
        load_settings({"BPO_SMTP_URL": "http://smtp.example.com"})
    assert load_settings({}).smtp_url is None


def test_message_ids_are_stable_per_outbox_key():
    assert message_id("mail:abc", "Billing <billing@bpo.example>") == message_id("mail:abc", "billing@bpo.example")
    assert message_id("mail:abc", "x@bpo.example").endswith("@bpo.example>")
    assert message_id("mail:abc", "x@bpo.example") != message_id("mail:abd", "x@bpo.example")


async def _token(issue_token, role: str, tenant: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token(role, tenant)}"}


async def test_invitations_and_resets_are_mailed_with_their_link(
    settings, dbs, keyring, client, issue_token, smtp_server: FakeSMTP
):
    admin = await _token(issue_token, "platform_admin")
    email = f"am-{uuid.uuid4().hex[:8]}@example.com"
    resp = await client.post("/api/v1/users", json={"email": email, "role": "account_manager"}, headers=admin)
    assert resp.status_code == 201, resp.text
    invitation = resp.json()["invitation_url"]
    reset = await client.post(f"/api/v1/users/{resp.json()['id']}/password-reset", headers=admin)
    assert reset.status_code == 201, reset.text

    ctx = JobContext(replace(settings, smtp_url=smtp_server.url), dbs, keyring)
    await dispatch_due(dbs, outbox_handlers(ctx), kinds={"mail"})
    reset_mail, invited = sorted(smtp_server.to(email), key=lambda m: m["Subject"])
    assert invited["Subject"] == "You are invited to the BPO Control Plane"
    assert invitation in invited.get_body(("plain",)).get_content()
    assert f'href="{invitation}"' in invited.get_body(("html",)).get_content()
    assert reset_mail["Subject"] == "Reset your BPO Control Plane password"
    assert reset.json()["reset_url"] in reset_mail.get_body(("plain",)).get_content()
    assert invited["Message-ID"] != reset_mail["Message-ID"]


async def test_without_smtp_messages_are_kept_and_shown_to_staff(
    settings, dbs, keyring, client, issue_token, make_tenant
):
    assert settings.smtp_url is None
    to = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    async with dbs.control_transaction() as session:
        [row] = await queue_mail(
            session, to=[to, to.upper()], template="invoice_finalized", context=INVOICE, key=f"test:{to}", locale="de"
        )
        key = row.idempotency_key
    counts = await dispatch_due(dbs, outbox_handlers(JobContext(settings, dbs, keyring)), kinds={"mail"})
    assert counts["retry"] == 0 and counts["dead"] == 0
    async with dbs.control_session() as session:
        kept = await session.scalar(sa.select(MailMessage).where(MailMessage.idempotency_key == key))
        outbox = await session.scalar(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    assert (kept.status, kept.to_address, kept.sent_at) == ("kept", to, None)
    assert (outbox.status, outbox.result["status"]) == ("sent", "kept")

    manager = await _token(issue_token, "account_manager") | {"accept": "text/html"}
    page = await client.get("/mail?status=kept", headers=manager)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert to in page.text and "Rechnung BPO-2026-000042" in page.text
    detail = await client.get(f"/mail/{kept.id}", headers=manager)
    assert detail.status_code == 200 and "fällig am 3. Dezember 2026" in detail.text
    missing = await client.get("/mail/999999999", headers=manager)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    tenant = await make_tenant()
    merchant = await _token(issue_token, "merchant_admin", tenant["slug"]) | {"accept": "text/html"}
    assert (await client.get("/mail", headers=merchant)).status_code == 403


async def test_a_refused_delivery_is_recorded_and_retried(settings, dbs, keyring, smtp_server: FakeSMTP):
    to = f"ap-{uuid.uuid4().hex[:8]}@example.com"
    async with dbs.control_transaction() as session:
        [row] = await queue_mail(session, to=[to], template="invoice_finalized", context=INVOICE, key=f"t:{to}")
        key = row.idempotency_key
    down = JobContext(replace(settings, smtp_url=f"smtp://127.0.0.1:{FakeSMTP().port}"), dbs, keyring)  # nobody listens
    counts = await dispatch_due(dbs, outbox_handlers(down), kinds={"mail"})
    assert counts["retry"] >= 1
    async with dbs.control_session() as session:
        failed = await session.scalar(sa.select(MailMessage).where(MailMessage.idempotency_key == key))
    assert failed.status == "failed" and failed.last_error and failed.attempts == 1

    up = JobContext(replace(settings, smtp_url=smtp_server.url), dbs, keyring)
    await dispatch_due(dbs, outbox_handlers(up), kinds={"mail"}, now=utcnow() + timedelta(hours=2))
    [message] = smtp_server.to(to)
    assert message["Message-ID"] == failed.message_id
    async with dbs.control_session() as session:
        sent = await session.scalar(sa.select(MailMessage).where(MailMessage.idempotency_key == key))
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
async def test_starttls_and_tls_with_login(settings, dbs, keyring, tmp_path, monkeypatch, scheme):
    """The URL's scheme picks STARTTLS or TLS; its user and password log in; the server's certificate
    is checked against the trusted ones (here: a self-signed one the client is told to trust)."""
    cert_file, context = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    logins: list[tuple[str, bytes]] = []

    def authenticator(_server, _session, _envelope, mechanism, data) -> AuthResult:
        logins.append((data.login.decode(), data.password))
        return AuthResult(success=data.login == b"mailer@bpo.example" and data.password == b"p:ss")

    # aiosmtpd offers AUTH only after its own STARTTLS; on a TLS socket (smtps) it must be told it is safe.
    tls = (
        {"tls_context": context, "require_starttls": True}
        if scheme == "smtp+starttls"
        else {"ssl_context": context, "auth_require_tls": False}
    )
    server = FakeSMTP(authenticator=authenticator, auth_required=True, **tls).start()
    try:
        to = f"tls-{uuid.uuid4().hex[:8]}@example.com"
        async with dbs.control_transaction() as session:
            await queue_mail(session, to=[to], template="invoice_finalized", context=INVOICE, key=f"tls:{to}")
        url = f"{scheme}://mailer%40bpo.example:p%3Ass@127.0.0.1:{server.port}"
        ctx = JobContext(replace(settings, smtp_url=url), dbs, keyring)
        assert (await dispatch_due(dbs, outbox_handlers(ctx), kinds={"mail"}))["sent"] >= 1
        assert len(server.to(to)) == 1
        assert logins[-1] == ("mailer@bpo.example", b"p:ss")
    finally:
        server.stop()
