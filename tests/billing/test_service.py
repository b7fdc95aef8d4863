"""Metering use cases on real databases: loss-free ingest, concurrency, exact rollups, rebuild."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.metering import deltas, rollups
from billing.metering.models import RollupDelta
from billing.metering.service import IngestInterrupted, ingest_contacts
from tests.billing.conftest import T0, cell_contacts, contact, ts


class _Wrapper:
    def __init__(self, real, hooks) -> None:
        self.real, self.hooks = real, hooks

    def __getattr__(self, name):
        return getattr(self.real, name)


class HookedCellSession(_Wrapper):
    """A real cell session that awaits ``hooks.before_contacts_write()`` right before ingest writes
    new contacts: before the INSERT into contacts (SQLite), or before the ``COPY contacts`` that it
    runs on the session's driver connection (PostgreSQL). ``hooks.before_delta_write()`` runs before
    the rollup delta row is written (the first write of a batch's transaction)."""

    async def __aenter__(self):
        await self.real.__aenter__()
        return self

    async def __aexit__(self, *exc):
        return await self.real.__aexit__(*exc)

    async def execute(self, statement, params=None, **kw):
        table = getattr(getattr(statement, "table", None), "name", "")
        if statement.is_insert and table == "contacts":
            await self.hooks.before_contacts_write()
        if statement.is_insert and table == "rollup_deltas":
            await self.hooks.before_delta_write()
        return await self.real.execute(statement, params, **kw)

    async def connection(self, **kw):
        return _HookedConnection(await self.real.connection(**kw), self.hooks)


class _HookedConnection(_Wrapper):
    async def get_raw_connection(self):
        return _HookedRaw(await self.real.get_raw_connection(), self.hooks)


class _HookedRaw(_Wrapper):
    @property
    def driver_connection(self):
        return _HookedDriver(self.real.driver_connection, self.hooks)


class _HookedDriver(_Wrapper):
    def cursor(self, *args, **kw):
        return _HookedCursor(self.real.cursor(*args, **kw), self.hooks)


class _HookedCursor(_Wrapper):
    async def __aenter__(self):
        await self.real.__aenter__()
        return self

    async def __aexit__(self, *exc):
        return await self.real.__aexit__(*exc)

    @contextlib.asynccontextmanager
    async def copy(self, statement, *args, **kw):
        if statement.startswith(("COPY contact_keys", "COPY contacts")):  # the keys come first
            await self.hooks.before_contacts_write()
        async with self.real.copy(statement, *args, **kw) as copy:
            yield copy


class HookedDatabases(_Wrapper):
    """The real databases, whose cell sessions call this object's hooks (see `HookedCellSession`)."""

    def __init__(self, real) -> None:
        super().__init__(real, self)

    def cell_session(self, region: str):
        return HookedCellSession(self.real.cell_session(region), self)

    async def before_contacts_write(self) -> None:
        pass

    async def before_delta_write(self) -> None:
        pass


class FlakyDatabases(HookedDatabases):
    """Test double of the cell sessions: the connection drops once, after the versions were read and
    right before the contacts are written."""

    raised = False

    async def before_contacts_write(self) -> None:
        if not self.raised:
            self.raised = True
            raise ConnectionResetError("injected: the cell connection dropped")


class RacingDatabases(HookedDatabases):
    """Test double of the cell sessions: a concurrent batch runs to its commit after a batch read the
    stored versions and before it writes its contacts. PostgreSQL: right before it copies their keys
    (no lock is held then: the contacts looked new). SQLite: before the batch's first write, which takes the
    database's lock (the versions are read under it there). Counts the delta rows the batch writes:
    one per attempt to store its part of a cell."""

    def __init__(self, real, concurrent) -> None:
        super().__init__(real)
        self.concurrent, self.attempts = concurrent, 0

    async def _race(self) -> None:
        if self.concurrent:
            concurrent, self.concurrent = self.concurrent, None
            await concurrent()

    async def before_delta_write(self) -> None:
        self.attempts += 1
        if self.real.cells["eu"].dialect.name == "sqlite":
            await self._race()

    async def before_contacts_write(self) -> None:
        await self._race()


async def rollups_of(dbs, tenant_id) -> dict:
    async with dbs.control_session() as session:
        return await rollups.stored_rollups(session, tenant_id)


class TestIngestIsLossFree:
    async def test_a_fault_between_dedup_and_write_loses_and_double_counts_nothing(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        batch = [contact(f"f{i}", intent="refund" if i % 2 else "wismo") for i in range(25)]
        flaky = FlakyDatabases(dbs)
        with pytest.raises(IngestInterrupted) as failure:
            await ingest_contacts(flaky, keyring, None, t.slug, batch)
        assert failure.value.status_code == 503 and failure.value.failed == ["eu"]
        assert (await cell_contacts(dbs, t.id))["eu"] == {}
        assert await rollups_of(dbs, t.id) == {}
        async with dbs.cell_session("eu") as cell:
            assert await cell.scalar(sa.select(sa.func.count()).where(RollupDelta.tenant_id == t.id)) == 0

        retry = await ingest_contacts(flaky, keyring, None, t.slug, batch)
        assert (retry.accepted, retry.duplicates) == (25, 0)
        again = await ingest_contacts(flaky, keyring, None, t.slug, batch)
        assert (again.accepted, again.duplicates) == (0, 25)
        stored = await rollups_of(dbs, t.id)
        assert stored == await rollups.recount(dbs, t.id, t.timezone)
        assert sum(v[rollups.CONTACTS] for k, v in stored.items() if k[0] == "opened") == 25

    async def test_the_answer_of_an_interrupted_batch_says_so(self, client, app, dbs, ingest_tenant):
        t = await ingest_tenant()
        real = app.state.db
        app.state.db = FlakyDatabases(dbs)
        try:
            resp = await client.post(t.path(), json=[contact("i1")], headers=t.headers)
        finally:
            app.state.db = real
        assert resp.status_code == 503
        assert resp.json()["code"] == "ingest_interrupted" and resp.json()["retry"] == "safe"
        assert "nothing of it was stored" in resp.json()["detail"]
        ok = await client.post(t.path(), json=[contact("i1")], headers=t.headers)
        assert ok.json()["accepted"] == 1

    async def test_concurrent_identical_batches_store_each_contact_once(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        batch = [contact(f"p{i}") for i in range(200)]
        results = await asyncio.gather(*(ingest_contacts(dbs, keyring, None, t.slug, batch) for _ in range(3)))
        assert sum(r.accepted for r in results) == 200
        assert sum(r.duplicates for r in results) == 400
        assert len((await cell_contacts(dbs, t.id))["eu"]) == 200
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)

    async def test_a_batch_overtaken_between_probe_and_write_counts_what_the_other_stored(
        self, dbs, keyring, ingest_tenant, backend
    ):
        t = await ingest_tenant()
        later = T0 + timedelta(hours=1)
        ours = [contact(f"r{i}") for i in range(10)]
        theirs = [contact("r0", updated_at=ts(later)), *ours[1:5]]
        results = []

        async def concurrent():
            results.append(await ingest_contacts(dbs, keyring, None, t.slug, theirs))

        racing = RacingDatabases(dbs, concurrent)
        mine = await ingest_contacts(racing, keyring, None, t.slug, ours)
        assert (results[0].accepted, results[0].duplicates) == (5, 0)
        assert (mine.accepted, mine.updated, mine.duplicates) == (5, 0, 5)  # r0-r4 stored first, r0 newer
        # On PostgreSQL r0-r4 looked new: the COPY failed on the unique index and the part ran again.
        assert racing.attempts == (2 if backend == "postgres" else 1)
        stored = (await cell_contacts(dbs, t.id))["eu"]
        assert sorted(stored) == sorted(f"r{i}" for i in range(10))
        assert stored["r0"].updated_at == later
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)

    async def test_concurrent_batches_of_new_contacts_all_land(self, dbs, keyring, ingest_tenant):
        from billing.metering import cell_writes

        t = await ingest_tenant()
        cell_writes._copy_types.clear()  # as in a fresh process: the first COPYs read the column types
        batches = [[contact(f"n{b}-{i}") for i in range(50)] for b in range(4)]
        results = await asyncio.gather(*(ingest_contacts(dbs, keyring, None, t.slug, b) for b in batches))
        assert [r.accepted for r in results] == [50, 50, 50, 50]
        assert len((await cell_contacts(dbs, t.id))["eu"]) == 200
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)

    async def test_the_version_probe_finds_stored_contacts_and_is_never_prepared(
        self, dbs, keyring, ingest_tenant, backend
    ):
        from billing.metering import cell_writes

        t = await ingest_tenant()
        await ingest_contacts(dbs, keyring, None, t.slug, [contact(f"v{i}") for i in range(3)])
        wanted = ["v0", "v2", "missing"]
        async with dbs.cell_session("eu") as cell, cell.begin():
            for _ in range(8):  # psycopg prepares a statement on its 5th run on a connection
                found = await cell_writes._stored(cell, t.id, wanted)
                await cell.execute(sa.select(RollupDelta.id).where(RollupDelta.tenant_id == t.id))
            assert sorted(found) == ["v0", "v2"] and found["v0"].reopens == 0
            if backend == "postgres":
                prepared = (await cell.execute(sa.text("SELECT statement FROM pg_prepared_statements"))).scalars()
                statements = " | ".join(prepared)
                assert "FROM rollup_deltas" in statements  # the control: ordinary statements get prepared
                assert "JOIN LATERAL" not in statements  # the probe is planned anew every time

    async def test_control_outage_leaves_a_pending_delta_applied_exactly_once(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        # Write the cell part only (as if the control database failed right after the cell commit).
        from billing.metering.cell_writes import TenantContext, write_to_cell
        from billing.metering.schemas import validate_contact

        ctx = TenantContext(t.id, t.slug, t.timezone, b"k" * 32, {"DE": "eu"})
        items = [(validate_contact(0, contact("o1")), None)]
        async with dbs.cell_session("eu") as cell, cell.begin():
            outcome = await write_to_cell(cell, ctx, items, datetime.now(UTC))
        assert await rollups_of(dbs, t.id) == {}
        assert await deltas.apply_pending(dbs, t.id) == 1
        assert await deltas.apply_pending(dbs, t.id) == 0
        assert not await deltas.apply_delta(dbs, "eu", outcome.delta_id, t.id, outcome.rows)
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)

    async def test_deferred_deltas_are_applied_once_however_often_they_are_handed_over(
        self, dbs, keyring, ingest_tenant
    ):
        t = await ingest_tenant()
        first = await ingest_contacts(dbs, keyring, None, t.slug, [contact("d1"), contact("d2")], defer_rollups=True)
        update = contact("d1", resolution="human_resolved", handoff_at=ts(T0), updated_at=ts(T0 + timedelta(hours=1)))
        second = await ingest_contacts(dbs, keyring, None, t.slug, [update, contact("d3")], defer_rollups=True)
        assert (first.accepted, second.updated, second.accepted) == (2, 1, 1)
        assert await rollups_of(dbs, t.id) == {}  # deferred: owed by the cell, not applied yet
        applier = deltas.DeltaApplier(dbs)
        pending = first.pending + second.pending
        await asyncio.gather(applier.apply(pending), applier.apply(pending[:1]), applier.apply(pending))
        assert await deltas.apply_pending(dbs, t.id) == 0  # nothing left in the cell
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)
        assert await deltas.apply_deltas(dbs, "eu", [(p.delta_id, p.tenant_id, p.rows) for p in pending]) == 0

    async def test_applications_are_an_interval_apart_and_the_batches_in_between_go_together(
        self, dbs, keyring, ingest_tenant
    ):
        t = await ingest_tenant()
        batches = [[contact(f"i{b}-{i}", intent="refund" if i % 2 else "wismo") for i in range(3)] for b in range(5)]
        pending = [(await ingest_contacts(dbs, keyring, None, t.slug, b, defer_rollups=True)).pending for b in batches]
        applier = deltas.DeltaApplier(dbs, interval=0.5)
        await applier.apply(pending[0])  # the first application: at once
        assert applier.applications == 1 and await rollups_of(dbs, t.id) != {}
        loop = asyncio.get_running_loop()
        began = loop.time()
        # Two batches within the interval: the first caller waits out its rest and takes both.
        await asyncio.gather(applier.apply(pending[1]), applier.apply(pending[2]))
        assert applier.applications == 2 and loop.time() - began >= 0.3
        # A caller that finds max_queued deltas waiting applies at once, whatever the interval.
        hurried = deltas.DeltaApplier(dbs, interval=60, max_queued=2)
        await hurried.apply(pending[3][:1])
        await asyncio.wait_for(hurried.apply(pending[3] + pending[4]), 10)
        assert hurried.applications == 2
        assert await deltas.apply_pending(dbs, t.id) == 0  # nothing was left in the cell
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)


