"""The invoice run's batched reads (`many_period_counts`) give each tenant exactly the counts of
`period_counts`, and a re-run of the job that changes nothing writes nothing (no INSERT, UPDATE or
DELETE reaches the database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import event

from billing.metering import batch_counts, counts
from tenants.periods import Period
from tests.billing.invoices.conftest import contact, ingest
from tests.billing.invoices.test_draft_job import LA_SETTLED, OCT, invoices_of
from tests.billing.invoices.test_draft_job import run_job as run_job


@dataclass(frozen=True)
class Target:
    channel: str
    first_response_seconds: int
    business_hours: bool = False


async def test_batched_counts_equal_each_tenants_period_counts(dbs, client, ingest_tenant):
    berlin = await ingest_tenant(timezone="Europe/Berlin")
    tokyo = await ingest_tenant(timezone="Asia/Tokyo", currency="JPY")
    quiet = await ingest_tenant(timezone="Europe/Berlin")  # no contacts at all
    variety = [
        contact(opened=OCT + timedelta(hours=i), channel=ch, intent=intent, resolution=res, csat=csat,
                first_response_at=(OCT + timedelta(hours=i, seconds=frt)).isoformat(),
                resolved_at=None if res == "open" else (OCT + timedelta(hours=i, minutes=30)).isoformat(),
                updated_at=(OCT + timedelta(hours=i, minutes=30)).isoformat())
        for i, (ch, intent, res, csat, frt) in enumerate([
            ("chat", "wismo", "ai_resolved", 5, 20), ("chat", "wismo", "human_resolved", 2, 90),
            ("email", "return", "human_resolved", None, 3000), ("email", "refund", "ai_resolved", 4, 20000),
            ("chat", "refund", "abandoned", None, 59), ("voice", "wismo", "open", None, 10),
            ("chat", "sizing", "ai_resolved", None, 60), ("email", "wismo", "ai_resolved", 1, 14400),
        ])
    ]  # fmt: skip
    await ingest(client, berlin, variety)
    await ingest(client, tokyo, variety[:5])
    # Different targets per tenant, a business-hours one (no calendar: measured on the calendar clock),
    # one on a channel without contacts, and none at all.
    targets_of = {
        berlin.id: (Target("chat", 60), Target("email", 14400), Target("sms", 30)),
        tokyo.id: (Target("chat", 90, business_hours=True), Target("email", 3000)),
        quiet.id: (),
    }
    period = Period.parse("2026-10")
    async with dbs.control_session() as session:
        batched = await batch_counts.many_period_counts(session, period, targets_of)
        one_by_one = {t: await counts.period_counts(session, t, period, ts) for t, ts in targets_of.items()}
    assert batched == one_by_one
    assert batched[berlin.id].ai_resolved == 4 and batched[berlin.id].human_resolved == 2
    assert batched[berlin.id].responses[0].within_limit == 3  # chat answered within 60 s: 20, 59, 60
    assert batched[quiet.id].by_intent == {}


async def test_a_rerun_that_changes_nothing_writes_nothing(dbs, client, ingest_tenant, run_job):
    tenants = [await ingest_tenant(timezone="Europe/Berlin") for _ in range(3)]
    for t in tenants:
        await ingest(client, t, [contact(opened=OCT), contact(opened=OCT + timedelta(hours=1), channel="email")])
    first = await run_job(LA_SETTLED)
    assert first["drafted"] >= 3 and first["failed"] == 0
    before = {k: (i.drafts, i.drafted_at, i.total_minor) for k, i in (await invoices_of(dbs, *tenants)).items()}

    writes: list[str] = []

    def spy(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(dbs.control.sync_engine, "before_cursor_execute", spy)
    try:
        again = await run_job(LA_SETTLED + timedelta(hours=1))
    finally:
        event.remove(dbs.control.sync_engine, "before_cursor_execute", spy)
    assert again["unchanged"] >= 3 and again["drafted"] == 0 and again["failed"] == 0
    assert writes == []
    after = {k: (i.drafts, i.drafted_at, i.total_minor) for k, i in (await invoices_of(dbs, *tenants)).items()}
    assert after == before

    # A change to one tenant's usage re-drafts that tenant only.
    await ingest(client, tenants[1], [contact(opened=OCT + timedelta(hours=2))])
    third = await run_job(LA_SETTLED + timedelta(hours=2))
    assert third["drafted"] == 1 and third["failed"] == 0
    redrafted = {k: i.drafts for k, i in (await invoices_of(dbs, *tenants)).items()}
    assert redrafted == {(t.slug, "2026-10"): 2 if t is tenants[1] else 1 for t in tenants}
