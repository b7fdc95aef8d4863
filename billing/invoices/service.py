"""Invoice use cases: draft (and re-draft), finalize, void, credit notes, late changes (payment: payments.py).

Every function takes the session and the acting principal (or a system actor for jobs), never
commits, and appends an audit entry for every change. Time comes in as ``now`` (one injectable
clock). A finalized invoice never changes: each route that would change one gets `Conflict` (409).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance import service as finance
from billing.finance.inputs import missing_of
from billing.finance.models import BillingProfile, Issuer
from billing.finance.tax import proportional, tax_lines
from billing.invoices.adjustments import pending_adjustments
from billing.invoices.counting import invoice_counts
from billing.invoices.event_data import credit_note_issued, invoice_finalized
from billing.invoices.mail import queue_invoice_mail
from billing.invoices.models import CreditNote, Invoice, InvoiceLineRow
from billing.invoices.numbering import formatted, next_number
from billing.invoices.periods import settles_at
from billing.invoices.schemas import line_of, lines_json
from billing.money import from_minor_units, money_str, round_minor, to_decimal, to_minor_units
from billing.providers.credits import enqueue_credit_note
from billing.rating import LineKind, RatedInvoice, rate_counts
from compliance.service import Actor, AuditItem, append_audit_entries, append_audit_entry
from control_plane.errors import Conflict, FieldCollector, FieldError, InvalidInput, NotFound
from control_plane.outbox import enqueue
from tenants.models import Tenant
from tenants.periods import Period
from tenants.service import contract_in_force, find_tenant

log = logging.getLogger(__name__)

SEND_INVOICE = "payments.send_invoice"
OPEN = "draft"
BILLED = ("finalized", "paid")
DEFAULT_PAYMENT_TERMS_DAYS = 30
SQLITE_FINALIZE_LOCK = "lock:finalize"


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar day of ``moment`` in the tenant's zone (an invoice's issue date)."""
    return moment.astimezone(ZoneInfo(timezone)).date()


async def _take_write_lock(session: AsyncSession) -> None:
    """On SQLite, take the database's write lock before the first read: the series to number from
    depends on reads (the tenant's issuer), and a read snapshot cannot be upgraded under contention.
    PostgreSQL needs nothing here: the series row's lock is taken by ``next_number``."""
    if session.bind.dialect.name == "sqlite":
        await next_number(session, SQLITE_FINALIZE_LOCK)


def _owner_id(actor: Any) -> uuid.UUID | None:
    """The tenant a merchant principal is bound to; None for staff and system actors."""
    return getattr(actor, "tenant_id", None) if getattr(actor, "tenant_bound", False) else None


async def tenant_of(session: AsyncSession, invoice: Invoice) -> Tenant:
    """The invoice's tenant (the caller has already been allowed to see the invoice)."""
    return await session.get_one(Tenant, invoice.tenant_id)


async def get_invoice(session: AsyncSession, actor: Any, invoice_id: uuid.UUID | str, *, lock: bool = False) -> Invoice:
    """The invoice if it exists and ``actor`` may see it; 404 otherwise (another tenant's too)."""
    try:
        key = invoice_id if isinstance(invoice_id, uuid.UUID) else uuid.UUID(str(invoice_id))
    except ValueError:
        raise NotFound(f"no invoice {invoice_id!r}") from None
    stmt = sa.select(Invoice).where(Invoice.id == key)
    if lock and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Invoice)
    invoice = await session.scalar(stmt.execution_options(populate_existing=lock))
    owner = _owner_id(actor)
    if invoice is None or (owner is not None and invoice.tenant_id != owner):
        raise NotFound(f"no invoice {invoice_id!r}")
    return invoice


async def list_invoices(
    session: AsyncSession,
    actor: Any,
    *,
    slug: str | None = None,
    period: str | None = None,
    status: str | None = None,
    payment_status: str | None = None,
) -> list[tuple[Invoice, str]]:
    stmt = sa.select(Invoice, Tenant.slug).join(Tenant, Tenant.id == Invoice.tenant_id)
    if slug is not None:
        tenant = await find_tenant(session, actor, slug)
        stmt = stmt.where(Invoice.tenant_id == tenant.id)
    owner = _owner_id(actor)
    if owner is not None:
        stmt = stmt.where(Invoice.tenant_id == owner)
    if period:
        stmt = stmt.where(Invoice.period == period)
    if status:
        stmt = stmt.where(Invoice.status == status)
    if payment_status:
        stmt = stmt.where(Invoice.payment_status == payment_status)
    rows = await session.execute(stmt.order_by(Invoice.period.desc(), Tenant.slug))
    return [(inv, s) for inv, s in rows.all()]


