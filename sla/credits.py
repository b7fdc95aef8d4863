"""Service credits: what a missed SLA costs the BPO, as the `sla_credit` lines of the invoice.

`service_credits(terms, outcomes, usage_subtotal, currency)` is the one credit function; billing's
rating and the merchant SLA report both call it, so they always show the same credits.

Per DESIGN.md, for each missed SLA whose kind has a credit rule (the `response` rule applies to
each missed response target on its own):
    shortfall points = (target - actual) x 100, exact
    credit percent   = min(cap_percent, shortfall points x percent_per_point)
    line amount      = -round_half_up(usage subtotal x credit percent / 100)
When the credit percents add up to more than `total_credit_cap_percent`, those lines become one
line of -round_half_up(usage subtotal x cap / 100). Nothing is rounded before the line amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from billing.money import money_str, round_minor, sum_money, to_decimal
from sla.evaluation import SlaOutcome
from sla.terms import CreditRule, SlaKind, SlaTerms

__all__ = ["TOTAL_CAP_KEY", "CreditAssessment", "ServiceCredit", "credit_percent", "percent_text", "service_credits"]

TOTAL_CAP_KEY = "total_cap"

_LABELS = {SlaKind.deflection: "deflection floor", SlaKind.csat: "CSAT target", SlaKind.response: "response target"}


def percent_text(value: Fraction, places: int = 2) -> str:
    """A percent for people to read ("6.5", "66.67"); display only, never used in an amount."""
    shown = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP
    )
    text = f"{shown.normalize():f}" if shown else "0"
    return text if Fraction(shown) == value else f"≈{text}"


def credit_percent(outcome: SlaOutcome, rule: CreditRule) -> Fraction:
    """min(cap, shortfall points x percent per point); 0 for an SLA that was not missed."""
    return min(rule.cap_percent, outcome.shortfall_points * rule.percent_per_point)


@dataclass(frozen=True, slots=True)
class ServiceCredit:
    """One credit line: the percent of the usage subtotal it gives back and its (negative) amount."""

    key: str  # the SLA's key ("deflection", "csat", "response:chat") or "total_cap" for the folded line
    description: str
    percent: Fraction
    amount: Decimal  # <= 0, rounded to the currency's minor unit
    outcomes: tuple[SlaOutcome, ...]  # the missed SLAs this line credits

    def amount_str(self, currency: str) -> str:
        return money_str(self.amount, currency)


@dataclass(frozen=True, slots=True)
class CreditAssessment:
    """The credits of a period: per missed SLA, and the lines the invoice carries after the total cap."""

    currency: str
    usage_subtotal: Decimal
    per_sla: tuple[ServiceCredit, ...]  # one per missed SLA with a credit rule, before the total cap
    lines: tuple[ServiceCredit, ...]  # `per_sla`, or the one folded line when the total cap applies
    capped: bool
    cap_percent: Fraction | None

    @property
    def total(self) -> Decimal:
        """Sum of the credit lines (<= 0)."""
        return round_minor(sum_money(line.amount for line in self.lines), self.currency)

    @property
    def percent(self) -> Fraction:
        """The percent of the usage subtotal given back, after the total cap."""
        return sum((line.percent for line in self.lines), Fraction(0))

    def credit_for(self, key: str) -> ServiceCredit | None:
        """The per-SLA credit an SLA earns (before the total cap), for the SLA report."""
        return next((c for c in self.per_sla if c.key == key), None)


def _credit_amount(usage_subtotal: Decimal, percent: Fraction, currency: str) -> Decimal:
    # round_minor rounds ties away from zero, so rounding the negated exact amount is exactly
    # -round_half_up(usage subtotal x percent / 100), and a zero credit stays "0.00", not "-0.00".
    return round_minor(-(Fraction(usage_subtotal) * percent / 100), currency)


def _describe(outcome: SlaOutcome, percent: Fraction) -> str:
    what = _LABELS[outcome.sla]
    if outcome.sla is SlaKind.response:
        what = f"{outcome.channel} {what} ({outcome.first_response_seconds} s)"
    actual = percent_text(outcome.actual * 100) if outcome.actual is not None else "n/a"
    return (
        f"SLA credit: {what} missed, {actual}% against {percent_text(outcome.target * 100)}% "
        f"({percent_text(outcome.shortfall_points)} points short): {percent_text(percent)}% of usage"
    )


def service_credits(
    terms: Mapping[str, Any] | SlaTerms,
    outcomes: Iterable[SlaOutcome],
    usage_subtotal: Decimal,
    currency: str,
) -> CreditAssessment:
    """The service credits a period earns, from its SLA outcomes and usage subtotal (rounded lines)."""
    sla = SlaTerms.from_terms(terms)
    subtotal = to_decimal(usage_subtotal)
    if subtotal < 0:
        raise ValueError("the usage subtotal cannot be negative")
    per_sla: list[ServiceCredit] = []
    for outcome in outcomes:
        rule = sla.credit_rule(outcome.sla)
        if not outcome.missed or rule is None:
            continue
        percent = credit_percent(outcome, rule)
        per_sla.append(
            ServiceCredit(
                key=outcome.key,
                description=_describe(outcome, percent),
                percent=percent,
                amount=_credit_amount(subtotal, percent, currency),
                outcomes=(outcome,),
            )
        )
    cap = sla.total_credit_cap_percent
    requested = sum((c.percent for c in per_sla), Fraction(0))
    capped = False
    lines: tuple[ServiceCredit, ...] = tuple(per_sla)
    if cap is not None and requested > cap:
        capped = True
        missed = tuple(o for c in per_sla for o in c.outcomes)
        lines = (
            ServiceCredit(
                key=TOTAL_CAP_KEY,
                description=(
                    f"SLA credit: {', '.join(c.key for c in per_sla)} missed; "
                    f"{percent_text(requested)}% capped at {percent_text(cap)}% of usage"
                ),
                percent=cap,
                amount=_credit_amount(subtotal, cap, currency),
                outcomes=missed,
            ),
        )
    return CreditAssessment(
        currency=currency,
        usage_subtotal=subtotal,
        per_sla=tuple(per_sla),
        lines=lines,
        capped=capped,
        cap_percent=cap,
    )
