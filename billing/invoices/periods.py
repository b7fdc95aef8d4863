"""When a billing period may be drafted: every contact of it can have settled, plus the late grace.

A contact is settled once ``resolved_at + reopen_window_hours`` has passed; a period's invoice is
drafted once every contact of it can have settled plus ``late_grace_hours`` (DESIGN.md, both
contract terms with their defaults in ``tenants.contracts``). Periods themselves are
`tenants.periods.Period`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tenants.contracts import DEFAULT_LATE_GRACE_HOURS, DEFAULT_REOPEN_WINDOW_HOURS
from tenants.periods import Period


def settles_at(period: Period, timezone: str, terms: Mapping[str, Any]) -> datetime:
    """When every contact of the period can have settled, plus the late grace: the earliest draft time."""
    reopen = terms.get("reopen_window_hours")
    grace = terms.get("late_grace_hours")
    hours = (DEFAULT_REOPEN_WINDOW_HOURS if reopen is None else int(reopen)) + (
        DEFAULT_LATE_GRACE_HOURS if grace is None else int(grace)
    )
    return period.end_utc(timezone) + timedelta(hours=hours)
