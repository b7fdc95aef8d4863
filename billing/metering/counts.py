"""A tenant's period as counts: the usage read model that invoices and SLA reports share.

Metering writes the rollups; this module is the one way to read a period out of them. Invoices,
re-drafts, late adjustments and the SLA report all call `period_counts`, so an invoice's usage and
credits and the report's outcomes come from the same numbers:

    counts = await period_counts(session, tenant_id, period, targets, skip)
    rated = rate_counts(terms, counts)   # usage over every day, SLA outcomes over measured days

- ``period`` is a `tenants.periods.Period` (a month in the tenant's zone; rollup days are already
  days in that zone, so the month is the days ``[first, end)``); ``targets`` are the contract's
  response targets (anything with ``channel``, ``first_response_seconds`` and ``business_hours``);
  ``skip`` the days taken out of the SLA measurement (excluded windows, decided by the SLA layer).
  Skipped days are never taken out of the usage: `PeriodCounts.ai_resolved` / ``human_resolved``
  (what billing rates) count every day of the period.
- per intent, on the ``resolved`` basis: ai_resolved / human_resolved contacts, and of those the
  rated ones and the ones rated 4 or 5;
- per response target, on the ``opened`` basis: contacts opened on the channel (whatever their
  resolution), and from the first-response rollups (exact whole seconds, calendar or business
  clock) those first answered within the target's limit, for any limit. No response = not within.

The counts are derived from `PeriodFigures`, read in a few narrow GROUP BY queries (`load_figures`):

1. ``resolved`` rows of the whole month by day x intent x resolution: contacts, ratings, handoffs,
   reopened and the resolution histogram. Skipped days are dropped in Python for the measurement
   and kept for the billable usage.
2. (report only) ``resolved`` rows of the measured days by language x channel x resolution.
3. ``opened`` rows of the whole month by day x channel: contacts opened.
4. First-response rows up to each target's limit by measured day (one UNION ALL, key seeks).
5. (report only) the calendar first-response distribution of the measured days (exact percentiles).

`cached_figures` keeps the report's figures in the process, keyed by the tenant's rollup receipts
(how many deltas were applied, and the latest): a delta applied to the tenant's rollups changes
the key, so a report never shows figures older than the last applied delta. ``bpoctl rollups
rebuild`` (the repair tool) writes no receipt: entries also expire after `CACHE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import response_rollups
from billing.metering.models import BUCKETS, ContactRollup, FirstResponseRollup, RollupReceipt
from tenants.models import SupportCalendar
from tenants.periods import Period
from tenants.vocabulary import RESOLVED


class Target(Protocol):
    """A response target as the counts need it (the SLA layer's `ResponseTarget` is one)."""

    channel: str
    first_response_seconds: int
    business_hours: bool


def _non_negative(owner: object, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{type(owner).__name__}.{name} must be a non-negative int, got {value!r}")


@dataclass(frozen=True, slots=True)
class IntentCounts:
    """Resolved contacts of one intent in the period, by resolution, and their CSAT ratings."""

    ai_resolved: int = 0
    human_resolved: int = 0
    rated: int = 0  # resolved contacts that carry a CSAT rating
    satisfied: int = 0  # of those, rated 4 or 5

    def __post_init__(self) -> None:
        _non_negative(
            self, ai_resolved=self.ai_resolved, human_resolved=self.human_resolved, rated=self.rated,
            satisfied=self.satisfied,
        )  # fmt: skip
        if self.satisfied > self.rated:
            raise ValueError("IntentCounts.satisfied cannot exceed rated")
        if self.rated > self.resolved:
            raise ValueError("IntentCounts.rated cannot exceed the resolved contacts")

    @property
    def resolved(self) -> int:
        return self.ai_resolved + self.human_resolved


@dataclass(frozen=True, slots=True)
class ResponseCounts:
    """Contacts opened in the period on one channel, and those answered within a limit.

    `first_response_seconds` names the limit the counts were taken for, so that counts for a
    different limit are never read against a target (the rollup counts per contract target).
    """

    channel: str
    first_response_seconds: int
    opened: int = 0
    within_limit: int = 0  # first response at most `first_response_seconds` after opening

    def __post_init__(self) -> None:
        _non_negative(self, opened=self.opened, within_limit=self.within_limit)
        if self.within_limit > self.opened:
            raise ValueError("ResponseCounts.within_limit cannot exceed opened")


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """What the SLA rules need to know about one tenant's period, as counts."""

    by_intent: Mapping[str, IntentCounts] = field(default_factory=dict)
    responses: tuple[ResponseCounts, ...] = ()
    # Billable contacts of the whole period when excluded windows took days out of `by_intent`:
    # exclusions change what the SLAs measure, never what is billed. None: `by_intent` is everything.
    usage: IntentCounts | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_intent", MappingProxyType({str(k): v for k, v in self.by_intent.items()}))
        object.__setattr__(self, "responses", tuple(self.responses))
        channels = [(r.channel, r.first_response_seconds) for r in self.responses]
        if len(set(channels)) != len(channels):
            raise ValueError("one ResponseCounts per channel and limit")

    def totals(self, exclude: frozenset[str] | set[str] = frozenset()) -> IntentCounts:
        """The counts of every intent but the excluded ones, added up."""
        kept = [c for intent, c in self.by_intent.items() if intent not in exclude]
        return IntentCounts(
            ai_resolved=sum(c.ai_resolved for c in kept),
            human_resolved=sum(c.human_resolved for c in kept),
            rated=sum(c.rated for c in kept),
            satisfied=sum(c.satisfied for c in kept),
        )

    @property
    def ai_resolved(self) -> int:
        """All AI-resolved contacts of the period (billing counts every intent and every day)."""
        return (self.usage or self.totals()).ai_resolved

    @property
    def human_resolved(self) -> int:
        """All human-resolved contacts of the period (billing counts every intent and every day)."""
        return (self.usage or self.totals()).human_resolved

    def response_for(self, target: Any) -> ResponseCounts | None:
        """The counts of the target's channel, refusing counts taken for another limit."""
        on_channel = [r for r in self.responses if r.channel == target.channel]
        for counts in on_channel:
            if counts.first_response_seconds == target.first_response_seconds:
                return counts
        if on_channel:
            limits = ", ".join(f"{r.first_response_seconds} s" for r in on_channel)
            raise ValueError(
                f"{target.channel} response counts were taken for {limits}; "
                f"the target's limit is {target.first_response_seconds} s"
            )
        return None


ROLLUP = ContactRollup.__table__
FRT = FirstResponseRollup.__table__
RES_BUCKETS = tuple(f"res_b{i:02d}" for i in range(BUCKETS))
RECEIPTS = RollupReceipt.__table__
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 256
_cache: OrderedDict[tuple, tuple[float, PeriodFigures]] = OrderedDict()


def zero() -> dict[str, int]:
    return {"ai_resolved": 0, "human_resolved": 0, "rated": 0, "satisfied": 0}


@dataclass(slots=True)
class PeriodFigures:
    """A period's figures as read from the rollups; every figure is over measured days unless named."""

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


def sums(*measures: str) -> list[sa.ColumnElement]:
    return [sa.func.sum(ROLLUP.c[m]) for m in measures]


def days_of(period: Period) -> list[date]:
    return [date.fromordinal(n) for n in range(period.first.toordinal(), period.end.toordinal())]


def _in_ranges(column: sa.ColumnElement, ranges: Sequence[tuple[date, date]]) -> sa.ColumnElement[bool]:
    if not ranges:
        return sa.false()
    return sa.or_(*(sa.and_(column >= a, column < b) for a, b in ranges))


async def load_figures(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: Period,
    skip: frozenset[date],
    ranges: Sequence[tuple[date, date]],
    targets: Sequence[tuple[Target, str]],
    *,
    detail: bool = True,
) -> PeriodFigures:
    """The period's figures; ``targets`` pairs each response target with the clock it is measured on.
    ``detail=False`` skips what only the report shows (the breakdowns and the distribution)."""
    out = PeriodFigures()
    month = (ROLLUP.c.tenant_id == tenant_id, ROLLUP.c.day >= period.first, ROLLUP.c.day < period.end)

    await _resolved_month(session, out, month, skip)
    if ranges and detail:
        await _breakdowns(session, out, month, ranges)
    await _opened_month(session, out, month, skip)
    await _within_limits(session, out, tenant_id, period, skip, targets)
    # 5. the exact calendar first-response distribution over measured days (report only)
    if detail:
        out.frt_distribution = await response_rollups.distribution(
            session, tenant_id, clock=response_rollups.CALENDAR, ranges=ranges
        )
    return out


async def _resolved_month(session: AsyncSession, out: PeriodFigures, month: tuple, skip: frozenset[date]) -> None:
    """1. ``resolved`` rows of the whole month by day x intent x resolution (skipped days: usage only)."""
    c = ROLLUP.c
    stmt = (
        sa.select(
            c.day,
            c.intent,
            c.resolution,
            *sums("contacts", "rated", "csat_good", "handoffs", "reopened", *RES_BUCKETS),
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
        for acc in (out.daily.setdefault(day, {}).setdefault(intent, zero()), out.intents.setdefault(intent, zero())):
            acc[resolution] += contacts
            acc["rated"] += rated
            acc["satisfied"] += good
        out.handoffs += int(handoffs or 0)
        out.reopened += int(reopened or 0)
        out.resolved_total += contacts
        for i, n in enumerate(buckets):
            hist[i] += int(n or 0)
    out.usage = (ai_all, human_all)


async def _breakdowns(
    session: AsyncSession, out: PeriodFigures, month: tuple, ranges: Sequence[tuple[date, date]]
) -> None:
    """2. ``resolved`` rows of the measured days by language x channel x resolution: the breakdowns."""
    c = ROLLUP.c
    stmt = (
        sa.select(c.language, c.channel, c.resolution, *sums("contacts", "rated", "csat_good"))
        .where(*month, c.basis == "resolved", c.resolution.in_(RESOLVED), _in_ranges(c.day, ranges))
        .group_by(c.language, c.channel, c.resolution)
    )
    for language, channel, resolution, contacts, rated, good in await session.execute(stmt):
        if not contacts:
            continue
        for acc in (out.languages.setdefault(language, zero()), out.channels.setdefault(channel, zero())):
            acc[resolution] += int(contacts)
            acc["rated"] += int(rated or 0)
            acc["satisfied"] += int(good or 0)


async def _opened_month(session: AsyncSession, out: PeriodFigures, month: tuple, skip: frozenset[date]) -> None:
    """3. ``opened`` rows of the whole month by day x channel."""
    c = ROLLUP.c
    stmt = (
        sa.select(c.day, c.channel, sa.func.sum(c.contacts))
        .where(*month, c.basis == "opened")
        .group_by(c.day, c.channel)
    )
    for day, channel, contacts in await session.execute(stmt):
        if contacts and day not in skip:
            out.opened_by_day[(day, channel)] = int(contacts)


async def _within_limits(
    session: AsyncSession,
    out: PeriodFigures,
    tenant_id: uuid.UUID,
    period: Period,
    skip: frozenset[date],
    targets: Sequence[tuple[Target, str]],
) -> None:
    """4. First responses within each target's limit, by measured day: one SELECT per target in one
    UNION ALL, each a seek per (day, channel) on the primary key up to the limit (no month scan)."""
    f = FRT.c
    days = [d for d in days_of(period) if d not in skip]
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


async def rollup_marker(session: AsyncSession, tenant_id: uuid.UUID) -> tuple:
    """(applied deltas, latest applied_at) of the tenant: changes whenever a delta is applied.

    The count changes even when two deltas commit out of their ``applied_at`` order."""
    r = RECEIPTS.c
    row = (
        await session.execute(sa.select(sa.func.count(), sa.func.max(r.applied_at)).where(r.tenant_id == tenant_id))
    ).one()
    return tuple(row)


async def cached_figures(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: Period,
    skip: frozenset[date],
    ranges: Sequence[tuple[date, date]],
    targets: Sequence[tuple[Target, str]],
) -> PeriodFigures:
    """`load_figures`, reused while the tenant's rollup receipts are unchanged (at most `CACHE_SECONDS`).

    The figures returned are shared with the cache: callers read them and never change them."""
    key = (tenant_id, period, skip, tuple(targets), await rollup_marker(session, tenant_id))
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        with contextlib.suppress(KeyError):  # another thread's server may have evicted it meanwhile
            _cache.move_to_end(key)
        return hit[1]
    figures = await load_figures(session, tenant_id, period, skip, ranges, targets)
    _cache.pop(key, None)
    _cache[key] = (now, figures)  # newest last
    while len(_cache) > CACHE_ENTRIES:
        with contextlib.suppress(KeyError):
            _cache.popitem(last=False)
    return figures


def clear_cache() -> None:
    _cache.clear()


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


async def measured_on(
    session: AsyncSession, tenant_id: uuid.UUID, targets: Sequence[Target]
) -> list[tuple[Target, str]]:
    """Each target with the clock it is measured on: business hours only when the tenant has a
    support calendar (without one, every hour is a business hour)."""
    calendar = (
        any(t.business_hours for t in targets)
        and (await session.scalar(sa.select(SupportCalendar.tenant_id).where(SupportCalendar.tenant_id == tenant_id)))
        is not None
    )
    business, plain = response_rollups.BUSINESS, response_rollups.CALENDAR
    return [(t, business if t.business_hours and calendar else plain) for t in targets]


async def report_figures(
    session: AsyncSession, tenant_id: uuid.UUID, period: Period, targets: Sequence[Target], skip: frozenset[date]
) -> PeriodFigures:
    """Everything the SLA report shows of a period (cached, see `cached_figures`); its counts come from
    `period_counts` with ``figures=`` these."""
    clocks = await measured_on(session, tenant_id, targets)
    ranges = day_ranges(period.first, period.end, skip)
    return await cached_figures(session, tenant_id, period, skip, ranges, clocks)


def _counts_from(figures: PeriodFigures, targets: Sequence[Target], excluded: bool) -> PeriodCounts:
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


async def period_counts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    period: Period,
    targets: Sequence[Target],
    skip: frozenset[date] = frozenset(),
    *,
    figures: PeriodFigures | None = None,
) -> PeriodCounts:
    """The period's counts (see the module docstring), the one way to them. ``figures``: the
    report's figures of the same period, targets and skipped days, already read (`cached_figures`)."""
    if figures is None:
        clocks = await measured_on(session, tenant_id, targets)
        ranges = day_ranges(period.first, period.end, skip)
        figures = await load_figures(session, tenant_id, period, skip, ranges, clocks, detail=False)
    return _counts_from(figures, targets, excluded=bool(skip))
