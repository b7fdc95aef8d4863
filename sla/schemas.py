"""API shapes of the SLA domain: excluded windows, support calendars."""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tenants.calendar import WEEKDAYS


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WindowKind(StrEnum):
    force_majeure = "force_majeure"
    client_outage = "client_outage"


class ExcludedWindowCreate(Input):
    """Whole days in the tenant's zone, first and last included."""

    first_day: date
    last_day: date
    kind: WindowKind
    reason: str = Field(min_length=3, max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> ExcludedWindowCreate:
        if self.last_day < self.first_day:
            raise ValueError("last_day must be on or after first_day")
        if (self.last_day - self.first_day).days > 92:
            raise ValueError("a window covers at most 93 days; record longer outages as several windows")
        return self


Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class SupportCalendarPut(Input):
    """`{"weekly": {"mon": [["09:00", "17:00"]], …}, "holidays": ["2026-12-25"]}`, local to the tenant's zone."""

    weekly: dict[str, list[tuple[Clock, Clock]]]
    holidays: list[date] = Field(default_factory=list, max_length=400)

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, v: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        for day, spans in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday ({', '.join(WEEKDAYS)})")
            bounds = []
            for a, b in spans:
                start = time.fromisoformat(a)
                end = None if b == "24:00" else time.fromisoformat(b)
                if end is not None and end <= start:
                    raise ValueError(f"{day}: {a}-{b} ends before it starts")
                bounds.append((start, end or time.max))
            bounds.sort()
            if any(bounds[i][1] > bounds[i + 1][0] for i in range(len(bounds) - 1)):
                raise ValueError(f"{day}: opening hours overlap")
        return v