async def credit_notes_of(session: AsyncSession, invoice: Invoice) -> list[CreditNote]:
    stmt = sa.select(CreditNote).where(CreditNote.invoice_id == invoice.id).order_by(CreditNote.created_at)
    return list((await session.scalars(stmt)).all())


async def get_credit_note(session: AsyncSession, actor: Any, note_id: str) -> CreditNote:
    """The credit note if it exists and ``actor`` may see it; 404 otherwise (another tenant's too)."""
    try:
        key = uuid.UUID(note_id)
    except ValueError:
        raise NotFound(f"no credit note {note_id!r}") from None
    note = await session.get(CreditNote, key)
    owner = _owner_id(actor)
    if note is None or (owner is not None and note.tenant_id != owner):
        raise NotFound(f"no credit note {note_id!r}")
    return note


async def tenant_credit_notes(session: AsyncSession, actor: Any, slug: str) -> list[tuple[CreditNote, Invoice]]:
    """Every credit note of a tenant with the invoice it corrects, newest first."""
    tenant = await find_tenant(session, actor, slug)
    rows = await session.execute(
        sa.select(CreditNote, Invoice)
        .join(Invoice, Invoice.id == CreditNote.invoice_id)
        .where(CreditNote.tenant_id == tenant.id)
        .order_by(CreditNote.created_at.desc(), CreditNote.number.desc())
    )
    return [(note, invoice) for note, invoice in rows.all()]


def _rows(rated, adjustment_meta: list[dict[str, Any]]) -> list[InvoiceLineRow]:
    cur, meta = rated.currency, iter(adjustment_meta)
    rows = []
    for position, line in enumerate(rated.lines, start=1):
        extra = next(meta) if line.kind is LineKind.adjustment else {}
        rows.append(
            InvoiceLineRow(
                position=position,
                kind=str(line.kind),
                description=line.description[:300],
                quantity=line.quantity,
                unit_price=to_decimal(line.unit_price),
                amount_minor=to_minor_units(line.amount, cur),
                sla=line.sla,
                **extra,
            )
        )
    return rows


def _counts_json(counts) -> dict[str, Any]:
    by_intent = {k: asdict(v) for k, v in sorted(counts.by_intent.items())}
    return {"by_intent": by_intent, "responses": [asdict(r) for r in counts.responses]}


def rated(terms: Any, counts: Any, adjustments: list[tuple[Any, dict[str, Any]]]):
    """``(rated, line rows, lines as stored)`` of a period's counts and pending adjustments. The lines
    are given as stored (prices in the currency's places, descriptions cut to the column), so an
    unchanged period is recognised whatever the contract's spelling of a price ("1.45" vs "1.450")."""
    rated = rate_counts(terms, counts, [line for line, _ in adjustments])
    rows = _rows(rated, [meta for _, meta in adjustments])
    return rated, rows, RatedInvoice(rated.currency, tuple(line_of(row, rated.currency) for row in rows)).as_json()


async def rate_period(session: AsyncSession, tenant: Tenant, period: Period, terms: Any, invoice: Invoice | None):
    """Rate a period from the rollups: ``(counts, rated, line rows, lines as stored)``."""
    counts = await invoice_counts(session, tenant, period, terms)
    adjustments = await pending_adjustments(session, tenant, period, exclude=invoice.id if invoice else None)
    return (counts, *rated(terms, counts, adjustments))


async def invoice_tenant_id(db: Any, invoice_id: str) -> uuid.UUID | None:
    """The tenant of an invoice (``None`` when there is no such invoice), read on its own."""
    try:
        key = uuid.UUID(invoice_id)
    except ValueError:
        return None
    async with db.control_autocommit() as session:
        return await session.scalar(sa.select(Invoice.tenant_id).where(Invoice.id == key))


