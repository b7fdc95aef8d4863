"""The counts an invoice rates: metering's `period_counts` with the contract's response targets and
the SLA layer's excluded days (they leave the SLA measurement, never the billed usage). The SLA
report reads the same function with the same arguments, so an invoice's credits are the report's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import batch_counts, counts
from sla.models import ExcludedWindow
from sla.terms import SlaTerms
from sla.windows import excluded_days, skipped_days
from tenants.models import Tenant
from tenants.periods import Period


def response_targets(terms: Mapping[str, Any]) -> tuple[Any, ...]:
    """The response targets the contract ``terms`` hold (the SLA layer reads them)."""
    return SlaTerms.from_terms(terms).response_targets


async def invoice_counts(session: AsyncSession, tenant: Tenant, period: Period, terms: Mapping[str, Any]) -> Any:
    """The `PeriodCounts` of the tenant's period under the contract ``terms``."""
    skip = await skipped_days(session, tenant.id, period)
    targets = response_targets(terms)
    return await counts.period_counts(session, tenant.id, period, targets, skip)


async def many_skipped_days(
    session: AsyncSession, tenant_ids: list[uuid.UUID], period: Period
) -> dict[uuid.UUID, frozenset[date]]:
    """`skipped_days` of many tenants' same period in one statement (tenants without a window are left out)."""
    stmt = sa.select(ExcludedWindow).where(
        ExcludedWindow.tenant_id.in_(tenant_ids),
        ExcludedWindow.withdrawn_at.is_(None),
        ExcludedWindow.first_day < period.end,
        ExcludedWindow.last_day >= period.first,
    )
    windows: dict[uuid.UUID, list[ExcludedWindow]] = {}
    for w in (await session.scalars(stmt)).all():
        windows.setdefault(w.tenant_id, []).append(w)
    return {tenant_id: excluded_days(ws, period) for tenant_id, ws in windows.items()}


async def many_period_counts(
    session: AsyncSession, period: Period, targets_of: Mapping[uuid.UUID, Sequence[Any]]
) -> dict[uuid.UUID, Any]:
    """`invoice_counts` of many tenants with no skipped days, the contract's response targets given
    per tenant (metering's `many_period_counts`: a few statements for all of them)."""
    return await batch_counts.many_period_counts(session, period, targets_of)
