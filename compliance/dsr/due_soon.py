"""``subject_request.due_soon``: published by a periodic job for each open data-subject request whose
deadline is at most ``DUE_SOON_DAYS`` days away (in the tenant's zone). The event key names the request
and its deadline, so re-running the job publishes nothing new (subscribers deduplicate on the key) and
an extended deadline is announced once more. The data holds no subject detail."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.dsr.deadlines import DUE_SOON_DAYS
from compliance.dsr.models import SubjectRequest
from control_plane.database import utcnow
from control_plane.events import publish
from tenants.models import Tenant


async def publish_due_soon(session: AsyncSession, *, now: datetime | None = None) -> int:
    now = now or utcnow()
    horizon = (now + timedelta(days=DUE_SOON_DAYS + 1)).date()  # a coarse filter; the exact rule below
    deadline = sa.func.coalesce(SubjectRequest.extended_due_on, SubjectRequest.due_on)
    stmt = (
        sa.select(SubjectRequest, Tenant)
        .join(Tenant, Tenant.id == SubjectRequest.tenant_id)
        .where(SubjectRequest.status == "open", deadline <= horizon)
    )
    published = 0
    for request, tenant in (await session.execute(stmt)).all():
        today = now.astimezone(ZoneInfo(tenant.timezone)).date()
        due = request.deadline
        if not 0 <= (due - today).days <= DUE_SOON_DAYS:
            continue
        data = {
            "tenant": tenant.slug, "request_id": str(request.id), "number": request.number, "kind": request.kind,
            "regime": request.regime, "received_on": request.received_on.isoformat(), "due_on": due.isoformat(),
            "days_left": (due - today).days,
        }  # fmt: skip
        key = f"subject_request.due_soon:{request.id}:{due.isoformat()}"
        await publish(session, type="subject_request.due_soon", tenant_id=tenant.id, key=key, data=data, now=now)
        published += 1
    return published
