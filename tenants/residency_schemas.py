"""API shapes of a residency policy and its transfer mechanisms (pydantic v2).

Every message is a sentence a person can act on: the tenant page shows it beside the field. The
service passes the context: ``regions`` (the registry) and ``tenant_markets`` (where it sells).
Whether a mechanism is still valid today is the service's check (a stored one may have expired).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pycountry
from pydantic import Field, ValidationInfo, field_validator

from tenants.inputs import Input, one_of
from tenants.regimes import REGIMES

# --- residency ---------------------------------------------------------------------------------
# Every message here is a sentence a person can act on: the tenant page shows it beside the field.
# The mechanisms each regime accepts, from the one regimes module.
MECHANISMS: dict[str, frozenset[str]] = {code: r.mechanism_codes for code, r in REGIMES.items()}


def _market_sentence(code: Any, info: ValidationInfo) -> str:
    """``code`` if it is a country the tenant sells in (when the context names its markets)."""
    if not isinstance(code, str) or len(code) != 2 or pycountry.countries.get(alpha_2=code.upper()) is None:
        raise ValueError(f"The market {code!r} is not a country code; use ISO 3166-1 alpha-2 codes such as DE or CN.")
    if code != code.upper():
        raise ValueError(f"Write country codes in upper case: {code.upper()!r}, not {code!r}.")
    sold = (info.context or {}).get("tenant_markets")
    if sold is not None and code not in sold:
        listed = one_of(sorted(sold)) if sold else "no markets yet"
        raise ValueError(f"The tenant does not sell in {code}; its markets are {listed}. Add {code} to them first.")
    return code


def _region_sentence(value: Any, info: ValidationInfo) -> str:
    regions = (info.context or {}).get("regions")
    if regions is not None and value not in regions:
        raise ValueError(f"The region {value!r} is not in the registry; choose {one_of(sorted(regions))}.")
    return value


class TransferMechanism(Input):
    """A recorded basis for moving a regime's data to another region (``market`` blank: every market
    of the regime). The service adds ``id``, ``added_at`` and ``added_by`` when it records one."""

    regime: str
    market: str | None = None
    to_region: str
    mechanism: str
    reference: str
    valid_until: date | None = None

    @field_validator("regime", mode="before")
    @classmethod
    def _regime(cls, v: Any) -> str:
        if v not in REGIMES:
            raise ValueError(f"The regime {v!r} is not one we know; choose {one_of(list(REGIMES))}.")
        return v

    @field_validator("market", mode="before")
    @classmethod
    def _market(cls, v: Any, info: ValidationInfo) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        v = _market_sentence(v.strip() if isinstance(v, str) else v, info)
        regime = info.data.get("regime")
        governing = next((r.code for r in REGIMES.values() if v in r.markets), None)
        if regime and governing != regime:
            under = f"governed by {governing}" if governing else "not governed by any regime we track"
            raise ValueError(f"{v} is {under}, not {regime}; a {regime} mechanism cannot cover it.")
        return v

    @field_validator("to_region", mode="before")
    @classmethod
    def _region(cls, v: Any, info: ValidationInfo) -> str:
        v = _region_sentence(v, info)
        regime = info.data.get("regime")
        regions = (info.context or {}).get("regions") or {}
        if regime and regions.get(v) == regime:
            raise ValueError(
                f"The region {v!r} is under {regime} already: data that stays under {regime} needs no mechanism."
            )
        return v

    @field_validator("mechanism", mode="before")
    @classmethod
    def _mechanism_fits_regime(cls, v: Any, info: ValidationInfo) -> str:
        regime = info.data.get("regime")
        if regime is None:  # the regime's own error says what to fix first
            return v
        allowed = REGIMES[regime].mechanisms
        if v not in MECHANISMS[regime]:
            offered = one_of([f"{m.code} ({m.label}, {m.reference})" for m in allowed])
            raise ValueError(f"The mechanism {v!r} is not one {regime} recognises; {regime} accepts {offered}.")
        return v

    @field_validator("reference", mode="before")
    @classmethod
    def _reference(cls, v: Any) -> str:
        v = v.strip() if isinstance(v, str) else ""
        if not v:
            raise ValueError("Give the mechanism's reference, such as the contract or filing number.")
        if len(v) > 300:
            raise ValueError("The reference is longer than 300 characters; shorten it.")
        return v

    @field_validator("valid_until", mode="before")
    @classmethod
    def _valid_until(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        try:
            return date.fromisoformat(str(v).strip())
        except ValueError:
            raise ValueError(f"The date {v!r} is not one we can read; write it as YYYY-MM-DD (2029-01-31).") from None


class ResidencyPut(Input):
    """The markets -> regions map; ``transfer_mechanisms``, when given, replaces the recorded list
    (the service refuses to drop one that something depends on), and when left out keeps it."""

    markets: dict[str, str] = Field(default_factory=dict)
    transfer_mechanisms: list[TransferMechanism] | None = None

    @field_validator("markets", mode="before")
    @classmethod
    def _markets(cls, v: Any, info: ValidationInfo) -> dict[str, str]:
        if not isinstance(v, dict):
            raise ValueError('Give the markets as an object of market to region, e.g. {"DE": "eu"}.')
        problems = []
        for market, region in v.items():
            for check, value in ((_market_sentence, market), (_region_sentence, region)):
                try:
                    check(value, info)
                except ValueError as exc:
                    problems.append(str(exc))
        if problems:
            raise ValueError(" ".join(problems))
        return v


__all__ = ["MECHANISMS", "ResidencyPut", "TransferMechanism"]
