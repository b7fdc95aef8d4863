"""Month totals (``contact_rollup_months``) equal the sum of the daily rollups of their month: after
real deltas applied in any order and grouping, after a rebuild, and a drift is reported by
``bpoctl rollups rebuild --check``. Contacts straddle a tenant-local month boundary.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.metering import deltas, rollups
from billing.metering.cli import rebuild_rollups
from billing.metering.models import MEASURES, MONTH_DIMENSIONS, MONTH_MEASURES, ContactRollupMonth
from billing.metering.service import ingest_contacts
from control_plane.migrate import alembic_config
from tests.billing.conftest import contact, ts
from tests.billing.test_rollups_commute import _ingest_deferred
from tests.conftest import build_settings, drop_databases

# 2026-11-01 00:00 in New York is 04:00 UTC: contacts opened or resolved around it fall in two months.
M0 = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
_examples = itertools.count()

month_versions = st.lists(
    st.fixed_dictionaries(
        {
            "n": st.integers(0, 5),
            "version": st.integers(0, 6),
            "resolution": st.sampled_from(["open", "ai_resolved", "human_resolved", "abandoned"]),
            "channel": st.sampled_from(["chat", "email"]),
            "minutes": st.integers(-300, 300),  # opened, from the month boundary
            "takes": st.integers(1, 600),  # minutes to the resolution
            "csat": st.none() | st.integers(1, 5),
            "market": st.sampled_from(["DE", "CN"]),
        }
    ),
    min_size=1,
    max_size=25,
)


def _body(prefix: str, v: dict[str, Any]) -> dict[str, Any]:
    opened = M0 + timedelta(minutes=v["minutes"])
    resolved = v["resolution"] != "open"
    return contact(
        f"{prefix}-{v['n']}",
        opened=opened,
        channel=v["channel"],
        market=v["market"],
        resolution=v["resolution"],
        handoff_at=ts(opened + timedelta(minutes=1)) if v["resolution"] == "human_resolved" else None,
        resolved_at=ts(opened + timedelta(minutes=v["takes"])) if resolved else None,
        first_response_at=ts(opened + timedelta(seconds=30)),
        csat=v["csat"],
        updated_at=ts(M0 + timedelta(days=3, minutes=v["version"])),
    )


async def _months_and_days(dbs, tenant_id) -> tuple[dict, dict]:
    async with dbs.control_session() as session:
        return await rollups.stored_months(session, tenant_id), await rollups.stored_rollups(session, tenant_id)


async def assert_months_are_the_daily_sums(dbs, t) -> dict:
    months, days = await _months_and_days(dbs, t.id)
    assert months == rollups.month_totals(days.items())
    assert months == rollups.month_totals((await rollups.recount(dbs, t.id, t.timezone)).items())
    assert all(x >= 0 for vector in months.values() for x in vector)
    return months


class TestMonthTotals:
    @hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        ops=month_versions,
        cuts=st.lists(st.integers(0, 25), max_size=6),
        seed=st.integers(0, 2**32),
        size=st.integers(1, 3),
    )
    async def test_deltas_in_any_order_then_a_rebuild_keep_months_equal_to_the_daily_rows(
        self, dbs, keyring, month_tenant, ops, cuts, seed, size
    ):
        t = month_tenant
        prefix = f"m{next(_examples)}"
        batch = [_body(prefix, v) for v in ops]
        bounds = [0, *sorted(set(cuts)), len(batch)]
        pending = await _ingest_deferred(
            dbs, keyring, t.slug, [batch[a:b] for a, b in itertools.pairwise(bounds) if batch[a:b]]
        )
        order = list(pending)
        random.Random(seed).shuffle(order)
        try:
            for i in range(0, len(order), size):
                group = order[i : i + size]
                for region in {p.region for p in group}:
                    mine = [(p.delta_id, p.tenant_id, p.rows) for p in group if p.region == region]
                    assert await deltas.apply_deltas(dbs, region, mine) == len(mine)
                    await deltas.forget_deltas(dbs, region, [d for d, _, _ in mine])
        finally:
            await deltas.apply_pending(dbs, t.id)
        months = await assert_months_are_the_daily_sums(dbs, t)
        await rollups.rebuild(dbs, t.id, t.timezone)
        assert await assert_months_are_the_daily_sums(dbs, t) == months

    async def test_a_boundary_contact_counts_in_both_months(self, dbs, keyring, month_tenant):
        t = month_tenant
        # Opened 23:50 on 31 October in New York, resolved 00:10 on 1 November; rated 5.
        c = contact("edge", opened=M0 - timedelta(minutes=10), resolved_at=ts(M0 + timedelta(minutes=10)))
        c["updated_at"] = c["resolved_at"]
        await ingest_contacts(dbs, keyring, None, t.slug, [c])
        months = await assert_months_are_the_daily_sums(dbs, t)
        october, november = datetime(2026, 10, 1).date(), datetime(2026, 11, 1).date()
        assert {(k[0], k[1]): v for k, v in months.items()} == {
            ("opened", october): [1, 1, 1],
            ("resolved", november): [1, 1, 1],
        }

    async def test_a_drift_in_the_month_totals_is_reported_by_the_check(self, dbs, keyring, settings, month_tenant):
        t = month_tenant
        batch = [contact(f"d{i}", opened=M0 + timedelta(hours=i)) for i in range(3)]
        await ingest_contacts(dbs, keyring, None, t.slug, batch)
        said: list[str] = []
        assert await rebuild_rollups(settings, t.slug, check=True, echo=said.append) is True
        assert said == [f"{t.slug}: 2 month rows, match the daily rows", f"{t.slug}: 3 rows, match the recount"]

        m = ContactRollupMonth.__table__
        async with dbs.control_transaction() as session:
            await session.execute(
                sa.update(m).where(m.c.tenant_id == t.id, m.c.basis == "resolved").values(contacts=m.c.contacts + 1)
            )
        said.clear()
        assert await rebuild_rollups(settings, t.slug, check=True, echo=said.append) is False
        assert said[0] == (
            f"{t.slug}: month totals DIFFER from the daily rows in 1 rows "
            "(first: resolved 2026-11 chat/wismo/de/ai_resolved: [4, 3, 3] stored, [3, 3, 3] from the daily rows)"
        )
        assert said[1] == f"{t.slug}: 3 rows, match the recount"  # the daily rows are right

        said.clear()
        assert await rebuild_rollups(settings, t.slug, check=False, echo=said.append) is True
        assert await rebuild_rollups(settings, t.slug, check=True, echo=said.append) is True
        await assert_months_are_the_daily_sums(dbs, t)


def test_the_migration_backfills_the_month_totals_from_the_daily_rows(backend, tmp_path):
    """Revision 0020_rollup_months on a database whose daily rows exist already (both databases)."""
    settings, created = build_settings(backend, tmp_path)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.database.control_url
        command.upgrade(alembic_config("control", url), "0019_tenant_cells")
        rnd = random.Random(7)
        tenants = [uuid.uuid4() for _ in range(3)]
        daily: dict[uuid.UUID, dict] = {t: {} for t in tenants}
        for t in tenants:
            for _ in range(60):
                day = date(2026, 9, 25) + timedelta(days=rnd.randrange(50))
                key = (
                    rnd.choice(["opened", "resolved"]),
                    day,
                    rnd.choice(["chat", "email"]),
                    "wismo",
                    "de",
                    "ai_resolved",
                )
                daily[t][key] = [rnd.randrange(0, 4) for _ in MEASURES]
        engine = sa.create_engine(url.replace("+aiosqlite", ""))
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.insert(rollups.ROLLUP),
                    [
                        {
                            "tenant_id": t,
                            **dict(zip(rollups.DIMENSIONS, k, strict=True)),
                            **dict(zip(MEASURES, v, strict=True)),
                        }
                        for t in tenants
                        for k, v in daily[t].items()
                    ],
                )
            command.upgrade(alembic_config("control", url), "head")
            with engine.connect() as conn:
                rows = conn.execute(sa.select(rollups.MONTHS)).mappings().all()
        finally:
            engine.dispose()
        stored: dict[uuid.UUID, dict] = {t: {} for t in tenants}
        for row in rows:
            stored[row["tenant_id"]][tuple(row[d] for d in MONTH_DIMENSIONS)] = [row[m] for m in MONTH_MEASURES]
        assert stored == {t: rollups.month_totals(daily[t].items()) for t in tenants}
        assert {k[1] for t in tenants for k in stored[t]} == {date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)}
    finally:
        drop_databases(created)


@pytest.fixture
async def month_tenant(ingest_tenant):
    """Two cells (DE -> eu, CN -> cn), in New York: its months begin at 04:00 or 05:00 UTC."""
    return await ingest_tenant(markets=["DE", "CN"], residency={"DE": "eu"}, timezone="America/New_York")
