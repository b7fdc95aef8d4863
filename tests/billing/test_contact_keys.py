"""``contact_keys`` (billing/metering/contact_keys.py): on PostgreSQL one key per stored contact, the
arbiter between batches across the monthly partitions of ``contacts`` and the first step of the probe.

PostgreSQL only (SQLite's ``contacts`` has its own unique ``(tenant_id, external_id)``; the table stays
empty there, which the last test checks). The race between two batches storing one contact with two
``opened_at`` is `test_partitions.TestOneContactOneRow`; retention and tenant moves check the keys in
their own tests.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from billing.metering import contact_keys
from billing.metering.cli import rebuild_rollups
from billing.metering.models import Contact
from billing.metering.service import ingest_contacts
from tests.billing.conftest import T0, cell_contacts, cell_keys, contact, ts

EARLIER = T0 - timedelta(days=40)


async def test_each_stored_contact_has_one_key(dbs, keyring, ingest_tenant, backend):
    t = await ingest_tenant()
    await ingest_contacts(dbs, keyring, None, t.slug, [contact(f"k{i}") for i in range(5)])
    later = contact("k0", opened=EARLIER, updated_at=ts(T0 + timedelta(hours=1)))  # another month's partition
    result = await ingest_contacts(dbs, keyring, None, t.slug, [later, contact("k5")])
    assert (result.accepted, result.updated) == (1, 1)
    expected = {f"k{i}" for i in range(6)} if backend == "postgres" else set()
    assert await cell_keys(dbs, "eu", t.id) == expected


async def test_a_key_left_behind_by_a_deleted_contact_is_dropped_and_the_contact_stored_anew(
    dbs, keyring, ingest_tenant, backend
):
    t = await ingest_tenant()
    await ingest_contacts(dbs, keyring, None, t.slug, [contact("gone"), contact("kept")])
    async with dbs.cell_session("eu") as cell, cell.begin():  # deleted without its key (a gap in some deleter)
        await cell.execute(sa.delete(Contact).where(Contact.tenant_id == t.id, Contact.external_id == "gone"))
    again = contact("gone", opened=EARLIER)
    result = await ingest_contacts(dbs, keyring, None, t.slug, [again])
    assert (result.accepted, result.updated, result.duplicates) == (1, 0, 0)
    stored = (await cell_contacts(dbs, t.id))["eu"]
    assert sorted(stored) == ["gone", "kept"] and stored["gone"].opened_at == EARLIER
    assert await cell_keys(dbs, "eu", t.id) == ({"gone", "kept"} if backend == "postgres" else set())


async def test_a_contact_without_its_key_is_reported_by_the_rollups_check(
    settings, dbs, keyring, ingest_tenant, backend
):
    t = await ingest_tenant()
    await ingest_contacts(dbs, keyring, None, t.slug, [contact("a"), contact("b")])
    lines: list[str] = []
    assert await rebuild_rollups(settings, t.slug, check=True, echo=lines.append), lines
    async with dbs.cell_session("eu") as cell, cell.begin():
        await contact_keys.drop_keys(cell, t.id, ["b"])  # as if b had been inserted by hand
        assert await contact_keys.missing_keys(cell, t.id) == (1 if backend == "postgres" else 0)
    lines.clear()
    ok = await rebuild_rollups(settings, t.slug, check=True, echo=lines.append)
    if backend == "postgres":
        assert not ok and f"{t.slug}: 1 contacts in cell eu lack a contact key" in lines
    else:
        assert ok, lines
