"""``bpoctl bench sla``: latency of the SLA report of a tenant with 200,000 contacts in one month.

1. Fresh SQLite databases in a temporary folder are migrated; one tenant (Europe/Berlin) gets the
   demo contract (deflection, CSAT, chat and e-mail response targets) and a support calendar.
2. N contacts of October 2026 (`tests.benchmarks.ingest.make_contacts`: the ingest benchmark's
   mix of channels, intents and languages) go through metering's `ingest_contacts` in batches of
   1,000, so the rollups are the real ones.
3. `sla.service.period_report` (what the API answers) runs `--runs` times after one warm-up: the
   rollups do not change between runs, so these are the answers served from the report cache
   (`billing.metering.counts.cached_figures`, keyed by the tenant's rollup receipts) — what a merchant gets
   until the next delta applies. Then `--runs` more with the cache cleared before each one: the
   first answer after the rollups changed (``cold_*``). The last line (``--json``) is one JSON object
   with the median and p90 latency in milliseconds of both.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

BATCH = 1000


async def _run(data_dir: Path, contacts: int, runs: int, echo: Callable[[str], None]) -> dict[str, object]:
    from billing.metering import counts
    from billing.metering.service import ingest_contacts
    from control_plane.auth import Principal
    from control_plane.database import Databases
    from control_plane.keystore import load_keyring_sync
    from control_plane.migrate import upgrade_all
    from control_plane.settings import load_settings
    from sla import configuration, service
    from tenants import service as tenants
    from tenants.demo import CONTRACT
    from tests.benchmarks.ingest import make_contacts

    settings = load_settings({"BPO_DATA_DIR": str(data_dir)})
    upgrade_all(settings)
    dbs, keyring = Databases(settings.database), load_keyring_sync(settings)
    actor = Principal("user", "bench@bpo.local", "account_manager")
    slug = "bench-sla"
    try:
        async with dbs.control_transaction() as session:
            spec = {"slug": slug, "name": "Bench SLA", "home_region": "eu", "timezone": "Europe/Berlin",
                    "currency": "EUR", "markets": ["DE", "FR", "ES"]}  # fmt: skip
            await tenants.create_tenant(session, actor, spec, regions=settings.regions, keyring=keyring)
            await tenants.add_contract_version(session, actor, slug, CONTRACT | {"currency": "EUR"})
            await tenants.set_residency(
                session, actor, slug, {"markets": {"DE": "eu", "FR": "eu", "ES": "eu"}},
                regions=settings.regions, today=date(2026, 10, 1),
            )  # fmt: skip
            week = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
            await configuration.set_support_calendar(session, actor, slug, {"weekly": week, "holidays": ["2026-10-03"]})
        rows = make_contacts(contacts)
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            await ingest_contacts(dbs, keyring, None, slug, rows[i : i + BATCH])
        ingest_s = time.perf_counter() - started
        echo(f"ingested {contacts:,} contacts in {ingest_s:.1f} s")
        now = datetime(2026, 11, 10, tzinfo=UTC)
        latencies = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            async with dbs.control_session() as session:
                report = await service.period_report(session, None, slug, "2026-10", now=now)
            if i:  # the first run warms the caches
                latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        cold = []
        for _ in range(runs):
            counts.clear_cache()
            t0 = time.perf_counter()
            async with dbs.control_session() as session:
                await service.period_report(session, None, slug, "2026-10", now=now)
            cold.append((time.perf_counter() - t0) * 1000)
        cold.sort()
        figures = {
            "benchmark": "sla_report",
            "database": "sqlite",
            "contacts": contacts,
            "contacts_resolved": report["metrics"]["contacts_resolved"],
            "runs": runs,
            "median_ms": round(statistics.median(latencies), 1),
            "p90_ms": round(latencies[int(0.9 * (len(latencies) - 1))], 1),
            "max_ms": round(latencies[-1], 1),
            "cold_median_ms": round(statistics.median(cold), 1),
            "cold_p90_ms": round(cold[int(0.9 * (len(cold) - 1))], 1),
            "ingest_seconds": round(ingest_s, 1),
            "slas": {s["sla"]: [s["actual"], s["status"], s["credit"]["amount"]] for s in report["slas"]},
        }
        return figures
    finally:
        await dbs.dispose()


def run_benchmark(*, contacts: int, runs: int, as_json: bool, echo: Callable[[str], None]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bpo-bench-sla-") as tmp:
        figures = asyncio.run(_run(Path(tmp), contacts, runs, echo))
    echo(
        f"SLA report, {contacts:,} contacts: median {figures['median_ms']} ms, p90 {figures['p90_ms']} ms; "
        f"after a rollup change (cache cold) median {figures['cold_median_ms']} ms, p90 {figures['cold_p90_ms']} ms"
    )
    if as_json:
        echo(json.dumps(figures))
    return figures
