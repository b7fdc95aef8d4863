"""SLA evaluation from counts and the service-credit function, with hand-computed figures.

Pure: no database, no fixtures. Contract terms are built through `tenants.schemas.Contract` so the
dict is exactly what storage holds.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.metering.counts import IntentCounts, PeriodCounts, ResponseCounts
from billing.money import minor_digits, round_minor
from sla.credits import TOTAL_CAP_KEY, credit_percent, service_credits
from sla.evaluation import OutcomeStatus, SlaOutcome, evaluate_period
from sla.terms import CreditRule, SlaKind, SlaTerms
from tenants.schemas import Contract

D = Decimal
F = Fraction


def terms(**overrides: Any) -> dict[str, Any]:
    """DESIGN.md's sample contract, with overrides."""
    raw: dict[str, Any] = {
        "effective_from": "2026-10-01",
        "currency": "USD",
        "ai_resolved": {"unit_price": "1.40"},
        "human_resolved": {"tiers": [{"up_to": 20000, "unit_price": "5.20"}, {"up_to": None, "unit_price": "4.80"}]},
        "minimum_monthly_fee": "5000.00",
        "deflection_floor": "0.70",
        "deflection_exclusions": ["chargeback", "fraud"],
        "csat_target": "0.87",
        "csat_min_sample": 100,
        "response_targets": [
            {"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"},
            {"channel": "email", "first_response_seconds": 3600, "attainment": "0.80"},
        ],
        "credits": {
            "deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"},
            "csat": {"percent_per_point": "1.0", "cap_percent": "5.0"},
            "response": {"percent_per_point": "0.5", "cap_percent": "5.0"},
        },
        "total_credit_cap_percent": "15.0",
    }
    raw.update(overrides)
    return Contract.model_validate(raw).terms()


def counts(
    ai: int = 700,
    human: int = 300,
    rated: int = 200,
    satisfied: int = 180,
    chat: tuple[int, int] = (100, 95),
    email: tuple[int, int] = (100, 90),
    **extra_intents: IntentCounts,
) -> PeriodCounts:
    return PeriodCounts(
        by_intent={"wismo": IntentCounts(ai, human, rated, satisfied), **extra_intents},
        responses=(ResponseCounts("chat", 60, *chat), ResponseCounts("email", 3600, *email)),
    )


def outcome(outcomes: tuple[SlaOutcome, ...], key: str) -> SlaOutcome:
    return next(o for o in outcomes if o.key == key)


class TestReadTerms:
    def test_decimal_strings_become_exact_fractions(self) -> None:
        sla = SlaTerms.from_terms(terms())
        assert sla.deflection_floor == F(7, 10)
        assert sla.csat_target == F(87, 100)
        assert sla.response_targets[0].attainment == F(9, 10)
        assert sla.credit_rule(SlaKind.deflection) == CreditRule(F(2), F(10))
        assert sla.total_credit_cap_percent == F(15)
        assert sla.deflection_exclusions == frozenset({"chargeback", "fraud"})

    def test_defaults_when_keys_are_missing(self) -> None:
        sla = SlaTerms.from_terms({"currency": "USD"})
        assert sla.deflection_floor is None
        assert sla.deflection_exclusions == frozenset({"chargeback", "fraud"})
        assert sla.csat_min_sample == 100
        assert sla.credit_rule(SlaKind.csat) is None

    def test_floats_are_refused(self) -> None:
        with pytest.raises(TypeError):
            SlaTerms.from_terms({"deflection_floor": 0.7})


class TestDeflection:
    def test_all_met_at_exactly_the_target(self) -> None:
        # 700 / 1000 = 0.70 exactly: at the floor is met, not missed.
        found = outcome(evaluate_period(terms(), counts()), "deflection")
        assert (found.actual, found.status, found.numerator, found.denominator) == (
            F(7, 10),
            OutcomeStatus.met,
            700,
            1000,
        )
        assert found.shortfall_points == 0

    def test_one_contact_below_the_floor_is_a_miss_with_an_exact_shortfall(self) -> None:
        found = outcome(evaluate_period(terms(), counts(ai=699, human=301)), "deflection")
        assert found.status is OutcomeStatus.missed
        assert found.shortfall_points == F(1, 10)  # (0.70 - 0.699) x 100

    def test_excluded_intents_are_left_out(self) -> None:
        # With chargeback and fraud counted, 700 / 1150 would miss; excluded, 700 / 1000 meets.
        period = counts(chargeback=IntentCounts(0, 100), fraud=IntentCounts(0, 50))
        found = outcome(evaluate_period(terms(), period), "deflection")
        assert (found.actual, found.status) == (F(7, 10), OutcomeStatus.met)
        # Billing still counts every intent.
        assert (period.ai_resolved, period.human_resolved) == (700, 450)

    def test_the_contracts_own_exclusions_apply(self) -> None:
        period = counts(chargeback=IntentCounts(0, 100), complaint=IntentCounts(0, 100))
        found = outcome(evaluate_period(terms(deflection_exclusions=["complaint"]), period), "deflection")
        assert found.actual == F(700, 1100)
        assert found.status is OutcomeStatus.missed

    def test_a_period_without_resolved_contacts_has_no_data_and_no_breach(self) -> None:
        found = outcome(evaluate_period(terms(), counts(ai=0, human=0, rated=0, satisfied=0)), "deflection")
        assert (found.actual, found.status) == (None, OutcomeStatus.no_data)

    def test_no_floor_no_deflection_sla(self) -> None:
        keys = [o.key for o in evaluate_period(terms(deflection_floor=None), counts())]
        assert keys == ["csat", "response:chat", "response:email"]


