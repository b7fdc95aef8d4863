"""Invoice-level rating scenarios with a frozen clock: contacts go through ingest into the rollups,
`draft_invoice` rates them by the contract in force; amounts hand-computed to the minor unit.

Each tenant gets a contract version of its own (effective 2026-10-01, so it rates October) that
switches off whatever the scenario does not test: no minimum fee, no SLA, no credits.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.invoices import service
from billing.metering.response_rollups import TABLE as FRT_TABLE
from billing.metering.rollups import ROLLUP, DeltaSum, add_to_rollups, contact_parts
from billing.money import minor_digits
from compliance.service import SystemActor
from tests.billing.invoices.conftest import NOW, contact, ingest
from tests.conftest import contract_body

ACTOR = SystemActor("tests", "system")
OCT = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
PLAIN = {
    "minimum_monthly_fee": None,
    "deflection_floor": None,
    "csat_target": None,
    "response_targets": [],
    "credits": {},
    "total_credit_cap_percent": None,
}
_n = itertools.count()


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def ai(**kw: Any) -> dict[str, Any]:
    opened = kw.pop("opened", OCT + timedelta(minutes=next(_n)))
    return contact(opened=opened, **kw)


def human(**kw: Any) -> dict[str, Any]:
    opened = kw.pop("opened", OCT + timedelta(minutes=next(_n)))
    return contact(opened=opened, resolution="human_resolved", handoff_at=ts(opened + timedelta(minutes=1)), **kw)


def lines(invoice) -> list[tuple[str, int, str, int]]:
    """(kind, quantity, unit price, amount in minor units) of every line, in order."""
    return [
        (r.kind, int(r.quantity), format(r.unit_price.normalize(), "f"), int(r.amount_minor)) for r in invoice.lines
    ]


def amounts(invoice, kind: str) -> list[int]:
    return [int(r.amount_minor) for r in invoice.lines if r.kind == kind]


@pytest.fixture
def billed_tenant(client, staff_headers, ingest_tenant):
    """``await billed_tenant(contract_overrides, timezone=…, currency=…)``: a tenant rated by that contract."""

    async def make(terms: dict[str, Any], **tenant: Any):
        t = await ingest_tenant(**tenant)
        body = contract_body(currency=tenant.get("currency", "EUR")) | PLAIN | terms
        resp = await client.put(f"/api/v1/tenants/{t.slug}/contract", json=body, headers=staff_headers)
        assert resp.status_code in (200, 201), resp.text
        return t

    return make


async def draft(dbs, tenant, period: str = "2026-10"):
    async with dbs.control_transaction() as session:
        invoice, _ = await service.draft_invoice(session, ACTOR, tenant.slug, period, now=NOW)
    return invoice


def check_totals(invoice) -> None:
    """The invariant of every invoice: totals are sums of the rounded lines."""
    usage = sum(int(r.amount_minor) for r in invoice.lines if r.kind in ("ai_resolved", "human_resolved"))
    assert invoice.usage_subtotal_minor == usage
    assert invoice.credit_total_minor == sum(amounts(invoice, "sla_credit"))
    assert invoice.total_minor == sum(int(r.amount_minor) for r in invoice.lines)


class TestGraduatedTiers:
    async def test_human_contacts_cross_two_boundaries_ai_stop_exactly_on_one(self, dbs, client, billed_tenant):
        tiers = [
            {"up_to": 3, "unit_price": "5.20"},
            {"up_to": 5, "unit_price": "4.80"},
            {"up_to": None, "unit_price": "4.10"},
        ]
        t = await billed_tenant({
            "ai_resolved": {"tiers": [{"up_to": 4, "unit_price": "1.40"}, {"up_to": None, "unit_price": "0.90"}]},
            "human_resolved": {"tiers": tiers},
        })  # fmt: skip
        await ingest(client, t, [human() for _ in range(7)] + [ai() for _ in range(4)])
        invoice = await draft(dbs, t)
        assert lines(invoice) == [
            ("ai_resolved", 4, "1.4", 560),  # 4 units fill tier 1 exactly: no tier-2 line
            ("human_resolved", 3, "5.2", 1560),  # units 1-3
            ("human_resolved", 2, "4.8", 960),  # units 4-5
            ("human_resolved", 2, "4.1", 820),  # units 6-7
        ]
        assert [r.description for r in invoice.lines][1:] == [
            "Human-resolved contacts, tier 1 (1 to 3)",
            "Human-resolved contacts, tier 2 (4 to 5)",
            "Human-resolved contacts, tier 3 (from 6)",
        ]
        assert invoice.total_minor == 3900
        check_totals(invoice)
        # One more AI contact crosses the AI boundary: a re-draft adds the tier-2 line.
        await ingest(client, t, [ai()])
        invoice = await draft(dbs, t)
        assert lines(invoice)[:2] == [("ai_resolved", 4, "1.4", 560), ("ai_resolved", 1, "0.9", 90)]
        assert invoice.total_minor == 3990 and invoice.drafts == 2


class TestRounding:
    async def test_jpy_rounds_each_line_half_up_to_whole_yen(self, dbs, client, billed_tenant, staff_headers):
        t = await billed_tenant(
            {
                "ai_resolved": {"unit_price": "12.5"},
                "human_resolved": {
                    "tiers": [{"up_to": 1, "unit_price": "100.5"}, {"up_to": None, "unit_price": "99.5"}]
                },
            },
            timezone="Asia/Tokyo",
            currency="JPY",
        )
        await ingest(client, t, [ai(), ai(), ai(), human(), human()])
        invoice = await draft(dbs, t)
        # 37.5 -> 38, 100.5 -> 101, 99.5 -> 100: the total 239 is the sum of rounded lines
        # (rounding the unrounded sum, 237.5, would give 238).
        assert lines(invoice) == [
            ("ai_resolved", 3, "12.5", 38),
            ("human_resolved", 1, "100.5", 101),
            ("human_resolved", 1, "99.5", 100),
        ]
        assert invoice.total_minor == 239
        body = (await client.get(f"/api/v1/invoices/{invoice.id}", headers=staff_headers)).json()
        assert (body["currency"], body["usage_subtotal"], body["total"]) == ("JPY", "239", "239")
        assert [ln["amount"] for ln in body["lines"]] == ["38", "101", "100"]

    async def test_kwd_rounds_each_line_half_up_to_three_places(self, dbs, client, billed_tenant, staff_headers):
        t = await billed_tenant(
            {"ai_resolved": {"unit_price": "0.4325"}, "human_resolved": {"unit_price": "1.0005"},
             "minimum_monthly_fee": "5.000", "deflection_floor": "0.80",
             "credits": {"deflection": {"percent_per_point": "0.5", "cap_percent": "20.0"}}},
            timezone="Asia/Kuwait",
            currency="KWD",
        )  # fmt: skip
        await ingest(client, t, [ai(), ai(), ai(), human()])
        invoice = await draft(dbs, t)
        # 3 x 0.4325 = 1.2975 -> 1.298; 1.0005 -> 1.001; subtotal 2.299
        # deflection 3/4 = 0.75 vs 0.80: 5 points x 0.5 = 2.5 % of 2.299 = 0.057475 -> 0.057
        # true-up 5.000 - 2.299 = 2.701 (on the usage subtotal, before credits)
        assert lines(invoice) == [
            ("ai_resolved", 3, "0.4325", 1298),
            ("human_resolved", 1, "1.0005", 1001),
            ("minimum_true_up", 1, "2.701", 2701),
            ("sla_credit", 1, "-0.057", -57),
        ]
        assert (invoice.usage_subtotal_minor, invoice.credit_total_minor, invoice.total_minor) == (2299, -57, 4943)
        body = (await client.get(f"/api/v1/invoices/{invoice.id}", headers=staff_headers)).json()
        assert (body["usage_subtotal"], body["credit_total"], body["total"]) == ("2.299", "-0.057", "4.943")
        check_totals(invoice)


class TestMinimumFee:
    @pytest.mark.parametrize(("ai_contacts", "expected"), [(3, [420, 4580]), (40, [5600])])
    async def test_true_up_only_below_the_minimum(self, dbs, client, billed_tenant, ai_contacts, expected):
        t = await billed_tenant(
            {
                "ai_resolved": {"unit_price": "1.40"},
                "human_resolved": {"unit_price": "5.20"},
                "minimum_monthly_fee": "50.00",
            },
            timezone="America/New_York",
            currency="USD",
        )
        await ingest(client, t, [ai() for _ in range(ai_contacts)])
        invoice = await draft(dbs, t)
        assert [int(r.amount_minor) for r in invoice.lines] == expected
        assert invoice.total_minor == max(5000, 140 * ai_contacts)
        if len(expected) == 2:
            true_up = invoice.lines[1]
            assert true_up.kind == "minimum_true_up" and true_up.description.startswith("Minimum monthly fee 50.00 USD")
        check_totals(invoice)


PRICES = {"ai_resolved": {"unit_price": "1.40"}, "human_resolved": {"unit_price": "5.20"}}


class TestCreditRules:
    async def test_deflection_credit_leaves_excluded_intents_out_of_the_rate(self, dbs, client, billed_tenant):
        t = await billed_tenant(
            PRICES | {"deflection_floor": "0.70",
                      "credits": {"deflection": {"percent_per_point": "0.5", "cap_percent": "10.0"}}}
        )  # fmt: skip
        # 3 AI, 2 human and 1 human chargeback (billed, but not in the deflection rate): 3/5 = 0.60
        await ingest(client, t, [ai(), ai(), ai(), human(), human(), human(intent="chargeback")])
        invoice = await draft(dbs, t)
        # usage 4.20 + 15.60 = 19.80; 10 points short x 0.5 = 5 % -> 0.99
        assert amounts(invoice, "sla_credit") == [-99]
        credit = invoice.lines[-1]
        assert credit.sla == "deflection" and "60% against 70%" in credit.description
        assert (invoice.usage_subtotal_minor, invoice.credit_total_minor, invoice.total_minor) == (1980, -99, 1881)
        check_totals(invoice)

    @pytest.mark.parametrize(("min_sample", "credit"), [(5, [-80]), (6, [])])
    async def test_csat_credit_and_insufficient_sample(self, dbs, client, billed_tenant, min_sample, credit):
        t = await billed_tenant(
            PRICES | {"csat_target": "0.85", "csat_min_sample": min_sample,
                      "credits": {"csat": {"percent_per_point": "1.0", "cap_percent": "10.0"}}}
        )  # fmt: skip
        rated = [ai(csat=5), ai(csat=4), ai(csat=5), human(csat=4), human(csat=2)]  # 4 of 5 good: 0.80
        await ingest(client, t, [*rated, ai(csat=None)])
        invoice = await draft(dbs, t)
        # usage 5.60 + 10.40 = 16.00; 5 points short x 1.0 = 5 % -> 0.80 ... when the sample is large enough
        assert amounts(invoice, "sla_credit") == credit
        check_totals(invoice)

    async def test_response_credit_counts_a_missing_response_as_missed(self, dbs, client, billed_tenant):
        t = await billed_tenant(
            PRICES | {"response_targets": [{"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"}],
                      "credits": {"response": {"percent_per_point": "0.5", "cap_percent": "20.0"}}}
        )  # fmt: skip
        batch = []
        for seconds in (20, 60, 60, 61, None):  # exactly 60 s is within; 61 s is not; no response is missed
            opened = OCT + timedelta(minutes=next(_n))
            first = None if seconds is None else ts(opened + timedelta(seconds=seconds))
            batch.append(ai(opened=opened, first_response_at=first))
        opened = OCT + timedelta(minutes=next(_n))
        batch.append(ai(opened=opened, channel="email", first_response_at=ts(opened + timedelta(hours=9))))
        await ingest(client, t, batch)
        invoice = await draft(dbs, t)
        # 3 of 5 chat contacts: 0.60 vs 0.90 -> 30 points x 0.5 = 15 % of 8.40 = 1.26 (e-mail has no target)
        assert amounts(invoice, "sla_credit") == [-126]
        assert invoice.lines[-1].sla == "response:chat"
        check_totals(invoice)

    async def test_total_cap_folds_every_credit_into_one_line(self, dbs, client, billed_tenant):
        terms = PRICES | {
            "deflection_floor": "0.90",
            "csat_target": "0.90",
            "csat_min_sample": 1,
            "response_targets": [{"channel": "chat", "first_response_seconds": 30, "attainment": "0.90"}],
            "credits": {
                "deflection": {"percent_per_point": "1.0", "cap_percent": "10.0"},
                "csat": {"percent_per_point": "1.0", "cap_percent": "10.0"},
                "response": {"percent_per_point": "1.0", "cap_percent": "10.0"},
            },
        }
        batch = [ai(csat=5), ai(csat=5), ai(csat=1), human(csat=5)]  # deflection 0.75, CSAT 0.75
        # first responses 20 s, 20 s, 20 s, 40 s: 0.75 of chat within 30 s
        batch[-1]["first_response_at"] = ts(datetime.fromisoformat(batch[-1]["opened_at"]) + timedelta(seconds=40))
        uncapped = await billed_tenant(terms | {"total_credit_cap_percent": "30.0"})
        capped = await billed_tenant(terms | {"total_credit_cap_percent": "12.5"})
        for t in (uncapped, capped):
            await ingest(client, t, [c | {"external_id": f"{c['external_id']}-{t.slug}"} for c in batch])
        # usage 4.20 + 5.20 = 9.40; each SLA 15 points short x 1.0 = 15 %, capped at 10 % per rule
        below = await draft(dbs, uncapped)
        assert [(r.sla, int(r.amount_minor)) for r in below.lines if r.kind == "sla_credit"] == [
            ("deflection", -94), ("csat", -94), ("response:chat", -94),
        ]  # fmt: skip  # 30 % in all: not above the 30 % cap, three lines
        above = await draft(dbs, capped)
        credit = [r for r in above.lines if r.kind == "sla_credit"]
        # 30 % > 12.5 %: one line of -round_half_up(9.40 x 12.5 %) = -1.175 -> -1.18
        assert [(r.sla, int(r.amount_minor)) for r in credit] == [("total_cap", -118)]
        assert "capped at 12.5%" in credit[0].description
        assert above.total_minor == 940 - 118
        check_totals(below)
        check_totals(above)


# --- property: any rollups, any prices --------------------------------------------------------
_examples = itertools.count()


def _expected_line(quantity: int, price: Decimal, currency: str) -> int:
    places = Decimal(1).scaleb(-minor_digits(currency))
    return int((quantity * price).quantize(places, rounding=ROUND_HALF_UP).scaleb(minor_digits(currency)))


prices = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("250"), places=4).map(lambda d: format(d, "f"))


@st.composite
def price_terms(draw) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"unit_price": draw(prices)}
    bounds = sorted(draw(st.sets(st.integers(1, 40), min_size=1, max_size=3)))
    tiers = [{"up_to": b, "unit_price": draw(prices)} for b in bounds]
    return {"tiers": [*tiers, {"up_to": None, "unit_price": draw(prices)}]}


class TestInvoiceTotalsProperty:
    @hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        currency=st.sampled_from(["JPY", "USD", "KWD"]),
        ai_price=price_terms(),
        human_price=price_terms(),
        minimum=st.none() | prices,
        contacts=st.lists(
            st.tuples(
                st.sampled_from(["ai_resolved", "human_resolved", "abandoned"]),
                st.integers(1, 31),
                st.sampled_from([None, 1, 3, 5]),
                st.integers(1, 200),
            ),
            max_size=60,
        ),
    )
    async def test_totals_are_sums_of_rounded_lines(
        self, dbs, billed_tenant, currency, ai_price, human_price, minimum, contacts
    ):
        zone = {"JPY": "Asia/Tokyo", "USD": "America/New_York", "KWD": "Asia/Kuwait"}[currency]
        terms = {
            "ai_resolved": ai_price,
            "human_resolved": human_price,
            "minimum_monthly_fee": minimum,
            "deflection_floor": "0.80",
            "csat_target": "0.90",
            "csat_min_sample": 3,
            "response_targets": [{"channel": "chat", "first_response_seconds": 60, "attainment": "0.95"}],
            "credits": {
                "deflection": {"percent_per_point": "1.5", "cap_percent": "10.0"},
                "csat": {"percent_per_point": "0.75", "cap_percent": "5.0"},
                "response": {"percent_per_point": "0.5", "cap_percent": "7.5"},
            },
            "total_credit_cap_percent": "12.0",
        }
        t = await billed_tenant(terms, timezone=zone, currency=currency)
        # The rollups of these contacts, written as ingest writes them (contact_parts + add_to_rollups).
        tz, total = ZoneInfo(zone), DeltaSum()
        for resolution, day, csat, frt in contacts:
            opened = datetime(2026, 10, day, 10, tzinfo=tz).astimezone(UTC)
            total.add(
                contact_parts(
                    tz, None, channel="chat", intent="wismo", language="en", resolution=resolution,
                    opened_at=opened, first_response_at=opened + timedelta(seconds=frt), handoff_at=None,
                    resolved_at=opened + timedelta(minutes=5), csat=csat if resolution != "abandoned" else None,
                ),
                1,
            )  # fmt: skip
        async with dbs.control_transaction() as session:
            await session.execute(sa.delete(ROLLUP).where(ROLLUP.c.tenant_id == t.id))
            await session.execute(sa.delete(FRT_TABLE).where(FRT_TABLE.c.tenant_id == t.id))
            await add_to_rollups(session, t.id, total.nonzero())
        invoice = await draft(dbs, t)

        check_totals(invoice)
        for kind in ("ai_resolved", "human_resolved"):
            rows = [r for r in invoice.lines if r.kind == kind]
            assert sum(int(r.quantity) for r in rows) == sum(1 for c in contacts if c[0] == kind)
            for r in rows:
                assert int(r.amount_minor) == _expected_line(int(r.quantity), Decimal(r.unit_price), currency)
        true_up = amounts(invoice, "minimum_true_up")
        if minimum is not None and true_up:
            assert invoice.usage_subtotal_minor + true_up[0] == _expected_line(1, Decimal(minimum), currency)
        credits = [r for r in invoice.lines if r.kind == "sla_credit"]
        assert all(int(r.amount_minor) <= 0 for r in credits)
        # never more than the 12 % total cap of the usage subtotal (each line rounds on its own: +1 unit a line)
        assert -invoice.credit_total_minor <= (invoice.usage_subtotal_minor * 12 + 50) // 100 + len(credits)
