"""The rollup figures of one SLA report, read in a few narrow GROUP BY queries.

`period_report` used to read every measure of every rollup row several times (the daily trend,
then `period_counts` again for the outcomes, then each breakdown). This module reads each
table once or twice, with only the columns the report shows, and derives the rest in Python
over small grouped results:

1. ``resolved`` rows of the whole month by day x intent x resolution: contacts, ratings, handoffs, reopened
   and the resolution histogram. Excluded days are dropped in Python for the measurement and kept
   for the billable usage (what `sla.counts.billable_usage` reads).
2. ``resolved`` rows of the measured days by language x channel x resolution: both breakdowns.
3. ``opened`` rows of the whole month by day x channel: contacts opened.
4. First-response rows up to each target's limit by measured day (one UNION ALL, key seeks).
5. The calendar first-response distribution of the measured days (exact percentiles).

`cached_load` keeps the figures of recent reports in the process, keyed by the tenant's rollup
receipts (how many deltas were applied, and the latest): a delta applied to the tenant's rollups
changes the key, so a report never shows figures older than the last applied delta. ``bpoctl
rollups rebuild`` (the repair tool) writes no receipt: entries also expire after `CACHE_SECONDS`.

`period_counts_from` builds the same `PeriodCounts` as `sla.counts.period_counts` (the invoice's
path) from these figures; the SLA tests check that the report and the invoice agree.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import response_rollups
from billing.metering.models import BUCKETS, ContactRollup, FirstResponseRollup, RollupReceipt
from sla.counts import Period
from sla.evaluation import IntentCounts, PeriodCounts, ResponseCounts
from sla.terms import ResponseTarget
from tenants.vocabulary import RESOLVED

ROLLUP = ContactRollup.__table__
FRT = FirstResponseRollup.__table__
RES_BUCKETS = tuple(f"res_b{i:02d}" for i in range(BUCKETS))
RECEIPTS = RollupReceipt.__table__
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 256
_cache: OrderedDict[tuple, tuple[float, ReportRollups]] = OrderedDict()


def _zero() -> dict[str, int]:
    return {"ai_resolved": 0, "human_resolved": 0, "rated": 0, "satisfied": 0}


@dataclass(slots=True)
class ReportRollups:
    """What the report reads from the rollups; every figure is over measured days unless named."""

    daily: dict[date, dict[str, dict[str, int]]] = field(default_factory=dict)  # day -> intent -> counts
    intents: dict[str, dict[str, int]] = field(default_factory=dict)
    languages: dict[str, dict[str, int]] = field(default_factory=dict)
    channels: dict[str, dict[str, int]] = field(default_factory=dict)
    handoffs: int = 0
    reopened: int = 0
    resolved_total: int = 0
    res_hist: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    opened_by_day: dict[tuple[date, str], int] = field(default_factory=dict)  # (day, channel) -> contacts
    within_by_day: dict[tuple[str, int, date], int] = field(default_factory=dict)  # (channel, limit, day)
    frt_distribution: list[tuple[int, int]] = field(default_factory=list)
    usage: tuple[int, int] = (0, 0)  # (ai_resolved, human_resolved) over every day: what is billed


def _sums(*measures: str) -> list[sa.ColumnElement]:
    return [sa.func.sum(ROLLUP.c[m]) for m in measures]


def _days(period: Period) -> list[date]:
    return [date.fromordinal(n) for n in range(period.first.toordinal(), period.end.toordinal())]


def _in_ranges(column: sa.ColumnElement, ranges: Sequence[tuple[date, date]]) -> sa.ColumnElement[bool]:
    if not ranges:
        return sa.false()
    return sa.or_(*(sa.and_(column >= a, column < b) for a, b in ranges))


async def load(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: Period,
    skip: frozenset[date],
    ranges: Sequence[tuple[date, date]],
    targets: Sequence[tuple[ResponseTarget, str]],
) -> ReportRollups:
    """The report's figures; ``targets`` pairs each response target with the clock it is measured on."""
    out = ReportRollups()
    month = (ROLLUP.c.tenant_id == tenant_id, ROLLUP.c.day >= period.first, ROLLUP.c.day < period.end)

    # 1. resolved, whole month, day x intent x resolution
    c = ROLLUP.c
    stmt = (
        sa.select(
            c.day,
            c.intent,
            c.resolution,
            *_sums("contacts", "rated", "csat_good", "handoffs", "reopened", *RES_BUCKETS),
        )
        .where(*month, c.basis == "resolved", c.resolution.in_(RESOLVED))
        .group_by(c.day, c.intent, c.resolution)
        .order_by(c.day, c.intent, c.resolution)
    )
    ai_all = human_all = 0
    hist = out.res_hist
    for day, intent, resolution, contacts, rated, good, handoffs, reopened, *buckets in await session.execute(stmt):
        contacts = int(contacts or 0)
        if not contacts:
            continue
        if resolution == "ai_resolved":
            ai_all += contacts
        else:
            human_all += contacts
        if day in skip:
            continue
        rated, good = int(rated or 0), int(good or 0)
        for acc in (out.daily.setdefault(day, {}).setdefault(intent, _zero()), out.intents.setdefault(intent, _zero())):
            acc[resolution] += contacts
            acc["rated"] += rated
            acc["satisfied"] += good
        out.handoffs += int(handoffs or 0)
        out.reopened += int(reopened or 0)
        out.resolved_total += contacts
        for i, n in enumerate(buckets):
            hist[i] += int(n or 0)
    out.usage = (ai_all, human_all)

    # 2. resolved, measured days, language x channel x resolution: the two breakdowns
    if ranges:
        stmt = (
            sa.select(c.language, c.channel, c.resolution, *_sums("contacts", "rated", "csat_good"))
            .where(*month, c.basis == "resolved", c.resolution.in_(RESOLVED), _in_ranges(c.day, ranges))
            .group_by(c.language, c.channel, c.resolution)
        )
        for language, channel, resolution, contacts, rated, good in await session.execute(stmt):
            if not contacts:
                continue
            for acc in (out.languages.setdefault(language, _zero()), out.channels.setdefault(channel, _zero())):
                acc[resolution] += int(contacts)
                acc["rated"] += int(rated or 0)
                acc["satisfied"] += int(good or 0)

    # 3. opened, whole month, day x channel
    stmt = (
        sa.select(c.day, c.channel, sa.func.sum(c.contacts))
        .where(*month, c.basis == "opened")
        .group_by(c.day, c.channel)
    )
    for day, channel, contacts in await session.execute(stmt):
        if contacts and day not in skip:
            out.opened_by_day[(day, channel)] = int(contacts)

    # 4. first responses within each target's limit, by measured day: one SELECT per target in one
    # UNION ALL, each a seek per (day, channel) on the primary key up to the limit (no month scan)
    f = FRT.c
    days = [d for d in _days(period) if d not in skip]
    if targets and days:
        parts = [
            sa.select(sa.literal(i).label("target"), f.day, sa.func.sum(f.contacts))
            .where(
                f.tenant_id == tenant_id,
                f.clock == clock,
                f.day.in_(days),
                f.channel == t.channel,
                f.seconds <= t.first_response_seconds,
            )
            .group_by(f.day)
            for i, (t, clock) in enumerate(targets)
        ]
        found: dict[int, list[tuple[date, int]]] = {}
        for i, day, n in await session.execute(sa.union_all(*parts)):
            found.setdefault(i, []).append((day, n))
        # Targets by clock, then in contract order, as the figures were always keyed (a later one wins).
        for i in sorted(range(len(targets)), key=lambda i: targets[i][1]):
            t = targets[i][0]
            for day, n in found.get(i, ()):
                if n:
                    out.within_by_day[(t.channel, t.first_response_seconds, day)] = int(n)

    # 5. the exact calendar first-response distribution over measured days
    out.frt_distribution = await response_rollups.distribution(
        session, tenant_id, clock=response_rollups.CALENDAR, ranges=ranges
    )
    return out


