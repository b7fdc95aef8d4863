"""Rating scenarios per billing situation, hand-computed to the cent, plus hypothesis properties.

Pure: no database, no fixtures. Terms are built through `tenants.schemas.Contract(...).terms()`, the
exact dict that a stored contract version holds.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.metering.counts import IntentCounts, PeriodCounts, ResponseCounts
from billing.money import is_on_minor_unit, minor_digits, round_minor
from billing.rating import (
    InvoiceLine,
    LineKind,
    RatedInvoice,
    Usage,
    adjustment_line,
    adjustments_between,
    rate_counts,
    rate_period,
)
from billing.rating.charge_models import GraduatedPrice, Tier, charge_model
from sla.evaluation import OutcomeStatus, SlaOutcome, evaluate_period
from sla.terms import SlaKind
from tenants.schemas import Contract

D = Decimal
F = Fraction

DESIGN_TIERS = [{"up_to": 20000, "unit_price": "5.20"}, {"up_to": None, "unit_price": "4.80"}]


def terms(**overrides: Any) -> dict[str, Any]:
    """DESIGN.md's sample contract (USD), with overrides."""
    raw: dict[str, Any] = {
        "effective_from": "2026-10-01",
        "currency": "USD",
        "ai_resolved": {"unit_price": "1.40"},
        "human_resolved": {"tiers": DESIGN_TIERS},
        "minimum_monthly_fee": "5000.00",
        "deflection_floor": "0.70",
        "csat_target": "0.87",
        "csat_min_sample": 100,
        "response_targets": [{"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"}],
        "credits": {
            "deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"},
            "csat": {"percent_per_point": "1.0", "cap_percent": "5.0"},
            "response": {"percent_per_point": "0.5", "cap_percent": "5.0"},
        },
        "total_credit_cap_percent": "15.0",
    }
    raw.update(overrides)
    return Contract.model_validate(raw).terms()


def usage_only(**overrides: Any) -> dict[str, Any]:
    """A contract with prices only: no minimum, no SLAs."""
    base: dict[str, Any] = {
        "minimum_monthly_fee": None,
        "deflection_floor": None,
        "csat_target": None,
        "response_targets": [],
        "credits": {},
        "total_credit_cap_percent": None,
    }
    return terms(**{**base, **overrides})


def summary(invoice: RatedInvoice) -> list[tuple[str, int, str, Decimal]]:
    return [(str(line.kind), line.quantity, line.unit_price, line.amount) for line in invoice.lines]


class TestUnitAndGraduatedPrices:
    def test_graduated_tiers_crossing_a_boundary(self) -> None:
        # ai 50,000 x 1.40 = 70,000.00; human 20,000 x 5.20 = 104,000.00 + 5,000 x 4.80 = 24,000.00
        invoice = rate_period(usage_only(), Usage(ai_resolved=50000, human_resolved=25000))
        assert summary(invoice) == [
            ("ai_resolved", 50000, "1.40", D("70000.00")),
            ("human_resolved", 20000, "5.20", D("104000.00")),
            ("human_resolved", 5000, "4.80", D("24000.00")),
        ]
        assert invoice.usage_subtotal == D("198000.00")
        assert invoice.total == D("198000.00")
        assert invoice.lines[1].description == "Human-resolved contacts, tier 1 (1 to 20,000)"
        assert invoice.lines[2].description == "Human-resolved contacts, tier 2 (from 20,001)"

    def test_exactly_at_the_boundary_uses_one_tier(self) -> None:
        invoice = rate_period(usage_only(), Usage(human_resolved=20000))
        assert summary(invoice) == [("human_resolved", 20000, "5.20", D("104000.00"))]

    def test_one_past_the_boundary_uses_the_next_tier_for_that_unit(self) -> None:
        invoice = rate_period(usage_only(), Usage(human_resolved=20001))
        assert summary(invoice) == [
            ("human_resolved", 20000, "5.20", D("104000.00")),
            ("human_resolved", 1, "4.80", D("4.80")),
        ]
        assert invoice.total == D("104004.80")

    def test_three_tiers_crossing_two_boundaries(self) -> None:
        tiers = [
            {"up_to": 100, "unit_price": "1.00"},
            {"up_to": 1000, "unit_price": "0.80"},
            {"up_to": None, "unit_price": "0.55"},
        ]
        # 100 x 1.00 + 900 x 0.80 + 234 x 0.55 = 100.00 + 720.00 + 128.70
        invoice = rate_period(usage_only(ai_resolved={"tiers": tiers}), Usage(ai_resolved=1234))
        assert summary(invoice) == [
            ("ai_resolved", 100, "1.00", D("100.00")),
            ("ai_resolved", 900, "0.80", D("720.00")),
            ("ai_resolved", 234, "0.55", D("128.70")),
        ]
        assert invoice.total == D("948.70")

    def test_no_contacts_no_usage_lines(self) -> None:
        invoice = rate_period(usage_only(), Usage())
        assert invoice.lines == ()
        assert (invoice.usage_subtotal, invoice.total) == (D("0.00"), D("0.00"))

    def test_negative_quantities_are_refused(self) -> None:
        with pytest.raises(ValueError):
            Usage(ai_resolved=-1)
        with pytest.raises(ValueError):
            charge_model({"unit_price": "1.00"}).bands(-1)


