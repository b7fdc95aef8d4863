"""Monthly partitions of ``contacts`` (billing/metering/partitions.py, cell revision c0006_partitions).

Both databases: one contact stays one row when a later version or a concurrent batch gives it another
``opened_at``. PostgreSQL only (the classes are defined only when it is configured): the migration
keeps every row of a populated table, rows land in their month's partition and move with an update,
and the ``contact_partitions`` job creates months ahead and empties the DEFAULT partition.
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from billing import jobs
from billing.metering import partitions, rollups
from billing.metering.models import Contact
from billing.metering.service import ingest_contacts
from control_plane.migrate import alembic_config
from control_plane.periodic import JobContext
from control_plane.plugins import periodic_jobs
from tests.billing.conftest import T0, cell_contacts, contact, ts
from tests.billing.test_service import RacingDatabases, rollups_of
from tests.conftest import BACKENDS, PG_URL, _pg_admin_dsn

EARLIER = T0 - timedelta(days=40)  # another month (2026-09)


async def rows_of(dbs, tenant_id, external_id: str) -> list:
    async with dbs.cell_session("eu") as cell:
        return (
            await cell.scalars(
                sa.select(Contact).where(Contact.tenant_id == tenant_id, Contact.external_id == external_id)
            )
        ).all()


class TestOneContactOneRow:
    async def test_a_later_version_with_another_opened_at_updates_the_one_row(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        await ingest_contacts(dbs, keyring, None, t.slug, [contact("m1")])
        later = contact("m1", opened=EARLIER, updated_at=ts(T0 + timedelta(hours=1)))
        result = await ingest_contacts(dbs, keyring, None, t.slug, [later])
        assert (result.accepted, result.updated) == (0, 1)
        [row] = await rows_of(dbs, t.id, "m1")
        assert row.opened_at == EARLIER
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)
        stale = await ingest_contacts(dbs, keyring, None, t.slug, [contact("m1")])  # the first version again
        assert stale.duplicates == 1 and len(await rows_of(dbs, t.id, "m1")) == 1

    async def test_a_concurrent_batch_storing_the_contact_with_another_opened_at_first(
        self, dbs, keyring, ingest_tenant, backend
    ):
        """Their version (another month, older ``updated_at``) commits after ours probed the contact as new
        and before ours copies it: the unique index of ``contacts`` (it holds ``opened_at``) cannot see the
        clash on PostgreSQL, the primary key of ``contact_keys`` does, and our part runs again as an update."""
        t = await ingest_tenant()
        theirs = [contact("k0", opened=EARLIER, updated_at=ts(T0))]
        ours = [contact("k0"), contact("k1")]
        results = []

        async def concurrent():
            results.append(await ingest_contacts(dbs, keyring, None, t.slug, theirs))

        racing = RacingDatabases(dbs, concurrent)
        mine = await ingest_contacts(racing, keyring, None, t.slug, ours)
        assert results[0].accepted == 1
        assert (mine.accepted, mine.updated, mine.duplicates) == (1, 1, 0)
        assert racing.attempts == (2 if backend == "postgres" else 1)
        [row] = await rows_of(dbs, t.id, "k0")
        assert row.opened_at == T0
        assert sorted((await cell_contacts(dbs, t.id))["eu"]) == ["k0", "k1"]
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)


async def partition_of(dbs, tenant_id, external_id: str) -> str:
    async with dbs.cell_session("eu") as cell:
        stmt = sa.text("SELECT tableoid::regclass::text FROM contacts WHERE tenant_id = :t AND external_id = :e")
        return (await cell.scalars(stmt, {"t": tenant_id, "e": external_id})).one()


POPULATE = """
INSERT INTO contacts (tenant_id, external_id, channel, language, market, intent, opened_at, first_response_at,
    handoff_at, resolved_at, resolution, csat, customer_hash, updated_at, received_at, reopens, first_resolved_at)
SELECT tenants.id, 'c-' || g, 'chat', 'de', 'DE', 'wismo',
    timestamptz '2001-03-31 23:59:59.999999+00' + (g - 1) * interval '7 days 3 hours',
    CASE WHEN g %% 3 = 0 THEN NULL ELSE timestamptz '2001-04-01 00:00+00' + g * interval '7 days 3 hours' END,
    NULL, NULL, CASE WHEN g %% 2 = 0 THEN 'open' ELSE 'ai_resolved' END, CASE WHEN g %% 5 = 0 THEN NULL ELSE g %% 5 END,
    md5(g::text), now(), now(), g %% 2, NULL
