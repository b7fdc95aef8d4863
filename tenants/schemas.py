"""API shapes of tenants, contracts, integrations and API keys (pydantic v2); residency's are in
``tenants.residency_schemas``.

Inputs are validated as a whole so that one answer names every bad field; configuration-dependent
checks (the region registry) read the validation context that the service passes in.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any

import pycountry
from babel.numbers import list_currencies
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from control_plane.auth import ApiScope
from tenants.catalogue import INTEGRATION_KINDS
from tenants.contracts import (
    DEFAULT_CSAT_MIN_SAMPLE,
    DEFAULT_DEFLECTION_EXCLUSIONS,
    DEFAULT_LATE_GRACE_HOURS,
    DEFAULT_REOPEN_WINDOW_HOURS,
)
from tenants.inputs import Input, one_of
from tenants.vocabulary import Channel, Intent

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
CURRENCIES = frozenset(list_currencies())
TIMEZONES = frozenset(zoneinfo.available_timezones())


class TenantStatus(StrEnum):
    onboarding = "onboarding"
    active = "active"
    suspended = "suspended"
    offboarded = "offboarded"


def _decimal_string(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('must be a decimal string such as "1.40"')
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('must be a decimal string such as "1.40"') from None
    if not out.is_finite():
        raise ValueError("must be a finite number")
    return out


DecimalStr = Annotated[Decimal, BeforeValidator(_decimal_string)]
PositiveDecimal = Annotated[DecimalStr, Field(gt=0)]
Rate = Annotated[DecimalStr, Field(ge=0, le=1)]
Percent = Annotated[DecimalStr, Field(ge=0, le=100)]


def check_country(code: str) -> str:
    if not isinstance(code, str) or len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    if code != code.upper():
        raise ValueError(f"{code!r} must be upper case ({code.upper()!r})")
    return code


def _known_region(value: str, info: ValidationInfo) -> str:
    regions = (info.context or {}).get("regions")
    if regions is not None and value not in regions:
        raise ValueError(f"{value!r} is not a region of the registry ({', '.join(sorted(regions))})")
    return value


# --- tenants -----------------------------------------------------------------------------------
class TenantCreate(Input):
    slug: str = Field(min_length=3, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    home_region: str
    timezone: str
    currency: str
    markets: list[str] = Field(default_factory=list)
    retention_days: int = Field(default=730, ge=30, le=3650)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG_RE.match(v):
            raise ValueError("lower-case letters, digits and inner hyphens only, 3 to 63 characters")
        return v

    @field_validator("home_region")
    @classmethod
    def _region(cls, v: str, info: ValidationInfo) -> str:
        return _known_region(v, info)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None and v not in TIMEZONES:
            raise ValueError(f"{v!r} is not an IANA time zone such as 'Europe/Berlin'")
        return v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in CURRENCIES:
            raise ValueError(f"{v!r} is not an ISO 4217 currency code such as 'EUR'")
        return v

    @field_validator("markets")
    @classmethod
    def _markets(cls, v: list[str] | None) -> list[str] | None:
        if v is None:  # an update that leaves the markets as they are
            return v
        bad = []
        for code in v:
            try:
                check_country(code)
            except ValueError as exc:
                bad.append(str(exc))
        if bad:
            raise ValueError("; ".join(bad))
        if len(set(v)) != len(v):
            raise ValueError("markets must not repeat")
        return v


class TenantUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = None
    markets: list[str] | None = None
    retention_days: int | None = Field(default=None, ge=30, le=3650)

    _tz = field_validator("timezone")(TenantCreate._tz.__func__)
    _markets = field_validator("markets")(TenantCreate._markets.__func__)


class TenantTransition(Input):
    to: TenantStatus
    reason: str = Field(default="", max_length=500)


class TenantOut(BaseModel):
    id: str
    slug: str
    name: str
    status: str
    home_region: str
    timezone: str
    currency: str
    markets: list[str]
    retention_days: int
    created_at: str


# --- contracts ---------------------------------------------------------------------------------
class Tier(Input):
    up_to: int | None = Field(gt=0)
    unit_price: PositiveDecimal


class Price(Input):
    unit_price: PositiveDecimal | None = None
    tiers: list[Tier] | None = None

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, tiers: list[Tier] | None) -> list[Tier] | None:
        if tiers is None:
            return None
        if not tiers:
            raise ValueError("at least one tier is needed")
        if tiers[-1].up_to is not None:
            raise ValueError('the last tier must be open-ended ("up_to": null)')
        bounds = [t.up_to for t in tiers[:-1]]
        if any(b is None for b in bounds):
            raise ValueError("only the last tier may be open-ended")
        if any(b2 <= b1 for b1, b2 in pairwise(bounds)):
            raise ValueError("tiers must be in ascending order of up_to")
        return tiers

    @model_validator(mode="after")
    def one_of(self) -> Price:
        if (self.unit_price is None) == (self.tiers is None):
            raise ValueError("give either unit_price or tiers, not both and not neither")
        return self


class ResponseTarget(Input):
    channel: Channel
    first_response_seconds: int = Field(gt=0)
    attainment: Rate
    business_hours: bool = False


class CreditRule(Input):
    percent_per_point: Annotated[DecimalStr, Field(ge=0)]
    cap_percent: Percent


class Credits(Input):
    deflection: CreditRule | None = None
    csat: CreditRule | None = None
    response: CreditRule | None = None


class Dunning(Input):
    """Reminders on days around the due date (negative: before it) and, optionally, suspension of the
    tenant after so many days overdue (billing/invoices/dunning.py; default: -3, 1, 7, 14, never)."""

    reminders_days: list[Annotated[int, Field(ge=-60, le=365)]] = Field(
        default_factory=lambda: [-3, 1, 7, 14], max_length=12
    )
    suspend_after_days: int | None = Field(default=None, ge=1, le=365)

    @field_validator("reminders_days")
    @classmethod
    def _distinct_days(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("each reminder day once")
        return sorted(v)


class Contract(Input):
    effective_from: date
    currency: str
    ai_resolved: Price
    human_resolved: Price
    minimum_monthly_fee: Annotated[DecimalStr, Field(ge=0)] | None = None
    deflection_floor: Rate | None = None
    deflection_exclusions: list[Intent] = Field(
        default_factory=lambda: sorted(Intent(i) for i in DEFAULT_DEFLECTION_EXCLUSIONS)
    )
    csat_target: Rate | None = None
    csat_min_sample: int = Field(default=DEFAULT_CSAT_MIN_SAMPLE, ge=1)
    response_targets: list[ResponseTarget] = Field(default_factory=list)
    credits: Credits = Field(default_factory=Credits)
    total_credit_cap_percent: Percent | None = None
    reopen_window_hours: int = Field(default=DEFAULT_REOPEN_WINDOW_HOURS, ge=0, le=24 * 90)
    late_grace_hours: int = Field(default=DEFAULT_LATE_GRACE_HOURS, ge=0, le=24 * 90)
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)  # net N days; None: 30
    dunning: Dunning | None = None  # None: Dunning's defaults

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str, info: ValidationInfo) -> str:
        v = TenantCreate._currency(v)
        expected = (info.context or {}).get("currency")
        if expected and v != expected:
            raise ValueError(f"the tenant bills in {expected}; a contract in {v} cannot rate it")
        return v

    @field_validator("response_targets")
    @classmethod
    def _one_target_per_channel(cls, v: list[ResponseTarget]) -> list[ResponseTarget]:
        channels = [t.channel for t in v]
        if len(set(channels)) != len(channels):
            raise ValueError("one response target per channel")
        return v

    def terms(self) -> dict[str, Any]:
        """JSON-ready terms: decimals as strings, exactly as they travel."""
        terms = self.model_dump(mode="json", exclude_none=False)
        if terms["dunning"] is None:
            del terms["dunning"]  # contracts without a schedule read as they did before it existed
        return terms


# --- integrations and keys ---------------------------------------------------------------------
class IntegrationCreate(Input):
    kind: str
    name: str = Field(default="", max_length=200)
    processing_region: str | None = None
    credentials: dict[str, str]
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=500)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in INTEGRATION_KINDS:
            raise ValueError(f"{v!r} is not an integration we know; choose {one_of(sorted(INTEGRATION_KINDS))}.")
        return v

    @field_validator("credentials", mode="before")
    @classmethod
    def _credentials(cls, v: Any) -> dict[str, str]:
        if not isinstance(v, dict) or not v:
            raise ValueError("Give at least one credential as key=value, e.g. access_token=….")
        if not all(isinstance(k, str) and isinstance(x, str) and k and x for k, x in v.items()):
            raise ValueError("Give every credential as key=value, with both the key and the value.")
        return v

    @field_validator("processing_region")
    @classmethod
    def _region(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _known_region(v, info)


class ApiKeyCreate(Input):
    scopes: list[str]
    label: str = Field(default="", max_length=200)

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, v: Any) -> list[str]:
        known = sorted(s.value for s in ApiScope)
        if not isinstance(v, list) or not v:
            raise ValueError(f"Choose at least one scope: {one_of(known)}.")
        bad = [s for s in v if s not in known]
        if bad:
            raise ValueError(f"Unknown scope {', '.join(repr(b) for b in bad)}; choose {one_of(known)}.")
        return sorted(set(v))


# --- outputs -----------------------------------------------------------------------------------
def tenant_out(t: Any, checklist: dict[str, bool] | None = None) -> dict[str, Any]:
    out = {
        "id": str(t.id),
        "slug": t.slug,
        "name": t.name,
        "status": t.status,
        "home_region": t.home_region,
        "timezone": t.timezone,
        "currency": t.currency,
        "markets": list(t.markets),
        "retention_days": t.retention_days,
        "created_at": t.created_at.isoformat(),
    }
    if checklist is not None:
        out["onboarding_checklist"] = checklist
    return out


def contract_out(v: Any) -> dict[str, Any]:
    return {
        "version": v.version,
        "effective_from": v.effective_from.isoformat(),
        "terms": v.terms,
        "created_at": v.created_at.isoformat(),
        "created_by": v.created_by,
    }


def integration_out(i: Any) -> dict[str, Any]:
    # Credentials are write-only: only the fact that they are set is ever shown.
    return {
        "id": str(i.id),
        "kind": i.kind,
        "name": i.name,
        "processing_region": i.processing_region,
        "status": i.status,
        "credentials": "set",
        "webhook_secret": "set" if i.webhook_secret else "none",
        "created_at": i.created_at.isoformat(),
    }


def api_key_out(k: Any, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": str(k.id),
        "prefix": k.prefix,
        "scopes": list(k.scopes),
        "label": k.label,
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
    }
    if secret is not None:
        out["secret"] = secret
    return out