class TestRoundingPerCurrency:
    def test_jpy_lines_round_half_up_to_whole_yen_and_the_total_sums_rounded_lines(self) -> None:
        t = usage_only(
            currency="JPY",
            ai_resolved={"unit_price": "12.5"},
            human_resolved={"tiers": [{"up_to": 1, "unit_price": "99.5"}, {"up_to": None, "unit_price": "0.5"}]},
        )
        # ai 3 x 12.5 = 37.5 -> 38; human 1 x 99.5 -> 100 and 1 x 0.5 -> 1 (half up)
        invoice = rate_period(t, Usage(ai_resolved=3, human_resolved=2))
        assert summary(invoice) == [
            ("ai_resolved", 3, "12.5", D("38")),
            ("human_resolved", 1, "99.5", D("100")),
            ("human_resolved", 1, "0.5", D("1")),
        ]
        # The total is the sum of rounded lines (139), not the rounded sum of precise ones (137.5 -> 138).
        assert invoice.total == D("139")
        assert invoice.as_json()["total"] == "139"
        assert invoice.lines[0].precise_amount == D("37.5")

    def test_kwd_lines_keep_three_places(self) -> None:
        t = usage_only(currency="KWD", ai_resolved={"unit_price": "0.1235"}, human_resolved={"unit_price": "0.0005"})
        # 1 x 0.1235 -> 0.124; 3 x 0.0005 = 0.0015 -> 0.002
        invoice = rate_period(t, Usage(ai_resolved=1, human_resolved=3))
        assert [line.amount for line in invoice.lines] == [D("0.124"), D("0.002")]
        assert invoice.as_json()["total"] == "0.126"

    def test_kwd_credit_and_true_up(self) -> None:
        t = terms(
            currency="KWD",
            ai_resolved={"unit_price": "0.350"},
            human_resolved={"unit_price": "1.250"},
            minimum_monthly_fee="1000.000",
        )
        # 2 AI, 1 human: 0.700 + 1.250 = 1.950; true-up 998.050.
        # Deflection 2/3: 20/3 % of 1.950 = 0.13 -> -0.130. Total 1000.000 - 0.130 = 999.870.
        invoice = rate_period(t, Usage(2, 1), evaluate_period(t, PeriodCounts({"wismo": IntentCounts(2, 1)})))
        assert summary(invoice)[2:] == [
            ("minimum_true_up", 1, "998.050", D("998.050")),
            ("sla_credit", 1, "-0.130", D("-0.130")),
        ]
        assert invoice.total == D("999.870")


