"""The invoice run: the hourly job that drafts (or refreshes) every tenant's invoice for the period
that settled, in chunks of tenants, each chunk one transaction with batched reads.

Per chunk: the tenants, their contracts in force, open drafts with their lines, excluded windows
and the tenants with earlier invoices to adjust are read in one query each, and every tenant's
period counts in a few grouped statements (``counting.many_period_counts``), the next `READ_AHEAD`
chunks' counts being read, each in a session of its own, while this one is rated and written; its
new lines go in one INSERT and its audit entries in one append. A draft whose lines and contract
version are unchanged writes nothing. Rating and saving are the same functions as
``service.draft_invoice``'s (the API path).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import service
from billing.invoices.adjustments import pending_adjustments
from billing.invoices.counting import invoice_counts, many_period_counts, many_skipped_days, response_targets
from billing.invoices.models import Invoice, InvoiceLineRow
from billing.invoices.periods import settles_at
from billing.rating import RatedInvoice
from compliance.service import Actor, append_audit_entries
from tenants.models import ContractVersion, Tenant
from tenants.periods import Period

log = logging.getLogger(__name__)

DRAFT_CHUNK = 125  # tenants drafted per transaction by the job
READ_AHEAD = 2  # chunks whose counts are being read at once (each on its own connection)


async def contracts_in_force(
    session: AsyncSession, tenant_ids: list[uuid.UUID], period_start: date
) -> dict[uuid.UUID, ContractVersion]:
    """`contract_in_force` of many tenants in one statement: per tenant, the latest effective_from on
    or before ``period_start``, newest version first."""
    stmt = (
        sa.select(ContractVersion)
        .where(ContractVersion.tenant_id.in_(tenant_ids), ContractVersion.effective_from <= period_start)
        .order_by(ContractVersion.tenant_id, ContractVersion.effective_from.desc(), ContractVersion.version.desc())
    )
    found: dict[uuid.UUID, ContractVersion] = {}
    for contract in (await session.scalars(stmt)).all():
        found.setdefault(contract.tenant_id, contract)
    return found


async def draft_due_invoices(session_factory, actor: Actor, *, now: datetime) -> dict[str, int]:
    """The scheduler's job: draft (or refresh) last month's invoice of every active tenant once it has settled.

    Tenants go in chunks of `DRAFT_CHUNK`, one transaction each, every read batched over the chunk
    (`_draft_chunk`); a draft that would not change writes nothing. One tenant's failure does not
    stop the rest: a tenant whose rating fails is counted ``failed`` and the chunk goes on; a chunk
    whose transaction fails is rolled back and its tenants are drafted again one transaction each.
    """
    done = {"drafted": 0, "unchanged": 0, "not_settled": 0, "skipped": 0, "failed": 0}
    async with session_factory() as session:
        tenants = list((await session.scalars(sa.select(Tenant.id).where(Tenant.status == "active"))).all())
    chunks = [tenants[first : first + DRAFT_CHUNK] for first in range(0, len(tenants), DRAFT_CHUNK)]
    # The counts of the next READ_AHEAD chunks are read, each in a session of its own, while this one is
    # rated and written: the reads (most of the run) use READ_AHEAD connections, so as many cores.
    ahead = collections.deque(_read_ahead(session_factory, chunk, now=now) for chunk in chunks[:READ_AHEAD])
    for i, chunk in enumerate(chunks):
        prefetched = await ahead.popleft()
        if i + READ_AHEAD < len(chunks):
            ahead.append(_read_ahead(session_factory, chunks[i + READ_AHEAD], now=now))
        try:
            async with session_factory() as session:
                outcomes = await _draft_chunk(session, actor, chunk, now=now, prefetched=prefetched)
        except Exception:  # the chunk's transaction is rolled back: each tenant on its own
            log.exception("draft_invoices: a chunk of %d tenants failed; drafting them one by one", len(chunk))
            outcomes = [await _draft_due(session_factory, actor, tenant_id, now=now) for tenant_id in chunk]
        for outcome in outcomes:
            done[outcome] += 1
    return done


Prefetched = dict[tuple[uuid.UUID, Period], tuple[tuple[Any, ...], Any]]


def _read_ahead(session_factory, tenant_ids: list[uuid.UUID], *, now: datetime) -> asyncio.Future:
    """`_prefetch_counts` started as a task; a failure only means the chunk reads its counts itself."""

    async def read() -> Prefetched | None:
        try:
            return await _prefetch_counts(session_factory, tenant_ids, now=now)
        except Exception:
            log.exception("draft_invoices: reading ahead failed; the chunk reads its own counts")
            return None

    return asyncio.ensure_future(read())


async def _prefetch_counts(session_factory, tenant_ids: list[uuid.UUID], *, now: datetime) -> Prefetched:
    """The batched period counts of a chunk's tenants, each with the response targets they were
    counted for (`_draft_period` uses them only while the contract in force still has those targets)."""
    out: Prefetched = {}
    async with session_factory() as session:
        rows = (await session.execute(sa.select(Tenant.id, Tenant.timezone).where(Tenant.id.in_(tenant_ids)))).all()
        by_period: dict[Period, list[uuid.UUID]] = {}
        for tenant_id, timezone in rows:
            by_period.setdefault(Period.at(now, timezone).previous(), []).append(tenant_id)
        for period, ids in by_period.items():
            contracts = await contracts_in_force(session, ids, period.first)
            skipped = await many_skipped_days(session, ids, period)
            batched = {}
            for tenant_id in ids:
                contract = contracts.get(tenant_id)
                targets = None if contract is None or skipped.get(tenant_id) else _batchable_targets(contract.terms)
                if targets is not None:
                    batched[tenant_id] = targets
            for tenant_id, counts in (await many_period_counts(session, period, batched)).items():
                out[(tenant_id, period)] = (batched[tenant_id], counts)
    return out


async def _draft_due(session_factory, actor: Actor, tenant_id: uuid.UUID, *, now: datetime) -> str:
    try:
        async with session_factory() as session:
            return (await _draft_chunk(session, actor, [tenant_id], now=now))[0]
    except Exception:  # this tenant's transaction is rolled back; the others go on
        log.exception("draft_invoices: tenant %s failed", tenant_id)
        return "failed"


async def _draft_chunk(
    session: AsyncSession,
    actor: Actor,
    tenant_ids: list[uuid.UUID],
    *,
    now: datetime,
    prefetched: Prefetched | None = None,
) -> list[str]:
    """Draft the due period of each tenant (last month in its zone) with the chunk's reads batched:
    tenants, contracts in force, open invoices with their lines, excluded windows, which tenants have
    billed invoices to adjust, and the period counts of all of them (`many_period_counts`)."""
    tenants = list((await session.scalars(sa.select(Tenant).where(Tenant.id.in_(tenant_ids)))).all())
    by_period: dict[Period, list[Tenant]] = {}
    for tenant in tenants:
        by_period.setdefault(Period.at(now, tenant.timezone).previous(), []).append(tenant)
    outcomes: list[str] = []
    for period, group in by_period.items():
        outcomes += await _draft_period(session, actor, period, group, now=now, prefetched=prefetched or {})
    return outcomes


def _batchable_targets(terms: Any) -> tuple[Any, ...] | None:
    """The contract's response targets when `many_period_counts` can count them (at most one per
    channel and limit); ``None`` sends the tenant to `invoice_counts`, which reports a bad term."""
    try:
        targets = response_targets(terms)
    except Exception:
        return None
    return targets if len({(t.channel, t.first_response_seconds) for t in targets}) == len(targets) else None


async def _draft_period(
    session: AsyncSession,
    actor: Actor,
    period: Period,
    tenants: list[Tenant],
    *,
    now: datetime,
    prefetched: Prefetched,
) -> list[str]:
    ids = [t.id for t in tenants]
    contracts = await contracts_in_force(session, ids, period.first)
    stmt = sa.select(Invoice).where(Invoice.tenant_id.in_(ids), Invoice.period == period.label)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Invoice)
    invoices = {i.tenant_id: i for i in (await session.scalars(stmt)).all()}
    billed_before = set(
        (
            await session.scalars(
                sa.select(Invoice.tenant_id)
                .where(Invoice.tenant_id.in_(ids), Invoice.period < period.label, Invoice.status.in_(service.BILLED))
                .distinct()
            )
        ).all()
    )
    skipped = await many_skipped_days(session, ids, period)
    due: list[Tenant] = []
    outcomes: list[str] = []
    batched: dict[uuid.UUID, Any] = {}
    for tenant in tenants:
        invoice, contract = invoices.get(tenant.id), contracts.get(tenant.id)
        if (invoice is not None and invoice.status != service.OPEN) or contract is None:
            outcomes.append("skipped")
        elif now < settles_at(period, tenant.timezone, contract.terms):
            outcomes.append("not_settled")
        else:
            due.append(tenant)
            targets = None if skipped.get(tenant.id) else _batchable_targets(contract.terms)
            if targets is not None:
                batched[tenant.id] = targets
    counts_of = {}
    for tenant_id, targets in list(batched.items()):
        ahead = prefetched.get((tenant_id, period))
        if ahead is not None and ahead[0] == targets:
            counts_of[tenant_id] = ahead[1]
            del batched[tenant_id]
    counts_of |= await many_period_counts(session, period, batched)
    changed: list[tuple[Tenant, tuple[Invoice, str, RatedInvoice]]] = []
    lines: list[tuple[Invoice, list[InvoiceLineRow]]] = []
    for tenant in due:
        invoice, contract = invoices.get(tenant.id), contracts[tenant.id]
        try:
            counts = counts_of.get(tenant.id) or await invoice_counts(session, tenant, period, contract.terms)
            adjustments = (
                await pending_adjustments(session, tenant, period, exclude=invoice.id if invoice else None)
                if tenant.id in billed_before
                else []
            )
            rated, rows, after = service.rated(contract.terms, counts, adjustments)
        except Exception:  # nothing of this tenant's is written; the others go on
            log.exception("draft_invoices: %s %s failed", tenant.slug, period.label)
            outcomes.append("failed")
            continue
        done = await service.apply_draft(
            session, tenant, period, contract, invoice, counts, rated, rows, now=now, after=after, lines_later=lines
        )
        if done is None:
            outcomes.append("unchanged")
        else:
            changed.append((tenant, done))
            outcomes.append("drafted")
    if changed:
        # One flush for the chunk's invoices, one INSERT for their lines, one append for the audit entries.
        await session.flush()
        await insert_lines(session, lines)
        await append_audit_entries(
            session, [service.draft_audit_item(actor, tenant, period, *done, now=now) for tenant, done in changed]
        )
    return outcomes


_LINE_COLUMNS = ("invoice_id", "position", "kind", "description", "quantity", "unit_price", "amount_minor", "sla",
                 "adjusts_invoice_id", "adjusts_kind", "adjusts_quantity")  # fmt: skip


async def insert_lines(session: AsyncSession, lines: list[tuple[Invoice, list[InvoiceLineRow]]]) -> None:
    """Many invoices' lines in one multi-row INSERT (after their invoices are flushed)."""
    values = [
        {column: invoice.id if column == "invoice_id" else getattr(row, column) for column in _LINE_COLUMNS}
        for invoice, rows in lines
        for row in rows
    ]
    if values:
        await session.execute(sa.insert(InvoiceLineRow.__table__), values)  # Core: one executemany
