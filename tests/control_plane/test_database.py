"""Pooled PostgreSQL connections: a connection that died while resting in the pool is replaced at
checkout (pinged when it rested longer than ``PING_AFTER_IDLE``), without a ping per checkout."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa

from control_plane import database
from tests.conftest import PG_URL, _pg_admin_dsn


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text("SELECT pg_backend_pid()"))


def _terminate(pid: int) -> None:
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] is True


async def _kill_the_pooled_connection(engine) -> int:
    """Use a connection, return it to the pool, then end its server process: the pool holds a dead one."""
    pid = await _backend_pid(engine)
    _terminate(pid)
    await asyncio.sleep(0.05)
    return pid


if PG_URL:  # PostgreSQL only (SQLite has no pool of server connections); CI always sets the URL

    async def test_a_connection_killed_while_resting_is_replaced(monkeypatch):
        engine = database.make_engine(PG_URL)
        try:
            first = await _kill_the_pooled_connection(engine)
            monkeypatch.setattr(database, "PING_AFTER_IDLE", 0.0)  # it rested long enough to be pinged
            second = await _backend_pid(engine)
            assert second != first
            assert await _backend_pid(engine) == second  # the new connection is pooled and reused
        finally:
            await engine.dispose()

    async def test_a_connection_that_rested_briefly_is_not_pinged(monkeypatch):
        engine = database.make_engine(PG_URL)
        try:
            first = await _kill_the_pooled_connection(engine)
            monkeypatch.setattr(database, "PING_AFTER_IDLE", 3600.0)
            with pytest.raises(sa.exc.DBAPIError):  # handed out unpinged: the first statement finds it dead
                await _backend_pid(engine)
            assert await _backend_pid(engine) != first  # ...and the pool replaced it right after
        finally:
            await engine.dispose()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("soon", "expected a number of seconds, got 'soon'"), ("-1", "expected seconds from 0 to 10, got '-1'")],
)
def test_the_rollup_interval_is_seconds_from_0_to_10(raw, reason, tmp_path):
    from control_plane.settings import load_settings

    assert load_settings({"BPO_DATA_DIR": str(tmp_path)}).rollup_interval == 0.2
    assert load_settings({"BPO_DATA_DIR": str(tmp_path), "BPO_ROLLUP_INTERVAL": "1.5"}).rollup_interval == 1.5
    with pytest.raises(ValueError, match=f"BPO_ROLLUP_INTERVAL: {reason}"):
        load_settings({"BPO_DATA_DIR": str(tmp_path), "BPO_ROLLUP_INTERVAL": raw})