class TestMinimumTrueUp:
    def test_usage_below_the_minimum_is_made_up_and_credits_use_the_usage_subtotal(self) -> None:
        # 1,000 x 1.40 + 500 x 5.20 = 1,400.00 + 2,600.00 = 4,000.00 < 5,000.00: true-up 1,000.00.
        # Deflection 1000/1500 = 2/3: 10/3 points x 2.0 = 20/3 % of 4,000.00 = 266.666... -> -266.67.
        t = terms()
        period = PeriodCounts({"wismo": IntentCounts(1000, 500)})
        invoice = rate_counts(t, period)
        assert summary(invoice) == [
            ("ai_resolved", 1000, "1.40", D("1400.00")),
            ("human_resolved", 500, "5.20", D("2600.00")),
            ("minimum_true_up", 1, "1000.00", D("1000.00")),
            ("sla_credit", 1, "-266.67", D("-266.67")),
        ]
        assert (invoice.usage_subtotal, invoice.minimum_true_up, invoice.credit_total, invoice.total) == (
            D("4000.00"),
            D("1000.00"),
            D("-266.67"),
            D("4733.33"),
        )

    def test_no_usage_bills_the_minimum(self) -> None:
        invoice = rate_period(terms(), Usage())
        assert summary(invoice) == [("minimum_true_up", 1, "5000.00", D("5000.00"))]

    def test_at_or_above_the_minimum_no_true_up(self) -> None:
        # 3,000 x 1.40 + 150 x 5.20 = 4,200.00 + 780.00 = 4,980.00 -> true-up 20.00; 3,000 + 154 -> 5,000.80
        assert rate_period(terms(), Usage(3000, 150)).minimum_true_up == D("20.00")
        assert rate_period(terms(), Usage(3000, 154)).lines_of(LineKind.minimum_true_up) == ()
        exact = terms(minimum_monthly_fee="4980.00")
        assert rate_period(exact, Usage(3000, 150)).lines_of(LineKind.minimum_true_up) == ()


class TestSlaCredits:
    def test_each_missed_sla_is_one_credit_line(self) -> None:
        # Usage 198,000.00 (see the tiers scenario).
        # deflection 2/3: 20/3 % -> -13,200.00; CSAT 85 %: 2 points x 1.0 = 2 % -> -3,960.00;
        # chat 88 %: 2 points x 0.5 = 1 % -> -1,980.00. 9.67 % < 15 %: no folding.
        period = PeriodCounts(
            {"wismo": IntentCounts(50000, 25000, rated=1000, satisfied=850)},
            (ResponseCounts("chat", 60, opened=1000, within_limit=880),),
        )
        invoice = rate_counts(terms(), period)
        credits = invoice.lines_of(LineKind.sla_credit)
        assert [(c.sla, c.amount) for c in credits] == [
            ("deflection", D("-13200.00")),
            ("csat", D("-3960.00")),
            ("response:chat", D("-1980.00")),
        ]
        assert invoice.as_json() | {"lines": None} == {
            "currency": "USD",
            "lines": None,
            "usage_subtotal": "198000.00",
            "credit_total": "-19140.00",
            "total": "178860.00",
        }

    def test_the_total_cap_folds_the_credits_into_one_line(self) -> None:
        # deflection 50 % -> 40 % capped at 10; CSAT 50 % -> 37 % capped at 5; chat 50 % -> 20 % capped at 5.
        # 10 + 5 + 5 = 20 % > 15 %: one line of -15 % of the usage subtotal.
        period = PeriodCounts(
            {"wismo": IntentCounts(3000, 3000, rated=200, satisfied=100)},
            (ResponseCounts("chat", 60, opened=10, within_limit=5),),
        )
        invoice = rate_counts(terms(), period)
        # usage: 3,000 x 1.40 = 4,200.00 + 3,000 x 5.20 = 15,600.00 -> 19,800.00; 15 % = 2,970.00
        assert invoice.usage_subtotal == D("19800.00")
        (line,) = invoice.lines_of(LineKind.sla_credit)
        assert (line.sla, line.amount) == ("total_cap", D("-2970.00"))
        assert invoice.total == D("16830.00")

    def test_insufficient_csat_sample_earns_no_credit(self) -> None:
        period = PeriodCounts({"wismo": IntentCounts(700, 300, rated=99, satisfied=0)})
        outcomes = evaluate_period(terms(), period)
        assert [o.status for o in outcomes] == [
            OutcomeStatus.met,
            OutcomeStatus.insufficient_sample,
            OutcomeStatus.no_data,  # no chat contacts
        ]
        assert rate_counts(terms(), period).lines_of(LineKind.sla_credit) == ()

    def test_excluded_intents_are_billed_but_not_measured(self) -> None:
        # Deflection over wismo only: 700/1000 = 70 %, met. Billing counts the 100 chargebacks too.
        period = PeriodCounts({"wismo": IntentCounts(700, 300), "chargeback": IntentCounts(0, 100)})
        invoice = rate_counts(usage_only(deflection_floor="0.70", credits=terms()["credits"]), period)
        assert invoice.lines_of(LineKind.sla_credit) == ()
        assert [line.quantity for line in invoice.lines_of(LineKind.human_resolved)] == [400]

    def test_credits_are_on_the_usage_subtotal_not_the_true_up(self) -> None:
        t = terms()
        outcomes = (SlaOutcome(SlaKind.deflection, F(7, 10), F(1, 2), OutcomeStatus.missed, 1, 2),)
        invoice = rate_period(t, Usage(1, 1), outcomes)
        # usage 6.60, 10 % (capped) -> -0.66; the true-up (4,993.40) earns no credit.
        assert invoice.credit_total == D("-0.66")
        assert invoice.total == D("4999.34")


