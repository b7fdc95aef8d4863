"""SLA evaluation from aggregate counts: deflection, CSAT and response attainment, exactly.

Metering fills a `PeriodCounts` (`billing.metering.counts`) for one tenant and period (counts only, never contacts);
`evaluate_period(terms, counts)` turns it into one `SlaOutcome` per SLA that the contract promises.
Those outcomes feed the SLA report and `sla.credits.service_credits`, which billing calls, so the
invoice and the report can never disagree.

Rules (DESIGN.md, "Billing semantics"):
- deflection = ai_resolved / (ai_resolved + human_resolved) over the period's resolved contacts
  whose intent is not one of the contract's `deflection_exclusions`;
- CSAT = rated contacts with 4 or 5 / rated resolved contacts; fewer ratings than
  `csat_min_sample` reports "insufficient sample" and is never a breach;
- response attainment per channel target = contacts opened in the period on that channel with a
  first response within the limit / all contacts opened on that channel (no response = missed).
Rates are `Fraction`s compared exactly; a period with nothing to measure reports `no_data`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any, Protocol

from sla.terms import ResponseTarget, SlaKind, SlaTerms

__all__ = [
    "Counts",
    "OutcomeStatus",
    "SlaOutcome",
    "csat_rate",
    "deflection_rate",
    "evaluate_period",
    "response_attainment",
]


class OutcomeStatus(StrEnum):
    met = "met"
    missed = "missed"
    insufficient_sample = "insufficient_sample"  # CSAT with fewer ratings than the minimum sample
    no_data = "no_data"  # nothing to measure in the period (no resolved contacts, none opened)


class Counts(Protocol):
    """A period's counts as the rules read them (metering's `PeriodCounts` is one): plain values,
    so the rules depend on no storage and no other domain."""

    def totals(self, exclude: frozenset[str] | set[str] = ...) -> Any: ...

    def response_for(self, target: ResponseTarget) -> Any: ...


def deflection_rate(counts: Counts, exclusions: frozenset[str]) -> tuple[Fraction | None, int, int]:
    """(rate, ai_resolved, resolved) over intents not excluded; rate None when nothing was resolved."""
    kept = counts.totals(exclusions)
    return (Fraction(kept.ai_resolved, kept.resolved) if kept.resolved else None), kept.ai_resolved, kept.resolved


def csat_rate(counts: Counts) -> tuple[Fraction | None, int, int]:
    """(share rated 4-5, satisfied, rated) over all resolved contacts; rate None without ratings."""
    all_intents = counts.totals()
    satisfied, rated = all_intents.satisfied, all_intents.rated
    return (Fraction(satisfied, rated) if rated else None), satisfied, rated


def response_attainment(counts: Any) -> tuple[Fraction | None, int, int]:
    """(share answered within the limit, within, opened); rate None when nothing was opened."""
    if counts is None or counts.opened == 0:
        return None, 0, 0
    return Fraction(counts.within_limit, counts.opened), counts.within_limit, counts.opened


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """One SLA in one period: its target, the exact actual rate, and whether it was met."""

    sla: SlaKind
    target: Fraction
    actual: Fraction | None
    status: OutcomeStatus
    numerator: int  # ai_resolved, satisfied ratings, or responses within the limit
    denominator: int  # resolved (not excluded), ratings, or contacts opened on the channel
    channel: str | None = None  # response targets only
    first_response_seconds: int | None = None  # response targets only

    @property
    def key(self) -> str:
        """Stable name of the SLA: "deflection", "csat" or "response:<channel>"."""
        return f"{self.sla}:{self.channel}" if self.sla is SlaKind.response else str(self.sla)

    @property
    def missed(self) -> bool:
        return self.status is OutcomeStatus.missed

    @property
    def shortfall_points(self) -> Fraction:
        """(target - actual) x 100 when missed, exact and unrounded; 0 otherwise."""
        if not self.missed or self.actual is None:
            return Fraction(0)
        return (self.target - self.actual) * 100


def _status(actual: Fraction | None, target: Fraction) -> OutcomeStatus:
    if actual is None:
        return OutcomeStatus.no_data
    return OutcomeStatus.missed if actual < target else OutcomeStatus.met


def evaluate_period(terms: Mapping[str, Any] | SlaTerms, counts: Counts) -> tuple[SlaOutcome, ...]:
    """One outcome per SLA the contract promises: deflection, CSAT, then each response target."""
    sla = SlaTerms.from_terms(terms)
    outcomes: list[SlaOutcome] = []
    if sla.deflection_floor is not None:
        rate, ai, resolved = deflection_rate(counts, sla.deflection_exclusions)
        outcomes.append(
            SlaOutcome(
                SlaKind.deflection, sla.deflection_floor, rate, _status(rate, sla.deflection_floor), ai, resolved
            )
        )
    if sla.csat_target is not None:
        rate, satisfied, rated = csat_rate(counts)
        status = OutcomeStatus.insufficient_sample if rated < sla.csat_min_sample else _status(rate, sla.csat_target)
        outcomes.append(SlaOutcome(SlaKind.csat, sla.csat_target, rate, status, satisfied, rated))
    for target in sla.response_targets:
        rate, within, opened = response_attainment(counts.response_for(target))
        outcomes.append(
            SlaOutcome(
                SlaKind.response,
                target.attainment,
                rate,
                _status(rate, target.attainment),
                within,
                opened,
                channel=target.channel,
                first_response_seconds=target.first_response_seconds,
            )
        )
    return tuple(outcomes)
