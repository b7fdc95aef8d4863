"""Data-subject request deadlines approaching: once per request and deadline, when at most
``DUE_SOON_DAYS`` days are left, every active compliance officer gets an e-mail (a periodic job).
An extended deadline is a new deadline: it is reminded of again."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.dsr.due_soon import requests_due_soon
from control_plane.database import utcnow
from control_plane.mail import queue_mail
from control_plane.models import User

OFFICER_ROLE = "compliance_officer"


async def compliance_officers(session: AsyncSession) -> list[str]:
    stmt = sa.select(User.email).where(User.role == OFFICER_ROLE, User.active.is_(True)).order_by(User.email)
    return list((await session.scalars(stmt)).all())


async def queue_deadline_reminders(
    session: AsyncSession, *, public_url: str, today: date | None = None, now: datetime | None = None
) -> int:
    """Queue the reminders of open requests due within ``DUE_SOON_DAYS`` days (not yet past); returns how
    many requests are reminded of (again on every run: the outbox keys make the second time add nothing)."""
    now = now or utcnow()
    officers = await compliance_officers(session)
    if not officers:
        return 0
    due_soon = await requests_due_soon(session, now=now, today=today)
    for request, tenant, due, left in due_soon:
        await queue_mail(
            session,
            to=officers,
            template="subject_request_due_soon",
            context={
                "tenant_name": tenant.name,
                "slug": tenant.slug,
                "number": request.number,
                "kind": request.kind,
                "regime": request.regime,
                "due_on": due.isoformat(),
                "days_left": left,
                "url": f"{public_url}/tenants/{tenant.slug}/privacy/requests/{request.id}",
            },
            key=f"subject_request.due_soon:{request.id}:{due.isoformat()}",
            tenant_id=str(tenant.id),
            now=now,
        )
    return len(due_soon)
