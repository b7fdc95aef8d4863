"""The fault suite: a real server killed with SIGKILL during versioned concurrent ingest, PostgreSQL
backends terminated mid-batch, a SQLite file that turns read-only and back. Each ends with nothing
lost, nothing doubled, the newest versions stored, rollups equal to a recount, and only 200 or 503
answered (never 500). Loopback only; every loop is bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from billing.metering.deltas import oldest_pending
from control_plane.app import create_app
from control_plane.database import Databases
from tests.conftest import BACKENDS, _pg_admin_dsn
from tests.faults.harness import T0, Senders, Server, bpoctl, stored_contacts, ts, versioned_batches, wait_for, world

IDS = 1200  # contacts, each sent in 3 versions: 18 batches of 200


def _newest_stored(settings, tenant_id) -> None:
    """Every contact once, at its newest version (v2: human_resolved), reopened (resolved by the AI
    at +5 min first, then by a human at +55 min)."""
    stored = asyncio.run(stored_contacts(settings, tenant_id))
    assert len(stored) == IDS
    for i in range(IDS):
        c = stored[f"f{i}"]
        opened = T0 + timedelta(minutes=7 * i)
        assert (c.resolution, c.updated_at, c.csat) == ("human_resolved", opened + timedelta(hours=3), 1 + i % 5)
        assert (c.first_resolved_at, c.reopens) == (opened + timedelta(minutes=5), 1)


def _no_pending(settings) -> bool:
    """No cell holds a rollup delta any more."""

    async def none_pending() -> bool:
        db = Databases(settings.database)
        try:
            return await oldest_pending(db) is None
        finally:
            await db.dispose()

    return asyncio.run(none_pending())


def _rollups_match(w) -> None:
    """The restarted server settles what was pending by itself; then the operators' check agrees."""
    assert wait_for(lambda: _no_pending(w.settings), timeout=30, step=0.5), "deltas still pending 30 s later"
    checked = bpoctl(w.env, "rollups", "rebuild", "--check", "--tenant", w.slug)
    assert checked.returncode == 0 and "match the recount" in checked.stdout, checked.stdout + checked.stderr


def _october(server: Server, token: str) -> tuple[dict, dict]:
    """The October draft and SLA report, asked for at once."""
    headers = {"Authorization": f"Bearer {token}"}
    draft = httpx.post(f"{server.url}/api/v1/tenants/faults/invoices?period=2026-10", headers=headers, timeout=30)
    report = httpx.get(f"{server.url}/api/v1/tenants/faults/sla?period=2026-10", headers=headers, timeout=30)
    assert draft.status_code == 200 and report.status_code == 200, (draft.text, report.text)
    return draft.json(), report.json()


def _billed(draft: dict) -> int:
    return sum(line["quantity"] for line in draft["lines"] if line["kind"] in ("ai_resolved", "human_resolved"))


@pytest.fixture(params=BACKENDS)
def fault_world(request, tmp_path):
    with world(request.param, tmp_path) as w:
        yield w


class TestSigkillDuringIngest:
    def test_versioned_concurrent_ingest_survives_two_sigkills(self, fault_world):
        w = fault_world
        server = Server(w.env)
        server.start()
        try:
            batches = versioned_batches(IDS)
            senders = Senders(server.url, w.api_key, batches, threads=4)
            senders.start()
            for share in (0.3, 0.6):  # kill when that share of the batches was answered
                assert wait_for(lambda s=share: senders.acked >= s * len(batches), timeout=120)
                server.kill()
                time.sleep(0.3)
                server.start()
            senders.join()
            assert set(senders.statuses) <= {200, 503}, (senders.statuses, senders.bodies)
            assert senders.acked == len(batches)
            _newest_stored(w.settings, w.tenant_id)
            _rollups_match(w)
            draft, report = _october(server, w.staff_token)
            assert _billed(draft) == IDS and report["metrics"]["contacts_resolved"] == IDS
        finally:
            server.stop()

    def test_a_draft_right_after_a_restart_counts_what_a_killed_server_had_not_applied(self, fault_world):
        """The server is killed between the cells' commit and the rollup application: the control
        database's rollup receipts are locked by the test, so the applier waits, and dies waiting."""
        w = fault_world
        server = Server(w.env)
        server.start()
        key = {"Authorization": f"Bearer {w.api_key}"}
        batch = versioned_batches(300, versions=1, per_batch=300)[0]
        batch = [c | {"resolution": "ai_resolved", "resolved_at": c["first_response_at"]} for c in batch]
        try:
            assert httpx.get(f"{server.url}/api/v1/me", headers=key).status_code == 200  # last use: recorded now
            with _rollups_locked(w):
                resp = httpx.post(f"{server.url}/api/v1/tenants/faults/contacts", json=batch, headers=key, timeout=30)
                assert resp.status_code == 200 and resp.json()["accepted"] == 300, resp.text
                time.sleep(0.3)  # the applier is now waiting on the lock
                server.kill()
            assert not _no_pending(w.settings), "the test meant to leave the batch's delta pending"
            server.start()
            draft, report = _october(server, w.staff_token)
            assert _billed(draft) == 300 and report["metrics"]["contacts_resolved"] == 300
            _rollups_match(w)
        finally:
            server.stop()


