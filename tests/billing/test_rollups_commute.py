"""Rollups commute: a tenant's deltas applied in any order, in any grouping, equal a recount; and a
contact's reopen flag depends on the set of versions received, not on the order they arrived in.

Deltas here are real ones: batches are ingested with ``defer_rollups`` (each batch's delta stays in
its cell, as after a crash or a failed application) and then applied in a drawn order.
"""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.metering import deltas, rollups
from billing.metering.service import ingest_contacts
from tests.billing.conftest import T0, cell_contacts, contact, ts
from tests.billing.test_service import _version, assert_only_conflicts, rollups_of, version_lists, versions

_examples = itertools.count()
# Like `versions`, but crowded into few rollup rows (two hours, two channels), so that rows are
# shared by several contacts, reach zero contacts with other measures left, and come back.
crowded = version_lists(
    contacts=5, hours=st.integers(0, 1), frt=st.sampled_from([10, 45, 700]), markets=("DE", "DE", "CN")
)


async def _ingest_deferred(dbs, keyring, slug: str, batches: list[list[dict[str, Any]]]) -> list:
    """Ingest each batch, leaving its deltas pending in the cells; returns them in commit order."""
    pending = []
    for batch in batches:
        result = await ingest_contacts(dbs, keyring, None, slug, batch, defer_rollups=True)
        assert_only_conflicts(result, batch)
        pending += result.pending
    return pending


async def _apply(dbs, pending) -> None:
    for p in pending:
        assert await deltas.apply_delta(dbs, p.region, p.delta_id, p.tenant_id, p.rows)
        await deltas.forget_delta(dbs, p.region, p.delta_id)


class TestDeltasApplyInAnyOrder:
    async def test_an_update_applied_before_the_version_it_replaces_keeps_the_other_contacts_measures(
        self, dbs, keyring, ingest_tenant
    ):
        """The issue's reproduction: Z and X v1 share a row; X v2 (another class) lands first. The row
        passes through ``contacts == 0`` with Z's measures still in it, and must not be deleted."""
        t = await ingest_tenant()
        z = contact("z", csat=2, first_response_at=ts(T0 + timedelta(seconds=50)))
        await ingest_contacts(dbs, keyring, None, t.slug, [z])
        x1 = contact("x", csat=5)  # same row as z: chat, de, wismo, ai_resolved, same days
        x2 = contact(
            "x", resolution="human_resolved", handoff_at=ts(T0), csat=1, updated_at=ts(T0 + timedelta(hours=2))
        )
        p1, p2 = await _ingest_deferred(dbs, keyring, t.slug, [[x1], [x2]])
        await _apply(dbs, [p2])
        passing = await rollups_of(dbs, t.id)
        z_row = next(k for k in passing if k[0] == "resolved" and k[5] == "ai_resolved")
        assert passing[z_row][rollups.CONTACTS] == 0 and passing[z_row][rollups.CSAT_SUM] == 2 - 5
        await _apply(dbs, [p1])
        settled = await rollups_of(dbs, t.id)
        assert settled == await rollups.recount(dbs, t.id, t.timezone)
        assert settled[z_row][rollups.CONTACTS] == 1
        assert settled[z_row][rollups.CSAT_SUM] == 2 and settled[z_row][rollups.CSAT_GOOD] == 0
        assert all(x >= 0 for vector in settled.values() for x in vector)

    @hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        ops=st.one_of(versions, crowded),
        cuts=st.lists(st.integers(0, 30), max_size=6),
        seed=st.integers(0, 2**32),
        size=st.integers(1, 3),
    )
    async def test_random_permutations_and_groupings_equal_the_recount(
        self, dbs, keyring, commute_tenant, ops, cuts, seed, size
    ):
        # Everything random is drawn before the first write: an example that stopped half-way would
        # leave deltas pending for the next one.
        t = commute_tenant
        prefix = f"p{next(_examples)}"
        batch = [_version(prefix, v) for v in ops]
        bounds = [0, *sorted(set(cuts)), len(batch)]
        batches = [batch[a:b] for a, b in itertools.pairwise(bounds) if batch[a:b]]
        pending = await _ingest_deferred(dbs, keyring, t.slug, batches)
        order = list(pending)
        random.Random(seed).shuffle(order)
        try:
            # Several deltas per control transaction too, as the applier and apply_pending group them.
            for i in range(0, len(order), size):
                group = order[i : i + size]
                for region in {p.region for p in group}:
                    mine = [(p.delta_id, p.tenant_id, p.rows) for p in group if p.region == region]
                    assert await deltas.apply_deltas(dbs, region, mine) == len(mine)
                    await deltas.forget_deltas(dbs, region, [d for d, _, _ in mine])
        finally:  # a failed example leaves nothing pending behind it
            await deltas.apply_pending(dbs, t.id)
        stored = await rollups_of(dbs, t.id)
        assert stored == await rollups.recount(dbs, t.id, t.timezone)
        assert all(x >= 0 for vector in stored.values() for x in vector)

    async def test_apply_pending_settles_a_tenants_deltas_exactly_once(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        batches = [
            [contact(f"s{i}", csat=1 + v, updated_at=ts(T0 + timedelta(minutes=10 + v))) for i in range(5)]
            for v in range(3)
        ]
        pending = await _ingest_deferred(dbs, keyring, t.slug, batches)
        assert len(pending) == 3
        assert await deltas.apply_pending(dbs, t.id) == 3
        assert await deltas.apply_pending(dbs, t.id) == 0
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)


