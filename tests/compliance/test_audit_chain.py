"""The audit log: every change is a chained entry; tampering breaks the chain; the table is append-only."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from compliance import service as audit
from compliance.models import AuditEntry


async def _entries(dbs, stream: str) -> list[AuditEntry]:
    async with dbs.control_session() as session:
        return list(
            (
                await session.scalars(sa.select(AuditEntry).where(AuditEntry.stream == stream).order_by(AuditEntry.seq))
            ).all()
        )


def _copies(entries: list[AuditEntry]) -> list[SimpleNamespace]:
    """Detached copies, as an exported file would hold them."""
    return [SimpleNamespace(**{f: getattr(e, f) for f in (*audit.HASHED_FIELDS, "hash")}) for e in entries]


class TestChain:
    async def test_every_change_appends_a_chained_entry(self, make_tenant, dbs):
        t = await make_tenant(onboard=True)
        entries = await _entries(dbs, t["slug"])
        assert [e.action for e in entries] == [
            "tenant.created",
            "contract.version_added",
            "residency.updated",
            "integration.added",
            "api_key.issued",
            "tenant.status_changed",
        ]
        assert [e.seq for e in entries] == list(range(1, 7))
        assert entries[0].prev_hash == "0" * 64
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
        assert {e.actor for e in entries} == {entries[0].actor} and entries[0].actor.startswith("token:")
        assert audit.check_chain(entries) is None

    async def test_hash_is_sha256_of_canonical_json(self, make_tenant, dbs):
        import hashlib
        import json

        t = await make_tenant()
        (entry,) = await _entries(dbs, t["slug"])
        body = {k: v for k, v in audit.entry_body(entry).items()}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert entry.hash == hashlib.sha256(canonical).hexdigest()
        assert body["ts"].endswith("Z") and body["stream"] == t["slug"]

    async def test_altering_a_stored_entry_breaks_the_chain(self, make_tenant, dbs):
        t = await make_tenant(onboard=True)
        entries = _copies(await _entries(dbs, t["slug"]))
        entries[2].data = {**entries[2].data, "markets": {"DE": "us"}}
        problem = audit.check_chain(entries)
        assert problem is not None and problem.seq == 3 and "content" in problem.reason

        reordered = _copies(await _entries(dbs, t["slug"]))
        reordered[1], reordered[2] = reordered[2], reordered[1]
        assert audit.check_chain(reordered).seq == 3

        dropped = _copies(await _entries(dbs, t["slug"]))
        del dropped[3]
        assert audit.check_chain(dropped).seq == 5

    async def test_a_batch_appends_the_same_chains_as_one_entry_at_a_time(self, make_tenant, dbs):
        """`append_audit_entries` (the invoice run's): heads read once, entries chained in order per stream."""
        one, two = (await make_tenant())["slug"], (await make_tenant())["slug"]
        items = [audit.AuditItem(stream=s, actor=audit.SYSTEM, action=f"batch.{i}", target=f"x:{i}", data={"i": i})
                 for i, s in enumerate([one, two, one, one])]  # fmt: skip
        async with dbs.control_transaction() as session:
            assert await audit.append_audit_entries(session, items) == 4
            await audit.append_audit_entry(session, stream=two, actor=audit.SYSTEM, action="single", target="y")
        first, second = await _entries(dbs, one), await _entries(dbs, two)
        assert [(e.seq, e.action) for e in first] == [(1, "tenant.created"), (2, "batch.0"), (3, "batch.2"),
                                                      (4, "batch.3")]  # fmt: skip
        assert [(e.seq, e.action) for e in second] == [(1, "tenant.created"), (2, "batch.1"), (3, "single")]
        assert audit.check_chain(first) is None and audit.check_chain(second) is None
        assert first[1].prev_hash == first[0].hash and first[1].data == {"i": 0}

    async def test_floats_are_refused(self, dbs):
        async with dbs.control_session() as session:
            with pytest.raises(TypeError):
                await audit.append_audit_entry(
                    session, stream="platform", actor=audit.SYSTEM, action="x", target="y", data={"rate": 0.5}
                )
            await session.rollback()


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_entries SET actor = 'mallory' WHERE stream = :s",
            "DELETE FROM audit_entries WHERE stream = :s",
        ],
    )
    async def test_update_and_delete_are_refused_by_the_database(self, make_tenant, dbs, statement):
        t = await make_tenant()
        with pytest.raises(DBAPIError, match="append-only"):
            async with dbs.control.begin() as conn:
                await conn.execute(sa.text(statement), {"s": t["slug"]})
        entries = await _entries(dbs, t["slug"])
        assert len(entries) == 1 and entries[0].actor != "mallory"