async def draft_invoice(session: AsyncSession, actor: Actor, slug: str, period_label: str | None, *, now: datetime):
    """Draft, or re-draft, a tenant's period: idempotent; refused before the period can have settled.

    Returns ``(invoice, changed)``; a re-draft that would produce the same lines changes nothing.
    """
    tenant = await find_tenant(session, actor if _owner_id(actor) else None, slug)
    period = Period.parse(period_label, today=now.date())
    contract = await contract_in_force(session, tenant.id, period.first)
    if contract is None:
        raise Conflict(f"no contract is in force on {period.first} for {slug!r}", code="no_contract")
    terms = contract.terms
    ready = settles_at(period, tenant.timezone, terms)
    if now < ready:
        raise Conflict(
            f"period {period.label} can be drafted from {ready.isoformat()} (its contacts settle after the "
            "reopen window, plus the late grace)",
            code="period_not_settled",
        )
    stmt = sa.select(Invoice).where(Invoice.tenant_id == tenant.id, Invoice.period == period.label)
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    invoice = await session.scalar(stmt)
    if invoice is not None and invoice.status != OPEN:
        raise Conflict(
            f"the invoice of {period.label} is {invoice.status}; a finalized invoice never changes "
            "(later changes go on the next invoice, corrections are credit notes)",
            code=f"invoice_{invoice.status}",
        )
    counts, rated, rows, after = await rate_period(session, tenant, period, terms, invoice)
    return await save_draft(session, actor, tenant, period, contract, invoice, counts, rated, rows, after, now=now)


async def save_draft(
    session: AsyncSession,
    actor: Actor,
    tenant: Tenant,
    period: Period,
    contract: Any,
    invoice: Invoice | None,
    counts: Any,
    rated: RatedInvoice,
    rows: list[InvoiceLineRow],
    after: dict[str, Any],
    *,
    now: datetime,
) -> tuple[Invoice, bool]:
    """Write a rated draft: nothing at all when the open draft already has these lines under this
    contract version (no statement, no audit entry), else the new or re-drafted invoice and its entry."""
    done = await apply_draft(session, tenant, period, contract, invoice, counts, rated, rows, now=now, after=after)
    if done is None:
        return invoice, False  # type: ignore[return-value]
    await session.flush()
    await audit_draft(session, actor, tenant, period, *done, now=now)
    return done[0], True


async def apply_draft(
    session: AsyncSession,
    tenant: Tenant,
    period: Period,
    contract: Any,
    invoice: Invoice | None,
    counts: Any,
    rated: RatedInvoice,
    rows: list[InvoiceLineRow],
    *,
    now: datetime,
    after: dict[str, Any] | None = None,
    lines_later: list[tuple[Invoice, list[InvoiceLineRow]]] | None = None,
) -> tuple[Invoice, str, RatedInvoice] | None:
    """The draft's changes in the session, not flushed: ``(invoice, audit action, rated)``, or ``None``
    when the open draft already has these lines (``after``) under this contract version.
    With ``lines_later`` (the invoice run), the new lines are not attached to the invoice but handed
    back there, for `insert_lines` to write many invoices' lines in one statement."""
    totals = {
        "usage_subtotal_minor": to_minor_units(rated.usage_subtotal, rated.currency),
        "credit_total_minor": to_minor_units(rated.credit_total, rated.currency),
        "total_minor": to_minor_units(rated.total, rated.currency),
        "net_total_minor": to_minor_units(rated.total, rated.currency),
    }
    if invoice is not None:
        before = lines_json(invoice)
        if before == after and invoice.contract_version == contract.version:
            return None
        invoice.previous_draft = before
        invoice.drafts += 1
        invoice.lines.clear()
        await session.flush()
        if lines_later is None:
            invoice.lines.extend(rows)
        for key, value in totals.items():
            setattr(invoice, key, value)
        invoice.contract_version, invoice.currency = contract.version, rated.currency
        invoice.counts, invoice.drafted_at = _counts_json(counts), now
        action = "invoice.redrafted"
    else:
        invoice = Invoice(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            period=period.label,
            period_start=period.start_utc(tenant.timezone),
            period_end=period.end_utc(tenant.timezone),
            timezone=tenant.timezone,
            currency=rated.currency,
            status=OPEN,
            contract_version=contract.version,
            counts=_counts_json(counts),
            drafts=1,
            drafted_at=now,
            lines=[] if lines_later is not None else rows,
            **totals,
        )
        session.add(invoice)
        action = "invoice.drafted"
    if lines_later is not None:
        lines_later.append((invoice, rows))
    return invoice, action, rated


def draft_audit_item(
    actor: Actor, tenant: Tenant, period: Period, invoice: Invoice, action: str, rated: RatedInvoice, *, now: datetime
) -> AuditItem:
    data = {"period": period.label, "total": money_str(rated.total, rated.currency), "currency": rated.currency}
    return AuditItem(stream=tenant.slug, actor=actor, action=action, target=f"invoice:{invoice.id}", data=data, now=now)


