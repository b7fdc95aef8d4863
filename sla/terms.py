"""The SLA part of a contract, read once from its stored terms into exact, typed values.

Contract terms travel and are stored as the JSON of `tenants.schemas.Contract.terms()`: rates and
percents as decimal strings. Here they become `Fraction`s, so that every comparison and every
shortfall in `sla.evaluation` and `sla.credits` is exact. Missing keys take DESIGN.md's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from billing.money import to_decimal
from tenants.contracts import DEFAULT_CSAT_MIN_SAMPLE, DEFAULT_DEFLECTION_EXCLUSIONS

__all__ = ["DEFAULT_DEFLECTION_EXCLUSIONS", "CreditRule", "ResponseTarget", "SlaKind", "SlaTerms", "exact_fraction"]


class SlaKind(StrEnum):
    """The SLAs a contract can promise; also the keys of its `credits` rules."""

    deflection = "deflection"
    csat = "csat"
    response = "response"


def exact_fraction(value: str | int | Decimal | Fraction) -> Fraction:
    """An exact fraction of a decimal string ("0.70" -> 7/10); floats are refused."""
    if isinstance(value, Fraction):
        return value
    return Fraction(to_decimal(value))


@dataclass(frozen=True, slots=True)
class CreditRule:
    """`{"percent_per_point": "2.0", "cap_percent": "10.0"}` as exact numbers."""

    percent_per_point: Fraction
    cap_percent: Fraction

    @classmethod
    def from_terms(cls, raw: Mapping[str, Any]) -> CreditRule:
        return cls(exact_fraction(raw["percent_per_point"]), exact_fraction(raw["cap_percent"]))


@dataclass(frozen=True, slots=True)
class ResponseTarget:
    """First response on `channel` within `first_response_seconds` for at least `attainment` of contacts."""

    channel: str
    first_response_seconds: int
    attainment: Fraction
    business_hours: bool = False

    @classmethod
    def from_terms(cls, raw: Mapping[str, Any]) -> ResponseTarget:
        return cls(
            channel=str(raw["channel"]),
            first_response_seconds=int(raw["first_response_seconds"]),
            attainment=exact_fraction(raw["attainment"]),
            business_hours=bool(raw.get("business_hours", False)),
        )


@dataclass(frozen=True, slots=True)
class SlaTerms:
    """What a contract version promises and what a miss costs."""

    deflection_floor: Fraction | None = None
    deflection_exclusions: frozenset[str] = DEFAULT_DEFLECTION_EXCLUSIONS
    csat_target: Fraction | None = None
    csat_min_sample: int = DEFAULT_CSAT_MIN_SAMPLE
    response_targets: tuple[ResponseTarget, ...] = ()
    credits: Mapping[SlaKind, CreditRule] | None = None
    total_credit_cap_percent: Fraction | None = None

    @classmethod
    def from_terms(cls, terms: Mapping[str, Any] | SlaTerms) -> SlaTerms:
        """Read the stored contract terms (the dict of `Contract.terms()`)."""
        if isinstance(terms, SlaTerms):
            return terms

        def optional(key: str) -> Fraction | None:
            value = terms.get(key)
            return None if value is None else exact_fraction(value)

        exclusions = terms.get("deflection_exclusions")
        raw_credits = terms.get("credits") or {}
        min_sample = terms.get("csat_min_sample")
        return cls(
            deflection_floor=optional("deflection_floor"),
            deflection_exclusions=DEFAULT_DEFLECTION_EXCLUSIONS
            if exclusions is None
            else frozenset(str(i) for i in exclusions),
            csat_target=optional("csat_target"),
            csat_min_sample=DEFAULT_CSAT_MIN_SAMPLE if min_sample is None else int(min_sample),
            response_targets=tuple(ResponseTarget.from_terms(t) for t in terms.get("response_targets") or ()),
            credits={
                SlaKind(kind): CreditRule.from_terms(rule) for kind, rule in raw_credits.items() if rule is not None
            },
            total_credit_cap_percent=optional("total_credit_cap_percent"),
        )

    def credit_rule(self, kind: SlaKind) -> CreditRule | None:
        return (self.credits or {}).get(kind)
