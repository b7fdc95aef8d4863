"""Deadlines of data-subject requests per regime (pure rules, no I/O).

- GDPR (Art. 12(3)): one month from receipt, extendable by two further months with notice to the
  subject. "One month" ends on the same day of the next month, or on that month's last day when the
  day does not exist (Regulation 1182/71 art. 3(2)(c)): received 31 January -> due 28/29 February.
- CCPA/CPRA (Cal. Civ. Code 1798.130(a)(2)): 45 calendar days, extendable once by 45 more with notice.
- PDPA (Singapore, reg. 4 PDP Regulations 2021): 30 calendar days; not extendable here (the officer
  must tell the subject when they will answer, which is recorded as a rejection with a reason or a note).
- PIPL (art. 50): "in a timely manner"; the tenant's policy sets the days (default 15), not extendable.

Dates are calendar dates in the tenant's time zone. ``due_on`` is the last day to answer; a request
is overdue from the next day on, i.e. on the day its deadline has passed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from tenants.regimes import DEFAULT_PIPL_DAYS
from tenants.regimes import REGIMES as REGIME_FACTS

REGIMES = ("GDPR", "CCPA", "PDPA", "PIPL")  # in the order the pages list them
assert set(REGIMES) == set(REGIME_FACTS)
DUE_SOON_DAYS = 7


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months, clamped to the target month's last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Rule:
    regime: str
    days: int | None  # calendar days, or None for months
    months: int | None
    extension_days: int | None
    extension_months: int | None
    text: str

    @property
    def extendable(self) -> bool:
        return bool(self.extension_days or self.extension_months)


def rule_for(regime: str, pipl_days: int = DEFAULT_PIPL_DAYS) -> Rule:
    """The deadline rule of ``regime`` (`tenants.regimes`); PIPL's days are the tenant's policy."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}")
    d = REGIME_FACTS[regime].dsr
    if regime == "PIPL":
        return Rule(regime, pipl_days, None, None, None, f"{pipl_days} days from receipt (the tenant's PIPL policy)")
    return Rule(regime, d.days, d.months, d.extension_days, d.extension_months, d.text)


def due_on(regime: str, received_on: date, pipl_days: int = DEFAULT_PIPL_DAYS) -> date:
    rule = rule_for(regime, pipl_days)
    if rule.months:
        return add_months(received_on, rule.months)
    return received_on + timedelta(days=rule.days or 0)


def extended_due_on(regime: str, due: date) -> date:
    rule = rule_for(regime)
    if rule.extension_months:
        return add_months(due, rule.extension_months)
    if rule.extension_days:
        return due + timedelta(days=rule.extension_days)
    raise ValueError(f"{regime} deadlines cannot be extended")


def is_overdue(due: date, today: date) -> bool:
    return today > due


def urgency(due: date, today: date, open_: bool) -> str:
    """``overdue`` | ``due_soon`` | ``on_time`` for open requests; ``closed`` otherwise."""
    if not open_:
        return "closed"
    if is_overdue(due, today):
        return "overdue"
    if (due - today).days <= DUE_SOON_DAYS:
        return "due_soon"
    return "on_time"


def deadline_rules(pipl_days: int = DEFAULT_PIPL_DAYS) -> list[dict[str, str]]:
    return [{"regime": r, "deadline": rule_for(r, pipl_days).text} for r in REGIMES]
