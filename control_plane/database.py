"""Database engines and sessions: one control database and one or more cell databases per region.

A cell is named ``<region>`` or ``<region>-<suffix>`` (``eu``, ``eu-1``, ``eu-2``); ``Databases.cells``
maps cell names to engines, ``cell_regions`` each cell to its region. Which cell of a region holds a
tenant's contacts is the placement (``control_plane.cells``).

Models of the control database derive from :class:`ControlBase`, models of the region cells from
:class:`CellBase`; each has its own metadata and its own Alembic line under ``migrations/``.
Sessions never commit inside services: the request (or the job) that opened one commits it.
"""

from __future__ import annotations

import importlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from control_plane.settings import DatabaseSettings, cell_region

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class ControlBase(DeclarativeBase):
    """Tables of the control database (nothing here identifies a merchant's customer)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTimeUTC}


class CellBase(DeclarativeBase):
    """Tables of a region cell (contact records: personal data)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTimeUTC}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC, default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# SQLite errors after which a connection is discarded rather than pooled again: a connection opened
# while its file (or the disk) was read-only stays read-only for good, and one that met an I/O error
# may hold a broken file handle. Marked as disconnects, they are replaced once the disk heals.
_SQLITE_BROKEN = ("readonly database", "disk i/o error", "unable to open database file")


def _discard_broken_sqlite(context) -> None:  # pragma: no cover - engine hook
    if any(m in str(context.original_exception).lower() for m in _SQLITE_BROKEN):
        context.is_disconnect = True


PING_AFTER_IDLE = 10.0  # seconds a pooled PostgreSQL connection may rest before it is pinged at checkout


def _rested(_dbapi_connection, record) -> None:  # pragma: no cover - pool hook
    record.info["idle_since"] = time.monotonic()


def _ping_if_rested(dialect):
    """Pessimistic disconnect handling for connections that rested: SQLAlchemy's ``pool_pre_ping``
    pings at every checkout, a round trip that was a tenth of an ingest batch's cost (five checkouts
    per batch, README Metering). A connection back in the pool for less than ``PING_AFTER_IDLE``
    seconds is handed out as it is; a failed ping makes the pool replace the connection."""

    def checkout(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= PING_AFTER_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc

    return checkout


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get their folder, WAL and foreign keys."""
    parsed = sa.engine.make_url(url)
    kwargs: dict = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=10)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "handle_error", _discard_broken_sqlite)
    else:
        event.listen(engine.sync_engine.pool, "checkin", _rested)
        event.listen(engine.sync_engine.pool, "checkout", _ping_if_rested(engine.dialect))
    return engine


class _Probe:
    """One row per host, rewritten by every ``/ready``: the write that proves a database takes writes."""

    __tablename__ = "readiness_probes"

    instance: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    checked_at: Mapped[datetime]


class ReadinessProbe(_Probe, ControlBase):
    """The control database's probe row (see `_Probe`)."""


class CellReadinessProbe(_Probe, CellBase):
    """Each region cell's probe row (see `_Probe`)."""


_PROBE = sa.text(
    "INSERT INTO readiness_probes (instance, checked_at) VALUES (:instance, :now) "
    "ON CONFLICT (instance) DO UPDATE SET checked_at = excluded.checked_at"
).bindparams(sa.bindparam("now", type_=DateTimeUTC))


def _fault(exc: Exception) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"error: {type(cause).__name__}: {str(cause).splitlines()[0][:120] if str(cause) else ''}".rstrip(": ")


class Databases:
    """The engines of one process: the control database and every cell of every region."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.regions = settings.regions  # the region registry: region -> regime
        self.control = make_engine(settings.control_url, echo=settings.echo)
        self.cells = {cell: make_engine(url, echo=settings.echo) for cell, url in settings.cell_urls.items()}
        self.cell_regions = {cell: cell_region(cell, self.regions) for cell in self.cells}
        self._control_sessions = async_sessionmaker(self.control, expire_on_commit=False)
        # Each statement its own transaction: no BEGIN and ROLLBACK round trips around a lone read.
        self._control_autocommit = async_sessionmaker(
            self.control.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        self._cell_sessions = {
            cell: async_sessionmaker(engine, expire_on_commit=False) for cell, engine in self.cells.items()
        }

    def cells_of(self, region: str) -> list[str]:
        """The cells of a region, by name (empty for a region with no cell)."""
        return sorted(c for c, r in self.cell_regions.items() if r == region)

    def control_session(self) -> AsyncSession:
        return self._control_sessions()

    def control_autocommit(self) -> AsyncSession:
        """A control session whose statements commit one by one: for a request's single-statement
        reads (and the rare single write beside them) on the hot path, where the BEGIN and the
        ROLLBACK/COMMIT of a transaction would be two more round trips."""
        return self._control_autocommit()

    def cell_session(self, cell: str) -> AsyncSession:
        """A session on one cell, by cell name (a region's name is its cell's when it has one only)."""
        try:
            return self._cell_sessions[cell]()
        except KeyError:
            raise LookupError(f"no cell {cell!r} is configured") from None

    @asynccontextmanager
    async def control_transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block ends and rolls back when it raises."""
        async with self.control_session() as session, session.begin():
            yield session

    async def check(self) -> dict[str, str]:
        """``{"control": "ok", "cell:eu": "ok" | "error: …"}`` for readiness: each database must take a
        write (a one-row upsert in ``readiness_probes``), not merely answer a read: a read-only or
        full disk answers SELECT 1 and refuses every batch."""
        results: dict[str, str] = {}
        targets = {"control": self.control} | {f"cell:{r}": e for r, e in self.cells.items()}
        instance = socket.gethostname()[:100]
        for name, engine in targets.items():
            for _attempt in (1, 2):
                try:
                    async with engine.begin() as conn:
                        await conn.execute(_PROBE, {"instance": instance, "now": utcnow()})
                    results[name] = "ok"
                    break
                except Exception as exc:  # readiness reports, it never raises
                    results[name] = _fault(exc)
                    # A pooled connection that was dropped (a restarted or terminated backend) is
                    # replaced and tried once more: one lost connection is not a database down.
                    if not getattr(exc, "connection_invalidated", False):
                        break
        return results

    async def dispose(self) -> None:
        await self.control.dispose()
        for engine in self.cells.values():
            await engine.dispose()


DOMAINS = ("control_plane", "tenants", "billing", "sla", "compliance", "webhooks")


def load_models() -> list[str]:
    """Import every ``models.py`` of the domain folders, so both metadatas know all their tables."""

    root = Path(__file__).resolve().parent.parent
    names = sorted(
        ".".join(path.relative_to(root).with_suffix("").parts)
        for domain in DOMAINS
        for path in (root / domain).rglob("models.py")
    )
    for name in names:
        importlib.import_module(name)
    return names
