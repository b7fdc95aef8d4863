"""Itemised usage: the billed contacts of an invoice's period, read from the tenant's cells on request.

A contact is billed in the period of its ``resolved_at`` (in the tenant's zone) when its latest version
is ``ai_resolved`` or ``human_resolved`` — the rule the rollups apply (`rollups.contribution` places a
contact's ``resolved`` row on the day of the latest version's ``resolved_at``, and `counts` reads only
those two resolutions). So a reopened contact counts where its latest resolution falls (or nowhere
while it is open again), and a late update moves it like it moves the rollups: the rows per resolution
are the invoice's quantities whenever the invoice was drafted from the rollups as they stand.

Each row names the charge it fell into, the invoice line's description: contacts are numbered per
resolution in ``(resolved_at, external_id)`` order across every cell, and unit n falls in the line
(the tier) that covers it, exactly as `rating.usage_lines` bands the period's quantity.

Nothing is copied into the control database and no customer reference is read: rows go from a
server-side cursor per cell (``yield_per``, merged in order) to the response in chunks, so memory
stays flat however many contacts the month holds.
"""

from __future__ import annotations

import bisect
import csv
import heapq
import io
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import service
from billing.metering.models import Contact
from billing.rating import LineKind
from billing.rating.service import usage_lines
from control_plane import cells
from control_plane.database import Databases
from control_plane.errors import Conflict
from tenants.models import Tenant
from tenants.periods import Period
from tenants.service import contract_in_force
from tenants.vocabulary import RESOLVED

COLUMNS = ("external_id", "channel", "intent", "market", "resolution", "resolved_at", "charge", "unit_price")
CHUNK_ROWS = 2_000  # rows per cursor fetch and per piece of the response body
C = Contact.__table__.c


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose contacts and which instants: ``[start, end)`` in UTC, the invoice's period bounds."""

    tenant_id: uuid.UUID
    start: datetime
    end: datetime
    timezone: str


@dataclass(frozen=True, slots=True)
class Itemised:
    """What `usage_csv` needs to stream one invoice's contacts, and the file's name."""

    scope: Scope
    terms: Mapping[str, Any]
    filename: str


async def itemised_usage(session: AsyncSession, actor: Any, invoice_id: str) -> Itemised:
    """The invoice's period and contract for its itemised usage, if ``actor`` may see the invoice
    (404 otherwise, another tenant's too): the contract in force at the period's start, as drafting rates."""
    invoice = await service.get_invoice(session, actor, invoice_id)
    tenant = await session.get_one(Tenant, invoice.tenant_id)
    year, month = invoice.period.split("-")
    period = Period(int(year), int(month))
    contract = await contract_in_force(session, tenant.id, period.first)
    if contract is None:  # an invoice is only drafted under a contract; kept for a contract deleted since
        raise Conflict(f"no contract is in force on {period.first} for {tenant.slug!r}", code="no_contract")
    scope = Scope(tenant.id, period.start_utc(invoice.timezone), period.end_utc(invoice.timezone), invoice.timezone)
    name = f"usage-{tenant.slug}-{invoice.number or 'draft-' + invoice.period}.csv"
    return Itemised(scope, contract.terms, name)


def _billed(scope: Scope) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        C.tenant_id == scope.tenant_id,
        C.resolution.in_(RESOLVED),
        C.resolved_at >= scope.start,
        C.resolved_at < scope.end,
    )


async def billed_counts(db: Databases, scope: Scope) -> dict[str, int]:
    """Billed contacts of the scope per resolution, over every cell (one GROUP BY per cell)."""
    out = dict.fromkeys(RESOLVED, 0)
    stmt = sa.select(C.resolution, sa.func.count()).where(*_billed(scope)).group_by(C.resolution)
    for region in await cells.holding(db, scope.tenant_id):
        async with db.cell_session(region) as cell:
            for resolution, n in await cell.execute(stmt):
                out[resolution] += int(n)
    return out


