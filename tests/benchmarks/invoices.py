"""``bpoctl bench invoices``: draft one period for 1,000 tenants x 2,000 contacts each.

1. Fresh databases (SQLite files in a temporary folder, or new PostgreSQL databases beside
   ``--database``) are migrated.
2. N tenants are created through the tenants service with a contract each, in four profiles
   (Berlin/EUR with graduated human prices, New York/USD, Tokyo/JPY, Kuwait/KWD; deflection, CSAT
   and response credit rules), then set active.
3. Each tenant's rollups for October 2026 are built the way ingest builds them, without the
   contacts: M generated contacts per tenant (channels, intents and resolutions in the demo's
   proportions, a few late-October contacts resolved on November 1st) go through metering's own
   ``contact_parts`` and ``DeltaSum`` and are written with ``add_to_rollups`` (ingest's upsert).
   Billing reads only rollups, so this is exactly what it would read after ingesting them.
4. Timed: ``draft_due_invoices`` (the hourly job: one transaction per tenant, contract in force,
   SLA counts, rating, invoice lines, audit entry) at a moment after October has settled; then,
   in the same run, one SQL aggregate over the same rollups (billable contacts per tenant and
   resolution for the period) as the yardstick. The ratio is draft seconds / aggregate seconds.

The last line (``--json``) is one JSON object of the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

PERIOD = "2026-10"
FIRST, END = date(2026, 10, 1), date(2026, 11, 1)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # October has settled everywhere (72 h + 24 h)
TENANTS_PER_TX = 100
ROLLUP_TENANTS_PER_TX = 25

_CREDITS = {
    "deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"},
    "csat": {"percent_per_point": "1.0", "cap_percent": "5.0"},
    "response": {"percent_per_point": "0.5", "cap_percent": "5.0"},
}
_SLA = {
    "deflection_floor": "0.70",
    "csat_target": "0.87",
    "csat_min_sample": 100,
    "response_targets": [
        {"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"},
        {"channel": "email", "first_response_seconds": 14400, "attainment": "0.95"},
    ],
    "credits": _CREDITS,
    "total_credit_cap_percent": "12.0",
}
# (timezone, currency, region, markets, prices and minimum)
PROFILES: list[tuple[str, str, str, list[str], dict[str, Any]]] = [
    ("Europe/Berlin", "EUR", "eu", ["DE", "FR"], {
        "ai_resolved": {"unit_price": "1.40"},
        "human_resolved": {"tiers": [{"up_to": 500, "unit_price": "5.20"}, {"up_to": None, "unit_price": "4.80"}]},
        "minimum_monthly_fee": "3000.00"}),
    ("America/New_York", "USD", "us", ["US"], {
        "ai_resolved": {"tiers": [{"up_to": 1000, "unit_price": "1.25"}, {"up_to": None, "unit_price": "0.95"}]},
        "human_resolved": {"unit_price": "4.75"}}),
    ("Asia/Tokyo", "JPY", "sg", ["JP"], {
        "ai_resolved": {"unit_price": "187.5"},
        "human_resolved": {"unit_price": "712.4"},
        "minimum_monthly_fee": "500000"}),
    ("Asia/Kuwait", "KWD", "eu", ["KW"], {
        "ai_resolved": {"unit_price": "0.4325"},
        "human_resolved": {"tiers": [{"up_to": 300, "unit_price": "1.6005"}, {"up_to": None, "unit_price": "1.45"}]}}),
]  # fmt: skip

INTENTS = {
    "wismo": 34, "return": 12, "refund": 9, "delivery_exception": 8, "exchange": 5, "product_question": 6,
    "sizing": 4, "damaged_item": 4, "missing_item": 3, "cancellation": 3, "address_change": 3,
    "discount_code": 2, "payment": 2, "subscription": 2, "complaint": 1, "chargeback": 1, "fraud": 1, "other": 1,
}  # fmt: skip
CHANNELS = {"chat": 45, "email": 35, "voice": 6, "sms": 4, "social": 6, "marketplace": 4}
LANGUAGES = ["en", "en", "de", "fr", "es"]
RESOLUTIONS = ["ai_resolved", "human_resolved", "abandoned", "open"]


def tenant_contacts(rnd: random.Random, n: int, zone: ZoneInfo) -> list[dict[str, Any]]:
    """``n`` contacts opened in October (local time) as ``contact_parts`` takes them."""
    intents, iw = list(INTENTS), list(INTENTS.values())
    channels, cw = list(CHANNELS), list(CHANNELS.values())
    start = datetime(2026, 10, 1, tzinfo=zone)
    span = int((datetime(2026, 11, 1, tzinfo=zone) - start).total_seconds())
    # A tenant's own quality: some miss their SLAs, most meet them.
    ai_share, good_share, slow_share = rnd.uniform(0.6, 0.8), rnd.uniform(0.8, 0.95), rnd.uniform(0.02, 0.15)
    rows = []
    for channel, intent, resolution in zip(
        rnd.choices(channels, cw, k=n),
        rnd.choices(intents, iw, k=n),
        rnd.choices(RESOLUTIONS, [ai_share, 0.94 - ai_share, 0.04, 0.02], k=n),
        strict=True,
    ):
        opened = (start + timedelta(seconds=rnd.randrange(span))).astimezone(UTC)
        chatty = channel in ("chat", "sms", "social")
        slow = rnd.random() < slow_share
        if chatty:
            frt = rnd.randrange(61, 600) if slow else rnd.randrange(3, 60)
        else:
            frt = rnd.randrange(60, 20000 if slow else 14000)
        first = opened + timedelta(seconds=frt)
        resolved = None if resolution == "open" else first + timedelta(seconds=rnd.randrange(60, 8 * 3600))
        csat = None
        if resolution in ("ai_resolved", "human_resolved") and rnd.random() < 0.3:
            csat = rnd.choice((5, 4)) if rnd.random() < good_share else rnd.choice((3, 2, 1))
        rows.append(
            {
                "channel": channel,
                "intent": intent,
                "language": rnd.choice(LANGUAGES),
                "resolution": resolution,
                "opened_at": opened,
                "first_response_at": first,
                "handoff_at": first + timedelta(seconds=30) if resolution == "human_resolved" else None,
                "resolved_at": resolved,
                "csat": csat,
            }
        )  # fmt: skip
    return rows


async def _seed(dbs, keyring, settings, tenants: int, contacts: int, echo: Callable[[str], None]) -> dict[str, Any]:
    from billing.metering.rollups import DeltaSum, add_to_rollups, contact_parts
    from compliance.service import SystemActor
    from tenants import service as tenant_service
    from tenants.demo import SEEDER
    from tenants.models import Tenant

    t0 = time.perf_counter()
    made: list[tuple[Any, str]] = []
    for first in range(0, tenants, TENANTS_PER_TX):
        async with dbs.control_transaction() as session:
            for i in range(first, min(first + TENANTS_PER_TX, tenants)):
                tz, currency, region, markets, prices = PROFILES[i % len(PROFILES)]
                spec = {"slug": f"bench-{i:04d}", "name": f"Bench merchant {i}", "home_region": region,
                        "timezone": tz, "currency": currency, "markets": markets}  # fmt: skip
                tenant = await tenant_service.create_tenant(
                    session, SystemActor("bench"), spec, regions=settings.regions, keyring=keyring
                )
                terms = {"effective_from": "2026-01-01", "currency": currency, **prices, **_SLA}
                await tenant_service.add_contract_version(session, SEEDER, spec["slug"], terms)
                made.append((tenant.id, tz))
            await session.execute(sa.update(Tenant).where(Tenant.slug.like("bench-%")).values(status="active"))
    tenants_s = time.perf_counter() - t0
    echo(f"{tenants:,} tenants with contracts in {tenants_s:.1f} s")

    t0 = time.perf_counter()
    rnd = random.Random(20261031)
    rows_written = 0
    for first in range(0, tenants, ROLLUP_TENANTS_PER_TX):
        async with dbs.control_transaction() as session:
            for tenant_id, tz in made[first : first + ROLLUP_TENANTS_PER_TX]:
                zone = ZoneInfo(tz)
                total = DeltaSum()
                for c in tenant_contacts(rnd, contacts, zone):
                    total.add(contact_parts(zone, None, **c), 1)
                rows = total.nonzero()
                rows_written += len(rows)
                await add_to_rollups(session, tenant_id, rows)
    rollups_s = time.perf_counter() - t0
    echo(f"rollups of {tenants * contacts:,} contacts ({rows_written:,} rows) in {rollups_s:.1f} s")
    return {"setup_tenants_seconds": round(tenants_s, 1), "setup_rollups_seconds": round(rollups_s, 1),
            "rollup_rows": rows_written}  # fmt: skip


async def _aggregate(dbs) -> tuple[float, int]:
    """The yardstick: billable contacts of the period per tenant and resolution, in one statement."""
    from billing.metering.rollups import ROLLUP

    stmt = (
        sa.select(ROLLUP.c.tenant_id, ROLLUP.c.resolution, sa.func.sum(ROLLUP.c.contacts))
        .where(
            ROLLUP.c.basis == "resolved",
            ROLLUP.c.day >= FIRST,
            ROLLUP.c.day < END,
            ROLLUP.c.resolution.in_(["ai_resolved", "human_resolved"]),
        )
        .group_by(ROLLUP.c.tenant_id, ROLLUP.c.resolution)
    )
    t0 = time.perf_counter()
    async with dbs.control_session() as session:
        rows = (await session.execute(stmt)).all()
    return time.perf_counter() - t0, sum(int(r[2]) for r in rows)


async def _run(settings, tenants: int, contacts: int, echo: Callable[[str], None]) -> dict[str, Any]:
    from billing.invoices.models import Invoice, InvoiceLineRow
    from billing.invoices.run import draft_due_invoices
    from compliance.service import SystemActor
    from control_plane.database import Databases
    from control_plane.keystore import load_keyring_sync

    dbs, keyring = Databases(settings.database), load_keyring_sync(settings)
    try:
        figures = await _seed(dbs, keyring, settings, tenants, contacts, echo)
        await _aggregate(dbs)  # warm the cache the same way for both
        t0 = time.perf_counter()
        done = await draft_due_invoices(dbs.control_transaction, SystemActor("bench", "system"), now=NOW)
        draft_s = time.perf_counter() - t0
        if done["drafted"] != tenants:
            raise RuntimeError(f"expected {tenants} drafts, got {done}")
        aggregate_s, billed = await _aggregate(dbs)
        async with dbs.control_session() as session:
            invoices = await session.scalar(sa.select(sa.func.count(Invoice.id)).where(Invoice.period == PERIOD))
            lines = await session.scalar(sa.select(sa.func.count()).select_from(InvoiceLineRow))
            usage = await session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(InvoiceLineRow.quantity), 0)).where(
                    InvoiceLineRow.kind.in_(["ai_resolved", "human_resolved"])
                )
            )
            credits = await session.scalar(
                sa.select(sa.func.count()).select_from(InvoiceLineRow).where(InvoiceLineRow.kind == "sla_credit")
            )
        if int(usage) != billed:
            raise RuntimeError(f"the invoices bill {usage} contacts, the aggregate counts {billed}")
        # a second run of the job finds nothing to change (idempotent), timed for the record
        t0 = time.perf_counter()
        again = await draft_due_invoices(dbs.control_transaction, SystemActor("bench", "system"), now=NOW)
        redraft_s = time.perf_counter() - t0
        return figures | {
            "invoices": int(invoices),
            "invoice_lines": int(lines),
            "sla_credit_lines": int(credits),
            "billed_contacts": billed,
            "draft_seconds": round(draft_s, 2),
            "invoices_per_second": round(tenants / draft_s, 1),
            "aggregate_seconds": round(aggregate_s, 4),
            "ratio_draft_to_aggregate": round(draft_s / aggregate_s, 1),
            "redraft_seconds": round(redraft_s, 2),
            "redraft_unchanged": again["unchanged"],
        }
    finally:
        await dbs.dispose()


def run_benchmark(
    *, database: str | None, tenants: int, contacts: int, as_json: bool, echo: Callable[[str], None]
) -> dict[str, Any]:
    from control_plane.migrate import upgrade_all
    from control_plane.settings import load_settings
    from tests.benchmarks.ingest import _pg_databases

    tmp = Path(tempfile.mkdtemp(prefix="bpo-bench-invoices-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")} | {"BPO_DATA_DIR": str(tmp)}
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if database and database.startswith("postgresql"):
        db_env, drop = _pg_databases(database)
        env |= db_env
    try:
        settings = load_settings(env)
        upgrade_all(settings)
        figures = asyncio.run(_run(settings, tenants, contacts, echo))
    finally:
        drop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    figures = {"benchmark": "invoices", "database": "postgresql" if database else "sqlite", "tenants": tenants,
               "contacts_per_tenant": contacts, "period": PERIOD} | figures  # fmt: skip
    echo(
        f"drafted {figures['invoices']:,} invoices ({figures['invoice_lines']:,} lines) "
        f"in {figures['draft_seconds']} s: "
        f"{figures['invoices_per_second']} invoices/s; one SQL aggregate over the same rollups "
        f"{figures['aggregate_seconds']} s (ratio {figures['ratio_draft_to_aggregate']}x); "
        f"re-run of the job {figures['redraft_seconds']} s, {figures['redraft_unchanged']} unchanged"
    )
    if as_json:
        echo(json.dumps(figures))
    return figures
