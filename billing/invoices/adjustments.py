"""Late changes: what a finalized period rates at now, against what was billed for it, as adjustment lines.

A finalized invoice never changes. When rollups of its period change afterwards (a late update, a
reopened contact), the next invoice of the tenant carries one `adjustment` line per kind of line
whose amount moved (`billing.rating.adjustments_between`). What was billed for a period is its
own lines plus the adjustment lines already on finalized invoices, so no change is billed twice.
Only the earliest open draft after a period carries its adjustments.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices.counting import invoice_counts
from billing.invoices.models import Invoice, InvoiceLineRow
from billing.invoices.schemas import line_of
from billing.money import from_minor_units
from billing.rating import InvoiceLine, LineKind, RatedInvoice, adjustments_between, rate_counts
from tenants.models import Tenant
from tenants.periods import Period
from tenants.service import contract_in_force

LOOKBACK_PERIODS = 12  # finalized periods older than a year are not re-rated
ADJUSTABLE = (LineKind.ai_resolved, LineKind.human_resolved, LineKind.minimum_true_up, LineKind.sla_credit)


async def pending_adjustments(
    session: AsyncSession, tenant: Tenant, period: Period, *, exclude: uuid.UUID | None = None
) -> list[tuple[InvoiceLine, dict[str, Any]]]:
    """Adjustment lines (with what they correct) for the invoice of ``period``."""
    earlier = list(
        (
            await session.scalars(
                sa.select(Invoice)
                .where(Invoice.tenant_id == tenant.id, Invoice.period < period.label)
                .order_by(Invoice.period.desc())
                .limit(LOOKBACK_PERIODS)
            )
        ).all()
    )
    drafts_between = sorted(i.period for i in earlier if i.status == "draft" and i.id != exclude)
    billed = [i for i in earlier if i.status in ("finalized", "paid")]
    if not billed:
        return []
    carried = await _billed_adjustments(session, [i.id for i in billed])
    out: list[tuple[InvoiceLine, dict[str, Any]]] = []
    for invoice in sorted(billed, key=lambda i: i.period):
        if any(invoice.period < d < period.label for d in drafts_between):
            continue  # an earlier open draft carries this period's corrections
        contract = await contract_in_force(session, tenant.id, Period.parse(invoice.period).first)
        if contract is None:
            continue
        counts = await invoice_counts(session, tenant, Period.parse(invoice.period), contract.terms)
        rerated = rate_counts(contract.terms, counts)
        cur = invoice.currency
        own = [line_of(r, cur) for r in invoice.lines if r.kind != LineKind.adjustment]
        for kind in ADJUSTABLE:
            before = [*(line for line in own if line.kind is kind), *carried[invoice.id][kind]]
            after = rerated.lines_of(kind)
            for line in adjustments_between(RatedInvoice(cur, tuple(before)), RatedInvoice(cur, after), invoice.period):
                delta = sum(x.quantity for x in after) - sum(x.quantity for x in before)
                meta = {"adjusts_invoice_id": invoice.id, "adjusts_kind": str(kind), "adjusts_quantity": delta}
                out.append((line, meta))
    return out


async def _billed_adjustments(
    session: AsyncSession, invoice_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[LineKind, list[InvoiceLine]]]:
    """Adjustments already on finalized invoices, as lines of the kind they corrected."""
    rows = await session.execute(
        sa.select(InvoiceLineRow, Invoice.currency)
        .join(Invoice, Invoice.id == InvoiceLineRow.invoice_id)
        .where(InvoiceLineRow.adjusts_invoice_id.in_(invoice_ids), Invoice.status.in_(("finalized", "paid")))
    )
    out: dict[uuid.UUID, dict[LineKind, list[InvoiceLine]]] = defaultdict(lambda: defaultdict(list))
    for row, cur in rows.all():
        kind = LineKind(row.adjusts_kind)
        amount = from_minor_units(int(row.amount_minor), cur)
        out[row.adjusts_invoice_id][kind].append(
            InvoiceLine(kind, row.description, int(row.adjusts_quantity or 0), str(amount), amount)
        )
    return out
