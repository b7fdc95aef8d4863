"""Pricing models of a contact class: one unit price, or graduated tiers.

Small strategies picked by `charge_model(price_terms)` from the contract's price shape
(`{"unit_price": "1.40"}` or `{"tiers": [{"up_to": 10000, "unit_price": "1.20"}, {"up_to": null, ...}]}`),
after Lago's `charge_models/`. Each turns a quantity into priced bands — one per tier used — with
exact, unrounded amounts; `billing.rating.service` makes invoice lines of them and rounds each line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any, Protocol

from billing.money import multiply, sum_money, to_decimal

__all__ = ["Band", "ChargeModel", "GraduatedPrice", "Tier", "UnitPrice", "charge_model"]


@dataclass(frozen=True, slots=True)
class Band:
    """A run of units priced alike: `quantity` units from `first_unit` on, at `unit_price` each."""

    quantity: int
    unit_price: Decimal
    first_unit: int  # 1-based number of the band's first unit in the period
    tier: int | None = None  # 1-based tier number; None for a unit price
    up_to: int | None = None  # the tier's upper bound; None when open-ended or a unit price

    @property
    def last_unit(self) -> int:
        return self.first_unit + self.quantity - 1

    @property
    def precise_amount(self) -> Decimal:
        """quantity x unit price, exact (Lago's `precise_amount`); rounding happens on the line."""
        return multiply(self.quantity, self.unit_price)


def _check_quantity(quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise ValueError(f"a quantity of contacts is a non-negative int, got {quantity!r}")


class ChargeModel(Protocol):
    def bands(self, quantity: int) -> tuple[Band, ...]:
        """The priced bands of `quantity` units; none for a quantity of 0."""
        ...

    def precise_price(self, quantity: int) -> Decimal:
        """The exact, unrounded price of `quantity` units."""
        ...


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """Every unit at one price."""

    unit_price: Decimal

    def bands(self, quantity: int) -> tuple[Band, ...]:
        _check_quantity(quantity)
        return (Band(quantity, self.unit_price, 1),) if quantity else ()

    def precise_price(self, quantity: int) -> Decimal:
        _check_quantity(quantity)
        return multiply(quantity, self.unit_price)


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: int | None  # inclusive upper bound of units; None for the open-ended last tier
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class GraduatedPrice:
    """Each unit priced by the tier it falls in: tier n covers units (up_to of tier n-1, up_to of tier n]."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("graduated pricing needs at least one tier")
        if self.tiers[-1].up_to is not None:
            raise ValueError("the last tier must be open-ended (up_to null)")
        bounds = [t.up_to for t in self.tiers[:-1]]
        if any(b is None or b <= 0 for b in bounds) or any(b2 <= b1 for b1, b2 in pairwise(bounds)):  # type: ignore[operator]
            raise ValueError("tier bounds must be positive and ascending, only the last open-ended")

    def bands(self, quantity: int) -> tuple[Band, ...]:
        _check_quantity(quantity)
        out: list[Band] = []
        floor = 0  # units covered by the tiers before this one
        for number, tier in enumerate(self.tiers, start=1):
            if quantity <= floor:
                break
            ceiling = quantity if tier.up_to is None else min(quantity, tier.up_to)
            out.append(Band(ceiling - floor, tier.unit_price, floor + 1, tier=number, up_to=tier.up_to))
            floor = ceiling
        return tuple(out)

    def precise_price(self, quantity: int) -> Decimal:
        return sum_money(band.precise_amount for band in self.bands(quantity))


def charge_model(price_terms: Mapping[str, Any]) -> UnitPrice | GraduatedPrice:
    """The strategy for a contract's price of one contact class."""
    unit_price = price_terms.get("unit_price")
    tiers: Sequence[Mapping[str, Any]] | None = price_terms.get("tiers")
    if (unit_price is None) == (tiers is None):
        raise ValueError("a price has either unit_price or tiers")
    if tiers is None:
        return UnitPrice(to_decimal(unit_price))
    return GraduatedPrice(
        tuple(Tier(None if t.get("up_to") is None else int(t["up_to"]), to_decimal(t["unit_price"])) for t in tiers)
    )