class Charges:
    """Which invoice line unit n of a resolution falls in: the lines `usage_lines` makes of the count."""

    def __init__(self, terms: Mapping[str, Any], counts: Mapping[str, int]) -> None:
        currency = str(terms["currency"])
        self._bands: dict[str, list[tuple[int, str, str]]] = {}
        for resolution in RESOLVED:
            kind = LineKind(resolution)
            lines = usage_lines(kind, terms[resolution], counts.get(resolution, 0), currency)
            last, bands = 0, []
            for line in lines:
                last += line.quantity
                bands.append((last, line.description, line.unit_price))
            self._bands[resolution] = bands
        self._seen = dict.fromkeys(RESOLVED, 0)
        self._at = dict.fromkeys(RESOLVED, 0)

    def next(self, resolution: str) -> tuple[str, str]:
        """The (description, unit price) of the next unit of ``resolution``.

        A contact stored after the count was taken (ingest does not stop for a download) falls in the
        last line of its resolution."""
        bands = self._bands[resolution]
        self._seen[resolution] += 1
        n, i = self._seen[resolution], self._at[resolution]
        while i < len(bands) - 1 and n > bands[i][0]:
            i += 1
        self._at[resolution] = i
        if not bands:
            return ("", "")
        return bands[i][1], bands[i][2]


def _key(row: Any) -> tuple:
    return (row[0], row[1])


async def _cell_partitions(db: Databases, region: str, scope: Scope) -> AsyncIterator[list]:
    """The cell's billed contacts in ``(resolved_at, external_id)`` order, `CHUNK_ROWS` at a time
    from a server-side cursor."""
    stmt = (
        sa.select(C.resolved_at, C.external_id, C.channel, C.intent, C.market, C.resolution)
        .where(*_billed(scope))
        .order_by(C.resolved_at, C.external_id)
        .execution_options(yield_per=CHUNK_ROWS)
    )
    async with db.cell_session(region) as cell:
        result = await cell.stream(stmt)
        async for partition in result.partitions(CHUNK_ROWS):
            yield partition


async def _merged(db: Databases, scope: Scope) -> AsyncIterator[list]:
    """Every cell's rows in one ``(resolved_at, external_id)`` order, in batches: a k-way merge of
    the cells' ordered cursors. Each round emits every buffered row up to the smallest last key of
    the cells that still have rows to send (no later row of theirs can come before it)."""
    streams = [_cell_partitions(db, region, scope) for region in await cells.holding(db, scope.tenant_id)]
    buffers: list[list] = [[] for _ in streams]
    live = [True] * len(streams)
    try:
        while True:
            for i, stream in enumerate(streams):
                if live[i] and not buffers[i]:
                    part = await anext(stream, None)
                    if part is None:
                        live[i] = False
                    else:
                        buffers[i] = list(part)
            if not any(buffers):
                return
            pending = [i for i, buf in enumerate(buffers) if live[i] and buf]
            edge = min(pending, key=lambda i: _key(buffers[i][-1])) if pending else None
            bound = None if edge is None else _key(buffers[edge][-1])
            parts = []
            for i, buf in enumerate(buffers):
                if not buf:
                    continue
                # The edge cell's buffer goes whole, so every round makes progress.
                cut = len(buf) if bound is None or i == edge else bisect.bisect_right(buf, bound, key=_key)
                if cut:
                    parts.append(buf[:cut])
                    buffers[i] = buf[cut:]
            yield parts[0] if len(parts) == 1 else list(heapq.merge(*parts, key=_key))
    finally:
        for stream in streams:
            await stream.aclose()


async def usage_csv(db: Databases, scope: Scope, terms: Mapping[str, Any]) -> AsyncIterator[bytes]:
    """The CSV body in pieces of `CHUNK_ROWS` rows: a header, then one row per billed contact."""
    charges = Charges(terms, await billed_counts(db, scope))
    zone = ZoneInfo(scope.timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    async for batch in _merged(db, scope):
        rows = []
        for resolved_at, external_id, channel, intent, market, resolution in batch:
            charge, unit_price = charges.next(resolution)
            local = resolved_at.astimezone(zone).isoformat()
            rows.append((external_id, channel, intent, market, resolution, local, charge, unit_price))
        writer.writerows(rows)
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue().encode()


__all__ = ["COLUMNS", "Charges", "Itemised", "Scope", "billed_counts", "itemised_usage", "usage_csv"]
