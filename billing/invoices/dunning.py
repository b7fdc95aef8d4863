"""Dunning: what happens to an unpaid invoice as its due date comes and goes, run by a periodic job
that takes ``now`` (tests drive it with a controlled clock).

The schedule is the contract's ``dunning`` terms (``reminders_days`` around the due date, negative
before it; ``suspend_after_days`` overdue, or null for never), else `DEFAULT_DUNNING`. Days are
calendar days in the invoice's time zone; an invoice is overdue the day after its due date. Each
step is taken once per invoice (an ``invoice_dunning_steps`` row is its receipt, and every e-mail
has a stable key), so running the job twice, or on two workers, sends nothing twice. When the job
missed days, only the latest reminder that is due is sent (the earlier ones are recorded as
skipped) — a customer never gets three reminders in one morning.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import payments, service
from billing.invoices.models import Invoice
from compliance.service import append_audit_entry
from tenants.models import ContractVersion

log = logging.getLogger(__name__)

DEFAULT_DUNNING: dict[str, Any] = {"reminders_days": [-3, 1, 7, 14], "suspend_after_days": None}


@dataclass(frozen=True)
class Schedule:
    reminders_days: tuple[int, ...]
    suspend_after_days: int | None

    @classmethod
    def of(cls, terms: dict[str, Any] | None) -> Schedule:
        spec = (terms or {}).get("dunning") or DEFAULT_DUNNING
        days = spec.get("reminders_days")
        return cls(
            tuple(sorted(set(DEFAULT_DUNNING["reminders_days"] if days is None else days))),
            spec.get("suspend_after_days"),
        )


def template_of(day: int) -> str:
    """A reminder up to the due date says it is due soon; one after it says it is overdue."""
    return "due_soon" if day <= 0 else "overdue"


async def schedule_for(session: AsyncSession, invoice: Invoice) -> Schedule:
    terms = await session.scalar(
        sa.select(ContractVersion.terms).where(
            ContractVersion.tenant_id == invoice.tenant_id, ContractVersion.version == invoice.contract_version
        )
    )
    return Schedule.of(terms)


async def dun_invoice(session: AsyncSession, invoice: Invoice, *, now: datetime) -> list[str]:
    """Take the steps that are due for one unpaid invoice; the steps taken by this call."""
    if invoice.payment_status not in payments.UNPAID or invoice.due_date is None:
        return []
    schedule = await schedule_for(session, invoice)
    today = service.local_date(now, invoice.timezone)
    late = (today - invoice.due_date).days  # > 0: overdue by that many days
    taken: list[str] = []
    if late > 0 and await payments.transition(
        session, payments.DUNNING, invoice, payments.OVERDUE, now=now, data={"due_date": invoice.due_date.isoformat()}
    ):
        await payments.take_step(session, invoice.id, "overdue", now=now, detail={"days_late": late})
        taken.append("overdue")
    due = [d for d in schedule.reminders_days if d <= late]
    for day in due:
        stale = day != due[-1] or (day <= 0 and invoice.payment_status == payments.OVERDUE)
        detail = {"skipped": True} if stale else {"template": template_of(day)}
        if not await payments.take_step(session, invoice.id, f"reminder:{day}", now=now, detail=detail):
            continue
        if stale:
            continue
        queued = await payments.mail(
            session, invoice, template_of(day), key=f"invoice.reminder:{invoice.id}:{day}", now=now,
            extra={"days": day, "days_late": max(late, 0)},
        )  # fmt: skip
        tenant = await service.tenant_of(session, invoice)
        await append_audit_entry(
            session, stream=tenant.slug, actor=payments.DUNNING, action="invoice.reminder_sent",
            target=f"invoice:{invoice.id}", data={"number": invoice.number, "day": day,
                                                  "template": template_of(day), "recipients": queued}, now=now,
        )  # fmt: skip
        taken.append(f"reminder:{day}")
    limit = schedule.suspend_after_days
    if limit is not None and invoice.payment_status == payments.OVERDUE and late >= limit:
        if await _suspend(session, invoice, late, now=now):
            taken.append(payments.SUSPEND_STEP)
    return taken


async def _suspend(session: AsyncSession, invoice: Invoice, late: int, *, now: datetime) -> bool:
    """Suspend the tenant (through the tenants service) once for this invoice, unless an account
    manager overrode it before; a tenant that is not active (already suspended, offboarded) stays as it is."""
    from tenants.service import transition_tenant

    tenant = await service.tenant_of(session, invoice)
    active = tenant.status == "active"
    detail = {"suspended": active, "days_late": late, "tenant_status": tenant.status}
    if not await payments.take_step(session, invoice.id, payments.SUSPEND_STEP, now=now, detail=detail):
        return False
    if active:
        reason = f"invoice {invoice.number} is {late} days overdue"
        await transition_tenant(session, payments.DUNNING, tenant.slug, {"to": "suspended", "reason": reason})
    await append_audit_entry(
        session, stream=tenant.slug, actor=payments.DUNNING, action="invoice.tenant_suspended",
        target=f"invoice:{invoice.id}", data={"number": invoice.number, "days_late": late, "suspended": active},
        now=now,
    )  # fmt: skip
    return True


async def run_dunning(db: Any, *, now: datetime) -> dict[str, int]:
    """The job: every unpaid invoice, one transaction each (one invoice's failure stops no other)."""
    async with db.control_session() as session:
        ids = (
            await session.scalars(
                sa.select(Invoice.id).where(Invoice.payment_status.in_(payments.UNPAID), Invoice.due_date.is_not(None))
            )
        ).all()
    counts = {"invoices": len(ids), "steps": 0, "failed": 0}
    for invoice_id in ids:
        try:
            counts["steps"] += len(await _dun_one(db, invoice_id, now=now))
        except Exception:
            log.exception("dunning failed for invoice %s", invoice_id)
            counts["failed"] += 1
    return counts


async def _dun_one(db: Any, invoice_id: uuid.UUID, *, now: datetime) -> list[str]:
    async with db.control_transaction() as session:
        invoice = await service.get_invoice(session, None, invoice_id, lock=True)
        return await dun_invoice(session, invoice, now=now)
