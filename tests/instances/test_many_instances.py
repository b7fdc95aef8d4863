"""Many instances on one PostgreSQL (issue 17): two ``bpoctl serve`` processes (the second with
``--workers 2``) and one ``bpoctl worker``,
each with its own ``BPO_DATA_DIR`` (nothing shared on disk) and the same ``BPO_MASTER_KEY``.

Ingest goes through both servers; ``bpoctl keys rotate`` runs beside the first one and the second reads a
sealed secret (the tenant's customer-hash key, needed to ingest a contact with a ``customer_ref``) once
it has reloaded the ring; a session cookie signed in on the first server works on the second; the
periodic jobs each ran once although three processes run a scheduler.

PostgreSQL only (several processes writing one SQLite file is not a supported deployment): the test is
collected only when ``BPO_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from control_plane.plugins import periodic_jobs
from tests.conftest import BACKENDS
from tests.faults.harness import ROOT, T0, Server, bpoctl, stored_contacts, ts, wait_for, world

PASSWORD = "correct horse battery staple 17"


def contacts(prefix: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        opened = T0 + timedelta(minutes=3 * i)
        rows.append(
            {
                "external_id": f"{prefix}{i}",
                "channel": "chat",
                "language": "de",
                "market": "DE",
                "intent": "wismo",
                "opened_at": ts(opened),
                "resolved_at": ts(opened + timedelta(minutes=4)),
                "resolution": "ai_resolved",
                "customer_ref": f"shopper-{i}@example.com",  # hashed with the tenant's sealed key
                "updated_at": ts(opened + timedelta(minutes=5)),
            }
        )
    return rows


def ingest(url: str, key: str, slug: str, rows: list[dict]) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/tenants/{slug}/contacts", json=rows, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


async def _user(settings, address: str) -> None:
    from control_plane.actors import SystemActor
    from control_plane.database import Databases
    from control_plane.service import create_user, set_password

    db = Databases(settings.database)
    try:
        async with db.control_transaction() as session:
            await create_user(session, SystemActor("tests"), {"email": address, "role": "account_manager"})
            await set_password(session, address, PASSWORD)
    finally:
        await db.dispose()


async def _job_runs(settings) -> dict[str, int]:
    from control_plane.database import Databases
    from control_plane.models import JobRunCount

    db = Databases(settings.database)
    try:
        async with db.control_session() as session:
            return dict((await session.execute(sa.select(JobRunCount.job, JobRunCount.runs))).all())
    finally:
        await db.dispose()


def _healthy(server: Server) -> bool:
    assert server.process.poll() is None, f"the server exited with {server.process.returncode}"
    try:
        return httpx.get(f"{server.url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _sign_in(url: str, address: str) -> str:
    with httpx.Client(base_url=url) as client:
        client.get("/login")
        resp = client.post(
            "/login",
            data={"email": address, "password": PASSWORD, "next": "/"},
            headers={"x-csrftoken": client.cookies.get("bpo_csrf", "")},
            follow_redirects=False,
        )
        assert resp.status_code in (302, 303), resp.text
        return client.cookies["bpo_session"]


def _many_instances(tmp_path, monkeypatch) -> None:
    master = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    monkeypatch.setenv("BPO_MASTER_KEY", master)  # the onboarding below seals under it too
    monkeypatch.delenv("BPO_SESSION_SECRET", raising=False)
    with world("postgres", tmp_path) as w:
        address = f"am-{secrets.token_hex(4)}@example.com"
        asyncio.run(_user(w.settings, address))

        def env(name: str) -> dict[str, str]:
            data = tmp_path / name
            data.mkdir()
            return w.env | {"BPO_DATA_DIR": str(data), "BPO_MASTER_KEY": master}

        a, b = Server(env("a")), Server(env("b"))
        for server, name in ((a, "a"), (b, "b")):  # kept beside the test's data for a failure's reader
            server.log.close()
            server.log = open(tmp_path / f"server-{name}.log", "w")
        log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "worker"],
            env=env("w"),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # Started together (a loaded machine takes a while to import the app); b is two uvicorn workers.
            for server, workers in ((a, "1"), (b, "2")):
                serve = ["serve", "--no-migrate", "--port", str(server.port), "--workers", workers]
                server.process = subprocess.Popen(
                    [sys.executable, "-m", "control_plane.cli", *serve],
                    env=server.env,
                    cwd=ROOT,
                    stdout=server.log,
                    stderr=subprocess.STDOUT,
                )
            for server in (a, b):
                assert wait_for(lambda s=server: _healthy(s), timeout=240, step=0.5), f"{server.url} never healthy"

            # Ingest through both servers.
            first, second = contacts("a", 150), contacts("b", 150)
            assert ingest(a.url, w.api_key, w.slug, first).json()["accepted"] == 150
            assert ingest(b.url, w.api_key, w.slug, second).json()["accepted"] == 150

            # A session made on one server is honoured by the other (shared secret, shared session rows).
            cookie = _sign_in(a.url, address)
            me = httpx.get(f"{b.url}/api/v1/me", cookies={"bpo_session": cookie})
            assert me.status_code == 200, me.text
            assert me.json()["actor"] == f"user:{address}" and me.json()["role"] == "account_manager"

            # Rotate beside server a (the old key is dropped); server b reads the re-sealed
            # customer-hash key once it has reloaded the ring from the database.
            rotated = bpoctl(env("rotate"), "keys", "rotate")
            assert rotated.returncode == 0, rotated.stderr
            assert "retired: k" in rotated.stdout
            after = contacts("c", 50)
            answers: list[int] = []

            def b_reads_the_new_ring() -> bool:
                resp = ingest(b.url, w.api_key, w.slug, after)
                answers.append(resp.status_code)
                return resp.status_code == 200

            assert wait_for(b_reads_the_new_ring, timeout=60, step=0.5), answers
            assert ingest(a.url, w.api_key, w.slug, contacts("d", 10)).status_code == 200

            # Every contact stored once, the same shopper hashed alike before and after the rotation.
            stored = asyncio.run(stored_contacts(w.settings, w.tenant_id))
            assert len(stored) == 360
            assert stored["a0"].customer_hash == stored["c0"].customer_hash == stored["d0"].customer_hash

            # Four schedulers (a, b's two workers, the worker), one leader: once the 10-second jobs ran
            # twice, every process has passed the moment its first runs were due (5 s after start),
            # and each job that runs every few minutes or hours ran exactly once.
            def outbox_ran_twice() -> bool:
                return asyncio.run(_job_runs(w.settings)).get("outbox", 0) >= 2

            assert wait_for(outbox_ran_twice, timeout=90, step=1)
            runs = asyncio.run(_job_runs(w.settings))
            slow = sorted(name for name, (seconds, _) in periodic_jobs().items() if seconds >= 300)
            assert {name: runs.get(name) for name in slow} == dict.fromkeys(slow, 1)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
            a.stop()
            b.stop()


if "postgres" in BACKENDS:
    # Five processes each import the whole app: on a loaded 2-core machine that alone can take minutes.
    @pytest.mark.timeout(900)
    def test_two_servers_and_a_worker_share_one_postgresql(tmp_path, monkeypatch):
        _many_instances(tmp_path, monkeypatch)