class TestAdjustments:
    def test_adjustment_lines_are_carried_and_counted_in_the_total(self) -> None:
        late = adjustment_line("Correction to 2026-09: human-resolved contacts 20,003 → 20,006", D("14.40"), "USD")
        invoice = rate_period(usage_only(), Usage(10, 0), adjustments=[late])
        assert summary(invoice)[-1] == ("adjustment", 1, "14.40", D("14.40"))
        assert (invoice.usage_subtotal, invoice.adjustment_total, invoice.total) == (
            D("14.00"),
            D("14.40"),
            D("28.40"),
        )

    def test_refuses_unrounded_or_foreign_lines(self) -> None:
        with pytest.raises(ValueError):
            adjustment_line("x", D("0.005"), "USD")
        with pytest.raises(ValueError):
            rate_period(usage_only(), Usage(), adjustments=[InvoiceLine(LineKind.sla_credit, "x", 1, "-1", D("-1"))])

    def test_a_late_change_to_a_finalized_period_becomes_adjustments(self) -> None:
        # A reopened AI contact became human after finalization: ai 10 -> 9 (-1.40),
        # human 20,003 -> 20,004 (the unit falls in tier 2: +4.80).
        billed = rate_period(usage_only(), Usage(10, 20003))
        rerated = rate_period(usage_only(), Usage(9, 20004))
        lines = adjustments_between(billed, rerated, "2026-09")
        assert [(line.description, line.amount) for line in lines] == [
            ("Correction to 2026-09: ai-resolved contacts 10 → 9", D("-1.40")),
            ("Correction to 2026-09: human-resolved contacts 20,003 → 20,004", D("4.80")),
        ]
        assert sum(line.amount for line in lines) == rerated.total - billed.total

    def test_credit_and_true_up_changes_are_adjusted_too(self) -> None:
        t = terms()
        billed = rate_counts(t, PeriodCounts({"wismo": IntentCounts(700, 300)}))  # 70 %: met
        rerated = rate_counts(t, PeriodCounts({"wismo": IntentCounts(699, 301)}))  # 69.9 %: 0.2 % credit
        # usage 980.00 + 1,560.00 = 2,540.00 -> 978.60 + 1,565.20 = 2,543.80 (ai -1.40, human +5.20);
        # true-up 2,460.00 -> 2,456.20 (-3.80); credit 0.1 points x 2.0 = 0.2 % of 2,543.80 = 5.0876 -> -5.09
        assert [line.amount for line in adjustments_between(billed, rerated, "2026-09")] == [
            D("-1.40"),
            D("5.20"),
            D("-3.80"),
            D("-5.09"),
        ]

    def test_nothing_changed_nothing_to_adjust(self) -> None:
        invoice = rate_period(terms(), Usage(10, 10))
        assert adjustments_between(invoice, invoice, "2026-09") == ()


prices = st.decimals(min_value=D("0.01"), max_value=D("50"), places=4, allow_nan=False, allow_infinity=False)
minor_prices = st.decimals(min_value=D("0.01"), max_value=D("50"), places=2, allow_nan=False, allow_infinity=False)


