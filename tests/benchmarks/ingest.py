"""``bpoctl bench ingest``: contacts/s through a real server against raw executemany into the same database.

1. Fresh databases (SQLite files in a temporary folder, or new PostgreSQL databases beside
   ``--database``) are migrated and one tenant with a ``contacts:write`` key is onboarded.
2. ``bpoctl serve`` starts as a separate process on a free loopback port.
3. A separate sender process posts N contacts in batches of 1,000 (``--concurrency`` in flight)
   and reports the wall time and every batch's latency.
   The clock stops once the server has applied every rollup delta (it does so just after
   answering) and the rollups count every contact: ``rollups_settled_ms`` is that tail.
4. In the same run, the same rows (timestamps parsed, customer refs hashed) are inserted into the
   same cell with SQLAlchemy Core executemany, 1,000 rows per transaction, with no HTTP: the raw
   rate, the ratio's yardstick. On PostgreSQL the same rows are also copied (binary ``COPY``, as
   the server writes new contacts): ``raw_copy_rows_per_second`` and ``ratio_to_copy``.
5. The server's peak RSS is its ``VmHWM`` from ``/proc``. The last line (``--json``) is one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ["eu", "us", "sg", "cn"]
BATCH = 1000
CHANNELS = ["chat"] * 5 + ["email"] * 3 + ["voice", "sms", "social", "marketplace"]
INTENTS = ["wismo"] * 6 + ["return", "refund", "exchange", "delivery_exception", "damaged_item", "product_question"]


def make_contacts(n: int, seed: int = 7) -> list[dict[str, Any]]:
    import random

    rnd = random.Random(seed)
    base = datetime(2026, 10, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        opened = base + timedelta(seconds=rnd.randrange(30 * 86400))
        resolution = rnd.choices(["ai_resolved", "human_resolved", "open", "abandoned"], [70, 22, 5, 3])[0]
        c = {
            "external_id": f"bench-{i}",
            "channel": rnd.choice(CHANNELS),
            "language": rnd.choice(["de", "de", "fr", "es", "en"]),
            "market": rnd.choice(["DE", "DE", "FR", "ES"]),
            "intent": rnd.choice(INTENTS),
            "opened_at": opened.isoformat(),
            "first_response_at": (opened + timedelta(seconds=rnd.randrange(5, 900))).isoformat(),
            "resolution": resolution,
            "customer_ref": f"customer{rnd.randrange(n // 3 + 1)}@example.com",
            "updated_at": (opened + timedelta(hours=2)).isoformat(),
        }
        if resolution in ("ai_resolved", "human_resolved"):
            c["resolved_at"] = (opened + timedelta(seconds=rnd.randrange(60, 7200))).isoformat()
            if rnd.random() < 0.3:
                c["csat"] = rnd.choice([5, 5, 4, 4, 3, 2, 1])
        if resolution == "human_resolved":
            c["handoff_at"] = (opened + timedelta(seconds=30)).isoformat()
        out.append(c)
    # Helpdesks send contacts as they happen: a batch covers a few hours, not the whole month.
    out.sort(key=lambda c: c["opened_at"])
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_databases(url: str) -> tuple[dict[str, str], Callable[[], None]]:
    import psycopg
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    stem = f"bpo_bench_{secrets.token_hex(3)}"
    names = [f"{stem}_{n}" for n in ["control", *REGIONS]]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def u(name: str) -> str:
        return base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)

    env = {
        "BPO_DATABASE_URL": u(f"{stem}_control"),
        "BPO_CELL_URLS": ",".join(f"{r}={u(f'{stem}_{r}')}" for r in REGIONS),
    }
    return env, drop


async def _onboard(settings) -> tuple[str, uuid.UUID, str, bytes]:
    from compliance.service import SystemActor
    from control_plane.auth import Principal
    from control_plane.database import Databases
    from control_plane.keystore import load_keyring_sync
    from tenants import service as tenants

    actor = Principal("user", "bench@bpo.local", "account_manager")
    keyring = load_keyring_sync(settings)
    dbs = Databases(settings.database)
    try:
        async with dbs.control_transaction() as session:
            tenant = await tenants.create_tenant(
                session,
                SystemActor("bench"),
                {
                    "slug": "bench",
                    "name": "Bench Apparel",
                    "home_region": "eu",
                    "timezone": "Europe/Berlin",
                    "currency": "EUR",
                    "markets": ["DE", "FR", "ES"],
                },
                regions=settings.regions,
                keyring=keyring,
            )
            await tenants.set_residency(
                session,
                actor,
                "bench",
                {"markets": {"DE": "eu", "FR": "eu", "ES": "eu"}},
                regions=settings.regions,
                today=datetime.now(UTC).date(),
            )
            _, secret = await tenants.issue_api_key(session, actor, "bench", {"scopes": ["contacts:write"]})
            return secret, tenant.id, "eu", tenants.customer_hash_key(tenant, keyring)
    finally:
        await dbs.dispose()


async def _raw_rates(settings, contacts: list[dict[str, Any]], hash_key: bytes) -> tuple[float, float | None]:
    """Rows/s into the cell, 1,000 rows per transaction, same rows, each run under a fresh tenant id:
    SQLAlchemy Core executemany (the yardstick of the ratio), and on PostgreSQL also the binary COPY
    the server itself uses for new contacts (``None`` on SQLite)."""
    from billing.metering.cell_writes import COLUMNS, _insert_contacts, _values
    from billing.metering.models import Contact
    from billing.metering.schemas import validate_contact
    from billing.metering.service import hash_customer_ref
    from control_plane.database import Databases

    dbs = Databases(settings.database)
    now = datetime.now(UTC)
    valid = [validate_contact(i, raw) for i, raw in enumerate(contacts)]
    hashes = [hash_customer_ref(hash_key, c.customer_ref) for c in valid]
    table = Contact.__table__

    async def rate(insert) -> float:
        tenant_id = uuid.uuid4()
        rows = [_values(c, tenant_id, h, now) for c, h in zip(valid, hashes, strict=True)]
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            async with dbs.cell_session("eu") as cell, cell.begin():
                await insert(cell, rows[i : i + BATCH])
        return len(rows) / (time.perf_counter() - started)

    async def executemany(cell, rows) -> None:
        await cell.execute(table.insert(), [dict(zip(COLUMNS, r, strict=True)) for r in rows])

    try:
        raw = await rate(executemany)
        copy = await rate(_insert_contacts) if dbs.cells["eu"].dialect.name == "postgresql" else None
        return raw, copy
    finally:
        await dbs.dispose()


async def _settle(settings, tenant_id: uuid.UUID, accepted: int, limit_s: float = 300) -> float:
    """Seconds until no rollup delta waits in the cell and the rollups count ``accepted`` contacts."""
    import sqlalchemy as sa

    from billing.metering.models import ContactRollup, RollupDelta
    from control_plane.database import Databases

    started = time.perf_counter()
    dbs = Databases(settings.database)
    try:
        while True:
            async with dbs.cell_session("eu") as cell:
                pending = await cell.scalar(sa.select(sa.func.count()).select_from(RollupDelta))
            async with dbs.control_session() as session:
                counted = await session.scalar(
                    sa.select(sa.func.coalesce(sa.func.sum(ContactRollup.contacts), 0)).where(
                        ContactRollup.tenant_id == tenant_id, ContactRollup.basis == "opened"
                    )
                )
            if pending == 0 and counted == accepted:
                return time.perf_counter() - started
            if time.perf_counter() - started > limit_s:
                raise RuntimeError(f"rollups did not settle: {pending} deltas pending, {counted} of {accepted} counted")
            await asyncio.sleep(0.02)
    finally:
        await dbs.dispose()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_benchmark(
    *,
    database: str | None,
    contacts: int,
    concurrency: int,
    as_json: bool,
    echo: Callable[[str], None],
    workers: int = 1,
) -> dict[str, Any]:
    from control_plane.migrate import upgrade_all
    from control_plane.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="bpo-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")} | {"BPO_DATA_DIR": str(tmp)}
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if database and database.startswith("postgresql"):
        db_env, drop = _pg_databases(database)
        env |= db_env
    settings = load_settings(env)
    servers: list[subprocess.Popen] = []
    try:
        upgrade_all(settings)
        secret, tenant_id, _region, hash_key = asyncio.run(_onboard(settings))
        # The per-key rate limit is lifted: this measures the ingest path, not the limiter.
        server_env = env | {"BPO_INGEST_RATE": "100000", "BPO_INGEST_BURST": "100000"}
        # BPO_BENCH_PROFILE=FILE: the (first) server runs under cProfile and writes its stats to FILE at exit.
        profile = os.environ.get("BPO_BENCH_PROFILE")
        urls = []
        for i in range(workers):  # server processes; the sender's connections take them in turn
            port = _free_port()
            runner = ["-m", "tests.benchmarks.profiled", profile] if profile and i == 0 else ["-m", "control_plane.cli"]
            scheduler = "--scheduler" if i == 0 else "--no-scheduler"
            servers.append(
                subprocess.Popen(
                    [sys.executable, *runner, "serve", "--no-migrate", scheduler, "--port", str(port)],
                    env=server_env | {"BPO_PORT": str(port)},
                    cwd=ROOT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
            _wait_ready(urls[-1], servers[-1])
        url = ",".join(urls)
        pids = " ".join(str(s.pid) for s in servers)
        echo(f"server pid {pids} on {url}; sending {contacts} contacts in batches of {BATCH}")
        sender = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.ingest", "send", url, secret, str(contacts), str(concurrency)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        sent = json.loads(sender.stdout.strip().splitlines()[-1])
        # The server applies rollup deltas just after answering: the clock stops only once every
        # delta is applied and the rollups count every contact (also a check that none was lost).
        settle = asyncio.run(_settle(settings, tenant_id, sent["accepted"]))
        elapsed = contacts / sent["contacts_per_second"] + settle
        peak = sum(_peak_rss_mb(s.pid) for s in servers)
        for s in servers:
            s.terminate()
        for s in servers:
            s.wait(timeout=30)
        servers = []
        raw, raw_copy = asyncio.run(_raw_rates(settings, make_contacts(contacts), hash_key))
        result = {
            "database": "postgresql" if database else "sqlite",
            "contacts": contacts,
            "accepted": sent["accepted"],
            "contacts_per_second": round(contacts / elapsed, 1),
            "raw_rows_per_second": round(raw, 1),
            "ratio": round(contacts / elapsed / raw, 3),
            "rollups_settled_ms": round(settle * 1000, 1),
            "p50_batch_ms": round(sent["p50_batch_ms"], 1),
            "p99_batch_ms": round(sent["p99_batch_ms"], 1),
            "peak_rss_mb": round(peak, 1),
            "concurrency": concurrency,
            "workers": workers,
            # PostgreSQL: the server writes new contacts by binary COPY, faster than executemany.
            "raw_copy_rows_per_second": raw_copy and round(raw_copy, 1),
            "ratio_to_copy": raw_copy and round(contacts / elapsed / raw_copy, 3),
        }
        for key, value in result.items():
            echo(f"{key:>22}: {value}")
        if as_json:
            echo(json.dumps(result))
        return result
    finally:
        for s in servers:
            s.kill()
        drop()


READY_SECONDS = 180


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + READY_SECONDS  # a server starts in seconds; far longer on a loaded machine
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not become healthy in {READY_SECONDS} s")


async def _send(url: str, secret: str, n: int, concurrency: int) -> dict[str, Any]:
    import httpx

    contacts = make_contacts(n)
    bodies = [json.dumps(contacts[i : i + BATCH]).encode() for i in range(0, n, BATCH)]
    latencies: list[float] = []
    accepted = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    urls = url.split(",")  # one or more server processes: sender connection i talks to urls[i % len]
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=u, headers=headers, timeout=120)) for u in urls
        ]

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                t0 = time.perf_counter()
                resp = await client.post("/api/v1/tenants/bench/contacts", content=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                resp.raise_for_status()
                accepted += resp.json()["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "accepted": accepted,
        "contacts_per_second": n / elapsed,
        "p50_batch_ms": statistics.median(latencies),
        "p99_batch_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


if __name__ == "__main__" and sys.argv[1:2] == ["send"]:
    _url, _secret, _n, _conc = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    print(json.dumps(asyncio.run(_send(_url, _secret, _n, _conc))))
