"""The usage read model's period counts (`billing.metering.counts`): the one call that invoices and
SLA reports share, skipped days taken out of the measurement only, and the report's cache following
the tenant's rollup receipts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from billing.metering import counts
from sla import configuration, service
from sla.terms import SlaTerms
from sla.windows import excluded_days
from tenants.periods import Period
from tests.conftest import STAFF
from tests.sla.conftest import contact, ts

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
OCTOBER = Period(2026, 10)


class _Window:
    def __init__(self, first: date, last: date) -> None:
        self.first_day, self.last_day = first, last


def _mixed() -> list[dict]:
    out = []
    for day in (3, 7, 10, 31):
        opened = datetime(2026, 10, day, 9, 0, tzinfo=BERLIN)
        out += [contact(opened + timedelta(minutes=i)) for i in range(4)]
        out.append(contact(opened, resolution="human_resolved", intent="refund", csat=2))
        out.append(contact(opened, intent="chargeback", resolution="human_resolved", csat=None))
        out.append(contact(opened, channel="email", first_response_at=ts(opened + timedelta(hours=3)), csat=4))
        out.append(contact(opened, channel="email", first_response_at=None, resolution="abandoned", csat=None))
        out.append(contact(opened, channel="chat", first_response_at=ts(opened + timedelta(seconds=61))))
    # Resolved in November (opened in October): in October's opened counts only.
    late = datetime(2026, 10, 31, 23, 30, tzinfo=BERLIN)
    out.append(contact(late, resolved_at=ts(late + timedelta(hours=1)), updated_at=ts(late + timedelta(hours=1))))
    return out


class _Spy:
    """Counts the calls of `counts.period_counts` and keeps what each returned."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[tuple] = []
        real = counts.period_counts

        async def spy(session, tenant_id, period, targets, skip=frozenset(), **kw):
            result = await real(session, tenant_id, period, targets, skip, **kw)
            self.calls.append(
                (tenant_id, period, tuple((t.channel, t.first_response_seconds) for t in targets), skip, result)
            )
            return result

        monkeypatch.setattr(counts, "period_counts", spy)


KIND = "client_outage"
TARGETS = {
    "response_targets": [
        {"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"},
        {"channel": "email", "first_response_seconds": 14400, "attainment": "0.95"},
    ]
}


async def test_the_invoice_and_the_report_come_from_one_counts_call_each(
    dbs, keyring, sla_tenant, monkeypatch, client, staff_headers
):
    """Drafting and the SLA report read the period through the same function with the same
    arguments, and get the same counts; they match the contacts sent, excluded days included."""
    t = await sla_tenant(contract=TARGETS)
    await t.ingest(dbs, keyring, _mixed())
    tenant = await t.model(dbs)
    async with dbs.control_transaction() as session:
        await configuration.add_excluded_window(
            session,
            STAFF,
            t.slug,
            {"first_day": "2026-10-07", "last_day": "2026-10-08", "kind": KIND, "reason": "carrier outage"},
        )
    spy = _Spy(monkeypatch)
    report = await client.get(f"/api/v1/tenants/{t.slug}/sla?period=2026-10", headers=staff_headers)
    draft = await client.post(f"/api/v1/tenants/{t.slug}/invoices?period=2026-10", headers=staff_headers)
    assert report.status_code == 200 and draft.status_code == 200, (report.text, draft.text)
    assert len(spy.calls) == 2
    (r_tenant, r_period, r_targets, r_skip, r_counts), (d_tenant, d_period, d_targets, d_skip, d_counts) = spy.calls
    assert (
        (r_tenant, r_period, r_targets, r_skip)
        == (d_tenant, d_period, d_targets, d_skip)
        == (
            tenant.id,
            OCTOBER,
            (("chat", 60), ("email", 14400)),
            frozenset({date(2026, 10, 7), date(2026, 10, 8)}),
        )
    )
    assert r_counts == d_counts
    # 4 days x (4 AI wismo + 1 human refund + 1 human chargeback + 1 AI email + 1 AI chat), the 7th skipped
    # for the measurement but billed in full; the 31st's late contact is resolved in November.
    assert d_counts.by_intent["refund"].human_resolved == 3 and d_counts.by_intent["chargeback"].human_resolved == 3
    assert (d_counts.ai_resolved, d_counts.human_resolved) == (4 * 6, 4 * 2)
    chat, email = d_counts.responses
    assert (chat.opened, email.opened) == (3 * 7 + 1, 3 * 2)  # and the late one, opened on the 31st
    assert email.within_limit == 3  # answered after 3 hours; the abandoned one never was


async def test_skipped_days_leave_the_measurement_not_the_usage(dbs, keyring, sla_tenant):
    t = await sla_tenant(contract=TARGETS)
    await t.ingest(dbs, keyring, _mixed())
    tenant = await t.model(dbs)
    async with dbs.control_session() as session:
        targets = SlaTerms.from_terms(TARGETS).response_targets
        whole = await counts.period_counts(session, tenant.id, OCTOBER, targets)
        for windows, measured_days in (
            ((_Window(date(2026, 10, 7), date(2026, 10, 8)),), 3),
            ((_Window(date(2026, 9, 1), date(2026, 12, 1)),), 0),
        ):
            skip = excluded_days(windows, OCTOBER)
            part = await counts.period_counts(session, tenant.id, OCTOBER, targets, skip)
            assert (part.ai_resolved, part.human_resolved) == (whole.ai_resolved, whole.human_resolved)
            assert part.totals().resolved == measured_days * 8, windows
            assert sum(r.opened for r in part.responses) == measured_days * 9 + (measured_days > 0)


async def test_the_cache_follows_new_deltas(dbs, keyring, sla_tenant):
    t = await sla_tenant()
    opened = datetime(2026, 10, 7, 9, 0, tzinfo=BERLIN)
    await t.ingest(dbs, keyring, [contact(opened) for _ in range(3)])

    async def resolved() -> int:
        async with dbs.control_session() as session:
            return (await service.period_report(session, STAFF, t.slug, "2026-10", now=NOW))["metrics"][
                "contacts_resolved"
            ]

    assert await resolved() == 3
    assert await resolved() == 3  # served from the cache
    await t.ingest(dbs, keyring, [contact(opened, resolution="human_resolved")])
    assert await resolved() == 4
    counts.clear_cache()
    assert await resolved() == 4
