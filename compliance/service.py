"""The audit log's rules: canonical JSON, the per-stream hash chain, appending and checking it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.models import AuditEntry
from control_plane.actors import SYSTEM, Actor, SystemActor
from control_plane.database import utcnow

GENESIS_HASH = "0" * 64
HASHED_FIELDS = ("seq", "ts", "stream", "actor", "role", "action", "target", "data", "request_id", "prev_hash")


__all__ = ["SYSTEM", "Actor", "SystemActor", "append_audit_entry"]  # the actors are the kernel's


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    """JSON-ready data without floats: Decimals, dates and UUIDs become strings."""
    if isinstance(value, float):
        raise TypeError("audit data may not hold floats; pass a Decimal or a string")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def entry_body(entry: AuditEntry) -> dict[str, Any]:
    """The hashed body of an entry (every field but ``hash``)."""
    return {
        "seq": entry.seq,
        "ts": rfc3339(entry.ts),
        "stream": entry.stream,
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "data": entry.data,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }


def hash_body(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


async def _lock_stream(session: AsyncSession, stream: str) -> None:
    # PostgreSQL: serialize appends per stream; SQLite serializes every writer already.
    if session.bind.dialect.name == "postgresql":
        await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"audit:{stream}"})


async def append_audit_entry(
    session: AsyncSession,
    *,
    stream: str,
    actor: Actor,
    action: str,
    target: str,
    data: dict[str, Any] | None = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry to ``stream``'s chain inside the caller's transaction."""
    await _lock_stream(session, stream)
    head = (
        await session.execute(
            sa.select(AuditEntry.seq, AuditEntry.hash)
            .where(AuditEntry.stream == stream)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        )
    ).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    if request_id is None:
        request_id = _current_request_id()
    entry = AuditEntry(
        stream=stream,
        seq=seq,
        ts=now or utcnow(),
        actor=actor.actor,
        role=actor.role,
        action=action,
        target=target,
        data=_plain(data or {}),
        request_id=request_id,
        prev_hash=prev,
    )
    entry.hash = hash_body(entry_body(entry))
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class AuditItem:
    """One entry for `append_audit_entries`."""

    stream: str
    actor: Actor
    action: str
    target: str
    data: dict[str, Any] | None = None
    now: datetime | None = None


async def append_audit_entries(session: AsyncSession, items: Sequence[AuditItem]) -> int:
    """`append_audit_entry` for many entries (a batch job's): the streams locked in one statement (in
    sorted order, so two batches cannot deadlock), their heads read in one, the entries chained in
    ``items`` order per stream and written in one multi-row INSERT. Same chains, same hashes."""
    if not items:
        return 0
    streams = sorted({item.stream for item in items})
    if session.bind.dialect.name == "postgresql":
        keys = [f"audit:{s}" for s in streams]
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"),
            {"keys": keys},
        )
    last = (
        sa.select(AuditEntry.stream, sa.func.max(AuditEntry.seq).label("seq"))
        .where(AuditEntry.stream.in_(streams))
        .group_by(AuditEntry.stream)
        .subquery()
    )
    heads = {
        stream: (seq, digest)
        for stream, seq, digest in await session.execute(
            sa.select(AuditEntry.stream, AuditEntry.seq, AuditEntry.hash).join(
                last, sa.and_(AuditEntry.stream == last.c.stream, AuditEntry.seq == last.c.seq)
            )
        )
    }
    request_id = _current_request_id()
    rows = []
    for item in items:
        seq, prev = heads.get(item.stream, (0, GENESIS_HASH))
        entry = AuditEntry(
            stream=item.stream, seq=seq + 1, ts=item.now or utcnow(), actor=item.actor.actor, role=item.actor.role,
            action=item.action, target=item.target, data=_plain(item.data or {}), request_id=request_id,
            prev_hash=prev,
        )  # fmt: skip
        entry.hash = hash_body(entry_body(entry))
        heads[item.stream] = (entry.seq, entry.hash)
        rows.append({key: getattr(entry, key) for key in (*HASHED_FIELDS, "hash")})
    await session.execute(sa.insert(AuditEntry.__table__), rows)  # Core: one executemany
    return len(rows)


def _current_request_id() -> str | None:

    return structlog.contextvars.get_contextvars().get("request_id")


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def check_chain(entries: Iterable[AuditEntry]) -> ChainProblem | None:
    """The first broken link of a stream's entries (in ``seq`` order), or ``None``."""
    prev = GENESIS_HASH
    expected_seq = None
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            return ChainProblem(entry.seq, f"expected seq {expected_seq}")
        if entry.prev_hash != prev:
            return ChainProblem(entry.seq, "prev_hash does not match the previous entry's hash")
        if hash_body(entry_body(entry)) != entry.hash:
            return ChainProblem(entry.seq, "hash does not match the entry's content")
        prev = entry.hash
        expected_seq = entry.seq + 1
    return None


async def verify_stream(session: AsyncSession, stream: str) -> ChainProblem | None:
    rows = (
        await session.scalars(sa.select(AuditEntry).where(AuditEntry.stream == stream).order_by(AuditEntry.seq))
    ).all()
    return check_chain(rows)


async def list_entries(session: AsyncSession, stream: str, limit: int = 200) -> list[AuditEntry]:
    stmt = sa.select(AuditEntry).where(AuditEntry.stream == stream).order_by(AuditEntry.seq.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


def _search(
    stmt: sa.Select,
    *,
    stream: str | None,
    actor: str | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
) -> sa.Select:
    if stream:
        stmt = stmt.where(AuditEntry.stream == stream)
    if actor:
        stmt = stmt.where(AuditEntry.actor.contains(actor, autoescape=True))
    if action:
        stmt = stmt.where(
            AuditEntry.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditEntry.action == action
        )
    if start is not None:
        stmt = stmt.where(AuditEntry.ts >= start)
    if end is not None:
        stmt = stmt.where(AuditEntry.ts < end)
    return stmt


async def search_entries(
    session: AsyncSession,
    *,
    stream: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AuditEntry]:
    """Entries matching every given filter, newest first, ``limit`` of them from ``offset``: ``actor``
    matches a part of the actor, ``action`` an exact action or a prefix ending in ``.`` (``dsr.``)."""
    stmt = _search(sa.select(AuditEntry), stream=stream, actor=actor, action=action, start=start, end=end)
    stmt = stmt.order_by(AuditEntry.ts.desc(), AuditEntry.id.desc()).limit(limit).offset(max(offset, 0))
    return list((await session.scalars(stmt)).all())


async def count_entries(
    session: AsyncSession,
    *,
    stream: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """How many entries :func:`search_entries` pages through with the same filters."""
    stmt = _search(
        sa.select(sa.func.count()).select_from(AuditEntry),
        stream=stream,
        actor=actor,
        action=action,
        start=start,
        end=end,
    )
    return int(await session.scalar(stmt) or 0)


async def entries_for_target(session: AsyncSession, stream: str, target: str) -> list[AuditEntry]:
    """A target's history in ``stream`` (e.g. one subject request's steps), oldest first."""
    stmt = sa.select(AuditEntry).where(AuditEntry.stream == stream, AuditEntry.target == target)
    return list((await session.scalars(stmt.order_by(AuditEntry.seq))).all())
