"""The key ring and the session secret in the control database, shared by every instance.

Tables (``control_plane.models``): ``key_ring`` (one row: the active key id and a ``version`` bumped
by every change), ``key_ring_keys`` (each data key sealed by the master key, ``control_plane.keyring``)
and ``sealed_secrets`` (the cookie-session key when ``BPO_SESSION_SECRET`` is unset).

Flow: an instance loads the ring when it starts (the first one on an empty database creates it,
importing ``BPO_DATA_DIR/keyring.json`` once when that file exists, which is then no longer read).
A :class:`RingWatcher` reads the version row every ``POLL_SECONDS`` and, when it changed, reloads the
keys into the same :class:`KeyRing` object every part of the process holds — so a rotation made
through any instance is seen by all of them within seconds. ``bpoctl keys rotate`` writes the ring
here (:func:`save_ring`) and bumps the version.

Creation is race-safe: two instances starting together both try ``INSERT … ON CONFLICT DO NOTHING``
of the version row (and of the session secret); the one that lost reads what the winner committed.
Every function here takes a synchronous ``Connection``: the app factory calls it through a short-lived
synchronous engine, async callers through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.keyring import KeyRing, KeyRingError, MasterKey, load_master_key
from control_plane.models import KeyRingKey, KeyRingState, SealedSecret

POLL_SECONDS = 2.0
RELOAD_GAP = 1.0  # seconds between two immediate reloads for unknown key ids (RingWatcher.reload_now)
RING_ROW = 1
SESSION_SECRET = "session"

log = logging.getLogger("bpo.keyring")
STATE = KeyRingState.__table__
KEYS = KeyRingKey.__table__
SECRETS = SealedSecret.__table__


def _key_aad(kid: str) -> str:
    return f"key_ring:{kid}"


def _secret_aad(name: str) -> str:
    return f"sealed_secret:{name}"


def sync_url(url: str) -> str:
    """The synchronous twin of an async database URL (as ``migrations/env_common.py`` does)."""
    return url.replace("sqlite+aiosqlite", "sqlite").replace("postgresql+asyncpg", "postgresql+psycopg")


def _sync_engine(url: str) -> sa.Engine:
    """A short-lived synchronous engine on the control database (SQLite: waits on a writer up to 30 s,
    as the app's own connections wait 10 s)."""
    sync = sync_url(url)
    args = {"timeout": 30} if sync.startswith("sqlite") else {}
    return sa.create_engine(sync, poolclass=sa.pool.NullPool, connect_args=args)


def _insert_ignoring_conflict(conn: sa.Connection, table: sa.Table, values: dict) -> bool:
    """Insert unless the primary key exists; ``True`` when this call inserted the row."""
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return conn.execute(statement).first() is not None


@dataclass
class KeyStore:
    master: MasterKey
    legacy_ring: Path | None = None  # BPO_DATA_DIR/keyring.json of a single-host install, imported once
    legacy_session: Path | None = None  # BPO_DATA_DIR/session.key, imported once (sessions stay valid)

    def version(self, conn: sa.Connection) -> int | None:
        return conn.scalar(sa.select(STATE.c.version).where(STATE.c.id == RING_ROW))

    def load(self, conn: sa.Connection) -> tuple[KeyRing, int]:
        """The ring and its version; on an empty database it is created (or imported) first."""
        state = conn.execute(sa.select(STATE.c.active, STATE.c.version).where(STATE.c.id == RING_ROW)).first()
        if state is None:
            self._create(conn)
            state = conn.execute(sa.select(STATE.c.active, STATE.c.version).where(STATE.c.id == RING_ROW)).one()
        keys = {
            kid: self.master.unseal(sealed, _key_aad(kid))
            for kid, sealed in conn.execute(sa.select(KEYS.c.kid, KEYS.c.sealed))
        }
        if state.active not in keys:
            raise KeyRingError(f"the active key {state.active!r} is missing from the key ring")
        return KeyRing(keys=keys, active=state.active), state.version

    def _create(self, conn: sa.Connection) -> None:
        legacy = self.legacy_ring if self.legacy_ring is not None and self.legacy_ring.exists() else None
        ring = KeyRing.from_json(legacy.read_text()) if legacy else KeyRing.generate()
        # The version row decides who creates: the loser's insert waits for the winner's commit
        # (PostgreSQL) or its write lock (SQLite), then inserts nothing and reads the winner's ring.
        if _insert_ignoring_conflict(conn, STATE, {"id": RING_ROW, "active": ring.active, "version": 1}):
            self._write_keys(conn, ring)
            conn.commit()
            log.warning(
                "key ring created in the control database%s", f" from {legacy} (no longer read)" if legacy else ""
            )
        else:
            conn.rollback()

    def _write_keys(self, conn: sa.Connection, ring: KeyRing) -> None:
        stored = set(conn.scalars(sa.select(KEYS.c.kid)))
        now = datetime.now(UTC)
        new = [
            {"kid": kid, "sealed": self.master.seal(key, _key_aad(kid)), "created_at": now}
            for kid, key in ring.keys.items()
            if kid not in stored
        ]
        if new:
            conn.execute(sa.insert(KEYS), new)
        gone = stored - set(ring.keys)
        if gone:
            conn.execute(sa.delete(KEYS).where(KEYS.c.kid.in_(gone)))

    def save(self, conn: sa.Connection, ring: KeyRing) -> int:
        """Write ``ring`` (new keys sealed, dropped keys deleted, the active key) and bump the version."""
        self._write_keys(conn, ring)
        conn.execute(
            sa.update(STATE).where(STATE.c.id == RING_ROW).values(active=ring.active, version=STATE.c.version + 1)
        )
        return conn.scalar(sa.select(STATE.c.version).where(STATE.c.id == RING_ROW))

    def session_secret(self, conn: sa.Connection) -> bytes:
        """The shared cookie-session key, created once (or imported from ``session.key``)."""
        row = conn.scalar(sa.select(SECRETS.c.sealed).where(SECRETS.c.name == SESSION_SECRET))
        if row is None:
            legacy = self.legacy_session if self.legacy_session is not None and self.legacy_session.exists() else None
            key = bytes.fromhex(legacy.read_text().strip()) if legacy else secrets.token_bytes(32)
            sealed = self.master.seal(key, _secret_aad(SESSION_SECRET))
            values = {"name": SESSION_SECRET, "sealed": sealed, "created_at": datetime.now(UTC)}
            _insert_ignoring_conflict(conn, SECRETS, values)
            conn.commit()
            row = conn.scalar(sa.select(SECRETS.c.sealed).where(SECRETS.c.name == SESSION_SECRET))
        return self.master.unseal(row, _secret_aad(SESSION_SECRET))


def key_store(settings) -> KeyStore:
    return KeyStore(
        load_master_key(settings.data_dir),
        legacy_ring=settings.keyring_path,
        legacy_session=settings.session_secret_path,
    )


@dataclass
class RingWatcher:
    """Keeps one process's :class:`KeyRing` in step with the database (polls the version row).

    Between two polls a ciphertext can name a key this process has not loaded (another instance
    rotated the ring and re-sealed the secrets): the ring then calls `reload_now`, which reads the
    ring at once (a short synchronous read of the control database ``url``, at most once per
    `RELOAD_GAP` seconds, so a stray key id cannot make every request read the database)."""

    store: KeyStore
    ring: KeyRing
    version: int
    poll_seconds: float = POLL_SECONDS
    on_reload: list[Callable[[KeyRing], None]] = field(default_factory=list)
    url: str | None = None  # the control database, for `reload_now`
    reloaded_at: float = field(default=float("-inf"), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.url is not None:
            self.ring.on_unknown_key = self.reload_now

    def reload_now(self, kid: str) -> None:
        if self.url is None or time.monotonic() - self.reloaded_at < RELOAD_GAP:
            return
        self.reloaded_at = time.monotonic()
        engine = _sync_engine(self.url)
        try:
            with engine.connect() as conn:
                fresh, version = self.store.load(conn)
        except Exception:  # the database away: the decryption fails as it would have (KeyRingError)
            log.warning("key ring reload for key %s failed", kid, exc_info=True)
            return
        finally:
            engine.dispose()
        self.adopt(fresh, version)
        log.info("key ring reloaded for key %s: version %s, active key %s", kid, version, fresh.active)

    def adopt(self, fresh: KeyRing, version: int) -> None:
        # The same object everyone holds is updated: keys first, so the new active key is always present.
        self.ring.keys = fresh.keys
        self.ring.active = fresh.active
        self.version = version

    async def refresh(self, engine: AsyncEngine) -> bool:
        """Reload the ring when its version changed; ``True`` when it did."""
        async with engine.connect() as conn:
            version = await conn.run_sync(self.store.version)
            if version is None or version == self.version:
                return False
            fresh, version = await conn.run_sync(self.store.load)
        self.adopt(fresh, version)
        log.info("key ring reloaded: version %s, active key %s", version, fresh.active)
        return True

    async def run(self, engine: AsyncEngine) -> None:
        """Poll until cancelled; a failed poll (database away) is logged and retried."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh(engine)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("key ring poll failed", exc_info=True)


def open_ring_sync(settings) -> tuple[RingWatcher, bytes | None]:
    """At start, before the event loop serves: the ring (created or imported when missing) and the
    stored session secret (``None`` when ``BPO_SESSION_SECRET`` is set, which wins)."""
    store = key_store(settings)
    engine = _sync_engine(settings.database.control_url)
    try:
        with engine.connect() as conn:
            ring, version = store.load(conn)
            secret = None if os.environ.get("BPO_SESSION_SECRET") else store.session_secret(conn)
    finally:
        engine.dispose()
    return RingWatcher(store, ring, version, url=settings.database.control_url), secret


def load_keyring_sync(settings) -> KeyRing:
    """The current ring through a short-lived synchronous engine (scripts, tests, benchmarks)."""
    store = key_store(settings)
    engine = _sync_engine(settings.database.control_url)
    try:
        with engine.connect() as conn:
            return store.load(conn)[0]
    finally:
        engine.dispose()


async def open_ring(settings, engine: AsyncEngine) -> RingWatcher:
    """The ring for async callers (the worker, CLI commands) on the control ``engine``."""
    store = key_store(settings)
    async with engine.connect() as conn:
        ring, version = await conn.run_sync(store.load)
    return RingWatcher(store, ring, version, url=settings.database.control_url)


async def save_ring(engine: AsyncEngine, store: KeyStore, ring: KeyRing) -> int:
    """Write ``ring`` in its own transaction; every instance reloads it at its next poll."""
    async with engine.begin() as conn:
        return await conn.run_sync(store.save, ring)


async def load_keyring(settings, engine: AsyncEngine) -> KeyRing:
    """The current ring, for one-shot commands."""
    return (await open_ring(settings, engine)).ring


def start_watching(watcher: RingWatcher, engine: AsyncEngine) -> asyncio.Task:
    return asyncio.create_task(watcher.run(engine))


async def stop_watching(task: asyncio.Task | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
