"""Period counts of many tenants at once (the invoice run): the same figures as
``counts.period_counts``, for one period and many tenants, in a few grouped statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import response_rollups
from billing.metering.counts import FRT, IntentCounts, PeriodCounts, ResponseCounts, Target, days_of, zero
from billing.metering.models import ContactRollupMonth
from tenants.models import SupportCalendar
from tenants.periods import Period
from tenants.vocabulary import RESOLVED

MONTHS = ContactRollupMonth.__table__


async def many_period_counts(
    session: AsyncSession, period: Period, targets_of: Mapping[uuid.UUID, Sequence[Target]]
) -> dict[uuid.UUID, PeriodCounts]:
    """`period_counts` of many tenants' same period with no skipped days, in a few statements for
    all of them (the invoice run): billable and rated contacts by tenant x intent x resolution,
    contacts opened by tenant x channel, and first responses within each distinct (clock, channel,
    limit) by tenant. The first two read the month totals (``contact_rollup_months``, kept with the
    daily rows), the last the month's first-response rows; each reads only the tenants' rows of the
    month (primary-key seeks), and the counts equal
    `period_counts(session, tenant_id, period, targets_of[tenant_id])`; callers send a tenant with
    skipped days, or with two targets of one channel and limit, to `period_counts`."""
    ids = list(targets_of)
    if not ids:
        return {}
    # Resolved by intent and opened by channel from the month totals: a period is one whole
    # tenant-local month (`Period`), so one row per tenant x month x key instead of a month of days.
    c = MONTHS.c
    month = (c.tenant_id.in_(ids), c.month == period.first)
    intents: dict[uuid.UUID, dict[str, dict[str, int]]] = {t: {} for t in ids}
    resolved = (
        sa.select(c.tenant_id, c.intent, c.resolution, *(sa.func.sum(c[m]) for m in ("contacts", "rated", "csat_good")))
        .where(*month, c.basis == "resolved", c.resolution.in_(RESOLVED))
        .group_by(c.tenant_id, c.intent, c.resolution)
    )
    for tenant_id, intent, resolution, contacts, rated, good in await session.execute(resolved):
        if not contacts:
            continue
        acc = intents[tenant_id].setdefault(intent, zero())
        acc[resolution] += int(contacts)
        acc["rated"] += int(rated or 0)
        acc["satisfied"] += int(good or 0)
    opened: dict[uuid.UUID, dict[str, int]] = {t: {} for t in ids}
    # Contacts opened only where a response target reads them: the tenants with targets, their channels.
    channels = sorted({t.channel for targets in targets_of.values() for t in targets})
    with_targets = [t for t, targets in targets_of.items() if targets]
    if channels:
        by_channel = (
            sa.select(c.tenant_id, c.channel, sa.func.sum(c.contacts))
            .where(c.tenant_id.in_(with_targets), *month[1:], c.basis == "opened", c.channel.in_(channels))
            .group_by(c.tenant_id, c.channel)
        )
        for tenant_id, channel, contacts in await session.execute(by_channel):
            if contacts:
                opened[tenant_id][channel] = int(contacts)
    within = await _many_within_limits(session, period, targets_of)
    return {
        tenant_id: PeriodCounts(
            by_intent={i: IntentCounts(**intents[tenant_id][i]) for i in sorted(intents[tenant_id])},
            responses=tuple(
                ResponseCounts(
                    channel=t.channel,
                    first_response_seconds=t.first_response_seconds,
                    opened=opened[tenant_id].get(t.channel, 0),
                    within_limit=within.get((tenant_id, t.channel, t.first_response_seconds), 0),
                )
                for t in targets
            ),
        )
        for tenant_id, targets in targets_of.items()
    }


async def _many_within_limits(
    session: AsyncSession, period: Period, targets_of: Mapping[uuid.UUID, Sequence[Target]]
) -> dict[tuple[uuid.UUID, str, int], int]:
    """First responses within each tenant's targets over the whole month: one SELECT per distinct
    (clock, channel, limit) in one UNION ALL, each a seek per (tenant, day, channel) up to the limit."""
    with_targets = {t: ts for t, ts in targets_of.items() if ts}
    if not with_targets:
        return {}
    business = any(t.business_hours for ts in with_targets.values() for t in ts)
    calendars: set[uuid.UUID] = set()
    if business:
        calendars = set(
            (
                await session.scalars(
                    sa.select(SupportCalendar.tenant_id).where(SupportCalendar.tenant_id.in_(list(with_targets)))
                )
            ).all()
        )
    groups: dict[tuple[str, str, int], list[uuid.UUID]] = {}
    for tenant_id, targets in with_targets.items():
        for t in targets:
            clock = (
                response_rollups.BUSINESS if t.business_hours and tenant_id in calendars else response_rollups.CALENDAR
            )
            groups.setdefault((clock, t.channel, t.first_response_seconds), []).append(tenant_id)
    f = FRT.c
    days = days_of(period)
    keys = list(groups)
    parts = [
        sa.select(sa.literal(i).label("target"), f.tenant_id, sa.func.sum(f.contacts))
        .where(
            f.tenant_id.in_(groups[key]),
            f.clock == key[0],
            f.day.in_(days),
            f.channel == key[1],
            f.seconds <= key[2],
        )
        .group_by(f.tenant_id)
        for i, key in enumerate(keys)
    ]
    found: dict[tuple[uuid.UUID, str, int], int] = {}
    for i, tenant_id, n in await session.execute(sa.union_all(*parts) if len(parts) > 1 else parts[0]):
        if n:
            _, channel, limit = keys[i]
            found[(tenant_id, channel, limit)] = int(n)
    return found
