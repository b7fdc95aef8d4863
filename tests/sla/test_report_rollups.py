"""The report's narrow reads (`sla.report_rollups`) give the invoice path's `PeriodCounts` exactly, with
and without excluded days, and its cache follows the tenant's rollup receipts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sla import report_rollups, service
from sla.counts import Period, day_ranges, excluded_days, period_counts
from sla.terms import SlaTerms
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


async def test_the_reports_counts_are_the_invoices_counts(dbs, keyring, sla_tenant):
    terms_body = {
        "response_targets": [
            {"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"},
            {"channel": "email", "first_response_seconds": 14400, "attainment": "0.95"},
        ]
    }
    t = await sla_tenant(contract=terms_body)
    await t.ingest(dbs, keyring, _mixed())
    tenant = await t.model(dbs)
    async with dbs.control_session() as session:
        from tenants.service import contract_in_force

        terms = (await contract_in_force(session, tenant.id, OCTOBER.first)).terms
        sla = SlaTerms.from_terms(terms)
        targets = [(target, "calendar") for target in sla.response_targets]
        for windows in (
            (),
            (_Window(date(2026, 10, 7), date(2026, 10, 8)),),
            (_Window(date(2026, 9, 1), date(2026, 12, 1)),),
        ):
            skip = excluded_days(windows, OCTOBER)
            figures = await report_rollups.load(
                session, tenant.id, OCTOBER, skip, day_ranges(OCTOBER.first, OCTOBER.end, skip), targets
            )
            mine = report_rollups.period_counts_from(figures, sla.response_targets, excluded=bool(skip))
            assert mine == await period_counts(session, tenant, OCTOBER, terms, excluded_windows=windows), windows


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
    report_rollups.clear_cache()
    assert await resolved() == 4