class TestCsat:
    def test_share_of_ratings_four_or_five(self) -> None:
        found = outcome(evaluate_period(terms(), counts(rated=200, satisfied=173)), "csat")
        assert (found.actual, found.status) == (F(173, 200), OutcomeStatus.missed)
        assert found.shortfall_points == F(1, 2)  # 87 - 86.5

    def test_fewer_ratings_than_the_minimum_sample_is_insufficient_and_no_breach(self) -> None:
        found = outcome(evaluate_period(terms(), counts(rated=99, satisfied=10)), "csat")
        assert found.status is OutcomeStatus.insufficient_sample
        assert found.actual == F(10, 99)
        assert not found.missed
        assert found.shortfall_points == 0

    def test_exactly_the_minimum_sample_counts(self) -> None:
        found = outcome(evaluate_period(terms(), counts(rated=100, satisfied=10)), "csat")
        assert found.status is OutcomeStatus.missed

    def test_contract_minimum_sample(self) -> None:
        found = outcome(evaluate_period(terms(csat_min_sample=5), counts(rated=5, satisfied=5)), "csat")
        assert found.status is OutcomeStatus.met

    def test_ratings_across_all_intents_including_excluded_ones(self) -> None:
        period = counts(rated=100, satisfied=87, fraud=IntentCounts(0, 10, 10, 0))
        found = outcome(evaluate_period(terms(), period), "csat")
        assert found.actual == F(87, 110)


class TestResponseAttainment:
    def test_per_channel_target(self) -> None:
        outcomes = evaluate_period(terms(), counts(chat=(200, 179), email=(10, 8)))
        chat, email = outcome(outcomes, "response:chat"), outcome(outcomes, "response:email")
        assert (chat.actual, chat.status, chat.shortfall_points) == (F(179, 200), OutcomeStatus.missed, F(1, 2))
        assert (email.actual, email.status) == (F(4, 5), OutcomeStatus.met)
        assert (chat.channel, chat.first_response_seconds) == ("chat", 60)

    def test_contacts_without_a_first_response_count_as_missed(self) -> None:
        # 10 opened, 8 answered in time, 2 never answered: the rollup counts them in `opened` only.
        found = outcome(evaluate_period(terms(), counts(chat=(10, 8))), "response:chat")
        assert found.actual == F(4, 5)
        assert found.status is OutcomeStatus.missed

    def test_a_channel_with_no_contacts_has_no_data(self) -> None:
        period = PeriodCounts(by_intent={"wismo": IntentCounts(7, 3)})
        found = outcome(evaluate_period(terms(), period), "response:chat")
        assert (found.actual, found.status) == (None, OutcomeStatus.no_data)

    def test_counts_for_another_limit_are_refused(self) -> None:
        period = PeriodCounts(responses=(ResponseCounts("chat", 120, 10, 10),))
        with pytest.raises(ValueError, match="120 s"):
            evaluate_period(terms(), period)


class TestCountsAreConsistent:
    @pytest.mark.parametrize(
        "make",
        [
            lambda: IntentCounts(-1, 0),
            lambda: IntentCounts(1, 0, rated=2),
            lambda: IntentCounts(5, 0, rated=2, satisfied=3),
            lambda: ResponseCounts("chat", 60, opened=1, within_limit=2),
        ],
    )
    def test_impossible_counts_are_refused(self, make: Any) -> None:
        with pytest.raises(ValueError):
            make()


