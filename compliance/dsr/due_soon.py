"""``subject_request.due_soon``: published by a periodic job for each open data-subject request whose
deadline is at most ``DUE_SOON_DAYS`` days away (in the tenant's zone). The event key names the request
and its deadline, so re-running the job publishes nothing new (subscribers deduplicate on the key) and
an extended deadline is announced once more. The data holds no subject detail."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.dsr.deadlines import DUE_SOON_DAYS
from compliance.dsr.models import SubjectRequest
from control_plane.database import utcnow
from control_plane.events import publish
from tenants.models import Tenant


async def requests_due_soon(
    session: AsyncSession, *, now: datetime, today: date | None = None
) -> list[tuple[SubjectRequest, Tenant, date, int]]:
    """Open requests whose deadline is 0 to ``DUE_SOON_DAYS`` days away, as ``(request, tenant, deadline,
    days left)``: counted from ``today`` when given, else from each tenant's own date at ``now``. The one
    rule behind the ``subject_request.due_soon`` event and the compliance officers' reminder e-mails."""
    first = (today or now.date()) - timedelta(days=1)  # a coarse filter (zones differ by a day at most)
    deadline = sa.func.coalesce(SubjectRequest.extended_due_on, SubjectRequest.due_on)
    stmt = (
        sa.select(SubjectRequest, Tenant)
        .join(Tenant, Tenant.id == SubjectRequest.tenant_id)
        .where(SubjectRequest.status == "open", deadline >= first, deadline <= first + timedelta(DUE_SOON_DAYS + 2))
        .order_by(SubjectRequest.id)
    )
    out = []
    for request, tenant in (await session.execute(stmt)).all():
        local = today or now.astimezone(ZoneInfo(tenant.timezone)).date()
        left = (request.deadline - local).days
        if 0 <= left <= DUE_SOON_DAYS:
            out.append((request, tenant, request.deadline, left))
    return out


async def publish_due_soon(session: AsyncSession, *, now: datetime | None = None) -> int:
    now = now or utcnow()
    due_soon = await requests_due_soon(session, now=now)
    for request, tenant, due, left in due_soon:
        data = {
            "tenant": tenant.slug, "request_id": str(request.id), "number": request.number, "kind": request.kind,
            "regime": request.regime, "received_on": request.received_on.isoformat(), "due_on": due.isoformat(),
            "days_left": left,
        }  # fmt: skip
        key = f"subject_request.due_soon:{request.id}:{due.isoformat()}"
        await publish(session, type="subject_request.due_soon", tenant_id=tenant.id, key=key, data=data, now=now)
    return len(due_soon)
