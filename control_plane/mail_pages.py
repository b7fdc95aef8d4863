"""The staff page of e-mail: every message the outbox rendered (``/mail``), newest first, with its
status (kept when no SMTP server is configured, sending, sent, failed), and one message's text."""

from __future__ import annotations

import sqlalchemy as sa
from litestar import get
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import Principal, Role, policy
from control_plane.errors import NotFound
from control_plane.models import MailMessage
from control_plane.settings import Settings

MAIL_STAFF = (Role.platform_admin, Role.account_manager)
STAFF = policy(roles=MAIL_STAFF)
STATUSES = ("kept", "sending", "sent", "failed")


@get("/mail", opt=STAFF, include_in_schema=False)
async def mail_page(
    session: AsyncSession, principal: Principal, settings: Settings, status: str | None = None
) -> Template:
    stmt = sa.select(MailMessage).order_by(MailMessage.id.desc()).limit(200)
    if status in STATUSES:
        stmt = stmt.where(MailMessage.status == status)
    rows = (await session.scalars(stmt)).all()
    return Template(
        "mail_list.html",
        context={
            "principal": principal,
            "rows": rows,
            "status": status if status in STATUSES else None,
            "statuses": STATUSES,
            "configured": bool(settings.smtp_url),
        },
    )


@get("/mail/{message_id:str}", opt=STAFF, include_in_schema=False)
async def mail_message_page(session: AsyncSession, principal: Principal, message_id: str) -> Template:
    row = await session.get(MailMessage, int(message_id)) if message_id.isdigit() and len(message_id) < 19 else None
    if row is None:
        raise NotFound(f"no message {message_id}")
    return Template("mail_message.html", context={"principal": principal, "m": row})


ROUTES = [mail_page, mail_message_page]