class TestServiceCredits:
    """Design contract: deflection 2.0/pt cap 10, CSAT 1.0/pt cap 5, response 0.5/pt cap 5, total cap 15."""

    def test_nothing_missed_no_credit(self) -> None:
        credits = service_credits(terms(), evaluate_period(terms(), counts()), D("10000.00"), "USD")
        assert credits.lines == () and credits.total == D("0.00") and not credits.capped

    def test_deflection_credit(self) -> None:
        # 2/3 deflection: shortfall (0.70 - 2/3) x 100 = 10/3 points; x 2.0 = 20/3 %.
        # 198,000.00 x 20/3 / 100 = 13,200.00 exactly; nothing rounded before the line.
        outcomes = evaluate_period(terms(), counts(ai=50000, human=25000))
        credits = service_credits(terms(), outcomes, D("198000.00"), "USD")
        (line,) = credits.lines
        assert (line.key, line.percent, line.amount) == ("deflection", F(20, 3), D("-13200.00"))

    def test_deflection_credit_on_a_non_terminating_percent_rounds_once(self) -> None:
        # 100.00 x 20/3 / 100 = 6.6666... -> -6.67
        outcomes = evaluate_period(terms(), counts(ai=2, human=1, rated=0, satisfied=0))
        assert service_credits(terms(), outcomes, D("100.00"), "USD").total == D("-6.67")

    def test_deflection_credit_is_capped_per_rule(self) -> None:
        # 50 % deflection: 20 points x 2.0 = 40 %, capped at 10 % -> 1,000.00 of 10,000.00.
        outcomes = evaluate_period(terms(), counts(ai=500, human=500))
        (line,) = service_credits(terms(), outcomes, D("10000.00"), "USD").lines
        assert (line.percent, line.amount) == (F(10), D("-1000.00"))

    def test_csat_credit(self) -> None:
        # 86.5 %: 0.5 points x 1.0 = 0.5 % of 12,345.67 = 61.72835 -> -61.73
        outcomes = evaluate_period(terms(), counts(rated=200, satisfied=173))
        (line,) = service_credits(terms(), outcomes, D("12345.67"), "USD").lines
        assert (line.key, line.percent, line.amount) == ("csat", F(1, 2), D("-61.73"))

    def test_no_csat_credit_on_an_insufficient_sample(self) -> None:
        outcomes = evaluate_period(terms(), counts(rated=50, satisfied=0))
        assert service_credits(terms(), outcomes, D("12345.67"), "USD").lines == ()

    def test_response_rule_applies_to_each_missed_target(self) -> None:
        # chat 85 %: 5 points x 0.5 = 2.5 %; email 70 %: 10 points x 0.5 = 5 % (at the cap).
        outcomes = evaluate_period(terms(), counts(chat=(100, 85), email=(100, 70)))
        credits = service_credits(terms(), outcomes, D("2000.00"), "USD")
        assert [(c.key, c.percent, c.amount) for c in credits.lines] == [
            ("response:chat", F(5, 2), D("-50.00")),
            ("response:email", F(5), D("-100.00")),
        ]
        assert credits.total == D("-150.00")

    def test_ties_round_half_up_away_from_zero(self) -> None:
        # 0.50 x 1 % = 0.005 -> -0.01 (half up on the credit's size)
        outcomes = evaluate_period(terms(), counts(chat=(100, 88)))  # 2 points x 0.5 = 1 %
        assert service_credits(terms(), outcomes, D("0.50"), "USD").total == D("-0.01")

    def test_a_missed_sla_without_a_credit_rule_earns_nothing(self) -> None:
        t = terms(credits={"deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"}})
        outcomes = evaluate_period(t, counts(rated=200, satisfied=100, chat=(100, 10)))
        assert service_credits(t, outcomes, D("1000.00"), "USD").lines == ()

    def test_total_cap_folds_all_credit_lines_into_one(self) -> None:
        # deflection 10 % (capped) + CSAT 5 % (capped) + chat 2.5 % = 17.5 % > 15 %:
        # one line of -15 % of 3,333.33 = -499.9995 -> -500.00
        outcomes = evaluate_period(terms(), counts(ai=500, human=500, rated=200, satisfied=100, chat=(100, 85)))
        credits = service_credits(terms(), outcomes, D("3333.33"), "USD")
        assert credits.capped
        assert [c.percent for c in credits.per_sla] == [F(10), F(5), F(5, 2)]
        (line,) = credits.lines
        assert (line.key, line.percent, line.amount) == (TOTAL_CAP_KEY, F(15), D("-500.00"))
        assert [o.key for o in line.outcomes] == ["deflection", "csat", "response:chat"]
        assert credits.credit_for("csat") is not None
        assert credits.credit_for("csat").amount == D("-166.67")  # type: ignore[union-attr]

    def test_exactly_at_the_total_cap_is_not_folded(self) -> None:
        # 10 % + 5 % = 15 %, not more than 15 %: two lines.
        outcomes = evaluate_period(terms(), counts(ai=500, human=500, rated=200, satisfied=100))
        credits = service_credits(terms(), outcomes, D("1000.00"), "USD")
        assert not credits.capped
        assert [c.amount for c in credits.lines] == [D("-100.00"), D("-50.00")]

    def test_no_total_cap_means_no_folding(self) -> None:
        t = terms(total_credit_cap_percent=None)
        outcomes = evaluate_period(t, counts(ai=500, human=500, rated=200, satisfied=100, chat=(100, 85)))
        credits = service_credits(t, outcomes, D("1000.00"), "USD")
        assert [c.amount for c in credits.lines] == [D("-100.00"), D("-50.00"), D("-25.00")]

    def test_jpy_and_kwd_minor_units(self) -> None:
        outcomes = evaluate_period(terms(), counts(ai=2, human=1, rated=0, satisfied=0))  # 20/3 %
        assert service_credits(terms(), outcomes, D("1000"), "JPY").total == D("-67")  # 66.67
        assert service_credits(terms(), outcomes, D("1.000"), "KWD").total == D("-0.067")  # 0.0667

    def test_zero_usage_gives_zero_lines_not_negative_zero(self) -> None:
        outcomes = evaluate_period(terms(), counts(ai=2, human=1, rated=0, satisfied=0))
        (line,) = service_credits(terms(), outcomes, D("0.00"), "USD").lines
        assert str(line.amount) == "0.00"


