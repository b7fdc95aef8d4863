"""Benchmark: stream one invoice's itemised usage (``usage.csv``) of N contacts from a real server.

``bpoctl bench usage-csv [--json] [--contacts N] [--database URL]``:

1. a fresh data directory (SQLite files, or fresh PostgreSQL databases beside ``--database``) is
   migrated by ``bpoctl db upgrade``; ``bpoctl serve`` starts as its own process on a free port;
2. a tenant (eu cell, Europe/Berlin) gets a contract through the API, and a month two months back is
   drafted (its invoice; the raw rows below bypass ingest, so its quantities stay 0: the CSV reads
   the cell, not the rollups);
3. N contacts of that month (80 % AI-, 20 % human-resolved) are bulk-inserted into the tenant's cell
   with executemany, 10,000 per transaction (timed: the raw insert rate, the yardstick);
4. a warm-up download of another tenant's empty invoice, then ``GET /api/v1/invoices/{id}/usage.csv``
   is streamed over HTTP and counted line by line while a thread samples the server's RSS from
   ``/proc/PID/status`` every 20 ms.

Printed: rows, insert and stream seconds and rates, the stream/insert rate ratio, MB of CSV, and the
server's RSS before, at its peak and the growth. The rows per resolution are checked against what
was inserted. No figure is asserted here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.benchmarks.audit_export import BPOCTL, MB, ROOT, RssSampler, _free_port, _pg_databases, rss_bytes

CHUNK = 10_000
HUMAN_EVERY = 5  # one contact in five is human-resolved


def _month(today: datetime) -> tuple[int, int]:
    """A month that has settled whatever the reopen window: two months before today's."""
    index = today.year * 12 + today.month - 1 - 2
    return index // 12, index % 12 + 1


def contact_rows(tenant_id: uuid.UUID, n: int, start: datetime, seconds: int) -> Iterator[list[dict]]:
    """N contacts resolved across ``[start, start + seconds)``, in chunks of `CHUNK`."""
    step = seconds / (n + 1)
    chunk: list[dict] = []
    for i in range(n):
        resolved = start + timedelta(seconds=int(step * (i + 1)))
        opened = resolved - timedelta(minutes=4)
        human = i % HUMAN_EVERY == 0
        chunk.append({
            "tenant_id": tenant_id, "external_id": f"bench-{i:08d}", "channel": "chat" if i % 3 else "email",
            "language": "de", "market": "DE", "intent": ("wismo", "returns", "billing")[i % 3],
            "opened_at": opened, "first_response_at": opened + timedelta(seconds=20),
            "handoff_at": opened + timedelta(minutes=1) if human else None, "resolved_at": resolved,
            "resolution": "human_resolved" if human else "ai_resolved", "csat": 5, "customer_hash": None,
            "updated_at": resolved, "received_at": resolved, "reopens": 0, "first_resolved_at": resolved,
        })  # fmt: skip
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_insert(cell_url: str, tenant_id: uuid.UUID, n: int, start: datetime, seconds: int) -> float:
    """Insert N contacts with executemany; returns the seconds spent in the database."""
    from billing.metering.models import Contact
    from migrations.env_common import sync_url

    engine = sa.create_engine(sync_url(cell_url))
    spent = 0.0
    try:
        for chunk in contact_rows(tenant_id, n, start, seconds):
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(sa.insert(Contact.__table__), chunk)
            spent += time.perf_counter() - began
    finally:
        engine.dispose()
    return spent


