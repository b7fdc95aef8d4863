"""E-mail: queued in the caller's transaction as outbox rows of kind ``mail`` (one per recipient),
rendered and sent after commit by the mail handler.

`queue_mail` is the only way any domain sends a message: ``template`` names a pair of Jinja2
templates ``mail/<template>.txt`` and ``mail/<template>.html`` found in any domain's templates
folder, rendered with ``context`` (JSON values only) in ``locale``; ``attachments`` are references
``{"kind": ..., "ref": ...}`` that a domain resolves when the message is sent
(``Domain.mail_attachments``), so the outbox row never holds a document.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import jinja2
import sqlalchemy as sa
import structlog
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import plugins
from control_plane.database import utcnow
from control_plane.models import MailMessage, OutboxMessage
from control_plane.outbox import Handler, enqueue
from control_plane.periodic import JobContext

MAIL_KIND = "mail"
log = structlog.get_logger("bpo.mail")


async def queue_mail(
    session: AsyncSession,
    *,
    to: Sequence[str],
    template: str,
    context: dict[str, Any],
    key: str,
    locale: str = "en",
    attachments: Sequence[dict[str, str]] = (),
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> list[OutboxMessage]:
    """One outbox row per distinct recipient, each with a stable idempotency key derived from ``key``
    (the fact the message reports, e.g. ``invoice.finalized:<id>``): queuing it again adds nothing."""
    rows = []
    for address in dict.fromkeys(a.strip().lower() for a in to if a and a.strip()):
        digest = hashlib.sha256(f"{key}|{address}".encode()).hexdigest()[:32]
        payload = {
            "to": address,
            "template": template,
            "context": context,
            "locale": locale,
            "attachments": [dict(a) for a in attachments],
            "tenant_id": tenant_id,
            "key": key,
        }
        rows.append(await enqueue(session, kind=MAIL_KIND, payload=payload, idempotency_key=f"mail:{digest}", now=now))
    return rows


# --- rendering -----------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent


def template_dirs() -> list[Path]:
    """The kernel's templates, then every ``templates`` folder of every domain package (the app's
    pages use the same ones; a domain's sub-packages keep theirs beside their code)."""
    dirs = [ROOT / "control_plane" / "templates"]
    for name in plugins.DOMAIN_PLUGINS:
        package = ROOT / name.split(".")[0]
        dirs.extend(sorted(p for p in package.glob("**/templates") if p.is_dir()))
    return dirs


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def babel_locale(locale: str | None) -> Locale:
    try:
        return Locale.parse((locale or "en").replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def _candidates(template: str, locale: Locale, suffix: str) -> list[str]:
    """``mail/<template>.<lang>_<TERRITORY>.txt``, ``mail/<template>.<lang>.txt``, ``mail/<template>.txt``."""
    tags = [str(locale), locale.language] if locale.territory else [locale.language]
    return [*(f"mail/{template}.{tag}.{suffix}" for tag in dict.fromkeys(tags)), f"mail/{template}.{suffix}"]


def render(template: str, context: dict[str, Any], locale: str | None) -> tuple[str, str, str]:
    """``(subject, text, html)``: the text template sets ``subject`` (``{% set subject %}…{% endset %}``);
    filters ``money(amount, currency)``, ``day`` (an ISO date) and ``moment`` (an ISO time, UTC) format for
    the locale with babel; a per-locale variant of a template wins over the plain one."""
    loc = babel_locale(locale)
    env = _environment()
    values = {
        **context,
        "locale": str(loc),
        "money": lambda amount, currency: format_currency(Decimal(str(amount)), currency, locale=loc),
        "day": lambda value: format_date(date.fromisoformat(str(value)[:10]), "long", locale=loc),
        "moment": lambda value: (
            format_datetime(datetime.fromisoformat(str(value)), "medium", tzinfo=UTC, locale=loc) + " UTC"
        ),
    }
    module = env.select_template(_candidates(template, loc, "txt")).make_module(values)
    subject = " ".join(line.strip() for line in str(getattr(module, "subject", "")).splitlines() if line.strip())
    if not subject:
        raise ValueError(f"mail/{template}.txt sets no subject")
    html = env.select_template(_candidates(template, loc, "html")).render(values | {"subject": subject})
    return subject, str(module).strip() + "\n", html


# --- sending ---------------------------------------------------------------------------------------
def message_id(idempotency_key: str, mail_from: str) -> str:
    """Stable per outbox row: a resend after a crash carries the same id, so receivers can drop it."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def smtp_options(url: str) -> dict[str, Any]:
    """aiosmtplib's keywords for ``smtp://``, ``smtp+starttls://`` and ``smtps://`` URLs (user:pass@ is auth)."""
    parts = urlsplit(url)
    tls = parts.scheme == "smtps"
    return {
        "hostname": parts.hostname,
        "port": parts.port or (465 if tls else 587 if parts.scheme == "smtp+starttls" else 25),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_tls": tls,
        "start_tls": parts.scheme == "smtp+starttls",
        "timeout": 60,
    }


def build_message(row: MailMessage, mail_from: str, files: Sequence[tuple[str, str, bytes]]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mail_from, row.to_address, row.subject
    msg["Message-ID"] = row.message_id
    msg["Date"] = formatdate(row.created_at.timestamp(), usegmt=True)
    msg.set_content(row.text)
    msg.add_alternative(row.html, subtype="html")
    for filename, content_type, data in files:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return msg


def mail_handler(ctx: JobContext) -> Handler:
    """The outbox handler of kind ``mail`` (declared in ``plugins.KERNEL_OUTBOX_HANDLERS``).

    Once-only delivery: the message row is claimed as ``sending`` in a committed transaction before the
    SMTP conversation and marked ``sent`` in another right after the server accepted it. A row found
    ``sent`` is never sent again (the outbox row may be due again after a crash). A row found ``sending``
    means a worker died during the conversation: the message goes again with the same Message-ID. A
    server that never answered the final dot (the usual case: it dropped the message with the
    connection) delivers it once; one that had accepted it in the instant before the crash delivers a
    second copy that receivers deduplicating on Message-ID drop (README, E-mail)."""
    settings, db = ctx.settings, ctx.db

    async def handle(payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        async with db.control_transaction() as session:
            row = await session.scalar(sa.select(MailMessage).where(MailMessage.idempotency_key == idempotency_key))
            if row is None:
                subject, text, html = render(payload["template"], payload.get("context") or {}, payload.get("locale"))
                row = MailMessage(
                    idempotency_key=idempotency_key,
                    message_id=message_id(idempotency_key, settings.mail_from),
                    to_address=payload["to"],
                    subject=subject[:500],
                    text=text,
                    html=html,
                    template=payload["template"],
                    locale=payload.get("locale") or "en",
                    tenant_id=uuid.UUID(payload["tenant_id"]) if payload.get("tenant_id") else None,
                    attachments=list(payload.get("attachments") or []),
                    status="kept",
                    attempts=0,
                    created_at=utcnow(),
                )
                session.add(row)
                await session.flush()
            if row.status == "sent":
                return {"status": "sent", "message_id": row.message_id}
            if not settings.smtp_url:  # not configured: rendered and kept for the staff page /mail
                row.status = "kept"
                return {"status": "kept", "message_id": row.message_id}
            files = [await plugins.mail_attachment(a["kind"])(db, a["ref"]) for a in row.attachments]
            if row.status == "sending":
                log.warning("mail.resend_after_interrupted_send", id=row.id, message_id=row.message_id)
            row.status, row.attempts = "sending", row.attempts + 1
            message = build_message(row, settings.mail_from, files)
            row_id = row.id
        # committed: the claim. Now the SMTP conversation.
        try:
            await aiosmtplib.send(message, sender=parseaddr(settings.mail_from)[1], **smtp_options(settings.smtp_url))
        except Exception as exc:
            async with db.control_transaction() as session:
                failed = await session.get_one(MailMessage, row_id)
                failed.status, failed.last_error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
            raise
        async with db.control_transaction() as session:
            sent = await session.get_one(MailMessage, row_id)
            sent.status, sent.sent_at, sent.last_error = "sent", utcnow(), None
        return {"status": "sent", "message_id": message["Message-ID"]}

    return handle
