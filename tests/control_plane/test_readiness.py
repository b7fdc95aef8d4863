"""/ready tells the truth about writes and rollup lag; database faults are 503, not 500."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from billing.metering.models import RollupDelta
from control_plane.database import ReadinessProbe, utcnow
from control_plane.errors import is_database_fault


class TestReady:
    async def test_every_database_takes_a_write(self, client, dbs):
        before = utcnow()
        resp = await client.get("/ready")
        assert resp.status_code == 200, resp.text
        checks = resp.json()["checks"]
        assert {k for k, v in checks.items() if v == "ok"} >= {"control", "cell:eu", "cell:us", "cell:sg", "cell:cn"}
        async with dbs.control_session() as session:
            written = await session.scalar(sa.select(sa.func.max(ReadinessProbe.checked_at)))
        assert written >= before  # the probe wrote, it did not only read

    async def test_a_delta_waiting_too_long_makes_it_not_ready(self, client, dbs):
        delta_id = str(uuid.uuid4())
        async with dbs.cell_session("sg") as cell, cell.begin():
            cell.add(
                RollupDelta(
                    id=delta_id,
                    tenant_id=uuid.uuid4(),
                    timezone="UTC",
                    created_at=utcnow() - timedelta(days=10),
                    deltas=[],
                )
            )
        try:
            resp = await client.get("/ready")
            assert resp.status_code == 503
            assert resp.json()["checks"]["rollups"].startswith("lagging: the oldest pending delta is 864")
        finally:
            async with dbs.cell_session("sg") as cell, cell.begin():
                await cell.execute(sa.delete(RollupDelta).where(RollupDelta.id == delta_id))


class TestDatabaseFaults:
    def test_faults_the_client_did_not_cause_are_told_apart_from_its_own_errors(self):
        lost = sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        read_only = sa_exc.InternalError("INSERT", {}, Exception("cannot execute INSERT in a read-only transaction"))
        invalidated = sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
        duplicate = sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
        bad_value = sa_exc.DataError("INSERT", {}, Exception("invalid input syntax"))
        assert [is_database_fault(e) for e in (lost, read_only, invalidated, sa_exc.TimeoutError())] == [True] * 4
        assert is_database_fault(psycopg.OperationalError("terminating connection due to administrator command"))
        assert [is_database_fault(e) for e in (duplicate, bad_value, ValueError("x"))] == [False] * 3
