"""API shapes of merchant webhooks: endpoints and usage thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from control_plane.events import EVENT_TYPES


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [e for e in value if e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}")
    if not value:
        raise ValueError("name at least one event type")
    return sorted(set(value), key=EVENT_TYPES.index)


def _url(value: AnyHttpUrl | None) -> AnyHttpUrl | None:
    if value is not None and len(str(value)) > 2000:
        raise ValueError("at most 2000 characters")
    return value


class EndpointIn(Input):
    """The body of ``POST /api/v1/tenants/{slug}/webhook-endpoints``."""

    url: AnyHttpUrl
    events: list[str]
    description: str = Field("", max_length=200)
    enabled: bool = True

    _check_events = field_validator("events")(_events)
    _check_url = field_validator("url")(_url)


class EndpointPatch(Input):
    """The body of ``PATCH …/webhook-endpoints/{id}``: any of these fields."""

    url: AnyHttpUrl | None = None
    events: list[str] | None = None
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None

    _check_events = field_validator("events")(_events)
    _check_url = field_validator("url")(_url)


class ThresholdIn(Input):
    """The body of ``POST /api/v1/tenants/{slug}/usage-thresholds``: contacts (a whole number) or
    amount (a decimal string in the contract's currency)."""

    metric: Literal["contacts", "amount"]
    value: str = Field(min_length=1, max_length=40)
