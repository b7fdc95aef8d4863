"""SLA evaluation from rollups, on SQLite and PostgreSQL: contacts go in through metering's ingest,
the report comes out of `sla.service.period_report` (the API's own call). Clock: injected `now`."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from billing.invoices.counting import invoice_counts
from billing.rating.lines import LineKind
from billing.rating.service import rate_counts
from compliance.service import list_entries
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers as handlers
from sla import service
from sla.export import report_csv
from sla.models import SlaAlert
from tenants.calendar import BusinessCalendar
from tenants.periods import Period
from tests.conftest import STAFF
from tests.sla.conftest import contact, ts

BERLIN = ZoneInfo("Europe/Berlin")
AFTER_OCTOBER = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def local(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=zone)


def sla_of(report: dict, key: str) -> dict:
    return next(s for s in report["slas"] if s["sla"] == key)


async def report(dbs, slug: str, period: str = "2026-10", now: datetime = AFTER_OCTOBER) -> dict:
    async with dbs.control_transaction() as session:
        return await service.period_report(session, STAFF, slug, period, now=now)


class TestDeflection:
    async def test_excluded_intents_are_left_out(self, dbs, keyring, sla_tenant):
        t = await sla_tenant()
        day = local(2026, 10, 7)
        await t.ingest(
            dbs,
            keyring,
            [contact(day) for _ in range(7)]
            + [contact(day, resolution="human_resolved", handoff_at=ts(day + timedelta(minutes=1))) for _ in range(3)]
            + [contact(day, intent="chargeback", resolution="human_resolved") for _ in range(5)],
        )
        d = sla_of(await report(dbs, t.slug), "deflection")
        assert (d["actual"], d["numerator"], d["denominator"]) == ("0.7000", 7, 10)
        assert (d["outcome"], d["met"], d["status"]) == ("met", True, "on_track")

    async def test_a_contact_moving_from_ai_to_human_moves_deflection_and_credit(self, dbs, keyring, sla_tenant):
        t = await sla_tenant()
        day = local(2026, 10, 7)
        ai = [contact(day) for _ in range(7)]
        await t.ingest(dbs, keyring, ai + [contact(day, resolution="human_resolved") for _ in range(3)])
        assert sla_of(await report(dbs, t.slug), "deflection")["actual"] == "0.7000"

        reopened = dict(ai[0], resolution="human_resolved", updated_at=ts(day + timedelta(hours=2)))
        reopened["resolved_at"] = ts(day + timedelta(hours=2))
        await t.ingest(dbs, keyring, [reopened])
        r = await report(dbs, t.slug)
        d = sla_of(r, "deflection")
        assert (d["actual"], d["numerator"], d["denominator"], d["met"]) == ("0.6000", 6, 10, False)
        # The contact came back and was resolved again later: 1 of the 10 resolved was reopened.
        assert r["metrics"]["reopen_rate"] == "0.1000"
        # The CSV ends with the same metrics.
        rows = list(csv.reader(io.StringIO(report_csv(r))))
        metrics = dict(rows[rows.index(["metric", "value"]) + 1 :])
        assert (metrics["reopen_rate"], metrics["contacts_resolved"]) == ("0.1000", "10")
        assert d["status"] == "breached"
        # 10 points short x 2 %/point = 20 %, capped at 10 % of usage (6 x 1.40 + 4 x 5.20 = 29.20) = 2.92.
        assert d["credit"] == {"percent": "10.0000", "amount": "-2.92"}
        assert r["credits"]["usage_subtotal"] == "29.20" and r["credits"]["total"] == "-2.92"

        # The invoice's own path (rate_counts over the same period_counts) shows the same credit lines.
        async with dbs.control_session() as session:
            tenant = await t.model(dbs)
            from tenants.service import contract_in_force

            terms = (await contract_in_force(session, tenant.id, date(2026, 10, 1))).terms
            rated = rate_counts(terms, await invoice_counts(session, tenant, Period(2026, 10), terms))
        lines = [(line.sla, str(line.amount)) for line in rated.lines_of(LineKind.sla_credit)]
        assert lines == [(line["sla"], line["amount"]) for line in r["credits"]["lines"]] == [("deflection", "-2.92")]


class TestExcludedWindows:
    async def test_a_window_takes_its_days_out_of_the_measurement_not_out_of_the_usage(
        self, dbs, keyring, sla_tenant, client, staff_headers
    ):
        t = await sla_tenant()
        await t.ingest(
            dbs,
            keyring,
            [contact(local(2026, 10, 7)) for _ in range(7)]
            + [contact(local(2026, 10, 7), resolution="human_resolved") for _ in range(3)]
            + [contact(local(2026, 10, 10), resolution="human_resolved") for _ in range(10)],
        )
        assert sla_of(await report(dbs, t.slug), "deflection")["actual"] == "0.3500"

        body = {"first_day": "2026-10-10", "last_day": "2026-10-10", "kind": "client_outage", "reason": "Shop API down"}
        resp = await client.post(f"/api/v1/tenants/{t.slug}/sla/excluded-windows", json=body, headers=staff_headers)
        assert resp.status_code == 201, resp.text
        r = await report(dbs, t.slug)
        assert sla_of(r, "deflection")["actual"] == "0.7000" and sla_of(r, "deflection")["met"] is True
        assert [w["reason"] for w in r["excluded_windows"]] == ["Shop API down"]
        assert next(d for d in r["daily"] if d["day"] == "2026-10-10")["excluded"] is True
        # Billing still rates all 20 contacts: 7 x 1.40 + 13 x 5.20.
        assert r["credits"]["usage_subtotal"] == "77.40"
        async with dbs.control_session() as session:
            entries = [e for e in await list_entries(session, t.slug) if e.action == "sla.excluded_window_added"]
        assert len(entries) == 1 and entries[0].data["reason"] == "Shop API down"

        bad = await client.post(
            f"/api/v1/tenants/{t.slug}/sla/excluded-windows",
            json=body | {"first_day": "2026-10-12", "reason": "x"},
            headers=staff_headers,
        )
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"reason", "body"} or len(bad.json()["errors"]) >= 1


class TestCsat:
    async def test_fewer_ratings_than_the_minimum_sample_is_no_breach(self, dbs, keyring, sla_tenant):
        credits = {"deflection": None, "csat": {"percent_per_point": "1.0", "cap_percent": "5.0"}}
        t = await sla_tenant(contract={"csat_min_sample": 100, "credits": credits})
        day = local(2026, 10, 8)
        await t.ingest(dbs, keyring, [contact(day, csat=1) for _ in range(99)] + [contact(day, csat=None)])
        c = sla_of(await report(dbs, t.slug), "csat")
        assert (c["outcome"], c["met"], c["status"], c["denominator"]) == ("insufficient_sample", None, "on_track", 99)
        assert c["credit"]["amount"] == "0.00"

        await t.ingest(dbs, keyring, [contact(day, csat=5)])
        c = sla_of(await report(dbs, t.slug), "csat")
        assert (c["outcome"], c["actual"], c["met"], c["status"]) == ("missed", "0.0100", False, "breached")
        assert c["credit"]["percent"] == "5.0000"  # 86 points short, capped at 5 %


class TestResponseTargets:
    async def test_no_first_response_counts_as_missed_and_limits_are_exact(self, dbs, keyring, sla_tenant):
        target = {"channel": "chat", "first_response_seconds": 45, "attainment": "0.80"}
        t = await sla_tenant(contract={"response_targets": [target]})
        day = local(2026, 10, 9)
        answered = [contact(day, first_response_at=ts(day + timedelta(seconds=45))) for _ in range(8)]
        late = [contact(day, first_response_at=ts(day + timedelta(seconds=45, microseconds=500_000)))]
        await t.ingest(dbs, keyring, answered + late + [contact(day, first_response_at=None, resolution="abandoned")])
        r = sla_of(await report(dbs, t.slug), "response:chat")
        assert (r["numerator"], r["denominator"], r["actual"], r["met"]) == (8, 10, "0.8000", True)

        await t.ingest(dbs, keyring, [contact(day, first_response_at=None, resolution="open", resolved_at=None)])
        r = sla_of(await report(dbs, t.slug), "response:chat")
        assert (r["numerator"], r["denominator"], r["met"]) == (8, 11, False)

    async def test_business_hours_across_the_dst_change(self, dbs, keyring, sla_tenant, client, staff_headers):
        target = {"channel": "chat", "first_response_seconds": 3600, "attainment": "0.50", "business_hours": True}
        t = await sla_tenant(contract={"response_targets": [target]})
        week = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        resp = await client.put(
            f"/api/v1/tenants/{t.slug}/sla/calendar", json={"weekly": week, "holidays": []}, headers=staff_headers
        )
        assert resp.status_code == 200, resp.text
        # Friday 23 Oct 16:30 CEST; clocks go back on Sunday 25 Oct; Monday 09:30 CET is 1 business hour later.
        opened = local(2026, 10, 23, 16, 30)
        on_time = contact(opened, first_response_at=ts(local(2026, 10, 26, 9, 30)))
        a_minute_late = contact(opened, first_response_at=ts(local(2026, 10, 26, 9, 31)))
        await t.ingest(dbs, keyring, [on_time, a_minute_late])
        r = sla_of(await report(dbs, t.slug), "response:chat")
        assert (r["numerator"], r["denominator"], r["business_hours"]) == (1, 2, True)
        # In calendar time both waited 2 days 18 hours (one hour more than the wall clocks show).
        assert (local(2026, 10, 26, 9, 30).astimezone(UTC) - opened.astimezone(UTC)).total_seconds() == 237600


class TestBusinessCalendar:
    def test_a_full_day_lasts_as_long_as_the_wall_clock_says_across_dst(self):
        cal = BusinessCalendar.from_json("Europe/Berlin", {"sun": [["00:00", "24:00"]]}, [])
        autumn = cal.business_time(local(2026, 10, 24, 23), local(2026, 10, 26, 1))  # 25-hour Sunday
        spring = cal.business_time(local(2027, 3, 27, 23), local(2027, 3, 29, 1))  # 23-hour Sunday
        assert (autumn, spring) == (timedelta(hours=25), timedelta(hours=23))

    def test_holidays_and_weekends_are_closed(self):
        cal = BusinessCalendar.from_json("Europe/Berlin", {"mon": [["09:00", "17:00"]]}, ["2026-10-26"])
        assert cal.business_time(local(2026, 10, 23, 9), local(2026, 11, 2, 10)) == timedelta(hours=1)


class TestPeriods:
    async def test_the_month_ends_at_midnight_in_the_tenants_zone(self, dbs, keyring, sla_tenant):
        berlin = await sla_tenant()
        ny = await sla_tenant(timezone="America/New_York", currency="USD", home_region="us", markets=["US"])
        at = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)  # Berlin: 1 Nov 00:30; New York: 31 Oct 19:30
        late = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)  # New York: 31 Oct 23:30 (EDT until 1 Nov 02:00)
        await berlin.ingest(dbs, keyring, [contact(at - timedelta(minutes=4))])
        await ny.ingest(
            dbs,
            keyring,
            [contact(at - timedelta(minutes=4), market="US"), contact(late - timedelta(minutes=4), market="US")],
        )
        now = datetime(2026, 12, 5, tzinfo=UTC)
        assert sla_of(await report(dbs, berlin.slug, "2026-10", now), "deflection")["denominator"] == 0
        assert sla_of(await report(dbs, berlin.slug, "2026-11", now), "deflection")["denominator"] == 1
        assert sla_of(await report(dbs, ny.slug, "2026-10", now), "deflection")["denominator"] == 2
        assert sla_of(await report(dbs, ny.slug, "2026-11", now), "deflection")["denominator"] == 0


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/sla", _Receiver.received
    server.shutdown()


class TestAlerts:
    async def test_a_month_sliding_below_the_floor_alerts_at_risk_then_breached_once_each(
        self, dbs, keyring, settings, sla_tenant, client, staff_headers, receiver
    ):
        url, received = receiver
        t = await sla_tenant()
        # SLA alerts reach the tenant's webhook endpoints subscribed to them (the webhooks domain).
        resp = await client.post(
            f"/api/v1/tenants/{t.slug}/webhook-endpoints",
            json={"url": url, "events": ["sla.at_risk", "sla.breached"]},
            headers=staff_headers,
        )
        assert resp.status_code == 201, resp.text
        secret = resp.json()["secret"]
        tenant = await t.model(dbs)

        async def evaluate(day: int) -> list[SlaAlert]:
            async with dbs.control_transaction() as session:
                return await service.evaluate_tenant(session, tenant, now=local(2026, 10, day, 20))

        def day_of(d: int, ai: int, human: int) -> list[dict]:
            return [contact(local(2026, 10, d)) for _ in range(ai)] + [
                contact(local(2026, 10, d), resolution="human_resolved") for _ in range(human)
            ]

        await t.ingest(dbs, keyring, [c for d in range(1, 11) for c in day_of(d, 8, 2)])
        assert await evaluate(10) == []  # 80 % so far: on track
        await t.ingest(dbs, keyring, [c for d in range(11, 16) for c in day_of(d, 3, 7)])
        first = await evaluate(15)  # 95 / 150 so far, recent days at 30 %: at risk, still recoverable
        assert [(a.sla, a.previous_status, a.status, a.actual) for a in first] == [
            ("deflection", "on_track", "at_risk", "0.6333")
        ]
        assert await evaluate(15) == []  # a duplicate run sends nothing
        await t.ingest(dbs, keyring, [c for d in range(16, 29) for c in day_of(d, 0, 10)])
        second = await evaluate(28)  # 95 / 280: even a perfect last 3 days cannot reach 70 %
        assert [(a.previous_status, a.status) for a in second] == [("at_risk", "breached")]
        assert await evaluate(28) == [] and await evaluate(29) == []

        async with dbs.control_session() as session:
            alerts = (await session.scalars(sa.select(SlaAlert).where(SlaAlert.tenant_id == t.id))).all()
        assert [a.status for a in alerts] == ["at_risk", "breached"]
        listed = await client.get(f"/api/v1/tenants/{t.slug}/sla/alerts", headers=staff_headers)
        assert [a["status"] for a in listed.json()] == ["breached", "at_risk"]

        # (Other tests' endpoints may have attempts due too: the receiver's requests are what counts.)
        await dispatch_due(
            dbs, handlers(JobContext(settings, dbs, keyring)), kinds=["webhook"], now=local(2026, 10, 29)
        )
        bodies = [Webhook(secret).verify(body, headers) for headers, body in received]  # raises unless signed
        assert [(b["type"], b["data"]["status"]) for b in bodies] == [
            ("sla.at_risk", "at_risk"),
            ("sla.breached", "breached"),
        ]
        assert len({headers["webhook-id"] for headers, _ in received}) == 2
        await dispatch_due(dbs, handlers(JobContext(settings, dbs, keyring)), kinds=["webhook"])
        assert len(received) == 2  # each alert once


class TestAccess:
    async def test_a_merchant_reads_its_own_report_and_gets_404_for_another(self, sla_tenant, client, issue_token):
        mine, other = await sla_tenant(), await sla_tenant()
        headers = {"Authorization": f"Bearer {await issue_token('merchant_viewer', mine.slug)}"}
        ok = await client.get(f"/api/v1/tenants/{mine.slug}/sla?period=2026-10", headers=headers)
        assert ok.status_code == 200 and ok.json()["period"] == "2026-10"
        assert [s["sla"] for s in ok.json()["slas"]] == ["deflection", "csat", "response:chat"]
        assert (await client.get(f"/api/v1/tenants/{other.slug}/sla", headers=headers)).status_code == 404
        bad = await client.get(f"/api/v1/tenants/{mine.slug}/sla?period=2026-13", headers=headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