class _rollups_locked:
    """Hold the control database's rollup receipts so that no delta can be applied meanwhile."""

    def __init__(self, w) -> None:
        self.w = w

    def __enter__(self):
        if self.w.backend == "postgres":
            url = sa.engine.make_url(self.w.settings.database.control_url).set(drivername="postgresql")
            self.conn = psycopg.connect(url.render_as_string(hide_password=False))
            self.conn.execute("LOCK TABLE rollup_receipts IN EXCLUSIVE MODE")
        else:
            self.conn = sqlite3.connect(self.w.settings.data_dir / "control.db", isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")  # the database's write lock
        return self

    def __exit__(self, *exc):
        self.conn.rollback() if self.w.backend == "postgres" else self.conn.execute("ROLLBACK")
        self.conn.close()


if "postgres" in BACKENDS:

    class TestPostgresBackendTerminations:
        """Defined only when PostgreSQL is there to terminate (``.ci/run`` always sets it)."""

        def test_terminated_backends_mid_batch_answer_503_and_lose_nothing(self, tmp_path):
            with world("postgres", tmp_path) as w:
                server = Server(w.env)
                server.start()
                stop = threading.Event()
                terminated = [0]

                def terminate() -> None:
                    urls = [w.settings.database.control_url, *w.settings.database.cell_urls.values()]
                    names = [sa.engine.make_url(u).database for u in urls]
                    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
                        while not stop.wait(0.25):
                            rows = conn.execute(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                                (names,),
                            ).fetchall()
                            terminated[0] += len(rows)

                killer = threading.Thread(target=terminate, daemon=True)
                try:
                    senders = Senders(server.url, w.api_key, versioned_batches(IDS), threads=4)
                    senders.start()
                    killer.start()
                    senders.join()
                    stop.set()
                    killer.join(10)
                    assert terminated[0] > 20, "the test meant to terminate backends while batches ran"
                    assert set(senders.statuses) <= {200, 503}, (senders.statuses, senders.bodies)
                    assert senders.statuses[503] > 0
                    # One dropped connection per pool is not "every database down": ready again at once.
                    time.sleep(0.5)
                    assert wait_for(lambda: httpx.get(f"{server.url}/ready").status_code == 200, timeout=1)
                    _newest_stored(w.settings, w.tenant_id)
                    _rollups_match(w)
                finally:
                    stop.set()
                    server.stop()


class TestReadOnlySqlite:
    """A disk that turns read-only, then heals: ``chattr +i`` on every database file (root ignores
    file modes; the immutable flag it does not). Connections opened meanwhile are read-only for good
    unless the pool discards them: the process must heal without a restart."""

    def test_readiness_and_ingest_follow_the_disk_and_heal_without_restart(self, tmp_path):
        with world("sqlite", tmp_path) as w:
            files = sorted(str(p) for p in Path(w.settings.data_dir).glob("*.db*"))
            try:
                asyncio.run(self._fault_and_heal(w, files))
            finally:
                subprocess.run(["chattr", "-i", *files], check=False)
            stored = asyncio.run(stored_contacts(w.settings, w.tenant_id))
            assert {c.resolution for c in stored.values()} == {"ai_resolved"} and len(stored) == 50
            checked = bpoctl(w.env, "rollups", "rebuild", "--check", "--tenant", w.slug)
            assert "match the recount" in checked.stdout, checked.stdout + checked.stderr

    @staticmethod
    def _chattr(flag: str, files: list[str]) -> None:
        subprocess.run(["chattr", flag, *files], check=True)

    async def _fault_and_heal(self, w, files: list[str]) -> None:
        db = Databases(w.settings.database)
        app = create_app(w.settings, db=db)
        key = {"Authorization": f"Bearer {w.api_key}"}
        staff = {"Authorization": f"Bearer {w.staff_token}"}
        batch = versioned_batches(50, versions=2, per_batch=50)
        try:
            async with AsyncTestClient(app=app) as client:
                first = await client.post("/api/v1/tenants/faults/contacts", json=batch[0], headers=key)
                assert first.status_code == 200 and (await client.get("/ready")).status_code == 200
                await asyncio.to_thread(self._chattr, "+i", files)
                try:
                    await db.control.dispose()  # new connections now open read-only, as after a restart
                    for engine in db.cells.values():
                        await engine.dispose()
                    down = await client.get("/ready")
                    assert down.status_code == 503, down.text
                    assert down.json()["checks"]["control"].startswith("error")
                    refused = await client.post("/api/v1/tenants/faults/contacts", json=batch[1], headers=key)
                    assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
                finally:
                    await asyncio.to_thread(self._chattr, "-i", files)
                healed = time.monotonic()
                while (await client.get("/ready")).status_code != 200:
                    assert time.monotonic() - healed < 1, (await client.get("/ready")).text
                    await asyncio.sleep(0.05)
                again = await client.post("/api/v1/tenants/faults/contacts", json=batch[1], headers=key)
                assert again.status_code == 200 and again.json()["updated"] == 50, again.text
                usage = await client.get("/api/v1/tenants/faults/usage?month=2026-10", headers=staff)
                assert usage.json()["by_resolution"]["ai_resolved"] == 50
        finally:
            await db.dispose()


def test_the_harness_sends_what_it_says() -> None:
    """The versions the fault tests send: three per contact, the newest human_resolved."""
    batches = versioned_batches(10, per_batch=4)
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    newest = {c["external_id"]: c for b in batches for c in b}
    assert {c["resolution"] for c in newest.values()} == {"human_resolved"}
    assert newest["f3"]["updated_at"] == ts(T0 + timedelta(minutes=21, hours=3))
