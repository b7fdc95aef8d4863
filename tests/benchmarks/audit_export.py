"""Benchmark: stream a large audit export from a real server process and watch its memory.

``bpoctl bench audit-export [--json] [--entries N] [--database URL]``:

1. a fresh data directory (SQLite files, or fresh PostgreSQL databases beside ``--database``) is
   migrated by ``bpoctl db upgrade``;
2. a valid hash chain of N entries is computed here and bulk-inserted into ``audit_entries`` with
   executemany (timed: the raw insert rate, the yardstick);
3. ``bpoctl serve`` starts as its own process on a free loopback port; a compliance officer's
   token is issued with ``bpoctl token issue``;
4. ``GET /api/v1/audit/export`` is streamed over HTTP and discarded line by line, while a thread
   samples the server's RSS from ``/proc/PID/status`` every 20 ms; the last line is checked to be
   the export-time checkpoint over entry N.

Printed: entries, insert and export seconds and rates, the export/insert rate ratio, bytes, and the
server's RSS before, at its peak and the growth (acceptance: growth < 50 MB at N = 1,000,000).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
BPOCTL = str(Path(sys.executable).with_name("bpoctl"))
STREAM = "bench-audit"
CHUNK = 10_000
MB = 1024 * 1024


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_rows(n: int, *, after_seq: int = 0, prev: str = "0" * 64, stream: str = STREAM):
    """Rows ``after_seq + 1 .. after_seq + n`` of a valid chain (the README's hashing rule), in chunks."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    chunk = []
    for seq in range(after_seq + 1, after_seq + n + 1):
        ts = start + timedelta(milliseconds=seq)
        body = {
            "seq": seq,
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "stream": stream,
            "actor": "token:bpo_tok_bench",
            "role": "account_manager",
            "action": "tenant.updated",
            "target": f"tenant:{stream}",
            "data": {"name": f"Name {seq}", "n": seq},
            "request_id": f"req-{seq:08d}",
            "prev_hash": prev,
        }
        digest = hashlib.sha256(_canonical(body)).hexdigest()
        chunk.append(body | {"ts": ts, "hash": digest})
        prev = digest
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_insert(control_url: str, n: int) -> float:
    """Extend the stream's chain by ``n`` entries with executemany; returns the seconds spent in the
    database (hashing excluded)."""
    from compliance.models import AuditEntry
    from migrations.env_common import sync_url

    engine = sa.create_engine(sync_url(control_url))
    table = AuditEntry.__table__
    spent = 0.0
    try:
        with engine.connect() as conn:
            head = conn.execute(
                sa.select(table.c.seq, table.c.hash)
                .where(table.c.stream == STREAM)
                .order_by(table.c.seq.desc())
                .limit(1)
            ).first()
        for chunk in chain_rows(n, after_seq=head.seq if head else 0, prev=head.hash if head else "0" * 64):
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(sa.insert(AuditEntry.__table__), chunk)
            spent += time.perf_counter() - began
    finally:
        engine.dispose()
    return spent


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _rss_tree(pid: int) -> int:
    """RSS of the server: ``bpoctl serve`` runs uvicorn in-process, so its own pid is the server."""
    return rss_bytes(pid)


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.samples = pid, every, 0, 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, _rss_tree(self.pid))
                self.samples += 1
            except (OSError, RuntimeError):
                return
            self._halt.wait(self.every)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_databases(base_url: str, stem: str) -> tuple[dict[str, str], Callable[[], None]]:
    import psycopg

    url = sa.engine.make_url(base_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    names = [f"{stem}_{r}" for r in ("control", "eu", "us", "sg", "cn")]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    render = lambda n: url.set(database=n).render_as_string(hide_password=False)  # noqa: E731
    env = {
        "BPO_DATABASE_URL": render(names[0]),
        "BPO_CELL_URLS": ",".join(f"{r}={render(f'{stem}_{r}')}" for r in ("eu", "us", "sg", "cn")),
    }
    return env, drop


def measure(env: dict[str, str], entries: int, echo: Callable[[str], None]) -> dict[str, object]:
    from control_plane.settings import load_settings

    subprocess.run([BPOCTL, "db", "upgrade"], env=env, check=True, capture_output=True)
    settings = load_settings(env)
    token, staff = (
        subprocess.run(
            [BPOCTL, "token", "issue", "--role", role, "--label", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for role in ("compliance_officer", "account_manager")
    )
    port = _free_port()
    server = subprocess.Popen(
        [BPOCTL, "serve", "--no-migrate", "--no-scheduler", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, timeout=600) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            created = http.post(
                "/api/v1/tenants",
                json={
                    "slug": STREAM,
                    "name": "Audit bench",
                    "home_region": "eu",
                    "timezone": "Europe/Berlin",
                    "currency": "EUR",
                    "markets": ["DE"],
                },
                headers={"Authorization": f"Bearer {staff}"},
            )
            created.raise_for_status()
            echo(f"inserting a chain of {entries:,} entries with executemany ...")
            insert_s = bulk_insert(settings.database.control_url, entries)
            # Warm up: one small export so imports, key creation and pools are not counted as growth.
            warm = http.get("/api/v1/audit/export", params={"stream": "platform"}, headers=headers)
            warm.raise_for_status()
            baseline = rss_bytes(server.pid)
            sampler = RssSampler(server.pid)
            sampler.start()
            lines = size = 0
            last = b""
            began = time.perf_counter()
            with http.stream("GET", "/api/v1/audit/export", params={"stream": STREAM}, headers=headers) as resp:
                resp.raise_for_status()
                for line in resp.iter_lines():
                    lines += 1
                    size += len(line) + 1
                    last = line
            export_s = time.perf_counter() - began
            peak = max(sampler.stop(), rss_bytes(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    final = json.loads(last)
    total = entries + 1  # the tenant.created entry starts the stream
    assert final["type"] == "checkpoint" and final["seq"] == total, final
    assert lines == total + 2, lines  # header + entries + export-time checkpoint
    insert_rate, export_rate = entries / insert_s, entries / export_s
    return {
        "benchmark": "audit-export",
        "entries": entries,
        "lines": lines,
        "bytes": size,
        "insert_seconds": round(insert_s, 2),
        "insert_rate_per_s": round(insert_rate),
        "export_seconds": round(export_s, 2),
        "export_rate_per_s": round(export_rate),
        "export_to_insert_ratio": round(export_rate / insert_rate, 2),
        "export_mb_per_s": round(size / MB / export_s, 1),
        "rss_baseline_mb": round(baseline / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "rss_growth_mb": round((peak - baseline) / MB, 1),
        "rss_samples": sampler.samples,
    }


def run_benchmark(
    *, entries: int, database: str | None, as_json: bool, echo: Callable[[str], None] = print
) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="bpo-bench-audit-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")}
    env |= {"BPO_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if database:
        pg_env, drop = _pg_databases(database, f"bpo_bench_{secrets.token_hex(3)}")
        env |= pg_env
    try:
        figures = measure(env, entries, echo) | {"database": "postgresql" if database else "sqlite"}
    finally:
        drop()
        shutil.rmtree(data_dir, ignore_errors=True)
    echo(
        f"{figures['entries']:,} entries ({figures['bytes'] / MB:.0f} MB of JSON Lines) on {figures['database']}: "
        f"insert {figures['insert_seconds']} s ({figures['insert_rate_per_s']:,}/s), "
        f"export {figures['export_seconds']} s ({figures['export_rate_per_s']:,}/s, "
        f"{figures['export_to_insert_ratio']}x the raw insert rate); server RSS {figures['rss_baseline_mb']} MB "
        f"-> peak {figures['rss_peak_mb']} MB (growth {figures['rss_growth_mb']} MB)"
    )
    if as_json:
        echo(json.dumps(figures))
    return figures
