"""A tenant's support calendar: weekly opening hours in its zone, and holidays.

A response target with `"business_hours": true` measures the time to first response in business
time: only the seconds that fall inside the calendar's opening hours count. Metering computes that
duration per contact at ingest (and again on a rollup rebuild) with `business_time`, so the SLA
layer reads exact counts from the rollups and never a contact.

Opening hours are local wall-clock times in the tenant's IANA zone; each interval is turned into
UTC instants on its own day, so a DST change moves the instants and never the wall clock (09:00
stays 09:00, a 24-hour day on the change date lasts 23 or 25 hours, as the clock on the wall says).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tenants.models import SupportCalendar

__all__ = ["WEEKDAYS", "BusinessCalendar", "ceil_seconds", "load_calendar"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SECOND = timedelta(seconds=1)


def ceil_seconds(elapsed: timedelta) -> int:
    """Whole seconds, rounded up: a response 60.2 s after opening is not within 60 s (exact, no floats)."""
    return -(-elapsed // _SECOND)


def _clock(text: str) -> time | None:
    """ "HH:MM" (or "24:00", returned as None meaning the end of the day)."""
    if text == "24:00":
        return None
    return time.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Weekly hours (Monday = 0) as local (start, end) pairs, end None = midnight; holidays closed all day."""

    timezone: str
    weekly: Mapping[int, tuple[tuple[time, time | None], ...]]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_json(
        cls, timezone: str, weekly: Mapping[str, Sequence[Sequence[str]]], holidays: Sequence[str]
    ) -> BusinessCalendar:
        """`{"mon": [["09:00", "17:00"]], …}` and `["2026-12-25", …]` (validated by `sla.schemas`)."""
        hours = {
            WEEKDAYS.index(day): tuple((_clock(a) or time(0), _clock(b)) for a, b in intervals)
            for day, intervals in weekly.items()
        }
        return cls(timezone, hours, frozenset(date.fromisoformat(d) for d in holidays))

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekly": {
                WEEKDAYS[d]: [[a.strftime("%H:%M"), b.strftime("%H:%M") if b else "24:00"] for a, b in spans]
                for d, spans in sorted(self.weekly.items())
            },
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's opening hours as UTC instants (none on a holiday)."""
        if day in self.holidays:
            return []
        zone = ZoneInfo(self.timezone)
        out = []
        for start, end in self.weekly.get(day.weekday(), ()):
            s = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            e = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                if end is None
                else datetime.combine(day, end, tzinfo=zone)
            ).astimezone(UTC)
            if e > s:
                out.append((s, e))
        return out

    def business_time(self, start: datetime, end: datetime) -> timedelta:
        """The part of [start, end) that falls inside opening hours."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return timedelta(0)
        zone = ZoneInfo(self.timezone)
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        total = timedelta(0)
        while day <= last:
            for s, e in self.open_intervals(day):
                overlap = min(e, end) - max(s, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


async def load_calendar(session: AsyncSession, tenant_id: uuid.UUID) -> BusinessCalendar | None:
    """The tenant's support calendar, or None (business-hours targets then count calendar time)."""
    row = await session.scalar(sa.select(SupportCalendar).where(SupportCalendar.tenant_id == tenant_id))
    if row is None:
        return None
    return BusinessCalendar.from_json(row.timezone, row.weekly, row.holidays)
