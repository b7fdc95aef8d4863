"""Several cells per region: cell names, placement, and a tenant move under concurrent ingest
(issue 17, acceptance 4). This module runs its own app on settings with two EU cells."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from billing.metering import deltas, moves
from billing.metering.cli import rebuild_rollups
from billing.metering.models import Contact, RollupDelta
from compliance.models import AuditEntry
from control_plane import cells
from control_plane.actors import SYSTEM
from control_plane.cli import main as bpoctl
from control_plane.database import Databases
from control_plane.migrate import upgrade_all
from control_plane.settings import Settings, cell_region, load_settings
from tests.billing.conftest import T0, cell_keys, contact, ts
from tests.conftest import BACKENDS, _pg_admin_dsn, _pg_url, drop_databases

CELLS = ["control", "eu-1", "eu-2", "us", "sg", "cn"]


def two_eu_cells(backend: str, tmp: Path) -> tuple[Settings, list[str], dict[str, str]]:
    env = {"BPO_DATA_DIR": str(tmp), "BPO_ALLOW_PRIVATE_WEBHOOKS": "1"}
    created: list[str] = []
    if backend == "postgres":
        stem = f"bpo_c_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            for name in CELLS:
                conn.execute(f'CREATE DATABASE "{stem}_{name.replace("-", "_")}"')
                created.append(f"{stem}_{name.replace('-', '_')}")
        env["BPO_DATABASE_URL"] = _pg_url(f"{stem}_control")
        env["BPO_CELL_URLS"] = ",".join(f"{c}={_pg_url(f'{stem}_' + c.replace('-', '_'))}" for c in CELLS[1:])
    else:
        env["BPO_CELL_URLS"] = ",".join(f"{c}=sqlite+aiosqlite:///{tmp / f'cell-{c}.db'}" for c in ("eu-1", "eu-2"))
    return load_settings(env), created, env


@pytest.fixture(scope="module", params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings, created, env = two_eu_cells(request.param, tmp_path_factory.mktemp(f"cells-{request.param}"))
    upgrade_all(settings)
    try:
        yield replace(settings, extra={"backend": request.param, **{f"env:{k}": v for k, v in env.items()}})
    finally:
        drop_databases(created)


@pytest.fixture(scope="module")
async def dbs(settings: Settings) -> AsyncIterator[Databases]:
    databases = Databases(settings.database)
    yield databases
    await databases.dispose()


@pytest.fixture(scope="module")
def app(settings: Settings, dbs: Databases):
    from control_plane.app import create_app

    return create_app(settings, db=dbs)


class TestCellNames:
    REGIONS = {"eu": "GDPR", "us": "CCPA", "eu-west": "GDPR"}

    def test_a_cell_is_a_region_or_a_region_with_a_suffix(self):
        assert cell_region("eu", self.REGIONS) == "eu"
        assert cell_region("eu-2", self.REGIONS) == "eu"
        assert cell_region("eu-west", self.REGIONS) == "eu-west"
        assert cell_region("eu-west-3", self.REGIONS) == "eu-west"

    @pytest.mark.parametrize("name", ["fr", "fr-1", "eu-", "-1", "useu"])
    def test_a_cell_of_no_region_is_refused_naming_the_variable(self, name):
        with pytest.raises(ValueError, match="BPO_CELL_URLS") as err:
            cell_region(name, self.REGIONS)
        assert repr(name) in str(err.value)

    def test_regions_without_a_cell_get_the_embedded_default(self, tmp_path):
        s = load_settings(
            {
                "BPO_DATA_DIR": str(tmp_path),
                "BPO_CELL_URLS": f"eu-1=sqlite+aiosqlite:///{tmp_path}/a.db,eu-2=sqlite+aiosqlite:///{tmp_path}/b.db",
            }
        )
        assert sorted(s.database.cell_urls) == ["cn", "eu-1", "eu-2", "sg", "us"]
        assert s.database.cell_urls["us"].endswith("cell-us.db")
        db = Databases(s.database)
        assert db.cells_of("eu") == ["eu-1", "eu-2"]
        assert db.cell_regions["eu-2"] == "eu"
        assert db.cells_of("us") == ["us"]

    def test_an_unknown_region_in_the_variable_is_refused(self, tmp_path):
        with pytest.raises(ValueError, match="BPO_CELL_URLS: cell 'mars-1'"):
            load_settings({"BPO_DATA_DIR": str(tmp_path), "BPO_CELL_URLS": "mars-1=sqlite+aiosqlite:///m"})


async def placement(dbs: Databases, tenant_id: uuid.UUID) -> str | None:
    return await cells.read_placement(dbs, tenant_id, "eu")


async def tenant_rows(dbs: Databases, cell: str, tenant_id: uuid.UUID) -> dict[str, Contact]:
    async with dbs.cell_session(cell) as session:
        rows = (await session.scalars(sa.select(Contact).where(Contact.tenant_id == tenant_id))).all()
    return {r.external_id: r for r in rows}


class TestPlacement:
    async def test_least_loaded_cell_then_sticky(self, client, dbs, ingest_tenant):
        first = await ingest_tenant()
        assert await placement(dbs, first.id) is None  # placed when it first needs a cell
        resp = await client.post(first.path(), json=[contact("p-1")], headers=first.headers)
        assert resp.status_code == 200, resp.text
        a = await placement(dbs, first.id)
        second = await ingest_tenant()
        await client.post(second.path(), json=[contact("p-2")], headers=second.headers)
        b = await placement(dbs, second.id)
        async with dbs.control_autocommit() as session:
            load = dict(
                (
                    await session.execute(
                        sa.select(cells.TenantCell.cell, sa.func.count())
                        .where(cells.TenantCell.region == "eu", cells.TenantCell.tenant_id.in_([first.id, second.id]))
                        .group_by(cells.TenantCell.cell)
                    )
                ).all()
            )
        assert {a, b} <= {"eu-1", "eu-2"}
        assert a != b or load == {a: 2}  # the second goes to the other cell unless tenants of other tests tip it
        assert list(await tenant_rows(dbs, a, first.id)) == ["p-1"]
        await client.post(first.path(), json=[contact("p-3")], headers=first.headers)
        assert await placement(dbs, first.id) == a
        assert sorted(await tenant_rows(dbs, a, first.id)) == ["p-1", "p-3"]

    async def test_a_tenant_keeps_the_cell_that_holds_its_data(self, dbs, ingest_tenant):
        t = await ingest_tenant()
        # Contacts stored before the region got its second cell (no placement row yet), in eu-2.
        async with dbs.cell_session("eu-2") as session, session.begin():
            await session.execute(
                sa.insert(Contact).values(
                    tenant_id=t.id,
                    external_id="legacy",
                    channel="chat",
                    language="de",
                    market="DE",
                    intent="wismo",
                    opened_at=T0,
                    resolution="open",
                    updated_at=T0,
                    received_at=T0,
                )
            )
        assert await cells.placed_cell(dbs, t.id, "eu") == "eu-2"
        assert await placement(dbs, t.id) == "eu-2"
        assert await cells.holding(dbs, t.id) == ["cn", "eu-2", "sg", "us"]

    async def test_a_move_to_a_cell_of_another_region_is_refused(self, dbs, ingest_tenant):
        t = await ingest_tenant()
        with pytest.raises(moves.MoveRefused, match="not a cell of region 'eu'"):
            await moves.move_tenant(dbs, SYSTEM, t.slug, "eu", "us")


class TestMoveUnderIngest:
    async def test_nothing_lost_or_counted_twice(self, client, dbs, settings, ingest_tenant):
        t = await ingest_tenant()
        sent: dict[str, str] = {}  # external_id -> the latest updated_at sent (all contacts accepted)

        async def send(batch: list[dict]) -> None:
            for _attempt in range(20):  # an idempotent client: a 503 means "send the whole batch again"
                resp = await client.post(t.path(), json=batch, headers=t.headers)
                if resp.status_code != 503:
                    break
                await asyncio.sleep(0.05)
            assert resp.status_code == 200, resp.text
            assert resp.json()["rejected"] == []
            for c in batch:
                sent[c["external_id"]] = max(sent.get(c["external_id"], ""), c["updated_at"])

        for n in range(10):  # 1,000 contacts in the tenant's first cell
            await send([contact(f"m-{n}-{i}") for i in range(100)])
        source = await placement(dbs, t.id)
        target = "eu-2" if source == "eu-1" else "eu-1"
        assert len(await tenant_rows(dbs, source, t.id)) == 1000

        batches = 0
        stop = asyncio.Event()

        async def ingest() -> None:
            nonlocal batches
            while not stop.is_set():
                k = batches
                later = ts(T0 + timedelta(minutes=10 + k))
                updates = [  # newer versions of contacts stored before and during the move
                    contact(eid, resolution="human_resolved", handoff_at=later, resolved_at=later, updated_at=later)
                    for eid in sorted(sent)[k * 7 : k * 7 + 20]
                ]
                await send([contact(f"live-{k}-{i}") for i in range(30)] + updates)
                batches += 1
                await asyncio.sleep(0)  # the test client's calls need not yield: let the test's tasks run

        async def batches_pass(n: int) -> None:
            goal = batches + n
            while batches < goal:
                if writer.done():
                    writer.result()  # the writer's failure, if it failed
                    raise AssertionError("the writer stopped")
                await asyncio.sleep(0.01)

        def move() -> moves.MoveReport:
            """The move on a thread, event loop and engines of its own, as `bpoctl tenants move` runs in
            its own process (the test client serves the app on yet another loop, on the `dbs` engines)."""

            async def run() -> moves.MoveReport:
                mover = Databases(settings.database)
                try:  # three batches land in the source between the bulk copy and the fence
                    return await moves.move_tenant(
                        mover, SYSTEM, t.slug, "eu", target, after_copy=lambda: batches_pass(3)
                    )
                finally:
                    await mover.dispose()

            return asyncio.run(run())

        writer = asyncio.create_task(ingest())
        try:
            await batches_pass(2)
            report = await asyncio.to_thread(move)
            await batches_pass(3)  # and some in the target after the switch
        finally:
            stop.set()
            await writer

        assert (report.source, report.target) == (source, target)
        assert report.caught_up >= 60  # two whole batches (of three) at least came after the bulk copy
        assert await placement(dbs, t.id) == target
        assert await tenant_rows(dbs, source, t.id) == {}
        moved = await tenant_rows(dbs, target, t.id)
        assert sorted(moved) == sorted(sent)  # every contact once, and only those sent
        assert {k: ts(r.updated_at) for k, r in moved.items()} == sent  # each at its latest version
        if dbs.cells[target].dialect.name == "postgresql":  # the keys moved with them (contact_keys)
            assert await cell_keys(dbs, target, t.id) == set(sent) and await cell_keys(dbs, source, t.id) == set()
        async with dbs.cell_session(source) as session:
            left = await session.scalar(
                sa.select(sa.func.count()).select_from(RollupDelta).where(RollupDelta.tenant_id == t.id)
            )
        assert left == 0

        await deltas.apply_pending(dbs, t.id)  # what the app's appliers may not have applied yet
        lines: list[str] = []
        assert await rebuild_rollups(settings, t.slug, check=True, echo=lines.append), lines
        async with dbs.control_autocommit() as session:
            counted = await session.scalar(
                sa.text(
                    "SELECT sum(contacts) FROM contact_rollups WHERE tenant_id = :t AND basis = 'opened'"
                ).bindparams(sa.bindparam("t", type_=sa.Uuid)),
                {"t": t.id},
            )
            audit = (
                await session.scalars(
                    sa.select(AuditEntry).where(AuditEntry.stream == t.slug, AuditEntry.action == "tenant.moved")
                )
            ).all()
        assert int(counted) == len(sent)
        assert [(a.data["from"], a.data["to"]) for a in audit] == [(source, target)]

    async def test_moving_back_and_to_the_same_cell(self, client, dbs, ingest_tenant, staff_headers):
        t = await ingest_tenant()
        resp = await client.post(t.path(), json=[contact(f"b-{i}") for i in range(50)], headers=t.headers)
        assert resp.status_code == 200
        home = await placement(dbs, t.id)
        away = "eu-2" if home == "eu-1" else "eu-1"
        there = await moves.move_tenant(dbs, SYSTEM, t.slug, "eu", away)
        page = await client.get(f"/tenants/{t.slug}", headers=staff_headers)
        assert f'cell <span class="placement">{away}</span>' in page.text  # the staff page shows the cell
        back = await moves.move_tenant(dbs, SYSTEM, t.slug, "eu", home)
        assert (there.contacts, back.contacts, back.rollups_match) == (50, 50, True)
        again = await moves.move_tenant(dbs, SYSTEM, t.slug, "eu", home)
        assert (again.copied, again.removed) == (0, 0)
        assert len(await tenant_rows(dbs, home, t.id)) == 50
        assert await tenant_rows(dbs, away, t.id) == {}


class TestMoveCommand:
    async def test_bpoctl_tenants_move(self, client, dbs, settings, ingest_tenant):
        t = await ingest_tenant()
        resp = await client.post(t.path(), json=[contact(f"cli-{i}") for i in range(12)], headers=t.headers)
        assert resp.status_code == 200
        home = await placement(dbs, t.id)
        away = "eu-2" if home == "eu-1" else "eu-1"
        env = {k.removeprefix("env:"): v for k, v in settings.extra.items() if k.startswith("env:")}
        runner = CliRunner()
        moved = await asyncio.to_thread(
            runner.invoke, bpoctl, ["tenants", "move", t.slug, "--region", "eu", "--to", away], env=env
        )
        assert moved.exit_code == 0, moved.output
        assert f"{t.slug} eu: {home} -> {away}: 12 contacts" in moved.output
        assert "rollups match the recount" in moved.output
        refused = await asyncio.to_thread(
            runner.invoke, bpoctl, ["tenants", "move", t.slug, "--region", "eu", "--to", "sg"], env=env
        )
        assert refused.exit_code == 1
        assert "'sg' is not a cell of region 'eu'" in refused.output
        assert sorted(await tenant_rows(dbs, away, t.id)) == sorted(f"cli-{i}" for i in range(12))