rates = st.fractions(min_value=0, max_value=1, max_denominator=10_000)
percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
points = st.decimals(min_value=0, max_value=20, places=2, allow_nan=False, allow_infinity=False)


class TestCreditProperties:
    @given(
        actual=rates,
        target=rates,
        per_point=points,
        cap=percents,
    )
    def test_credit_percent_never_exceeds_the_rules_cap(
        self, actual: Fraction, target: Fraction, per_point: Decimal, cap: Decimal
    ) -> None:
        status = OutcomeStatus.missed if actual < target else OutcomeStatus.met
        found = SlaOutcome(SlaKind.deflection, target, actual, status, 0, 0)
        percent = credit_percent(found, CreditRule(F(per_point), F(cap)))
        assert 0 <= percent <= cap
        if status is OutcomeStatus.missed:
            assert percent == min(F(cap), (target - actual) * 100 * F(per_point))

    @given(
        actuals=st.lists(rates, min_size=3, max_size=3),
        cap_each=st.lists(percents, min_size=3, max_size=3),
        total_cap=st.none() | percents,
        subtotal=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
        currency=st.sampled_from(["USD", "JPY", "KWD"]),
    )
    def test_credits_never_exceed_the_caps(
        self,
        actuals: list[Fraction],
        cap_each: list[Decimal],
        total_cap: Decimal | None,
        subtotal: Decimal,
        currency: str,
    ) -> None:
        subtotal = round_minor(subtotal, currency)
        t = SlaTerms(
            credits={
                SlaKind.deflection: CreditRule(F(3), F(cap_each[0])),
                SlaKind.csat: CreditRule(F(1), F(cap_each[1])),
                SlaKind.response: CreditRule(F(1, 2), F(cap_each[2])),
            },
            total_credit_cap_percent=None if total_cap is None else F(total_cap),
        )
        outcomes = tuple(
            SlaOutcome(kind, F(9, 10), actual, OutcomeStatus.missed if actual < F(9, 10) else OutcomeStatus.met, 0, 0)
            for kind, actual in zip(SlaKind, actuals, strict=True)
        )
        credits = service_credits(t, outcomes, subtotal, currency)
        for credit in credits.per_sla:
            rule = t.credit_rule(credit.outcomes[0].sla)
            assert rule is not None
            assert credit.percent <= rule.cap_percent
            assert -credit.amount <= round_minor(F(subtotal) * rule.cap_percent / 100, currency)
        assert all(line.amount <= 0 for line in credits.lines)
        assert credits.total == sum(line.amount for line in credits.lines)
        if total_cap is not None:
            assert credits.percent <= total_cap
            # Each line is rounded on its own: at most half a minor unit over the cap per line.
            half_unit = F(1, 2 * 10 ** minor_digits(currency))
            assert F(-credits.total) <= F(subtotal) * F(total_cap) / 100 + len(credits.lines) * half_unit
        if credits.capped:
            assert credits.lines[0].amount == round_minor(-F(subtotal) * F(total_cap) / 100, currency)  # type: ignore[arg-type]