@st.composite
def graduated(draw: st.DrawFn, price: st.SearchStrategy[Decimal] = prices) -> GraduatedPrice:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=3000), max_size=4)))
    tier_prices = draw(st.lists(price, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return GraduatedPrice(tuple(Tier(up_to, p) for up_to, p in zip([*bounds, None], tier_prices, strict=True)))


def price_of_unit(model: GraduatedPrice, unit: int) -> Decimal:
    """The price of the n-th unit: the first tier whose bound it does not pass."""
    return next(t.unit_price for t in model.tiers if t.up_to is None or unit <= t.up_to)


class TestPricingProperties:
    @given(model=graduated(), quantity=st.integers(min_value=0, max_value=4000))
    def test_tier_lines_sum_to_the_graduated_price_of_the_quantity(self, model: GraduatedPrice, quantity: int) -> None:
        bands = model.bands(quantity)
        assert sum(b.quantity for b in bands) == quantity
        assert all(b.quantity > 0 for b in bands)
        # Unit by unit, each priced by the tier it falls in.
        assert sum(b.precise_amount for b in bands) == sum(
            (price_of_unit(model, u) for u in range(1, quantity + 1)), D(0)
        )

    @given(model=graduated(minor_prices), quantity=st.integers(min_value=0, max_value=4000))
    def test_with_prices_on_the_minor_unit_the_rounded_lines_are_the_graduated_price(
        self, model: GraduatedPrice, quantity: int
    ) -> None:
        terms_ = usage_only(
            human_resolved={"tiers": [{"up_to": t.up_to, "unit_price": str(t.unit_price)} for t in model.tiers]}
        )
        invoice = rate_period(terms_, Usage(human_resolved=quantity))
        assert invoice.usage_subtotal == model.precise_price(quantity)

    @given(
        currency=st.sampled_from(["USD", "JPY", "KWD", "EUR"]),
        ai_price=prices,
        tiers=graduated(),
        usage=st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
        minimum=st.none() | st.decimals(min_value=0, max_value=20000, places=3),
        actuals=st.lists(st.fractions(0, 1, max_denominator=1000), min_size=3, max_size=3),
        total_cap=st.none() | st.decimals(min_value=0, max_value=100, places=1),
        adjustments=st.lists(st.integers(-(10**6), 10**6), max_size=3),
    )
    def test_totals_are_sums_of_rounded_lines_and_credits_stay_under_their_caps(
        self,
        currency: str,
        ai_price: Decimal,
        tiers: GraduatedPrice,
        usage: tuple[int, int],
        minimum: Decimal | None,
        actuals: list[Fraction],
        total_cap: Decimal | None,
        adjustments: list[int],
    ) -> None:
        t = terms(
            currency=currency,
            ai_resolved={"unit_price": str(ai_price)},
            human_resolved={"tiers": [{"up_to": x.up_to, "unit_price": str(x.unit_price)} for x in tiers.tiers]},
            minimum_monthly_fee=None if minimum is None else str(minimum),
            response_targets=[],
            total_credit_cap_percent=None if total_cap is None else str(total_cap),
        )
        target = F(9, 10)
        outcomes = tuple(
            SlaOutcome(
                kind,
                target,
                a,
                OutcomeStatus.missed if a < target else OutcomeStatus.met,
                0,
                0,
                channel="chat" if kind is SlaKind.response else None,
            )
            for kind, a in zip(SlaKind, actuals, strict=True)
        )
        scale = D(1).scaleb(-minor_digits(currency))
        extra = [adjustment_line("late change", units * scale, currency) for units in adjustments]
        invoice = rate_period(t, Usage(*usage), outcomes, extra)

        assert all(is_on_minor_unit(line.amount, currency) for line in invoice.lines)
        assert invoice.total == sum((line.amount for line in invoice.lines), D(0))
        assert invoice.usage_subtotal == sum(
            (line.amount for line in invoice.lines if line.kind in {LineKind.ai_resolved, LineKind.human_resolved}),
            D(0),
        )
        assert invoice.credit_total == sum((line.amount for line in invoice.lines_of(LineKind.sla_credit)), D(0))
        for line in invoice.lines:
            if line.precise_amount is not None and line.kind is not LineKind.minimum_true_up:
                assert line.amount == round_minor(line.precise_amount, currency)
        if minimum is not None and invoice.usage_subtotal < minimum:
            assert invoice.usage_subtotal + invoice.minimum_true_up == round_minor(minimum, currency)

        # Credits: each within its rule's cap, all within the total cap (when folded: exactly the cap).
        subtotal = F(invoice.usage_subtotal)
        rule_caps = {"deflection": F(10), "csat": F(5), "response": F(5)}
        credit_lines = invoice.lines_of(LineKind.sla_credit)
        for line in credit_lines:
            assert line.amount <= 0
            rule = (line.sla or "").split(":")[0]
            if rule in rule_caps:  # a per-SLA line, not the folded one
                assert -line.amount <= round_minor(subtotal * rule_caps[rule] / 100, currency)
        if total_cap is not None:
            half_unit = F(1, 2 * 10 ** minor_digits(currency))
            assert F(-invoice.credit_total) <= subtotal * F(total_cap) / 100 + len(credit_lines) * half_unit
