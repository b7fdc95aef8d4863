"""Invoice pages (thin): a tenant's invoices with the "draft a period" form, the drafts awaiting
finalization, the invoice page with its finalize and void confirmation steps and its credit-note
form, and each credit note's page and PDF.

The pages live outside ``/api/`` so that their forms (and the header's sign-out) carry a CSRF token.
Account managers (``platform_admin``, ``account_manager``) act; merchants read their own tenant's
invoices and credit notes (another tenant's answer 404). Each form posts urlencoded to the same
service as the JSON API; bad input re-renders the page with every error beside its field and the
typed values kept (422, or 409 for a conflict with the invoice's state), success redirects to the
invoice page with a flash message (post-redirect-get).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import payments, service
from billing.invoices.controllers import READ, now_of, payment_filter, settle_invoice_tenant
from billing.invoices.estimate import running_estimate
from billing.invoices.i18n import DEFAULT, LANGUAGE_NAMES, Document, document_language, document_locale
from billing.invoices.models import Invoice
from billing.invoices.pdf import bill_to_lines, issuer_lines, render_credit_note_pdf
from billing.invoices.schemas import credit_note_json, draft_differences, invoice_json
from billing.metering.controllers import settle_before_read
from billing.money import format_money
from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Principal, policy
from control_plane.downloads import inline
from control_plane.errors import Conflict, DomainError, InvalidInput, NotFound
from control_plane.navigation import notify
from control_plane.settings import Settings
from tenants.periods import Period
from tenants.service import find_tenant

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
ACT = policy(roles=ONBOARDING)
OUTDATED = (
    "The draft of {period} is out of date: usage or the contract changed since it was drafted. "
    "Re-draft it, review what changed, then finalize it."
)


@cache
def _source(name: str) -> str:
    # Read from this package's templates/ (the app's template dirs are one per top-level domain).
    return (TEMPLATES / name).read_text()


def _page(name: str, principal: Principal, *, status_code: int = 200, **context: Any) -> Template:
    context = {"principal": principal, "errors": {}, "values": {}, "can_act": principal.role in ONBOARDING} | context
    # The media type is said outright: a handler annotated ``Response`` would otherwise serve JSON.
    return Template(template_str=_source(name), status_code=status_code, context=context, media_type=MediaType.HTML)


def _fmt(currency: str) -> Callable[[str], str]:
    """The template's money formatter: ``"4998.68"`` -> ``"€4,998.68"``."""
    return lambda amount: format_money(Decimal(amount), currency)


def _sentence(message: str) -> str:
    text = message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _errors(exc: DomainError, field: str) -> dict[str, str]:
    """Every error of ``exc`` by field; a conflict is shown beside ``field``."""
    if isinstance(exc, InvalidInput):
        return {e.field: _sentence(e.message) for e in exc.errors}
    return {field: _sentence(exc.message)}


