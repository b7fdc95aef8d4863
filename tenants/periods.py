"""Periods: calendar months in a tenant's IANA time zone — the one period type of the product.

Billing (a contact belongs to the period of its ``resolved_at``), SLA reports and usage all measure
whole local months. Rollup days are already days in the tenant's zone, so a month is the days
``first <= day < end``; an invoice also stores the month's bounds as UTC instants
(`Period.start_utc`, `Period.end_utc`).

One parser each for what a request names: `Period.parse` for a month (``YYYY-MM``) and `parse_time`
for a time (a range end of the audit search and export). Both accept the same span, `EARLIEST_PERIOD`
(2000-01) up to `MONTHS_AHEAD` months after today's month, so that no bound computed from a value can
overflow and no typo such as ``0202-10`` reads as a real, empty month; anything else is a 422 naming
the field (``period``, ``month``, ``from``, ``to``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from control_plane.database import utcnow
from control_plane.errors import FieldError, InvalidInput

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The shapes `parse_time` reads, checked first: ``datetime.fromisoformat`` alone would accept a trailing NUL.
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
MONTHS_AHEAD = 12  # the latest month a request may name: today's month (UTC) plus this many


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar month: local days ``first <= day < end`` in the tenant's zone."""

    year: int
    month: int

    @classmethod
    def parse(cls, value: str | date | Period | None, field: str = "period", *, today: date | None = None) -> Period:
        """``"YYYY-MM"`` (or a date in the month, or a period) from `EARLIEST_PERIOD` to `Period.latest`;
        anything else is a 422 on ``field``. ``today`` is the server's date unless a clock gives it."""
        if isinstance(value, Period):
            return value
        if isinstance(value, date):
            return cls(value.year, value.month)
        match = _MONTH.fullmatch(value) if isinstance(value, str) else None
        period = cls(int(match[1]), int(match[2])) if match else None
        latest = cls.latest(today)
        if period is None or not EARLIEST_PERIOD <= period <= latest:
            example = latest.shift(-MONTHS_AHEAD)
            reason = f"must be a month as YYYY-MM from {EARLIEST_PERIOD} to {latest}, e.g. {example}"
            raise InvalidInput([FieldError(field, reason)])
        return period

    @classmethod
    def latest(cls, today: date | None = None) -> Period:
        """The last month a request may name: `MONTHS_AHEAD` months after today's."""
        return cls.of(today or utcnow().date()).shift(MONTHS_AHEAD)

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

    def shift(self, months: int) -> Period:
        """The month ``months`` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

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


EARLIEST_PERIOD = Period(2000, 1)  # the first month a request may name; times start at its first instant (UTC)


def parse_time(
    value: str | None, field: str, *, end: bool = False, offset_required: bool = False, now: datetime | None = None
) -> datetime | None:
    """A time a request names (``None`` when blank): RFC 3339; unless ``offset_required``, also a
    date (its midnight UTC, or as an ``end`` the next midnight, so that the day is included) or a date
    and time without an offset (read as UTC). It must lie from `EARLIEST_PERIOD`'s first instant to the
    end of `Period.latest`; anything else is a 422 on ``field``."""
    value = (value or "").strip(" \t")  # spaces a form may carry; a control character is refused
    if not value:
        return None
    earliest = datetime.combine(EARLIEST_PERIOD.first, time(), UTC)
    last = Period.latest(now.date() if now else None)
    latest = datetime.combine(last.end, time(), UTC)
    span = f"from {earliest:%Y-%m-%d} to {last.end - timedelta(days=1)}"
    try:
        if not _TIME.fullmatch(value):
            raise ValueError(value)
        if _DAY.fullmatch(value) and not offset_required:
            day = date.fromisoformat(value)
            parsed = datetime.combine(min(day, last.end) + timedelta(days=1) if end else day, time(), UTC)
        else:
            parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        shapes = "an RFC 3339 time (2026-11-01T09:30:00Z)"
        if not offset_required:
            shapes = f"a date (2026-11-01), a date and time (2026-11-01T09:30) or {shapes}"
        raise InvalidInput([FieldError(field, f"is not {shapes}")]) from None
    if parsed.tzinfo is None:
        if offset_required:
            raise InvalidInput([FieldError(field, "needs a time zone offset (e.g. Z or +02:00)")])
        parsed = parsed.replace(tzinfo=UTC)
    # Compared before converting: a time near year 1 or 9999 with an offset has no UTC equivalent.
    if not earliest <= parsed <= latest:
        raise InvalidInput([FieldError(field, f"must be a time {span}")])
    return parsed
