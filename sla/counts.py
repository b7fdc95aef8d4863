"""A tenant's period as `PeriodCounts`, read from the control rollups (never from contacts).

Billing and the SLA report both call `period_counts`, so an invoice's credits and the report agree.
Periods are calendar months in the tenant's zone; rollup days are already days in that zone, so
a month is the days ``[first of month, first of next month)``.

- per intent, on the ``resolved`` basis: ai_resolved / human_resolved contacts, and of those the
  rated ones and the ones rated 4 or 5;
- per response target, on the ``opened`` basis: contacts opened on the channel (whatever their
  resolution) and those first answered within the target's limit (the rollup histogram has the
  common limits as bucket bounds, so the count is exact for them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering.rollups import read_rollups, within_limit
from sla.evaluation import IntentCounts, PeriodCounts, ResponseCounts
from sla.terms import SlaTerms

__all__ = ["month_days", "period_counts"]

RESOLVED = ("ai_resolved", "human_resolved")


class _Tenant(Protocol):
    id: Any
    timezone: str


def month_days(period: str | date) -> tuple[date, date]:
    """First day of the month and first day of the next one, for "YYYY-MM" or a date in it."""
    first = date.fromisoformat(f"{period}-01") if isinstance(period, str) else period.replace(day=1)
    return first, date(first.year + (first.month == 12), first.month % 12 + 1, 1)


async def period_counts(
    session: AsyncSession, tenant: _Tenant, period: str | date, terms: Mapping[str, Any] | SlaTerms
) -> PeriodCounts:
    start, end = month_days(period)
    resolved = await read_rollups(
        session,
        tenant.id,
        basis="resolved",
        start=start,
        end=end,
        group_by=("intent", "resolution"),
        where={"resolution": RESOLVED},
    )
    by_intent: dict[str, dict[str, int]] = {}
    for row in resolved:
        acc = by_intent.setdefault(row["intent"], {"ai_resolved": 0, "human_resolved": 0, "rated": 0, "satisfied": 0})
        acc[row["resolution"]] += row["contacts"]
        acc["rated"] += row["rated"]
        acc["satisfied"] += row["csat_good"]

    responses: list[ResponseCounts] = []
    targets = SlaTerms.from_terms(terms).response_targets
    if targets:
        opened = await read_rollups(
            session,
            tenant.id,
            basis="opened",
            start=start,
            end=end,
            group_by=("channel",),
            where={"channel": sorted({t.channel for t in targets})},
        )
        by_channel = {row["channel"]: row for row in opened}
        for target in targets:
            if any(
                r.channel == target.channel and r.first_response_seconds == target.first_response_seconds
                for r in responses
            ):
                continue
            row = by_channel.get(target.channel)
            responses.append(
                ResponseCounts(
                    channel=target.channel,
                    first_response_seconds=target.first_response_seconds,
                    opened=row["contacts"] if row else 0,
                    within_limit=within_limit(row, target.first_response_seconds) if row else 0,
                )
            )
    return PeriodCounts(by_intent={k: IntentCounts(**v) for k, v in by_intent.items()}, responses=tuple(responses))