async def audit_draft(
    session: AsyncSession, actor: Actor, tenant: Tenant, period: Period, invoice: Invoice, action: str,
    rated: RatedInvoice, *, now: datetime,
) -> None:  # fmt: skip
    await append_audit_entries(session, [draft_audit_item(actor, tenant, period, invoice, action, rated, now=now)])


async def finalize_invoice(
    session: AsyncSession, actor: Actor, invoice_id: uuid.UUID | str, *, now: datetime, provider: str = "none"
) -> Invoice:
    """Give a draft its issuer's next gapless number, its tax, issue and due dates, and freeze it;
    the provider call goes to the outbox in this transaction. 409 ``billing_profile_incomplete``
    (naming what is missing) when the tenant has no complete billing profile."""
    await _take_write_lock(session)
    invoice = await get_invoice(session, actor, invoice_id, lock=True)
    if invoice.status != OPEN:
        raise Conflict(f"invoice {invoice.number or invoice.id} is {invoice.status}, not a draft", code="not_draft")
    tenant = await tenant_of(session, invoice)
    period = Period.parse(invoice.period)
    contract = await contract_in_force(session, tenant.id, period.first)
    current = contract and (await rate_period(session, tenant, period, contract.terms, invoice))[3]
    if contract is None or current != lines_json(invoice) or contract.version != invoice.contract_version:
        # Contacts (or a contract version) arrived after this draft: what would be finalized is not
        # what the reviewer saw. Re-drafting shows the difference (the drafts page lists it).
        raise Conflict(
            f"the draft of {invoice.period} is out of date: usage or the contract changed since it was drafted; "
            f"re-draft it (POST /api/v1/tenants/{tenant.slug}/invoices?period={invoice.period}), review, then finalize",
            code="draft_outdated",
        )
    profile = await finance.profile_of(session, tenant.id)
    missing = missing_of(profile)
    if missing:
        raise Conflict(
            f"{tenant.slug} has no complete billing profile: missing {', '.join(missing)}; "
            f"complete it on the tenant's Invoices page (/tenants/{tenant.slug}/billing-profile) before finalizing",
            code="billing_profile_incomplete",
        )
    issuer = await finance.issuer_for(session, tenant, profile)
    issued = local_date(now, tenant.timezone)
    series = f"{issuer.invoice_prefix}-{issued.year}"
    number = await next_number(session, series)  # the issuer's series lock (see numbering.py)
    _apply_terms_and_tax(
        invoice,
        issuer,
        profile,
        contract.terms,
        issued,
        await tax_lines(session, issuer, profile, invoice.net_total_minor, invoice.currency, issued),
    )
    invoice.number, invoice.status, invoice.finalized_at = formatted(series, number), "finalized", now
    invoice.payment_status, invoice.payment_status_at = "open", now  # billing/invoices/payments.py
    if provider != "none":
        invoice.provider = provider
        await enqueue(
            session,
            kind=SEND_INVOICE,
            payload={"invoice_id": str(invoice.id), "provider": provider},
            idempotency_key=f"invoice:{invoice.id}:send:{provider}",
            now=now,
        )
    await session.flush()
    await queue_invoice_mail(session, invoice, tenant, profile, now=now)
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="invoice.finalized", target=f"invoice:{invoice.id}",
        data={"number": invoice.number, "period": invoice.period, "total_minor": invoice.total_minor}, now=now,
    )  # fmt: skip
    await invoice_finalized(session, invoice, tenant, now)  # the event for merchant webhooks
    return invoice


def _apply_terms_and_tax(
    invoice: Invoice, issuer: Issuer, profile: BillingProfile, terms: dict[str, Any], issued: date, lines
) -> None:
    cur = invoice.currency
    days = terms.get("payment_terms_days")
    invoice.payment_terms_days = DEFAULT_PAYMENT_TERMS_DAYS if days is None else int(days)
    invoice.issue_date, invoice.due_date = issued, issued + timedelta(days=invoice.payment_terms_days)
    invoice.tax_lines = [line.as_json(cur) for line in lines]
    invoice.tax_total_minor = sum(line.amount_minor for line in lines)
    invoice.total_minor = invoice.net_total_minor + invoice.tax_total_minor
    invoice.issuer_code, invoice.issuer = issuer.code, finance.issuer_json(issuer)
    invoice.bill_to = {k: v for k, v in (finance.profile_json(profile, "") or {}).items()
                       if k not in ("tenant", "missing", "updated_at", "issuer")}  # fmt: skip