class TestRollupDays:
    def test_the_day_is_the_tenants_day_across_midnight_and_dst(self):
        from zoneinfo import ZoneInfo

        berlin = ZoneInfo("Europe/Berlin")
        late = datetime(2026, 10, 14, 22, 30, tzinfo=UTC)  # 00:30 on the 15th in Berlin (CEST)
        parts = rollups.contribution(
            berlin,
            channel="chat",
            intent="wismo",
            language="de",
            resolution="human_resolved",
            opened_at=late,
            first_response_at=late + timedelta(seconds=60),
            handoff_at=late + timedelta(seconds=90),
            resolved_at=datetime(2026, 10, 25, 23, 30, tzinfo=UTC),  # after the DST change: 00:30 on the 26th
            csat=4,
        )
        assert [(k[0], k[1]) for k, _ in parts] == [("opened", date(2026, 10, 15)), ("resolved", date(2026, 10, 26))]
        amounts = dict(parts[0][1])
        assert amounts[rollups.FIRST_RESPONSES] == 1 and amounts[rollups.FRT_SECONDS] == 60
        assert amounts[rollups.FRT_B0 + 1] == 1  # 60 s is within the 60 s bucket
        assert amounts[rollups.CSAT_GOOD] == 1 and amounts[rollups.HANDOFFS] == 1

    async def test_an_update_moves_the_counts_between_classes_and_days(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        await ingest_contacts(dbs, keyring, None, t.slug, [contact("m1")])
        reopened = T0 + timedelta(days=3)
        await ingest_contacts(
            dbs,
            keyring,
            None,
            t.slug,
            [
                contact(
                    "m1",
                    resolution="human_resolved",
                    handoff_at=ts(reopened),
                    resolved_at=ts(reopened + timedelta(hours=1)),
                    updated_at=ts(reopened + timedelta(hours=1)),
                )
            ],
        )
        async with dbs.control_session() as session:
            rows = await rollups.read_rollups(
                session,
                t.id,
                basis="resolved",
                start=date(2026, 10, 1),
                end=date(2026, 11, 1),
                group_by=("day", "resolution"),
            )
        assert [(r["day"], r["resolution"], r["contacts"]) for r in rows] == [(date(2026, 10, 17), "human_resolved", 1)]


def version_lists(*, contacts=4, hours=st.integers(0, 47), frt=st.integers(0, 90_000), markets=("DE", "CN")):
    """Lists of contact versions (`_version` turns one into a body): several versions of a few
    contacts, each in any class, hour, rating, response time and market."""
    return st.lists(
        st.fixed_dictionaries(
            {
                "n": st.integers(0, contacts),
                "version": st.integers(0, 6),
                "resolution": st.sampled_from(["open", "ai_resolved", "human_resolved", "abandoned"]),
                "channel": st.sampled_from(["chat", "email"]),
                "hour": hours,
                "csat": st.none() | st.integers(1, 5),
                "frt": st.none() | frt,
                "market": st.sampled_from(markets),
            }
        ),
        min_size=1,
        max_size=30,
    )


versions = version_lists()


def assert_only_conflicts(result, batch: list[dict[str, Any]]) -> None:
    """The generated versions may give one ``updated_at`` of a contact two contents: the later is
    refused as a conflicting version, and nothing else of the batch is."""
    for r in result.rejected:
        assert [e.get("code") for e in r.errors] == ["conflicting_version"], r
        assert r.external_id == batch[r.index]["external_id"]


def _version(prefix: str, v: dict[str, Any]) -> dict[str, Any]:
    opened = T0 + timedelta(hours=v["hour"])
    resolved = v["resolution"] != "open"
    return contact(
        f"{prefix}-{v['n']}",
        opened=opened,
        channel=v["channel"],
        market=v["market"],
        resolution=v["resolution"],
        handoff_at=ts(opened + timedelta(minutes=1)) if v["resolution"] == "human_resolved" else None,
        resolved_at=ts(opened + timedelta(minutes=30)) if resolved else None,
        first_response_at=None if v["frt"] is None else ts(opened + timedelta(seconds=v["frt"])),
        csat=v["csat"],
        updated_at=ts(T0 + timedelta(days=3, minutes=v["version"])),
    )


class TestReopens:
    """A resolved contact that comes back (open again, or resolved again later) counts as reopened."""

    @staticmethod
    def _history(external_id: str) -> list[dict[str, Any]]:
        resolved, reopened, again = (ts(T0 + timedelta(minutes=m)) for m in (4, 90, 150))
        return [
            contact(external_id, resolved_at=resolved, updated_at=resolved),
            contact(external_id, resolution="open", resolved_at=None, csat=None, updated_at=reopened),
            contact(
                external_id,
                resolution="human_resolved",
                handoff_at=reopened,
                resolved_at=again,
                updated_at=again,
            ),
        ]

    async def _reopened(self, dbs, tenant_id) -> tuple[dict[str, int], int]:
        stored = {k: r.reopens for cell in (await cell_contacts(dbs, tenant_id)).values() for k, r in cell.items()}
        async with dbs.control_session() as session:
            rows = await rollups.read_rollups(
                session, tenant_id, basis="resolved", start=date(2026, 10, 1), end=date(2026, 11, 1)
            )
        return stored, sum(r["reopened"] for r in rows)

    async def test_versions_in_separate_batches_and_in_one_batch_count_the_same(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        for version in self._history("apart"):
            await ingest_contacts(dbs, keyring, None, t.slug, [version])
        result = await ingest_contacts(dbs, keyring, None, t.slug, self._history("together"))
        assert (result.accepted, result.updated) == (1, 2)
        stored, counted = await self._reopened(dbs, t.id)
        assert stored == {"apart": 1, "together": 1}
        assert counted == 2
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)

    async def test_stale_versions_corrections_and_later_resolutions(self, dbs, keyring, ingest_tenant):
        t = await ingest_tenant()
        first, reopened, _ = self._history("r")
        await ingest_contacts(dbs, keyring, None, t.slug, [first])
        # A correction of the rating at the same resolution time is no reopen.
        await ingest_contacts(
            dbs, keyring, None, t.slug, [first | {"csat": 2, "updated_at": ts(T0 + timedelta(minutes=5))}]
        )
        assert (await self._reopened(dbs, t.id))[0] == {"r": 0}
        # Resolved again later without an open version between: "now human_resolved" (DESIGN.md).
        later = ts(T0 + timedelta(minutes=40))
        human = first | {"resolution": "human_resolved", "handoff_at": later, "resolved_at": later, "updated_at": later}
        await ingest_contacts(dbs, keyring, None, t.slug, [human])
        # The open version arrives late (older than the stored one): a duplicate, nothing changes.
        late = await ingest_contacts(
            dbs, keyring, None, t.slug, [reopened | {"updated_at": ts(T0 + timedelta(minutes=30))}]
        )
        assert late.duplicates == 1
        stored, counted = await self._reopened(dbs, t.id)
        assert stored == {"r": 1} and counted == 1
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)


