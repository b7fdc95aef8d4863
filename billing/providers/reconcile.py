"""Reconcile local invoices and credit notes with the providers' records (``bpoctl payments reconcile``).

Each provider that is configured (or that a local record names) is read in full through its SDK;
every difference is listed: a record on one side only, an amount or a status that differs, a credit
note still waiting in the outbox. A note left ``awaiting_payment`` (Polar, issued on an open
invoice) is expected to have nothing at the provider yet. With ``period`` only that month's local
records are compared; provider records that belong to another month's local records are left out,
and provider records that no local record knows are always listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from billing.invoices.models import CreditNote, Invoice
from billing.money import from_minor_units, money_str
from billing.providers.factory import build_provider
from billing.providers.port import ProviderConfig, ProviderRecords

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
EXPECTED = {"paid": "paid", "void": "void", "uncollectible": "uncollectible"}  # any other billed status is open


@dataclass(frozen=True, slots=True)
class Difference:
    provider: str
    kind: str  # invoice | credit_note
    ref: str  # the local number, or the provider's id when there is no local record
    problem: str

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.ref}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Local:
    invoices: list[Invoice]
    notes: list[tuple[CreditNote, Invoice]]
    all_invoice_ids: set[str]
    all_note_ids: set[str]


def _money(minor: int, currency: str) -> str:
    return f"{money_str(from_minor_units(minor, currency), currency)} {currency}"


async def load_local(session, provider: str, period: str | None) -> Local:
    invoices = sa.select(Invoice).where(Invoice.provider == provider).order_by(Invoice.period, Invoice.number)
    notes = (
        sa.select(CreditNote, Invoice)
        .join(Invoice, Invoice.id == CreditNote.invoice_id)
        .where(CreditNote.provider == provider)
        .order_by(CreditNote.number)
    )
    if period:
        invoices, notes = invoices.where(Invoice.period == period), notes.where(Invoice.period == period)
    all_invoices = await session.scalars(sa.select(Invoice.id).where(Invoice.provider == provider))
    all_notes = await session.scalars(sa.select(CreditNote.id).where(CreditNote.provider == provider))
    return Local(
        list((await session.scalars(invoices)).all()),
        [(n, i) for n, i in (await session.execute(notes)).all()],
        {str(i) for i in all_invoices},
        {str(n) for n in all_notes},
    )


def compare(provider: str, local: Local, remote: ProviderRecords) -> list[Difference]:
    out: list[Difference] = []

    def add(kind: str, ref: str, problem: str) -> None:
        out.append(Difference(provider, kind, ref, problem))

    by_pid = {r.provider_id: r for r in remote.invoices}
    by_ours = {r.invoice_id: r for r in remote.invoices if r.invoice_id}
    for invoice in local.invoices:
        ref, cur = invoice.number or str(invoice.id), invoice.currency
        if invoice.provider_invoice_id is None and invoice.total_minor <= 0:
            continue  # nothing to collect: never sent
        found = by_pid.get(invoice.provider_invoice_id or "") or by_ours.get(str(invoice.id))
        if found is None:
            pending = " (not sent yet: the outbox still holds it)" if invoice.provider_invoice_id is None else ""
            add("invoice", ref, f"missing at {provider}{pending}")
            continue
        if found.amount_minor != invoice.total_minor:
            there = _money(found.amount_minor, cur)
            add("invoice", ref, f"amount: local {_money(invoice.total_minor, cur)}, {provider} {there}")
        if found.status != EXPECTED.get(invoice.status, "open"):
            add("invoice", ref, f"status: local {invoice.status}, {provider} {found.status}")
    for r in remote.invoices:
        if r.invoice_id not in local.all_invoice_ids:
            add("invoice", r.provider_id, f"missing locally ({r.amount_minor} minor units, {r.status}, "
                f"invoice_id {r.invoice_id or 'none'})")  # fmt: skip
    credits = {c.credit_note_id: c for c in remote.credits if c.credit_note_id}
    for note, _invoice in local.notes:
        found, cur = credits.get(str(note.id)), note.currency
        if note.provider_status == "pending":
            add("credit_note", note.number, f"not at {provider} yet (its {note.provider_action} waits in the outbox)")
            continue
        if found is None:
            if note.provider_status != "awaiting_payment":
                add("credit_note", note.number, f"missing at {provider}")
            continue
        if found.amount_minor != note.amount_minor:
            there = _money(found.amount_minor, cur)
            add("credit_note", note.number, f"amount: local {_money(note.amount_minor, cur)}, {provider} {there}")
        if (note.provider_status == "refunded") != found.refunded:
            there = "refunded" if found.refunded else "not refunded"
            add("credit_note", note.number, f"status: local {note.provider_status}, {provider} {there}")
    for c in remote.credits:
        if c.credit_note_id not in local.all_note_ids:
            add("credit_note", c.provider_id, f"missing locally ({c.amount_minor} minor units, "
                f"credit_note_id {c.credit_note_id or 'none'})")  # fmt: skip
    return out


def providers_of(config: ProviderConfig) -> set[str]:
    return {name for name, on in (("polar", config.polar_token), ("stripe", config.stripe_api_key)) if on}


async def reconcile(db, config: ProviderConfig, *, period: str | None = None) -> list[Difference]:
    """Every difference between the local records and each provider's (configured or named locally)."""
    async with db.control_session() as session:
        named = set(await session.scalars(sa.select(Invoice.provider).where(Invoice.provider.is_not(None)).distinct()))
        names = sorted((providers_of(config) | named) - {"none"})
        locals_ = {name: await load_local(session, name, period) for name in names}
    out: list[Difference] = []
    for name in names:
        remote = await build_provider(name, config).records()
        out += compare(name, locals_[name], remote)
    return out
