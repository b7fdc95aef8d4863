"""Money rules in one place: minor units per currency, the one rounding rule, storage and display.

Amounts in rules are `Decimal` (or exact `Fraction` while a rate is still being applied); storage
keeps integer minor units beside the currency code; nothing here or anywhere else touches floats.

- `minor_digits("JPY") == 0`, `("USD") == 2`, `("KWD") == 3` — ISO 4217 through babel's CLDR data.
- `round_minor(amount, currency)` is the only function in the code base that rounds money:
  half up (ties away from zero), exactly, whatever the size of the amount or its precision.
- `to_minor_units` / `from_minor_units` move rounded amounts to and from storage; the former refuses
  an amount that is not already on the minor unit, so storage never rounds behind the rules' back.
- `money_str` is the JSON form (`"1234.50"`), `format_money` the locale form (`"1.234,50 €"`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded, localcontext
from fractions import Fraction
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

__all__ = [
    "UnknownCurrencyError",
    "format_money",
    "from_minor_units",
    "is_on_minor_unit",
    "minor_digits",
    "money_str",
    "multiply",
    "round_minor",
    "sum_money",
    "to_decimal",
    "to_minor_units",
]

# Enough digits that no sum of invoice lines could ever need rounding; Inexact is trapped anyway.
_EXACT_PRECISION = 200


class UnknownCurrencyError(ValueError):
    """The code is not an ISO 4217 currency that babel knows."""


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def minor_digits(currency: str) -> int:
    """Decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    if currency not in _currencies():
        raise UnknownCurrencyError(f"{currency!r} is not an ISO 4217 currency code")
    return get_currency_precision(currency)


def to_decimal(value: str | int | Decimal) -> Decimal:
    """A finite Decimal from a decimal string ("1.40"), an int or a Decimal; floats are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"money and rates are decimal strings, ints or Decimals, not {type(value).__name__}")
    try:
        out = value if isinstance(value, Decimal) else Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not out.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return out


def _exact(amount: Decimal | Fraction | int) -> Fraction:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | Fraction | int):
        raise TypeError(f"amounts are Decimal, Fraction or int, not {type(amount).__name__}")
    if isinstance(amount, Decimal) and not amount.is_finite():
        raise ValueError(f"{amount!r} is not a finite amount")
    return Fraction(amount)


def _from_units(units: int, digits: int) -> Decimal:
    # Built from a string so that no decimal context can round it.
    return Decimal(f"{units}E-{digits}") if digits else Decimal(units)


def round_minor(amount: Decimal | Fraction | int, currency: str) -> Decimal:
    """Round to the currency's minor unit, half up (ties away from zero), exactly.

    Accepts exact fractions so that rates such as 2/3 are applied without any rounding before the
    line amount. The result carries exactly the currency's decimal places ("12.30", "1200", "0.125").
    """
    digits = minor_digits(currency)
    scaled = _exact(amount) * 10**digits
    magnitude = abs(scaled)
    units = (2 * magnitude.numerator + magnitude.denominator) // (2 * magnitude.denominator)
    return _from_units(-units if scaled < 0 else units, digits)


def is_on_minor_unit(amount: Decimal, currency: str) -> bool:
    """Whether the amount needs no rounding in this currency."""
    return (_exact(amount) * 10 ** minor_digits(currency)).denominator == 1


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Integer minor units for storage; the amount must already be rounded (see `round_minor`)."""
    scaled = _exact(amount) * 10 ** minor_digits(currency)
    if scaled.denominator != 1:
        raise ValueError(f"{amount} is not a whole number of {currency} minor units; round it with round_minor first")
    return scaled.numerator


def from_minor_units(units: int, currency: str) -> Decimal:
    """The Decimal amount of a stored integer of minor units."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError("minor units are ints")
    return _from_units(units, minor_digits(currency))


def _exact_context() -> AbstractContextManager[Context]:
    # Plenty of digits, and a trap instead of silent rounding should they ever run out.
    return localcontext(prec=_EXACT_PRECISION, traps=[Inexact, Rounded, InvalidOperation])


def sum_money(amounts: Iterable[Decimal]) -> Decimal:
    """The exact sum of amounts, never rounded by a decimal context."""
    with _exact_context():
        total = Decimal(0)
        for amount in amounts:
            total += to_decimal(amount)
    return total


def multiply(quantity: int, unit_price: Decimal) -> Decimal:
    """quantity x unit price, exact and unrounded (a line's precise amount)."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise TypeError("quantities are ints")
    with _exact_context():
        return Decimal(quantity) * to_decimal(unit_price)


def money_str(amount: Decimal, currency: str) -> str:
    """The JSON form of a rounded amount: plain digits with the currency's decimal places ("-12.50")."""
    if not is_on_minor_unit(amount, currency):
        raise ValueError(f"{amount} is not rounded to {currency} minor units")
    return format(round_minor(amount, currency), "f")


def format_money(amount: Decimal, currency: str, locale: str = "en_US") -> str:
    """The amount as a reader of `locale` expects it ("$1,234.50", "1.234,50 €", "￥1,235")."""
    return format_currency(round_minor(amount, currency), currency, locale=locale)
