"""Invoice lines and a rated invoice's totals: the shape that rating hands to the invoices part.

A line is `kind`, `description`, `quantity`, `unit_price` (a decimal string, as it travels) and
`amount` (a Decimal already rounded to the currency's minor unit; `precise_amount` keeps the
unrounded value, as Lago's fees do). Totals are always sums of rounded lines:
`usage_subtotal` = ai_resolved + human_resolved lines, `credit_total` = sla_credit lines (<= 0),
`total` = every line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from billing.money import is_on_minor_unit, money_str, round_minor, sum_money

__all__ = ["USAGE_KINDS", "InvoiceLine", "LineKind", "RatedInvoice"]


class LineKind(StrEnum):
    ai_resolved = "ai_resolved"
    human_resolved = "human_resolved"
    minimum_true_up = "minimum_true_up"
    sla_credit = "sla_credit"
    adjustment = "adjustment"


USAGE_KINDS = frozenset({LineKind.ai_resolved, LineKind.human_resolved})


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    kind: LineKind
    description: str
    quantity: int
    unit_price: str  # decimal string: the contract's price, or the amount itself for one-off lines
    amount: Decimal  # rounded to the currency's minor unit
    precise_amount: Decimal | None = None  # before rounding, where a line was computed from a rate
    sla: str | None = None  # sla_credit lines: the SLA key ("deflection", "response:chat", "total_cap")

    def as_json(self, currency: str) -> dict[str, Any]:
        """The line as the invoice JSON carries it (DESIGN.md, "Invoice shape")."""
        return {
            "kind": str(self.kind),
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": money_str(self.amount, currency),
        }


@dataclass(frozen=True, slots=True)
class RatedInvoice:
    """The lines of one period's invoice in one currency, and their totals."""

    currency: str
    lines: tuple[InvoiceLine, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        for line in self.lines:
            if not is_on_minor_unit(line.amount, self.currency):
                raise ValueError(f"line {line.description!r}: {line.amount} is not rounded to {self.currency}")

    @classmethod
    def from_lines(cls, currency: str, lines: Iterable[InvoiceLine]) -> RatedInvoice:
        return cls(currency, tuple(lines))

    def _sum(self, kinds: frozenset[LineKind] | None = None) -> Decimal:
        amounts = (line.amount for line in self.lines if kinds is None or line.kind in kinds)
        return round_minor(sum_money(amounts), self.currency)  # exact sum; only normalises the places

    def lines_of(self, *kinds: LineKind) -> tuple[InvoiceLine, ...]:
        return tuple(line for line in self.lines if line.kind in kinds)

    @property
    def usage_subtotal(self) -> Decimal:
        return self._sum(USAGE_KINDS)

    @property
    def minimum_true_up(self) -> Decimal:
        return self._sum(frozenset({LineKind.minimum_true_up}))

    @property
    def credit_total(self) -> Decimal:
        """Sum of the sla_credit lines; zero or negative."""
        return self._sum(frozenset({LineKind.sla_credit}))

    @property
    def adjustment_total(self) -> Decimal:
        return self._sum(frozenset({LineKind.adjustment}))

    @property
    def total(self) -> Decimal:
        return self._sum()

    def as_json(self) -> dict[str, Any]:
        """Lines and totals as the invoice JSON carries them; the invoices part adds id, number, status."""
        return {
            "currency": self.currency,
            "lines": [line.as_json(self.currency) for line in self.lines],
            "usage_subtotal": money_str(self.usage_subtotal, self.currency),
            "credit_total": money_str(self.credit_total, self.currency),
            "total": money_str(self.total, self.currency),
        }