FROM generate_series(1, 1500) AS g, (VALUES (CAST(%s AS uuid)), (CAST(%s AS uuid))) AS tenants(id)
"""


if "postgres" in BACKENDS:

    class TestMigration:
        def test_converting_a_populated_table_keeps_every_row(self):
            name = f"bpo_t_part_{os.getpid()}_{secrets.token_hex(3)}"
            with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
            engine = sa.create_engine(url.replace("postgresql+asyncpg", "postgresql+psycopg"))
            try:
                config = alembic_config("cell", url)
                command.upgrade(config, "c0005")
                with engine.begin() as conn:
                    conn.exec_driver_sql(POPULATE, (str(uuid.uuid4()), str(uuid.uuid4())))
                    before = conn.exec_driver_sql("SELECT * FROM contacts ORDER BY id").all()
                months = {date(r.opened_at.astimezone(UTC).year, r.opened_at.astimezone(UTC).month, 1) for r in before}
                assert len(before) == 3000 and len(months) > 100  # 2001-03 to 2030

                command.upgrade(config, "head")

                with engine.begin() as conn:
                    assert conn.exec_driver_sql("SELECT * FROM contacts ORDER BY id").all() == before
                    keys = conn.exec_driver_sql("SELECT tenant_id, external_id FROM contact_keys").all()
                    assert sorted(keys) == sorted((r.tenant_id, r.external_id) for r in before)  # c0007
                    kind = conn.exec_driver_sql("SELECT relkind FROM pg_class WHERE oid = 'contacts'::regclass")
                    assert kind.scalar() == "p"
                    placed = conn.exec_driver_sql("SELECT id, tableoid::regclass::text FROM contacts").all()
                    by_id = {r.id: r.opened_at for r in before}
                    assert all(part == partitions.partition_name(partitions.month_of(by_id[i])) for i, part in placed)
                    assert conn.exec_driver_sql("SELECT count(*) FROM contacts_default").scalar() == 0
                    assert "contacts_p2001_03" in {p for _, p in placed}  # the last microsecond of March
                    # The id sequence goes on, and the unique index holds the partition key.
                    new_id = conn.exec_driver_sql(
                        "INSERT INTO contacts (tenant_id, external_id, channel, language, market, intent, opened_at, "
                        "resolution, updated_at, received_at) SELECT tenant_id, external_id, 'chat', 'de', 'DE', "
                        "'wismo', opened_at, 'open', now(), now() FROM contacts ORDER BY id LIMIT 1 "
                        "ON CONFLICT (tenant_id, external_id, opened_at) DO NOTHING RETURNING id"
                    ).all()
                    assert new_id == []
                    ahead = {partitions.partition_name(m) for m in partitions.months_ahead(datetime.now(UTC))}
                    names = set(
                        conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relname LIKE 'contacts_p%%'").scalars()
                    )
                    assert ahead <= names
                    assert {partitions.partition_name(m) for m in months} <= names

                command.downgrade(config, "c0005")
                with engine.begin() as conn:
                    assert conn.exec_driver_sql("SELECT * FROM contacts ORDER BY id").all() == before
                command.upgrade(config, "head")
                with engine.begin() as conn:
                    assert conn.exec_driver_sql("SELECT * FROM contacts ORDER BY id").all() == before
            finally:
                engine.dispose()
                with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @pytest.mark.parametrize("settings", ["postgres"], indirect=True)
    class TestPartitionsOnPostgres:
        async def test_rows_live_in_their_month_and_move_with_an_update(self, dbs, keyring, ingest_tenant):
            t = await ingest_tenant()
            async with dbs.cell_session("eu") as cell, cell.begin():  # the cells were migrated after these months
                await partitions.create_partitions(cell, [partitions.month_of(T0), partitions.month_of(EARLIER)])
            await ingest_contacts(dbs, keyring, None, t.slug, [contact("q1")])
            assert await partition_of(dbs, t.id, "q1") == "contacts_p2026_10"
            moved = contact("q1", opened=EARLIER, updated_at=ts(T0 + timedelta(hours=1)))
            await ingest_contacts(dbs, keyring, None, t.slug, [moved])
            assert await partition_of(dbs, t.id, "q1") == "contacts_p2026_09"

        async def test_the_job_creates_months_ahead_once(self, settings, dbs, keyring):
            assert periodic_jobs()["contact_partitions"] == (3600, jobs.contact_partitions)
            now = datetime(2031, 5, 20, tzinfo=UTC)
            created = await partitions.create_partitions_ahead(dbs, now=now)
            expected = {"contacts_p2031_05", "contacts_p2031_06", "contacts_p2031_07", "contacts_p2031_08"}
            assert sorted(created) == sorted(dbs.cells)  # and the months other tests left in DEFAULT partitions
            assert all(expected <= set(names) for names in created.values())
            assert await partitions.create_partitions_ahead(dbs, now=now) == {}
            assert await jobs.contact_partitions(JobContext(settings, dbs, keyring)) == 0  # this month's exist

        async def test_the_job_moves_rows_of_the_default_partition_into_their_month(self, dbs, keyring, ingest_tenant):
            t = await ingest_tenant()
            old = datetime(2003, 5, 31, 23, 59, tzinfo=UTC)
            await ingest_contacts(dbs, keyring, None, t.slug, [contact("d1", opened=old), contact("d2")])
            assert await partition_of(dbs, t.id, "d1") == "contacts_default"
            before = await rollups_of(dbs, t.id)

            created = await partitions.create_partitions_ahead(dbs)

            assert "contacts_p2003_05" in created["eu"]
            assert await partition_of(dbs, t.id, "d1") == "contacts_p2003_05"
            assert await partition_of(dbs, t.id, "d2") == "contacts_p2026_10"
            assert sorted((await cell_contacts(dbs, t.id))["eu"]) == ["d1", "d2"]
            assert await rollups_of(dbs, t.id) == before == await rollups.recount(dbs, t.id, t.timezone)
            again = await ingest_contacts(dbs, keyring, None, t.slug, [contact("d1", opened=old)])
            assert again.duplicates == 1