async def rollup_marker(session: AsyncSession, tenant_id: uuid.UUID) -> tuple:
    """(applied deltas, latest applied_at) of the tenant: changes whenever a delta is applied.

    The count changes even when two deltas commit out of their ``applied_at`` order."""
    r = RECEIPTS.c
    row = (
        await session.execute(sa.select(sa.func.count(), sa.func.max(r.applied_at)).where(r.tenant_id == tenant_id))
    ).one()
    return tuple(row)


async def cached_load(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: Period,
    skip: frozenset[date],
    ranges: Sequence[tuple[date, date]],
    targets: Sequence[tuple[ResponseTarget, str]],
) -> ReportRollups:
    """`load`, reused while the tenant's rollup receipts are unchanged (at most `CACHE_SECONDS`).

    The figures returned are shared with the cache: callers read them and never change them."""
    key = (tenant_id, period, skip, tuple(targets), await rollup_marker(session, tenant_id))
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        with contextlib.suppress(KeyError):  # another thread's server may have evicted it meanwhile
            _cache.move_to_end(key)
        return hit[1]
    figures = await load(session, tenant_id, period, skip, ranges, targets)
    _cache.pop(key, None)
    _cache[key] = (now, figures)  # newest last
    while len(_cache) > CACHE_ENTRIES:
        with contextlib.suppress(KeyError):
            _cache.popitem(last=False)
    return figures


def clear_cache() -> None:
    _cache.clear()


def period_counts_from(figures: ReportRollups, targets: Sequence[ResponseTarget], excluded: bool) -> PeriodCounts:
    """The `PeriodCounts` that `sla.counts.period_counts` reads, from the report's figures."""
    opened: dict[str, int] = {}
    for (_, channel), n in figures.opened_by_day.items():
        opened[channel] = opened.get(channel, 0) + n
    within: dict[tuple[str, int], int] = {}
    for (channel, limit, _), n in figures.within_by_day.items():
        within[(channel, limit)] = within.get((channel, limit), 0) + n
    responses = tuple(
        ResponseCounts(
            channel=t.channel,
            first_response_seconds=t.first_response_seconds,
            opened=opened.get(t.channel, 0),
            within_limit=within.get((t.channel, t.first_response_seconds), 0),
        )
        for t in targets
    )
    usage = IntentCounts(ai_resolved=figures.usage[0], human_resolved=figures.usage[1]) if excluded else None
    return PeriodCounts(
        by_intent={intent: IntentCounts(**figures.intents[intent]) for intent in sorted(figures.intents)},
        responses=responses,
        usage=usage,
    )