class TestRollupsEqualARecount:
    @hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=versions, cut=st.integers(0, 30))
    async def test_after_any_mix_of_inserts_updates_and_stale_versions(self, dbs, keyring, residency_tenant, ops, cut):
        t = residency_tenant
        prefix = f"h{next(_examples)}"
        batch = [_version(prefix, v) for v in ops]
        for part in (batch[:cut], batch[cut:]):
            if part:
                result = await ingest_contacts(dbs, keyring, None, t.slug, part)
                assert_only_conflicts(result, part)
        assert await rollups_of(dbs, t.id) == await rollups.recount(dbs, t.id, t.timezone)

    async def test_bpoctl_rollups_rebuild_reproduces_them(self, settings, dbs, keyring, ingest_tenant, monkeypatch):
        from control_plane.cli import main

        t = await ingest_tenant(timezone="America/New_York")
        batch = [
            contact(
                f"r{i}",
                opened=T0 + timedelta(hours=5 * i),
                resolution=("ai_resolved", "human_resolved", "open")[i % 3],
                handoff_at=None,
                resolved_at=None if i % 3 == 2 else ts(T0 + timedelta(hours=5 * i, minutes=7)),
                updated_at=ts(T0 + timedelta(days=5)),
            )
            for i in range(30)
        ]
        await ingest_contacts(dbs, keyring, None, t.slug, batch)
        await ingest_contacts(
            dbs,
            keyring,
            None,
            t.slug,
            [batch[0] | {"resolution": "abandoned", "updated_at": ts(T0 + timedelta(days=6))}],
        )
        before = await rollups_of(dbs, t.id)
        monkeypatch.setenv("BPO_DATA_DIR", str(settings.data_dir))
        if settings.extra["backend"] == "postgres":
            monkeypatch.setenv("BPO_DATABASE_URL", settings.database.control_url)
            monkeypatch.setenv("BPO_CELL_URLS", ",".join(f"{r}={u}" for r, u in settings.database.cell_urls.items()))
        runner = CliRunner()
        rebuilt = await asyncio.to_thread(runner.invoke, main, ["rollups", "rebuild", "--tenant", t.slug])
        assert rebuilt.exit_code == 0, rebuilt.output
        assert f"{t.slug}: rebuilt {len(before)} rollup rows" in rebuilt.output
        assert await rollups_of(dbs, t.id) == before
        checked = await asyncio.to_thread(runner.invoke, main, ["rollups", "rebuild", "--check", "--tenant", t.slug])
        assert checked.exit_code == 0 and "match the recount" in checked.output


