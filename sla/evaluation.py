"""SLA evaluation from aggregate counts: deflection, CSAT and response attainment, exactly.

The rollup layer fills a `PeriodCounts` for one tenant and period (counts only, never contacts);
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
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from sla.terms import ResponseTarget, SlaKind, SlaTerms

__all__ = [
    "IntentCounts",
    "OutcomeStatus",
    "PeriodCounts",
    "ResponseCounts",
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


def _non_negative(owner: object, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{type(owner).__name__}.{name} must be a non-negative int, got {value!r}")


@dataclass(frozen=True, slots=True)
class IntentCounts:
    """Resolved contacts of one intent in the period, by resolution, and their CSAT ratings."""

    ai_resolved: int = 0
    human_resolved: int = 0
    rated: int = 0  # resolved contacts that carry a CSAT rating
    satisfied: int = 0  # of those, rated 4 or 5

    def __post_init__(self) -> None:
        _non_negative(
            self, ai_resolved=self.ai_resolved, human_resolved=self.human_resolved, rated=self.rated,
            satisfied=self.satisfied,
        )  # fmt: skip
        if self.satisfied > self.rated:
            raise ValueError("IntentCounts.satisfied cannot exceed rated")
        if self.rated > self.resolved:
            raise ValueError("IntentCounts.rated cannot exceed the resolved contacts")

    @property
    def resolved(self) -> int:
        return self.ai_resolved + self.human_resolved


@dataclass(frozen=True, slots=True)
class ResponseCounts:
    """Contacts opened in the period on one channel, and those answered within a limit.

    `first_response_seconds` names the limit the counts were taken for, so that counts for a
    different limit are never read against a target (the rollup counts per contract target).
    """

    channel: str
    first_response_seconds: int
    opened: int = 0
    within_limit: int = 0  # first response at most `first_response_seconds` after opening

    def __post_init__(self) -> None:
        _non_negative(self, opened=self.opened, within_limit=self.within_limit)
        if self.within_limit > self.opened:
            raise ValueError("ResponseCounts.within_limit cannot exceed opened")


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    """What the SLA rules need to know about one tenant's period, as counts."""

    by_intent: Mapping[str, IntentCounts] = field(default_factory=dict)
    responses: tuple[ResponseCounts, ...] = ()
    # Billable contacts of the whole period when excluded windows took days out of `by_intent`:
    # exclusions change what the SLAs measure, never what is billed. None: `by_intent` is everything.
    usage: IntentCounts | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_intent", MappingProxyType({str(k): v for k, v in self.by_intent.items()}))
        object.__setattr__(self, "responses", tuple(self.responses))
        channels = [(r.channel, r.first_response_seconds) for r in self.responses]
        if len(set(channels)) != len(channels):
            raise ValueError("one ResponseCounts per channel and limit")

    def totals(self, exclude: frozenset[str] | set[str] = frozenset()) -> IntentCounts:
        """The counts of every intent but the excluded ones, added up."""
        kept = [c for intent, c in self.by_intent.items() if intent not in exclude]
        return IntentCounts(
            ai_resolved=sum(c.ai_resolved for c in kept),
            human_resolved=sum(c.human_resolved for c in kept),
            rated=sum(c.rated for c in kept),
            satisfied=sum(c.satisfied for c in kept),
        )

    @property
    def ai_resolved(self) -> int:
        """All AI-resolved contacts of the period (billing counts every intent and every day)."""
        return (self.usage or self.totals()).ai_resolved

    @property
    def human_resolved(self) -> int:
        """All human-resolved contacts of the period (billing counts every intent and every day)."""
        return (self.usage or self.totals()).human_resolved

    def response_for(self, target: ResponseTarget) -> ResponseCounts | None:
        """The counts of the target's channel, refusing counts taken for another limit."""
        on_channel = [r for r in self.responses if r.channel == target.channel]
        for counts in on_channel:
            if counts.first_response_seconds == target.first_response_seconds:
                return counts
        if on_channel:
            limits = ", ".join(f"{r.first_response_seconds} s" for r in on_channel)
            raise ValueError(
                f"{target.channel} response counts were taken for {limits}; "
                f"the target's limit is {target.first_response_seconds} s"
            )
        return None


def deflection_rate(counts: PeriodCounts, exclusions: frozenset[str]) -> tuple[Fraction | None, int, int]:
    """(rate, ai_resolved, resolved) over intents not excluded; rate None when nothing was resolved."""
    kept = counts.totals(exclusions)
    return (Fraction(kept.ai_resolved, kept.resolved) if kept.resolved else None), kept.ai_resolved, kept.resolved


def csat_rate(counts: PeriodCounts) -> tuple[Fraction | None, int, int]:
    """(share rated 4-5, satisfied, rated) over all resolved contacts; rate None without ratings."""
    all_intents = counts.totals()
    satisfied, rated = all_intents.satisfied, all_intents.rated
    return (Fraction(satisfied, rated) if rated else None), satisfied, rated


def response_attainment(counts: ResponseCounts | None) -> tuple[Fraction | None, int, int]:
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


def evaluate_period(terms: Mapping[str, Any] | SlaTerms, counts: PeriodCounts) -> tuple[SlaOutcome, ...]:
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
