"""Rating: a period's usage and SLA outcomes, priced by the contract in force, as invoice lines.

Storage-free: the invoices part reads the contract version in force at the period's start (its
`terms()` dict) and the period's rollups, and calls `rate_period` (or `rate_counts` straight from
the SLA layer's `PeriodCounts`). Lines follow DESIGN.md's billing semantics to the cent:

1. `ai_resolved` and `human_resolved` lines: one per unit price, or one per graduated tier used;
   each line's amount = round_minor(quantity x unit price).
2. `minimum_true_up` when the usage subtotal is below `minimum_monthly_fee`.
3. `sla_credit` lines from `sla.credits.service_credits` (the one credit function), on the usage subtotal.
4. `adjustment` lines passed in (late changes to a finalized period; see `adjustments_between`).
The totals are sums of the rounded lines (`RatedInvoice`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing.metering.counts import PeriodCounts
from billing.money import money_str, round_minor, sum_money, to_decimal
from billing.rating.charge_models import Band, GraduatedPrice, charge_model
from billing.rating.lines import InvoiceLine, LineKind, RatedInvoice
from sla.credits import service_credits
from sla.evaluation import SlaOutcome, evaluate_period

__all__ = ["Usage", "adjustment_line", "adjustments_between", "rate_counts", "rate_period", "usage_lines"]

_LABELS = {LineKind.ai_resolved: "AI-resolved contacts", LineKind.human_resolved: "Human-resolved contacts"}


@dataclass(frozen=True, slots=True)
class Usage:
    """Billable contacts of a period: resolved in it, by resolution (open and abandoned are not billed)."""

    ai_resolved: int = 0
    human_resolved: int = 0

    def __post_init__(self) -> None:
        for name in ("ai_resolved", "human_resolved"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Usage.{name} must be a non-negative int, got {value!r}")


def _band_description(kind: LineKind, band: Band, graduated: bool) -> str:
    label = _LABELS[kind]
    if not graduated:
        return label
    if band.up_to is None:
        return f"{label}, tier {band.tier} (from {band.first_unit:,})"
    # A band always starts where its tier starts, right after the previous tier's bound.
    return f"{label}, tier {band.tier} ({band.first_unit:,} to {band.up_to:,})"


def usage_lines(
    kind: LineKind, price_terms: Mapping[str, Any], quantity: int, currency: str
) -> tuple[InvoiceLine, ...]:
    """The lines of one contact class: one per unit price, or one per tier used; none for no contacts."""
    model = charge_model(price_terms)
    graduated = isinstance(model, GraduatedPrice)
    return tuple(
        InvoiceLine(
            kind=kind,
            description=_band_description(kind, band, graduated),
            quantity=band.quantity,
            unit_price=format(band.unit_price, "f"),
            amount=round_minor(band.precise_amount, currency),
            precise_amount=band.precise_amount,
        )
        for band in model.bands(quantity)
    )


def adjustment_line(description: str, amount: Decimal, currency: str) -> InvoiceLine:
    """A one-off `adjustment` line of a rounded amount (positive charges, negative gives back)."""
    amount = to_decimal(amount)
    if round_minor(amount, currency) != amount:
        raise ValueError(f"an adjustment of {amount} is not rounded to {currency} minor units")
    amount = round_minor(amount, currency)
    return InvoiceLine(LineKind.adjustment, description, 1, money_str(amount, currency), amount)


def _check_adjustments(adjustments: Sequence[InvoiceLine], currency: str) -> tuple[InvoiceLine, ...]:
    for line in adjustments:
        if line.kind is not LineKind.adjustment:
            raise ValueError(f"adjustments must be lines of kind 'adjustment', not {line.kind!r}")
        if round_minor(line.amount, currency) != line.amount:
            raise ValueError(f"adjustment {line.description!r}: {line.amount} is not rounded to {currency}")
    return tuple(adjustments)


def rate_period(
    terms: Mapping[str, Any],
    usage: Usage,
    outcomes: Iterable[SlaOutcome] = (),
    adjustments: Sequence[InvoiceLine] = (),
) -> RatedInvoice:
    """The invoice lines of one period, from the contract's terms, usage, SLA outcomes and adjustments."""
    currency = str(terms["currency"])
    lines: list[InvoiceLine] = [
        *usage_lines(LineKind.ai_resolved, terms["ai_resolved"], usage.ai_resolved, currency),
        *usage_lines(LineKind.human_resolved, terms["human_resolved"], usage.human_resolved, currency),
    ]
    usage_subtotal = round_minor(sum_money(line.amount for line in lines), currency)

    minimum = terms.get("minimum_monthly_fee")
    if minimum is not None and usage_subtotal < to_decimal(minimum):
        fee = to_decimal(minimum)
        true_up = round_minor(fee - usage_subtotal, currency)
        if true_up:
            lines.append(
                InvoiceLine(
                    LineKind.minimum_true_up,
                    f"Minimum monthly fee {money_str(round_minor(fee, currency), currency)} {currency}: "
                    f"true-up over usage of {money_str(usage_subtotal, currency)}",
                    1,
                    money_str(true_up, currency),
                    true_up,
                    precise_amount=sum_money([fee, -usage_subtotal]),
                )
            )

    credits = service_credits(terms, outcomes, usage_subtotal, currency)
    lines.extend(
        InvoiceLine(
            LineKind.sla_credit,
            credit.description,
            1,
            money_str(credit.amount, currency),
            credit.amount,
            sla=credit.key,
        )
        for credit in credits.lines
    )
    lines.extend(_check_adjustments(adjustments, currency))
    return RatedInvoice(currency, tuple(lines))


def rate_counts(
    terms: Mapping[str, Any],
    counts: PeriodCounts,
    adjustments: Sequence[InvoiceLine] = (),
    *,
    usage: Usage | None = None,
) -> RatedInvoice:
    """`rate_period` from the SLA layer's period counts: usage over every intent (or ``usage``, e.g. a
    month-end projection, priced instead), outcomes by its rules from ``counts``."""
    usage = usage or Usage(ai_resolved=counts.ai_resolved, human_resolved=counts.human_resolved)
    return rate_period(terms, usage, evaluate_period(terms, counts), adjustments)


def adjustments_between(billed: RatedInvoice, rerated: RatedInvoice, period: str) -> tuple[InvoiceLine, ...]:
    """Adjustment lines that bring a finalized period (`billed`) to what it rates at now (`rerated`).

    One line per kind whose amount changed (the next invoice carries them; the finalized one never
    changes). Both are sums of rounded lines, so each difference is exact.
    """
    if billed.currency != rerated.currency:
        raise ValueError("a period is re-rated in the currency it was billed in")
    currency = billed.currency
    out: list[InvoiceLine] = []
    for kind in (LineKind.ai_resolved, LineKind.human_resolved, LineKind.minimum_true_up, LineKind.sla_credit):
        before, after = billed.lines_of(kind), rerated.lines_of(kind)
        delta = sum_money(line.amount for line in after) - sum_money(line.amount for line in before)
        if not delta:
            continue
        if kind in _LABELS:
            was, now = sum(line.quantity for line in before), sum(line.quantity for line in after)
            what = f"{_LABELS[kind].lower()} {was:,} → {now:,}"
        elif kind is LineKind.minimum_true_up:
            what = "minimum fee true-up"
        else:
            what = "SLA credits"
        out.append(adjustment_line(f"Correction to {period}: {what}", delta, currency))
    return tuple(out)