def _reason(data: Any) -> str:
    reason = (data or {}).get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput([FieldError("reason", "say why, in a few words")])
    return reason.strip()[:500]


async def void_invoice(session: AsyncSession, actor: Actor, invoice_id: uuid.UUID | str, data: Any, *, now: datetime):
    """Void a draft that must not be billed; a finalized invoice never changes (issue a credit note)."""
    reason = _reason(data)
    invoice = await get_invoice(session, actor, invoice_id, lock=True)
    if invoice.status != OPEN:
        raise Conflict(
            f"invoice {invoice.number or invoice.id} is {invoice.status}; only drafts can be voided "
            "(a finalized invoice never changes: issue a credit note)",
            code=f"invoice_{invoice.status}",
        )
    tenant = await tenant_of(session, invoice)
    invoice.status, invoice.voided_at, invoice.void_reason = "void", now, reason
    await session.flush()
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="invoice.voided", target=f"invoice:{invoice.id}",
        data={"period": invoice.period, "reason": reason}, now=now,
    )  # fmt: skip
    return invoice


def _credit_note_input(data: Any, cur: str) -> tuple[Decimal, str]:
    """``(amount, reason)`` of a credit note; every bad field is named at once."""
    errors = FieldCollector()
    try:
        reason = _reason(data)
    except InvalidInput as exc:
        errors.errors.extend(exc.errors)
        reason = ""
    raw = (data or {}).get("amount", "") if isinstance(data, dict) else ""
    try:
        amount = to_decimal(str(raw).strip())
    except (TypeError, ValueError):
        errors.add("amount", 'a decimal string such as "120.00"')
        amount = Decimal(0)
    else:
        if amount <= 0 or round_minor(amount, cur) != amount:
            errors.add("amount", f"a positive amount in whole {cur} minor units")
    errors.raise_if_any()
    return amount, reason


async def issue_credit_note(
    session: AsyncSession, actor: Actor, invoice_id: uuid.UUID | str, data: Any, *, now: datetime
) -> CreditNote:
    """A numbered credit note (the series of the invoice's issuer) against a finalized (or paid)
    invoice, up to what is left of its total; it carries the invoice's tax in proportion."""
    await _take_write_lock(session)
    invoice = await get_invoice(session, actor, invoice_id, lock=True)
    if invoice.status not in BILLED:
        raise Conflict(f"credit notes are issued against finalized invoices; this one is {invoice.status}",
                       code=f"invoice_{invoice.status}")  # fmt: skip
    cur = invoice.currency
    amount, reason = _credit_note_input(data, cur)
    credited = sum(n.amount_minor for n in await credit_notes_of(session, invoice))
    minor = to_minor_units(round_minor(amount, cur), cur)
    if credited + minor > invoice.total_minor:
        left = from_minor_units(invoice.total_minor - credited, cur)
        raise Conflict(f"only {money_str(left, cur)} {cur} of this invoice is left to credit", code="over_credit")
    tenant = await tenant_of(session, invoice)
    issuer = await session.get(Issuer, invoice.issuer_code) if invoice.issuer_code else None
    if issuer is None:  # invoices from before issuers: the default issuer's series
        issuer = await session.scalar(sa.select(Issuer).where(Issuer.is_default.is_(True)))
    prefix = issuer.credit_note_prefix if issuer is not None else "CN"
    series = f"{prefix}-{local_date(now, tenant.timezone).year}"
    number = await next_number(session, series)
    taxes = proportional(invoice.tax_lines or [], invoice.total_minor, minor, cur)
    note = CreditNote(
        invoice_id=invoice.id, tenant_id=invoice.tenant_id, number=formatted(series, number), currency=cur,
        amount_minor=minor, reason=reason, created_at=now, created_by=actor.actor, tax_lines=taxes,
        tax_minor=sum(to_minor_units(Decimal(t["amount"]), cur) for t in taxes),
        issuer_code=issuer.code if issuer is not None else None,
    )  # fmt: skip
    session.add(note)
    await enqueue_credit_note(session, note, invoice, now=now)  # flushed; to the provider: a refund, or less due
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="credit_note.issued", target=f"invoice:{invoice.id}",
        data={"number": note.number, "amount": money_str(Decimal(amount), cur), "reason": reason}, now=now,
    )  # fmt: skip
    await credit_note_issued(session, note, invoice, tenant, now)
    return note
