"""Money rules: minor units per currency, the one half-up rounding, storage and display forms."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import (
    UnknownCurrencyError,
    format_money,
    from_minor_units,
    minor_digits,
    money_str,
    multiply,
    round_minor,
    sum_money,
    to_decimal,
    to_minor_units,
)

D = Decimal


class TestMinorUnits:
    @pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3)])
    def test_iso_4217_minor_units(self, currency: str, digits: int) -> None:
        assert minor_digits(currency) == digits

    def test_unknown_currency_is_refused(self) -> None:
        with pytest.raises(UnknownCurrencyError):
            minor_digits("ZZZ")


class TestRoundMinor:
    @pytest.mark.parametrize(
        ("amount", "currency", "expected"),
        [
            (D("1.005"), "USD", "1.01"),
            (D("1.004999"), "USD", "1.00"),
            (D("-1.005"), "USD", "-1.01"),
            (D("0.5"), "JPY", "1"),
            (D("1.5"), "JPY", "2"),
            (D("2.5"), "JPY", "3"),  # half up, not banker's rounding
            (D("-0.5"), "JPY", "-1"),
            (D("0.0005"), "KWD", "0.001"),
            (D("12.3"), "KWD", "12.300"),
            (Fraction(2, 3), "USD", "0.67"),
            (Fraction(-1, 3), "KWD", "-0.333"),
            (D("-0.001"), "USD", "0.00"),  # never "-0.00"
            (7, "USD", "7.00"),
        ],
    )
    def test_half_up_to_the_minor_unit(self, amount: Decimal | Fraction | int, currency: str, expected: str) -> None:
        assert str(round_minor(amount, currency)) == expected

    def test_floats_are_refused(self) -> None:
        with pytest.raises(TypeError):
            round_minor(1.005, "USD")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            to_decimal(1.4)  # type: ignore[arg-type]

    def test_huge_amounts_are_exact(self) -> None:
        assert round_minor(D("123456789012345678901234567890.125"), "USD") == D("123456789012345678901234567890.13")

    @given(
        amount=st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=6),
        currency=st.sampled_from(["JPY", "USD", "KWD"]),
    )
    def test_agrees_with_decimal_round_half_up(self, amount: Decimal, currency: str) -> None:
        expected = amount.quantize(D(1).scaleb(-minor_digits(currency)), rounding=ROUND_HALF_UP)
        assert round_minor(amount, currency) == expected


class TestStorageForm:
    def test_minor_units_round_trip(self) -> None:
        assert to_minor_units(D("12.30"), "USD") == 1230
        assert to_minor_units(D("1200"), "JPY") == 1200
        assert to_minor_units(D("-0.005"), "KWD") == -5
        assert from_minor_units(1230, "USD") == D("12.30")
        assert str(from_minor_units(-5, "KWD")) == "-0.005"

    def test_storage_refuses_unrounded_amounts(self) -> None:
        with pytest.raises(ValueError, match="round_minor"):
            to_minor_units(D("1.005"), "USD")
        with pytest.raises(ValueError):
            to_minor_units(D("0.5"), "JPY")

    @given(units=st.integers(min_value=-(10**15), max_value=10**15), currency=st.sampled_from(["JPY", "USD", "KWD"]))
    def test_round_trip_property(self, units: int, currency: str) -> None:
        assert to_minor_units(from_minor_units(units, currency), currency) == units


class TestExactArithmetic:
    def test_sum_and_product_are_exact(self) -> None:
        assert sum_money([D("0.10")] * 3) == D("0.30")
        assert multiply(20000, D("5.20")) == D("104000.00")
        assert multiply(3, D("0.0125")) == D("0.0375")


class TestDisplay:
    def test_json_form_has_the_currencys_places(self) -> None:
        assert money_str(D("12.3"), "USD") == "12.30"
        assert money_str(D("1200"), "JPY") == "1200"
        assert money_str(D("-1.5"), "KWD") == "-1.500"
        with pytest.raises(ValueError):
            money_str(D("1.005"), "USD")

    def test_locale_form(self) -> None:
        assert format_money(D("1234.5"), "EUR", "de_DE") == "1.234,50\xa0€"
        assert format_money(D("1234.5"), "USD", "en_US") == "$1,234.50"
        assert format_money(D("1234"), "JPY", "ja_JP") == "￥1,234"
        assert format_money(D("1.5"), "KWD", "en_US") == "KWD1.500"