_examples = iter(range(10**9))


@pytest.fixture
async def residency_tenant(ingest_tenant):
    return await ingest_tenant(markets=["DE", "CN"], residency={"DE": "eu"})


class TestIngestArithmeticEqualsTheDefinition:
    """Ingest sums a batch with ``DeltaSum.add_contact`` (no intermediate lists); the definition is
    ``contact_parts``, which the recount uses. Any contact, either sign, with and without a calendar."""

    @hsettings(max_examples=60, deadline=None)
    @given(
        ops=versions,
        signs=st.lists(st.sampled_from([1, -1]), min_size=30, max_size=30),
        zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Singapore"]),
        with_calendar=st.booleans(),
    )
    def test_add_contact_equals_contact_parts(self, ops, signs, zone, with_calendar):
        from zoneinfo import ZoneInfo

        from billing.metering.schemas import validate_contact
        from tenants.calendar import BusinessCalendar

        tz = ZoneInfo(zone)
        calendar = BusinessCalendar.from_json(zone, {"mon": [["09:00", "17:00"]], "sat": [["10:00", "24:00"]]}, [])
        calendar = calendar if with_calendar else None
        fast, reference = rollups.DeltaSum(), rollups.DeltaSum()
        for i, (v, sign) in enumerate(zip(ops, signs, strict=False)):
            c = validate_contact(i, _version("p", v))
            c.reopens = v["version"] % 3  # any count of reopens
            fast.add_contact(tz, c, calendar, sign)
            reference.add(
                rollups.contact_parts(
                    tz,
                    calendar,
                    **{k: getattr(c, k) for k in ("channel", "intent", "language", "resolution", "opened_at")},
                    **{k: getattr(c, k) for k in ("first_response_at", "handoff_at", "resolved_at", "csat", "reopens")},
                ),
                sign,
            )
        assert fast.nonzero() == reference.nonzero()
