"""The fault suite's parts: fresh databases, a real ``bpoctl serve`` process that can be killed with
SIGKILL and started again on the same port, and senders that retry like a careful client.

Everything runs on loopback and is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.benchmarks.ingest import _free_port, _wait_ready
from tests.conftest import build_settings, contract_body, drop_databases

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@dataclass
class World:
    """Fresh databases of one backend, a tenant with a contract and two cells, its key, a staff token."""

    backend: str
    settings: Any
    env: dict[str, str]
    slug: str
    tenant_id: uuid.UUID
    timezone: str
    api_key: str
    staff_token: str
    created: list[str] = field(default_factory=list)


async def _onboard(settings) -> tuple[uuid.UUID, str, str, str]:
    from compliance.service import SystemActor
    from control_plane.auth import Principal
    from control_plane.database import Databases
    from control_plane.keystore import load_keyring_sync
    from control_plane.service import issue_token
    from tenants import service as tenants

    actor = Principal("user", "faults@bpo.test", "account_manager")
    keyring = load_keyring_sync(settings)
    db = Databases(settings.database)
    slug = "faults"
    try:
        async with db.control_transaction() as session:
            tenant = await tenants.create_tenant(
                session,
                SystemActor("faults"),
                {"slug": slug, "name": "Faults GmbH", "home_region": "eu", "timezone": "Europe/Berlin",
                 "currency": "EUR", "markets": ["DE", "CN"]},
                regions=settings.regions,
                keyring=keyring,
            )  # fmt: skip
            await tenants.set_residency(
                session,
                actor,
                slug,
                {"markets": {"DE": "eu"}},
                regions=settings.regions,
                today=datetime.now(UTC).date(),
            )
            await tenants.add_contract_version(session, actor, slug, contract_body())
            _, key = await tenants.issue_api_key(session, actor, slug, {"scopes": ["contacts:write"]})
            _, token = await issue_token(session, SystemActor("faults"), role="account_manager", tenant=None)
            return tenant.id, tenant.timezone, key, token
    finally:
        await db.dispose()


@contextmanager
def world(backend: str, tmp: Path) -> Iterator[World]:
    from control_plane.migrate import upgrade_all

    settings, created = build_settings(backend, tmp)
    try:
        upgrade_all(settings)
        tenant_id, timezone, key, token = asyncio.run(_onboard(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")} | {
            "BPO_DATA_DIR": str(settings.data_dir),
            "BPO_INGEST_RATE": "100000",
            "BPO_INGEST_BURST": "100000",
        }
        if backend == "postgres":
            env["BPO_DATABASE_URL"] = settings.database.control_url
            env["BPO_CELL_URLS"] = ",".join(f"{r}={u}" for r, u in settings.database.cell_urls.items())
        yield World(backend, settings, env, "faults", tenant_id, timezone, key, token, created)
    finally:
        drop_databases(created)


class Server:
    """``bpoctl serve`` (with its scheduler) as its own process, on one port across restarts."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env | {"BPO_PORT": str(self.port)}
        self.process: subprocess.Popen | None = None
        self.log = open(os.devnull, "w")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "serve", "--no-migrate", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_ready(self.url, self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no pending work finished."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None
        self.log.close()


def versioned_batches(ids: int, versions: int = 3, per_batch: int = 200) -> list[list[dict[str, Any]]]:
    """``ids`` contacts in ``versions`` versions each: v0 open, then resolved by the AI, then reopened and
    resolved by a human later (with a rating), in batches of one version each. ``external_id`` ``f{i}``;
    markets alternate DE (eu cell) and CN (cn cell)."""
    batches = []
    for v in range(versions):
        rows = []
        for i in range(ids):
            opened = T0 + timedelta(minutes=7 * i)
            body: dict[str, Any] = {
                "external_id": f"f{i}",
                "channel": ("chat", "email")[i % 2],
                "language": "de",
                "market": ("DE", "CN")[i % 3 == 0],
                "intent": ("wismo", "return", "refund")[i % 3],
                "opened_at": ts(opened),
                "first_response_at": ts(opened + timedelta(seconds=15 + i % 90)),
                "resolution": "open",
                "updated_at": ts(opened + timedelta(hours=1 + v)),
            }
            if v >= 1:
                body |= {"resolution": "ai_resolved", "resolved_at": ts(opened + timedelta(minutes=5)), "csat": 4}
            if v >= 2:
                body |= {
                    "resolution": "human_resolved",
                    "handoff_at": ts(opened + timedelta(minutes=50)),
                    "resolved_at": ts(opened + timedelta(minutes=55)),
                    "csat": 1 + i % 5,
                }
            rows.append(body)
        batches += [rows[k : k + per_batch] for k in range(0, ids, per_batch)]
    return batches


RETRY_SECONDS = 240  # how long a sender keeps trying one batch


class Senders:
    """Threads that send batches and retry each until it is answered 200, as a careful client does:
    on a lost connection (the server died) and on 503 (``Retry-After``). Every status is counted."""

    def __init__(self, url: str, key: str, batches: list[list[dict[str, Any]]], threads: int = 4) -> None:
        self.url, self.key = url, key
        self.queue = list(enumerate(batches))
        self.statuses: Counter[int] = Counter()
        self.connection_errors = 0
        self.acked = 0
        self.bodies: list[str] = []  # answers other than 200/503, for the failure message
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "senders did not finish in time"

    def _next(self) -> list[dict[str, Any]] | None:
        with self._lock:
            return self.queue.pop(0)[1] if self.queue else None

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=30) as client:
            while (batch := self._next()) is not None:
                # Bounded by time, not by tries: a restarted server answers nothing until it has
                # started, which on a loaded 2-core machine took more than the 40 s of 400 quick tries.
                deadline = time.monotonic() + RETRY_SECONDS
                while time.monotonic() < deadline:
                    try:
                        resp = client.post(f"{self.url}/api/v1/tenants/faults/contacts", json=batch, headers=headers)
                    except httpx.HTTPError:
                        with self._lock:
                            self.connection_errors += 1
                        time.sleep(0.1)
                        continue
                    with self._lock:
                        self.statuses[resp.status_code] += 1
                        if resp.status_code not in (200, 503):
                            self.bodies.append(resp.text[:500])
                    if resp.status_code == 200:
                        with self._lock:
                            self.acked += 1
                        break
                    time.sleep(float(resp.headers.get("retry-after", "0.2")) / 5)
                else:
                    raise AssertionError("a batch was never accepted")


async def stored_contacts(settings, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Every stored contact of the tenant across its cells, by external id."""
    import sqlalchemy as sa

    from billing.metering.models import Contact
    from control_plane.database import Databases

    db = Databases(settings.database)
    out: dict[str, Any] = {}
    try:
        for region in db.cells:
            async with db.cell_session(region) as cell:
                for row in (await cell.execute(sa.select(Contact).where(Contact.tenant_id == tenant_id))).scalars():
                    assert row.external_id not in out, f"{row.external_id} stored twice"
                    out[row.external_id] = row
    finally:
        await db.dispose()
    return out


def bpoctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "control_plane.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