# Versions of a few contacts: each its own updated_at (distinct per contact), a resolution, and a
# resolution time; sent in one order, then in another.
_contact_versions = st.lists(
    st.tuples(
        st.integers(0, 2),  # contact
        st.sampled_from(["open", "ai_resolved", "human_resolved", "abandoned"]),
        st.integers(5, 200),  # minutes from opening to the resolution
    ),
    min_size=1,
    max_size=12,
)


def _reopen_version(prefix: str, n: int, version: int, resolution: str, minutes: int) -> dict[str, Any]:
    resolved = resolution != "open"
    return contact(
        f"{prefix}-{n}",
        resolution=resolution,
        handoff_at=ts(T0 + timedelta(minutes=1)) if resolution == "human_resolved" else None,
        resolved_at=ts(T0 + timedelta(minutes=minutes)) if resolved else None,
        updated_at=ts(T0 + timedelta(days=1, minutes=version)),
    )


class TestReopensDoNotDependOnArrivalOrder:
    @hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(history=_contact_versions, data=st.data())
    async def test_the_same_versions_in_two_orders_give_the_same_contacts_and_rollups(
        self, dbs, keyring, commute_tenant, history, data
    ):
        t = commute_tenant
        run = next(_examples)
        versions = [(n, i, resolution, minutes) for i, (n, resolution, minutes) in enumerate(history)]
        other = data.draw(st.permutations(versions), label="other order")
        size = data.draw(st.integers(1, 4), label="batch size")
        for prefix, order, per_batch in ((f"a{run}", versions, 1), (f"b{run}", other, size)):
            bodies = [_reopen_version(prefix, *v) for v in order]
            for i in range(0, len(bodies), per_batch):
                await ingest_contacts(dbs, keyring, None, t.slug, bodies[i : i + per_batch])
        stored = {k: r for cell in (await cell_contacts(dbs, t.id)).values() for k, r in cell.items()}

        def seen(prefix: str) -> dict[str, tuple]:
            return {
                k.split("-", 1)[1]: (r.reopens, r.first_resolved_at, r.resolution, r.resolved_at, r.updated_at)
                for k, r in stored.items()
                if k.startswith(prefix + "-")
            }

        in_order, shuffled = seen(f"a{run}"), seen(f"b{run}")
        assert in_order == shuffled
        # The definition, from the versions themselves.
        for n in {v[0] for v in versions}:
            mine = [v for v in versions if v[0] == n]
            newest = max(mine, key=lambda v: v[1])
            resolutions = [T0 + timedelta(minutes=m) for _, _, r, m in mine if r in ("ai_resolved", "human_resolved")]
            first = min(resolutions, default=None)
            expected = int(
                first is not None
                and not (newest[2] in ("ai_resolved", "human_resolved") and T0 + timedelta(minutes=newest[3]) == first)
            )
            assert in_order[str(n)][:2] == (expected, first)
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)


@pytest.fixture
async def commute_tenant(ingest_tenant):
    """Two cells (DE -> eu, CN -> cn), a zone whose days differ from UTC's."""
    return await ingest_tenant(markets=["DE", "CN"], residency={"DE": "eu"}, timezone="America/New_York")