def _wait_up(http: httpx.Client, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("the server did not start")
        time.sleep(0.1)


def _tenant_with_invoice(http: httpx.Client, staff: dict[str, str], slug: str, period: str) -> tuple[str, str]:
    """(tenant id, invoice id): a tenant with a contract from the period on, and the period drafted."""
    created = http.post(
        "/api/v1/tenants",
        json={"slug": slug, "name": f"Usage bench {slug}", "home_region": "eu", "timezone": "Europe/Berlin",
              "currency": "EUR", "markets": ["DE"]},
        headers=staff,
    )  # fmt: skip
    created.raise_for_status()
    contract = {
        "effective_from": f"{period}-01", "currency": "EUR",
        "ai_resolved": {"tiers": [{"up_to": 100_000, "unit_price": "1.40"}, {"up_to": None, "unit_price": "0.90"}]},
        "human_resolved": {"unit_price": "5.20"},
    }  # fmt: skip
    http.put(f"/api/v1/tenants/{slug}/contract", json=contract, headers=staff).raise_for_status()
    drafted = http.post(f"/api/v1/tenants/{slug}/invoices", params={"period": period}, headers=staff)
    drafted.raise_for_status()
    return created.json()["id"], drafted.json()["id"]


def measure(env: dict[str, str], contacts: int, echo: Callable[[str], None]) -> dict[str, object]:
    from control_plane.settings import load_settings

    subprocess.run([BPOCTL, "db", "upgrade"], env=env, check=True, capture_output=True)
    settings = load_settings(env)
    token = subprocess.run(
        [BPOCTL, "token", "issue", "--role", "account_manager", "--label", "bench"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    staff = {"Authorization": f"Bearer {token}"}
    year, month = _month(datetime.now(UTC))
    period = f"{year:04d}-{month:02d}"
    # The month's bounds in Berlin, as UTC instants; contacts are spread over the whole month.
    from tenants.periods import Period

    p = Period(year, month)
    start, end = p.start_utc("Europe/Berlin"), p.end_utc("Europe/Berlin")
    port = _free_port()
    server = subprocess.Popen(
        [BPOCTL, "serve", "--no-migrate", "--no-scheduler", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lines = size = 0
    per_resolution: Counter[str] = Counter()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as http:
            _wait_up(http, server)
            tenant_id, invoice_id = _tenant_with_invoice(http, staff, "bench-usage", period)
            _, warm_id = _tenant_with_invoice(http, staff, "bench-usage-warm", period)
            echo(f"inserting {contacts:,} contacts of {period} into the eu cell with executemany ...")
            insert_s = bulk_insert(
                settings.database.cell_urls["eu"], uuid.UUID(tenant_id), contacts, start,
                int((end - start).total_seconds()),
            )  # fmt: skip
            # Warm up: an empty invoice's CSV, so imports and pools are not counted as growth.
            http.get(f"/api/v1/invoices/{warm_id}/usage.csv", headers=staff).raise_for_status()
            baseline = rss_bytes(server.pid)
            sampler = RssSampler(server.pid)
            sampler.start()
            began = time.perf_counter()
            with http.stream("GET", f"/api/v1/invoices/{invoice_id}/usage.csv", headers=staff) as resp:
                resp.raise_for_status()
                for line in resp.iter_lines():
                    lines += 1
                    size += len(line) + 2
                    if lines > 1:
                        per_resolution[line.split(",", 5)[4]] += 1
            stream_s = time.perf_counter() - began
            peak = max(sampler.stop(), rss_bytes(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    human = len(range(0, contacts, HUMAN_EVERY))
    expected = {"ai_resolved": contacts - human, "human_resolved": human}
    assert {k: v for k, v in per_resolution.items() if v} == {k: v for k, v in expected.items() if v}, per_resolution
    assert lines == contacts + 1, lines
    insert_rate, stream_rate = contacts / insert_s, contacts / stream_s
    return {
        "benchmark": "usage-csv",
        "contacts": contacts,
        "rows": lines - 1,
        "bytes": size,
        "insert_seconds": round(insert_s, 2),
        "insert_rate_per_s": round(insert_rate),
        "stream_seconds": round(stream_s, 2),
        "rows_per_s": round(stream_rate),
        "stream_to_insert_ratio": round(stream_rate / insert_rate, 2),
        "rss_baseline_mb": round(baseline / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "rss_growth_mb": round((peak - baseline) / MB, 1),
        "rss_samples": sampler.samples,
    }


def run_benchmark(
    *, contacts: int, database: str | None, as_json: bool, echo: Callable[[str], None] = print
) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="bpo-bench-usage-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")}
    env |= {"BPO_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if database:
        pg_env, drop = _pg_databases(database, f"bpo_bench_{secrets.token_hex(3)}")
        env |= pg_env
    try:
        figures = measure(env, contacts, echo) | {"database": "postgresql" if database else "sqlite"}
    finally:
        drop()
        shutil.rmtree(data_dir, ignore_errors=True)
    echo(
        f"{figures['rows']:,} rows ({figures['bytes'] / MB:.0f} MB of CSV) on {figures['database']}: "
        f"insert {figures['insert_seconds']} s ({figures['insert_rate_per_s']:,}/s), "
        f"usage.csv {figures['stream_seconds']} s ({figures['rows_per_s']:,} rows/s, "
        f"{figures['stream_to_insert_ratio']}x the raw insert rate); server RSS {figures['rss_baseline_mb']} MB "
        f"-> peak {figures['rss_peak_mb']} MB (growth {figures['rss_growth_mb']} MB)"
    )
    if as_json:
        echo(json.dumps(figures))
    return figures
