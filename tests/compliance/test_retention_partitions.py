"""Retention by partition on PostgreSQL (compliance/retention.py): a month whose rows are all past
their tenants' retention goes as one partition; a month holding a kept row, and the DEFAULT
partition, lose their expired rows one by one. Defined only when PostgreSQL is configured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billing.metering import cell_writes, partitions
from billing.metering.models import Contact
from compliance.models import AuditEntry
from compliance.retention import PURGED, purge_expired_contacts
from tests.billing.conftest import cell_keys
from tests.compliance.conftest import billing_snapshot, cell_rows, contact, ingest
from tests.conftest import BACKENDS

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
WHOLE = datetime(2019, 2, 10, tzinfo=UTC)  # contacts_p2019_02: every row past retention
MIXED = datetime(2020, 3, 10, tzinfo=UTC)  # contacts_p2020_03: one row kept (ten years' retention)
LOOSE = datetime(2018, 7, 10, tzinfo=UTC)  # no partition: the DEFAULT partition holds it


async def exists(dbs, name: str) -> bool:
    async with dbs.cell_session("eu") as cell:
        return await cell.scalar(sa.text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})


async def partition_counts(dbs, name: str) -> int:
    async with dbs.cell_session("eu") as cell:
        return await cell.scalar(sa.text(f"SELECT count(*) FROM {name}"))


if "postgres" in BACKENDS:

    @pytest.mark.parametrize("settings", ["postgres"], indirect=True)
    class TestRetentionByPartition:
        async def test_a_fully_expired_month_is_dropped_whole_and_a_mixed_one_row_by_row(
            self, client, cell_tenant, dbs
        ):
            short = await cell_tenant(retention_days=30)
            year = await cell_tenant(retention_days=365)
            decade = await cell_tenant(retention_days=3650)
            await ingest(client, short, [contact("DE", "a@x.de", WHOLE), contact("DE", "b@x.de", WHOLE)])
            await ingest(client, short, [contact("DE", "c@x.de", MIXED), contact("US", "u@x.us", WHOLE)])
            await ingest(client, year, [contact("DE", "d@x.de", WHOLE)])
            kept = contact("DE", "e@x.de", MIXED)
            await ingest(client, decade, [kept])
            await partitions.create_partitions_ahead(dbs)  # 2019-02 and 2020-03 move out of the DEFAULT partition
            await ingest(client, short, [contact("DE", "f@x.de", LOOSE)])
            assert await exists(dbs, "contacts_p2019_02") and await exists(dbs, "contacts_p2020_03")
            assert not await exists(dbs, "contacts_p2018_07")
            before = {t.slug: await billing_snapshot(dbs, t.id) for t in (short, year, decade)}
            mixed_before = await partition_counts(dbs, "contacts_p2020_03")

            report = await purge_expired_contacts(dbs, now=NOW)

            assert "contacts_p2019_02" in report.dropped["eu"] and "contacts_p2019_02" in report.dropped["us"]
            assert "contacts_p2020_03" not in report.dropped["eu"]
            assert not await exists(dbs, "contacts_p2019_02")
            assert await partition_counts(dbs, "contacts_p2020_03") == mixed_before - 1  # short's row, deleted
            # Counted as before: two rows of the dropped partition, one deleted in the mixed one, one in DEFAULT.
            assert report.purged[short.slug] == {
                "eu": {"contacts": 4, "webhook_events": 0},
                "us": {"contacts": 1, "webhook_events": 0},
            }
            assert report.purged[year.slug] == {"eu": {"contacts": 1, "webhook_events": 0}}
            assert decade.slug not in report.purged
            assert {cell: set(rows) for cell, rows in (await cell_rows(dbs, short.id)).items() if rows} == {}
            assert list((await cell_rows(dbs, decade.id))["eu"]) == [kept["external_id"]]
            assert {t.slug: await billing_snapshot(dbs, t.id) for t in (short, year, decade)} == before
            for t in (short, year, decade):  # the keys of purged contacts went with them, dropped or deleted
                rows = await cell_rows(dbs, t.id)
                assert {cell: await cell_keys(dbs, cell, t.id) for cell in rows} == {c: set(r) for c, r in rows.items()}
            async with dbs.control_session() as session:
                entries = {
                    e.stream: e.data
                    for e in await session.scalars(
                        sa.select(AuditEntry).where(
                            AuditEntry.stream.in_([short.slug, year.slug]), AuditEntry.action == PURGED
                        )
                    )
                }
            assert entries[short.slug]["partitions"] == {"eu": ["contacts_p2019_02"], "us": ["contacts_p2019_02"]}
            assert entries[short.slug]["purged"]["eu"]["contacts"] == 4
            assert entries[year.slug]["partitions"] == {"eu": ["contacts_p2019_02"]}

            again = await purge_expired_contacts(dbs, now=NOW)
            assert short.slug not in again.purged and "contacts_p2019_02" not in again.dropped.get("eu", [])

        async def test_a_contact_updated_while_the_purge_runs_is_judged_as_it_now_is(self, client, cell_tenant, dbs):
            """Ingest updates a stored contact under the tenant's lock; the row-by-row purge takes the same lock
            before it reads what is expired. Here an update (the contact reopened with a recent ``opened_at``)
            holds the lock when the purge starts: the purge waits, then reads the updated row and keeps it.
            Without the lock it deleted the row under the update, which then changed nothing."""
            t = await cell_tenant(retention_days=30)
            old = contact("DE", "r@x.de", LOOSE)  # the DEFAULT partition: purged row by row
            await ingest(client, t, [old])
            async with dbs.cell_session("eu") as cell, cell.begin():
                await cell_writes.lock_tenant(cell, t.id)  # as a batch updating the contact holds it
                purge = asyncio.create_task(purge_expired_contacts(dbs, now=NOW))
                async with dbs.cell_session("eu") as watcher:  # the purge waits for the tenant's lock
                    for _ in range(600):
                        waiting = await watcher.scalar(
                            sa.text(
                                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND "
                                "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                            )
                        )
                        if waiting or purge.done():
                            break
                        await asyncio.sleep(0.05)
                assert waiting == 1 and not purge.done()
                await cell.execute(
                    sa.update(Contact)
                    .where(Contact.tenant_id == t.id, Contact.external_id == old["external_id"])
                    .values(opened_at=NOW - timedelta(days=1))
                )
            report = await purge
            assert report.purged.get(t.slug, {}).get("eu", {}).get("contacts", 0) == 0
            [kept] = (await cell_rows(dbs, t.id))["eu"].values()
            assert kept.opened_at == NOW - timedelta(days=1)
            assert await cell_keys(dbs, "eu", t.id) == {old["external_id"]}
