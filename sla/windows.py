"""Excluded windows: whole local days taken out of the SLA measurement (force majeure, client-caused
outages), recorded by an account manager with a reason. They change what the SLAs measure, never
what is billed: the days they cover are handed to `billing.metering.counts.period_counts` as
``skip``, which keeps them in the usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sla.models import ExcludedWindow
from tenants.periods import Period


def excluded_days(windows: Iterable[Any], period: Period) -> frozenset[date]:
    """The period's days covered by the windows (objects with `first_day` and `last_day`, inclusive)."""
    days: set[date] = set()
    for w in windows:
        day = max(w.first_day, period.first)
        last = min(w.last_day, period.end - timedelta(days=1))
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return frozenset(days)


async def recorded_windows(session: AsyncSession, tenant_id: UUID, period: Period) -> list[ExcludedWindow]:
    """Excluded windows in force (not withdrawn) that touch the period."""
    stmt = (
        sa.select(ExcludedWindow)
        .where(
            ExcludedWindow.tenant_id == tenant_id,
            ExcludedWindow.withdrawn_at.is_(None),
            ExcludedWindow.first_day < period.end,
            ExcludedWindow.last_day >= period.first,
        )
        .order_by(ExcludedWindow.first_day)
    )
    return list((await session.scalars(stmt)).all())


async def skipped_days(session: AsyncSession, tenant_id: UUID, period: Period) -> frozenset[date]:
    """The period's days that the tenant's recorded windows take out of the measurement."""
    return excluded_days(await recorded_windows(session, tenant_id, period), period)


def window_json(w: ExcludedWindow) -> dict[str, Any]:
    return {
        "id": str(w.id),
        "first_day": w.first_day.isoformat(),
        "last_day": w.last_day.isoformat(),
        "kind": w.kind,
        "reason": w.reason,
        "created_at": w.created_at.isoformat(),
        "created_by": w.created_by,
        "withdrawn_at": w.withdrawn_at.isoformat() if w.withdrawn_at else None,
    }
