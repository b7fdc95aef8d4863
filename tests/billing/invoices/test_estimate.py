"""The running month's estimate (``GET /api/v1/tenants/{slug}/invoices/estimate`` and the Invoices tab's
card): lines and SLA credits so far by the drafting path, nothing stored, and a month-end projection at
the current daily rate priced by the contract. Amounts computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.invoices.estimate import project
from tests.billing.invoices.conftest import contact, ingest
from tests.conftest import contract_body

PLAIN = {"minimum_monthly_fee": None, "deflection_floor": None, "csat_target": None, "response_targets": [],
         "credits": {}, "total_credit_cap_percent": None, "human_resolved": {"unit_price": "5.20"}}  # fmt: skip
# Oct 11 00:00 in Berlin: 10 of October's 31 days have passed.
TEN_DAYS_IN = datetime(2026, 10, 10, 22, 0, tzinfo=UTC)
OCT5 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def contacts(ai: int, human: int) -> list[dict]:
    out = [contact(opened=OCT5 + timedelta(minutes=i)) for i in range(ai)]
    out += [
        contact(opened=OCT5 + timedelta(hours=1, minutes=i), resolution="human_resolved",
                handoff_at=(OCT5 + timedelta(hours=1, minutes=i + 1)).isoformat())
        for i in range(human)
    ]  # fmt: skip
    return out


@pytest.fixture
async def running(client, staff_headers, ingest_tenant, frozen):
    async def make(terms: dict) -> object:
        t = await ingest_tenant()
        resp = await client.put(f"/api/v1/tenants/{t.slug}/contract", json=contract_body() | PLAIN | terms,
                                headers=staff_headers)  # fmt: skip
        assert resp.status_code in (200, 201), resp.text
        frozen[0] = TEN_DAYS_IN
        return t

    return make


def amounts(section: dict) -> list[tuple[str, int, str, str]]:
    return [(line["kind"], line["quantity"], line["unit_price"], line["amount"]) for line in section["lines"]]


class TestEstimate:
    async def test_so_far_and_projection_priced_by_the_contract(self, client, staff_headers, running):
        t = await running({})
        await ingest(client, t, contacts(10, 2))
        resp = await client.get(f"/api/v1/tenants/{t.slug}/invoices/estimate", headers=staff_headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["estimate"] is True and body["period"] == "2026-10" and body["currency"] == "EUR"
        assert (body["days_elapsed"], body["days_in_period"]) == ("10.00", 31)
        assert amounts(body["so_far"]) == [("ai_resolved", 10, "1.40", "14.00"), ("human_resolved", 2, "5.20", "10.40")]
        assert body["so_far"]["total"] == "24.40"
        # 10 / 10 days x 31 = 31 AI; 2 / 10 x 31 = 6.2 -> 6 human.
        assert body["projection"]["quantities"] == {"ai_resolved": 31, "human_resolved": 6}
        assert amounts(body["projection"]) == [("ai_resolved", 31, "1.40", "43.40"),
                                               ("human_resolved", 6, "5.20", "31.20")]  # fmt: skip
        assert body["projection"]["total"] == "74.60"
        assert "estimate" in body["note"].lower() and "days" in body["projection"]["method"]

    async def test_sla_credits_so_far_and_a_minimum_fee(self, client, staff_headers, running):
        # Deflection 10 / 12 = 83.3 % against a 90 % floor: 6.67 points x 2 % = 13.3 %, capped at 10 %.
        t = await running({
            "deflection_floor": "0.90",
            "credits": {"deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"}},
            "minimum_monthly_fee": "50.00",
        })  # fmt: skip
        await ingest(client, t, contacts(10, 2))
        body = (await client.get(f"/api/v1/tenants/{t.slug}/invoices/estimate", headers=staff_headers)).json()
        so_far = {line["kind"]: line["amount"] for line in body["so_far"]["lines"]}
        # So far: usage 24.40 under the 50.00 minimum (true-up 25.60); credit 10 % of the usage.
        assert so_far["minimum_true_up"] == "25.60" and so_far["sla_credit"] == "-2.44"
        assert body["so_far"]["credit_total"] == "-2.44" and body["so_far"]["total"] == "47.56"
        # Projected: usage 74.60 is above the minimum (no true-up); credit 10 % of it.
        projected = {line["kind"]: line["amount"] for line in body["projection"]["lines"]}
        assert "minimum_true_up" not in projected and projected["sla_credit"] == "-7.46"
        assert body["projection"]["total"] == "67.14"

    async def test_nothing_is_stored_and_merchants_see_their_own(
        self, client, staff_headers, running, issue_token, make_tenant
    ):
        t = await running({})
        await ingest(client, t, contacts(3, 0))
        own = await issue_token("merchant_viewer", t.slug)
        resp = await client.get(f"/api/v1/tenants/{t.slug}/invoices/estimate",
                                headers={"Authorization": f"Bearer {own}"})  # fmt: skip
        assert resp.status_code == 200 and resp.json()["so_far"]["quantities"]["ai_resolved"] == 3
        listed = await client.get(f"/api/v1/tenants/{t.slug}/invoices", headers=staff_headers)
        assert listed.json() == []  # no draft was stored
        other = await make_tenant(onboard=True)
        resp = await client.get(f"/api/v1/tenants/{other['slug']}/invoices/estimate",
                                headers={"Authorization": f"Bearer {own}"})  # fmt: skip
        assert resp.status_code == 404

    async def test_without_a_contract_in_force_is_409(self, client, staff_headers, make_tenant, frozen):
        tenant = await make_tenant()
        resp = await client.get(f"/api/v1/tenants/{tenant['slug']}/invoices/estimate", headers=staff_headers)
        assert resp.status_code == 409 and resp.json()["code"] == "no_contract"


class TestProjection:
    def test_scales_by_the_time_elapsed_and_rounds_half_up(self):
        day = 86400
        assert project(10, 10 * day, 31 * day) == 31
        assert project(1, 2 * day, 31 * day) == 16  # 15.5 -> 16
        assert project(0, day, 31 * day) == 0
        assert project(7, 31 * day, 31 * day) == 7  # the month is over: what there is
        assert project(5, 0, 31 * day) == 0


class TestPages:
    async def test_the_invoices_tab_shows_the_estimate_card(self, client, running, issue_token):
        t = await running({})
        await ingest(client, t, contacts(10, 2))
        token = await issue_token("merchant_viewer", t.slug)
        resp = await client.get(f"/tenants/{t.slug}/invoices", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        card = resp.text[resp.text.index('id="estimate"') : resp.text.index("</div>", resp.text.index('id="estimate"'))]
        assert "Estimate, not an invoice." in card and "Estimate for 2026-10" in card
        assert 'data-estimate="so-far">€24.40<' in card and 'data-estimate="projection">€74.60<' in card
        assert "AI-resolved contacts" in card and ">31<" in card  # projected AI quantity

    async def test_the_invoice_page_links_its_itemised_usage(self, client, staff_headers, ingest_tenant, frozen):
        t = await ingest_tenant()
        frozen[0] = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        await ingest(client, t, contacts(1, 0))
        inv = (await client.post(f"/api/v1/tenants/{t.slug}/invoices?period=2026-10", headers=staff_headers)).json()
        page = await client.get(f"/invoices/{inv['id']}", headers=staff_headers)
        assert page.status_code == 200
        assert f'href="/api/v1/invoices/{inv["id"]}/usage.csv"' in page.text
