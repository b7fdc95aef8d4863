"""Billing periods: calendar months in the tenant's IANA zone, stored as UTC bounds, and when they settle."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from control_plane.errors import FieldError, InvalidInput

DEFAULT_REOPEN_WINDOW_HOURS = 72
DEFAULT_LATE_GRACE_HOURS = 24
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class Period:
    label: str  # "2026-10"
    first_day: date
    next_first_day: date
    timezone: str

    @property
    def start(self) -> datetime:
        """The first instant of the month in the tenant's zone, in UTC."""
        return datetime.combine(self.first_day, time(), ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month in the tenant's zone, in UTC (exclusive)."""
        return datetime.combine(self.next_first_day, time(), ZoneInfo(self.timezone)).astimezone(UTC)

    @staticmethod
    def first_day_of(label: str) -> date:
        return date.fromisoformat(f"{label}-01")

    def previous(self) -> Period:
        return period_containing(self.first_day - timedelta(days=1), self.timezone)


def parse_period(label: str | None, timezone: str) -> Period:
    match = _PERIOD.match(label or "")
    if not match:
        raise InvalidInput([FieldError("period", "must be a month as YYYY-MM, e.g. 2026-10")])
    return period_containing(date(int(match[1]), int(match[2]), 1), timezone)


def period_containing(day: date, timezone: str) -> Period:
    first = day.replace(day=1)
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return Period(first.strftime("%Y-%m"), first, nxt, timezone)


def period_at(moment: datetime, timezone: str) -> Period:
    """The period that contains ``moment`` in the tenant's zone."""
    return period_containing(moment.astimezone(ZoneInfo(timezone)).date(), timezone)


def settles_at(period: Period, terms: Mapping[str, Any]) -> datetime:
    """When every contact of the period can have settled, plus the late grace: the earliest draft time."""
    reopen = terms.get("reopen_window_hours")
    grace = terms.get("late_grace_hours")
    hours = (DEFAULT_REOPEN_WINDOW_HOURS if reopen is None else int(reopen)) + (
        DEFAULT_LATE_GRACE_HOURS if grace is None else int(grace)
    )
    return period.end + timedelta(hours=hours)
