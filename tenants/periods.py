"""Periods: calendar months in a tenant's IANA time zone — the one period type of the product.

Billing (a contact belongs to the period of its ``resolved_at``), SLA reports and usage all measure
whole local months. Rollup days are already days in the tenant's zone, so a month is the days
``first <= day < end``; an invoice also stores the month's bounds as UTC instants
(`Period.start_utc`, `Period.end_utc`). `Period.parse` is the one parser of ``YYYY-MM``: a bad
month is a 422 naming the ``period`` field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from control_plane.errors import FieldError, InvalidInput

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FIRST_YEAR, LAST_YEAR = 1900, 9998  # months outside these years are refused (their bounds overflow)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar month: local days ``first <= day < end`` in the tenant's zone."""

    year: int
    month: int

    @classmethod
    def parse(cls, value: str | date | Period | None, field: str = "period") -> Period:
        """``"YYYY-MM"`` (or a date in the month, or a period); anything else is a 422 on ``field``."""
        if isinstance(value, Period):
            return value
        if isinstance(value, date):
            return cls(value.year, value.month)
        match = _MONTH.match(value or "")
        if not match or not FIRST_YEAR <= int(match[1]) <= LAST_YEAR:
            reason = f"must be a month as YYYY-MM between {FIRST_YEAR}-01 and {LAST_YEAR}-12, e.g. 2026-10"
            raise InvalidInput([FieldError(field, reason)])
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    @classmethod
    def at(cls, moment: datetime, timezone: str) -> Period:
        """The period that holds ``moment`` in the zone ``timezone``."""
        return cls.of(moment.astimezone(ZoneInfo(timezone)).date())

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The first day of the next month (exclusive)."""
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)

    @property
    def days(self) -> int:
        return (self.end - self.first).days

    def next(self) -> Period:
        return Period.of(self.end)

    def previous(self) -> Period:
        return Period.of(self.first - timedelta(days=1))

    def start_utc(self, timezone: str) -> datetime:
        """The month's first instant in the zone, in UTC."""
        return datetime.combine(self.first, time(), ZoneInfo(timezone)).astimezone(UTC)

    def end_utc(self, timezone: str) -> datetime:
        """The next month's first instant in the zone, in UTC (exclusive)."""
        return datetime.combine(self.end, time(), ZoneInfo(timezone)).astimezone(UTC)

    def __str__(self) -> str:
        return self.label
