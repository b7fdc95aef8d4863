"""A tenant's period as `PeriodCounts`, read from the control rollups (never from contacts).

Billing and the SLA report both call `period_counts`, so an invoice's credits and the report agree:

    counts = await period_counts(session, tenant, "2026-10", terms)
    rated = rate_counts(terms, counts)   # usage over every day, SLA outcomes over measured days

- `tenant` is the `tenants.models.Tenant` (its `id` and IANA `timezone`); `period` is "YYYY-MM", a
  date in the month, or a `Period`; `terms` is the contract version's terms dict (it names the
  response targets).
- `excluded_windows`: None (default) takes the tenant's recorded excluded windows (force majeure,
  client-caused outages) out of the SLA measurement; pass `()` to measure every day. Excluded days
  are never taken out of the usage: `PeriodCounts.ai_resolved` / `human_resolved` (what billing
  rates) always count every day of the period.

Periods are calendar months in the tenant's zone; rollup days are already days in that zone, so a
month is the days ``[first of month, first of next month)``.

- per intent, on the ``resolved`` basis: ai_resolved / human_resolved contacts, and of those the
  rated ones and the ones rated 4 or 5;
- per response target, on the ``opened`` basis: contacts opened on the channel (whatever their
  resolution), and from the first-response rollups (exact whole seconds, calendar or business
  clock) those first answered within the target's limit, for any limit. No response = not within.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import response_rollups
from billing.metering.rollups import read_rollups
from sla.evaluation import IntentCounts, PeriodCounts, ResponseCounts
from sla.models import ExcludedWindow
from sla.terms import SlaTerms
from tenants.models import SupportCalendar
from tenants.periods import Period
from tenants.vocabulary import RESOLVED

__all__ = [
    "Period",
    "billable_usage",
    "day_ranges",
    "excluded_days",
    "month_days",
    "period_counts",
    "recorded_windows",
]


class TenantLike(Protocol):
    id: UUID
    timezone: str


def month_days(period: str | date | Period) -> tuple[date, date]:
    """First day of the month and first day of the next one, for "YYYY-MM" or a date in it."""
    p = Period.parse(period)
    return p.first, p.end


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


def day_ranges(start: date, end: date, excluded: frozenset[date] = frozenset()) -> list[tuple[date, date]]:
    """``[start, end)`` split into the [a, b) runs of days that are not excluded."""
    ranges: list[tuple[date, date]] = []
    day, run = start, None
    while day < end:
        if day in excluded:
            if run is not None:
                ranges.append((run, day))
                run = None
        elif run is None:
            run = day
        day += timedelta(days=1)
    if run is not None:
        ranges.append((run, end))
    return ranges


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


async def _sum_rollups(
    session: AsyncSession, tenant_id: UUID, basis: str, ranges: Sequence[tuple[date, date]], group_by: Sequence[str]
) -> dict[tuple, dict[str, int]]:
    out: dict[tuple, dict[str, int]] = {}
    for start, end in ranges:
        for row in await read_rollups(session, tenant_id, basis=basis, start=start, end=end, group_by=group_by):
            key = tuple(row[g] for g in group_by)
            acc = out.setdefault(key, {})
            for k, v in row.items():
                if k not in group_by:
                    acc[k] = acc.get(k, 0) + v
    return out


async def counts_over(
    session: AsyncSession, tenant_id: UUID, sla: SlaTerms, ranges: Sequence[tuple[date, date]]
) -> PeriodCounts:
    """`PeriodCounts` over the given [start, end) day ranges."""
    resolved = await _sum_rollups(session, tenant_id, "resolved", ranges, ("intent", "resolution"))
    by_intent: dict[str, dict[str, int]] = {}
    for (intent, resolution), row in resolved.items():
        if resolution not in RESOLVED:
            continue  # an abandoned contact with a resolved_at is neither billed nor measured
        acc = by_intent.setdefault(intent, {"ai_resolved": 0, "human_resolved": 0, "rated": 0, "satisfied": 0})
        acc[resolution] += row["contacts"]
        acc["rated"] += row["rated"]
        acc["satisfied"] += row["csat_good"]
    responses: list[ResponseCounts] = []
    if sla.response_targets:
        opened = await _sum_rollups(session, tenant_id, "opened", ranges, ("channel",))
        for target in sla.response_targets:
            clock = response_rollups.BUSINESS if target.business_hours else response_rollups.CALENDAR
            if clock == response_rollups.BUSINESS and not await _has_calendar(session, tenant_id):
                clock = response_rollups.CALENDAR  # no support calendar: every hour is a business hour
            within = await response_rollups.within_limits(
                session, tenant_id, clock=clock, ranges=ranges, limits=[(target.channel, target.first_response_seconds)]
            )
            responses.append(
                ResponseCounts(
                    channel=target.channel,
                    first_response_seconds=target.first_response_seconds,
                    opened=opened.get((target.channel,), {}).get("contacts", 0),
                    within_limit=within.get((target.channel, target.first_response_seconds), 0),
                )
            )
    return PeriodCounts(
        by_intent={intent: IntentCounts(**acc) for intent, acc in by_intent.items()}, responses=tuple(responses)
    )


async def _has_calendar(session: AsyncSession, tenant_id: UUID) -> bool:
    return (
        await session.scalar(sa.select(SupportCalendar.tenant_id).where(SupportCalendar.tenant_id == tenant_id))
    ) is not None


async def period_counts(
    session: AsyncSession,
    tenant: TenantLike,
    period: str | date | Period,
    terms: Mapping[str, Any] | SlaTerms,
    *,
    excluded_windows: Iterable[Any] | None = None,
) -> PeriodCounts:
    """The period's counts from the rollups, with excluded windows taken out (see the module docstring)."""
    p = Period.parse(period)
    if excluded_windows is None:
        excluded_windows = await recorded_windows(session, tenant.id, p)
    excluded = excluded_days(excluded_windows, p)
    counts = await counts_over(session, tenant.id, SlaTerms.from_terms(terms), day_ranges(p.first, p.end, excluded))
    if not excluded:
        return counts
    ai, human = await billable_usage(session, tenant, p)
    return replace(counts, usage=IntentCounts(ai_resolved=ai, human_resolved=human))


async def billable_usage(session: AsyncSession, tenant: TenantLike, period: str | date | Period) -> tuple[int, int]:
    """(ai_resolved, human_resolved) resolved in the period, every day counted (what the invoice bills)."""
    p = Period.parse(period)
    rows = await _sum_rollups(session, tenant.id, "resolved", [(p.first, p.end)], ("resolution",))
    return rows.get(("ai_resolved",), {}).get("contacts", 0), rows.get(("human_resolved",), {}).get("contacts", 0)
