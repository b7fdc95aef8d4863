"""Audit export: one JSON Lines file per stream and time range, streamed in constant memory.

Lines: a ``header``; the ``entry`` lines (each stored entry plus ``"type": "entry"``); the stored
``checkpoint`` lines that cover them, each right after the entry it covers; and last, a checkpoint
signed at export time over the last entry (``seq`` and ``hash`` null when there is none) whose body
also carries ``header``, the SHA-256 of the canonical header line: the header's range and counts are
signed with the entries. That final checkpoint is not stored; the scheduled ones (``bpoctl audit
checkpoint``) make the stored chain. CSV carries the same entries for reading, unsigned.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from compliance.checkpoints import checkpoint_hash, checkpoint_line, latest_checkpoint, sign_checkpoint
from compliance.models import AuditEntry, Checkpoint
from compliance.service import GENESIS_HASH, entry_body, rfc3339
from compliance.verify import FORMAT_2, header_hash
from control_plane.database import Databases, utcnow
from control_plane.keyring import KeyRing

FORMAT = FORMAT_2
PAGE = 1000


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _range_filter(stream: str, start: datetime | None, end: datetime | None) -> list:
    cond = [AuditEntry.stream == stream]
    if start is not None:
        cond.append(AuditEntry.ts >= start)
    if end is not None:
        cond.append(AuditEntry.ts < end)
    return cond


async def _pages(session, stream: str, first: int, last: int) -> AsyncIterator[list[AuditEntry]]:
    """Entries ``first..last`` in pages (keyset on seq), expunged so memory stays flat."""
    after = first - 1
    while after < last:
        rows = (
            await session.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.stream == stream, AuditEntry.seq > after, AuditEntry.seq <= last)
                .order_by(AuditEntry.seq)
                .limit(PAGE)
            )
        ).all()
        if not rows:
            return
        session.expunge_all()
        yield rows
        after = rows[-1].seq


async def export_jsonl(
    db: Databases, keyring: KeyRing, *, stream: str, start: datetime | None = None, end: datetime | None = None
) -> AsyncIterator[str]:
    async with db.control_session() as session:
        bounds = (
            await session.execute(
                sa.select(sa.func.min(AuditEntry.seq), sa.func.max(AuditEntry.seq)).where(
                    *_range_filter(stream, start, end)
                )
            )
        ).one()
        first, last = bounds
        header: dict[str, Any] = {
            "type": "header",
            "format": FORMAT,
            "stream": stream,
            "from": rfc3339(start) if start else None,
            "to": rfc3339(end) if end else None,
            "exported_at": rfc3339(utcnow()),
            "keys": "/api/v1/audit/keys",
            "first_seq": first,
            "last_seq": last,
            "entries": 0 if first is None else last - first + 1,
            "prev_hash": GENESIS_HASH,
            "prev_checkpoint": GENESIS_HASH,
        }
        if first is None:
            yield _line(header)
            yield _line(await _final_checkpoint(session, keyring, header, None, None, header["prev_checkpoint"]))
            return
        header["prev_hash"] = await session.scalar(
            sa.select(AuditEntry.prev_hash).where(AuditEntry.stream == stream, AuditEntry.seq == first)
        )
        before = await latest_checkpoint(session, stream, before_seq=first)
        header["prev_checkpoint"] = checkpoint_hash(before) if before else GENESIS_HASH
        yield _line(header)

        covering = list(
            (
                await session.scalars(
                    sa.select(Checkpoint)
                    .where(Checkpoint.stream == stream, Checkpoint.seq >= first, Checkpoint.seq <= last)
                    .order_by(Checkpoint.id)
                )
            ).all()
        )
        by_seq: dict[int, list[dict]] = {}
        for cp in covering:
            by_seq.setdefault(cp.seq, []).append(checkpoint_line(cp))
        prev_cp = header["prev_checkpoint"]
        last_hash = None
        async for page in _pages(session, stream, first, last):
            chunk = []
            for entry in page:
                chunk.append(_line(entry_body(entry) | {"hash": entry.hash, "type": "entry"}))
                for cp_line in by_seq.get(entry.seq, ()):
                    chunk.append(_line(cp_line))
                    prev_cp = checkpoint_hash(cp_line)
                last_hash = entry.hash
            yield "".join(chunk)

        yield _line(await _final_checkpoint(session, keyring, header, last, last_hash, prev_cp))


async def _final_checkpoint(
    session, keyring: KeyRing, header: dict[str, Any], seq: int | None, hash_: str | None, prev_cp: str
) -> dict[str, Any]:
    """The export-time checkpoint over the last entry, signing the header's hash too; not stored."""
    final = await sign_checkpoint(
        session,
        keyring,
        stream=header["stream"],
        seq=seq,
        hash_=hash_,
        prev_checkpoint=prev_cp,
        store=False,
        header=header_hash(header),
    )
    await session.commit()  # the first signing key, when this export made it
    return final


CSV_COLUMNS = ["seq", "ts", "stream", "actor", "role", "action", "target", "data", "request_id", "prev_hash", "hash"]


async def export_csv(
    db: Databases, *, stream: str, start: datetime | None = None, end: datetime | None = None
) -> AsyncIterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    async with db.control_session() as session:
        first, last = (
            await session.execute(
                sa.select(sa.func.min(AuditEntry.seq), sa.func.max(AuditEntry.seq)).where(
                    *_range_filter(stream, start, end)
                )
            )
        ).one()
        if first is None:
            return
        async for page in _pages(session, stream, first, last):
            buf = io.StringIO()
            writer = csv.writer(buf)
            for e in page:
                body = entry_body(e)
                writer.writerow(
                    [
                        *(
                            body[c] if c != "data" else json.dumps(body["data"], sort_keys=True)
                            for c in CSV_COLUMNS[:-1]
                        ),
                        e.hash,
                    ]
                )
            yield buf.getvalue()
