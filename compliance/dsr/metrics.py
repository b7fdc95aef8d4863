"""Data-subject requests for ``/metrics``: open requests due within 7 days, and those past due."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from compliance.dsr.models import SubjectRequest
from control_plane.database import Databases, utcnow
from control_plane.metrics import Reading

SOON = timedelta(days=7)


async def dsr_deadlines(db: Databases) -> list[Reading]:
    today = utcnow().date()
    deadline = sa.func.coalesce(SubjectRequest.extended_due_on, SubjectRequest.due_on)
    open_ = SubjectRequest.status == "open"
    async with db.control_session() as session:
        soon = await session.scalar(sa.select(sa.func.count()).where(open_, deadline <= today + SOON)) or 0
        late = await session.scalar(sa.select(sa.func.count()).where(open_, deadline < today)) or 0
    return [
        Reading("bpo_dsr_due_within_7_days", "Open data-subject requests due within 7 days (overdue ones too)", soon),
        Reading("bpo_dsr_overdue", "Open data-subject requests past their deadline", late),
    ]