def _local_day(moment, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat() if moment else ""


# --- a tenant's invoices, and drafting a period --------------------------------------------------
async def _invoices_page(
    session: AsyncSession,
    principal: Principal,
    state: State,
    slug: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    payment: str | None = None,
) -> Template:
    tenant = await find_tenant(session, principal, slug)
    notes = await service.tenant_credit_notes(session, principal, slug)
    by_invoice = defaultdict(list)
    for note, invoice in sorted(notes, key=lambda pair: pair[0].created_at):
        by_invoice[invoice.id].append(note)
    invoices = await service.list_invoices(session, principal, slug=slug, payment_status=payment)
    rows = [invoice_json(inv, s, by_invoice[inv.id]) for inv, s in invoices]
    credit_notes = [
        credit_note_json(note) | {"invoice_number": invoice.number, "period": invoice.period,
                                  "issued": _local_day(note.created_at, invoice.timezone)}
        for note, invoice in notes
    ]  # fmt: skip
    last_month = Period.at(now_of(state), tenant.timezone).previous().label
    try:
        estimate = await running_estimate(session, principal, slug, now=now_of(state))
    except Conflict:  # no contract in force for the running month: no card
        estimate = None
    return _page(
        "invoice_list.html",
        principal,
        status_code=status_code,
        tenant=tenant,
        invoices=rows,
        payment=payment,
        payment_states=payments.STATES,
        credit_notes=credit_notes,
        estimate=estimate,
        fmt=lambda amount, currency: format_money(Decimal(amount), currency),
        errors=errors or {},
        values=values or {"period": last_month},
    )


@get(
    "/tenants/{slug:str}/invoices",
    opt=policy(roles=EVERYONE),
    include_in_schema=False,
    before_request=settle_before_read,  # the estimate card reads the running month's rollups
)
async def invoices_page(
    session: AsyncSession, principal: Principal, state: State, slug: str, payment: str | None = None
) -> Template:
    """``?payment=overdue`` (or another payment state) shows only the invoices in that state."""
    return await _invoices_page(session, principal, state, slug, payment=payment_filter(payment))


@post("/tenants/{slug:str}/invoices", opt=ACT, include_in_schema=False, before_request=settle_before_read)
async def draft_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    state: State,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    """Draft, or re-draft, a period: the service behind ``POST /api/v1/tenants/{slug}/invoices``."""
    period = (data.get("period") or "").strip()
    try:
        invoice, changed = await service.draft_invoice(session, principal, slug, period, now=now_of(state))
    except DomainError as exc:
        await session.rollback()
        if isinstance(exc, NotFound):
            raise
        values = {"period": data.get("period", "")}
        return await _invoices_page(
            session, principal, state, slug, errors=_errors(exc, "period"), values=values, status_code=exc.status_code
        )
    total = _fmt(invoice.currency)(invoice_json(invoice, slug)["total"])
    if not changed:
        notify(request, f"The draft of {invoice.period} is unchanged: nothing new since it was drafted")
    elif invoice.drafts > 1:
        notify(request, f"The draft of {invoice.period} was re-drafted: total {total}")
    else:
        notify(request, f"Invoice of {invoice.period} drafted: total {total}")
    await session.commit()
    return Redirect(f"/invoices/{invoice.id}")


@get("/billing/drafts", opt=policy(roles=STAFF), include_in_schema=False)
async def drafts_page(session: AsyncSession, principal: Principal, payment: str | None = None) -> Template:
    """Drafts awaiting finalization, each with what changed since its previous draft; ``?payment=overdue``
    (or another payment state) lists every tenant's finalized invoices in that state instead."""
    if state := payment_filter(payment):
        rows = [
            invoice_json(inv, s) for inv, s in await service.list_invoices(session, principal, payment_status=state)
        ]
        for row in rows:
            row["total_text"] = _fmt(row["currency"])(row["total"])
        return _page("invoice_drafts.html", principal, drafts=[], payment=state, invoices=rows,
                     payment_states=payments.STATES)  # fmt: skip
    drafts = []
    for inv, slug in await service.list_invoices(session, principal, status=service.OPEN):
        body = invoice_json(inv, slug)
        body["total_text"] = _fmt(inv.currency)(body["total"])
        drafts.append({"invoice": body, "drafts": inv.drafts, "differences": draft_differences(inv)})
    return _page("invoice_drafts.html", principal, drafts=drafts, payment=None, payment_states=payments.STATES)


# --- the invoice page, its confirmation steps and its credit-note form ---------------------------
def _document_context(lang: str, currency: str) -> dict[str, Any]:
    """The document's language for the invoice and credit-note templates: labels (``_``), formats
    (``doc``, ``fmt``), the language links and the ``?lang=`` that keeps the language on the PDF links."""
    doc = Document(lang)
    return {
        "doc": doc,
        "_": doc._,
        "fmt": lambda amount: doc.money(amount, currency),
        "languages": LANGUAGE_NAMES,
        "lang_query": "" if lang == DEFAULT else f"?lang={lang}",
    }


async def _invoice_context(session: AsyncSession, invoice: Invoice, lang: str = DEFAULT) -> dict[str, Any]:
    tenant = await service.tenant_of(session, invoice)
    notes = await service.credit_notes_of(session, invoice)
    body = invoice_json(invoice, tenant.slug, notes)
    for shown, note in zip(body["credit_notes"], notes, strict=True):
        shown["issued"] = _local_day(note.created_at, invoice.timezone)
    document = _document_context(lang, invoice.currency)
    steps = [{"step": st.step, "done": _local_day(st.done_at, invoice.timezone), "detail": st.detail or {}}
             for st in await payments.steps_of(session, invoice.id)]  # fmt: skip
    return {
        "invoice": body,
        "tenant": tenant,
        "dunning_steps": steps,
        "suspension_overridden": any(st["step"] == "suspend" and st["detail"].get("overridden_by") for st in steps),
        "issued": _local_day(invoice.finalized_at, invoice.timezone),
        "issuer_lines": issuer_lines(body["issuer"], document["doc"]),
        "bill_to_lines": bill_to_lines(
            body["bill_to"], {"name": tenant.name, "slug": tenant.slug}, invoice.currency, document["doc"]
        ),
    } | document


async def _invoice_page(
    session: AsyncSession,
    principal: Principal,
    invoice_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    lang: str | None = None,
) -> Template:
    """``lang``: as asked (``?lang=``), else the billing profile's locale (``i18n.document_language``)."""
    document_locale(lang)  # a bad ?lang= is 422 before anything is read
    invoice = await service.get_invoice(session, principal, invoice_id)
    context = await _invoice_context(session, invoice, await document_language(session, invoice.tenant_id, lang))
    return _page(
        "invoice.html", principal, status_code=status_code, errors=errors or {}, values=values or {}, **context
    )


@get("/invoices/{invoice_id:str}", opt=READ, include_in_schema=False)
async def invoice_page(
    session: AsyncSession, principal: Principal, invoice_id: str, lang: str | None = None
) -> Template:
    """Status, number, issue date, period, lines, totals, credit notes and the balance after them, in the
    document language ``?lang=`` (en, de, fr, ja, zh; 422 for any other)."""
    return await _invoice_page(session, principal, invoice_id, lang=lang)


async def _confirm_page(
    session: AsyncSession,
    principal: Principal,
    invoice_id: str,
    action: str,
    *,
    conflict: Conflict | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    invoice = await service.get_invoice(session, principal, invoice_id)
    context = await _invoice_context(session, invoice)
    problem = None
    if conflict is not None:
        outdated = conflict.code == "draft_outdated"
        problem = OUTDATED.format(period=invoice.period) if outdated else _sentence(conflict.message)
    elif invoice.status != service.OPEN:
        status_code = 409
        problem = f"This invoice is {invoice.status}, not a draft: a finalized invoice never changes."
    return _page(
        "invoice_confirm.html",
        principal,
        status_code=status_code,
        action=action,
        problem=problem,
        outdated=conflict is not None and conflict.code == "draft_outdated",
        errors=errors or {},
        values=values or {},
        **context,
    )


@get("/invoices/{invoice_id:str}/finalize", opt=ACT, include_in_schema=False)
async def finalize_confirm(session: AsyncSession, principal: Principal, invoice_id: str) -> Template:
    return await _confirm_page(session, principal, invoice_id, "finalize")


@post("/invoices/{invoice_id:str}/finalize", opt=ACT, include_in_schema=False, before_request=settle_invoice_tenant)
async def finalize_form(
    request: Request, session: AsyncSession, principal: Principal, state: State, settings: Settings, invoice_id: str
) -> Template | Redirect:
    try:
        invoice = await service.finalize_invoice(
            session, principal, invoice_id, now=now_of(state), provider=settings.payment_provider
        )
    except Conflict as exc:
        await session.rollback()
        return await _confirm_page(session, principal, invoice_id, "finalize", conflict=exc, status_code=409)
    await session.commit()
    notify(request, f"Invoice {invoice.number} finalized")
    return Redirect(f"/invoices/{invoice.id}")


@get("/invoices/{invoice_id:str}/void", opt=ACT, include_in_schema=False)
async def void_confirm(session: AsyncSession, principal: Principal, invoice_id: str) -> Template:
    return await _confirm_page(session, principal, invoice_id, "void")


@post("/invoices/{invoice_id:str}/void", opt=ACT, include_in_schema=False)
async def void_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    state: State,
    invoice_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    try:
        invoice = await service.void_invoice(session, principal, invoice_id, dict(data), now=now_of(state))
    except (InvalidInput, Conflict) as exc:
        await session.rollback()
        conflict = exc if isinstance(exc, Conflict) else None
        errors = _errors(exc, "reason") if conflict is None else {}
        return await _confirm_page(session, principal, invoice_id, "void", conflict=conflict, errors=errors,
                                   values={"reason": data.get("reason", "")}, status_code=exc.status_code)  # fmt: skip
    await session.commit()
    notify(request, f"The draft of {invoice.period} was voided: it will not be billed")
    return Redirect(f"/invoices/{invoice.id}")


@post("/invoices/{invoice_id:str}/credit-notes", opt=ACT, include_in_schema=False)
async def credit_note_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    state: State,
    invoice_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    """Issue a credit note (``amount``, ``reason``): the service behind ``POST /api/v1/invoices/{id}/credit-notes``."""
    values = {"amount": data.get("amount", ""), "reason": data.get("reason", "")}
    try:
        note = await service.issue_credit_note(session, principal, invoice_id, values, now=now_of(state))
    except (InvalidInput, Conflict) as exc:
        await session.rollback()
        field = "amount" if getattr(exc, "code", "") == "over_credit" else "_form"
        return await _invoice_page(
            session, principal, invoice_id, errors=_errors(exc, field), values=values, status_code=exc.status_code
        )
    await session.commit()
    notify(request, f"Credit note {note.number} issued: {_fmt(note.currency)(credit_note_json(note)['amount'])}")
    return Redirect(f"/invoices/{note.invoice_id}")


# --- credit notes ----------------------------------------------------------------------------------
@get("/credit-notes/{ref:str}", opt=READ, include_in_schema=False)
async def credit_note_page(session: AsyncSession, principal: Principal, ref: str, lang: str | None = None) -> Response:
    """A credit note's page; ``{id}.pdf`` is its PDF; both in the document language ``?lang=``."""
    note_id, _, suffix = ref.partition(".")
    if suffix not in ("", "pdf"):
        raise NotFound(f"no credit note {ref!r}")
    document_locale(lang)  # a bad ?lang= is 422 before anything is read
    note = await service.get_credit_note(session, principal, note_id)
    invoice = await service.get_invoice(session, principal, note.invoice_id)
    language = await document_language(session, invoice.tenant_id, lang)
    context = await _invoice_context(session, invoice, language)
    body = credit_note_json(note) | {"issued": _local_day(note.created_at, invoice.timezone)}
    if suffix == "pdf":
        tenant = context["tenant"]
        merchant = {"name": tenant.name, "slug": tenant.slug}
        pdf = render_credit_note_pdf(body, context["invoice"], merchant, locale=language)
        return Response(
            pdf, media_type="application/pdf", headers={"Content-Disposition": inline(f"{note.number}.pdf")}
        )
    return _page("credit_note.html", principal, note=body, **context)


PAGE_ROUTES = [
    invoices_page,
    draft_form,
    drafts_page,
    invoice_page,
    finalize_confirm,
    finalize_form,
    void_confirm,
    void_form,
    credit_note_form,
    credit_note_page,
]
