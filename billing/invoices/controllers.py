"""Invoice API routes (thin): draft, finalize, void, credit notes, JSON/PDF, CSV export, provider webhooks.

The pages (tenant invoices, drafts, the invoice and credit-note pages and their forms) are in
``billing.invoices.pages``; ``GET /api/v1/invoices/{id}.html`` sends a browser there.

``GET /api/v1/invoices.csv?period=YYYY-MM`` has one row per invoice. Its first eight columns are the
invoice as issued (``number``, ``tenant``, ``period``, ``status``, ``currency``, ``usage_subtotal``,
``credit_total`` — the SLA service credits on the invoice — and ``total``); credit notes issued
against an invoice never change those. Three columns follow: ``credit_notes`` (the numbers of its
credit notes, space-separated, oldest first), ``credited`` (their sum, a positive decimal string) and
``balance`` (``total`` less ``credited``: what is owed after the corrections). Credit notes are
columns rather than rows so that summing ``total`` still sums invoices, and each invoice's balance
sits on its own row; a credit note is listed with its invoice's period, whenever it was issued.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import service
from billing.invoices.i18n import document_language, document_locale
from billing.invoices.payments import STATES as PAYMENT_STATES
from billing.invoices.pdf import render_invoice_pdf
from billing.invoices.schemas import invoice_json
from billing.metering.controllers import settle_before_read
from billing.metering.service import settle_rollups
from billing.providers import webhooks
from billing.providers.factory import build_provider
from billing.providers.port import ProviderConfig, WebhookRefused
from control_plane.auth import EVERYONE, ONBOARDING, ApiScope, Principal, policy
from control_plane.database import utcnow
from control_plane.downloads import attachment, inline
from control_plane.errors import FieldError, InvalidInput, NotFound, problem
from control_plane.settings import Settings
from tenants.models import Tenant
from tenants.periods import Period

READ = policy(roles=EVERYONE, scopes=(ApiScope.invoices_read,))
WRITE = policy(roles=ONBOARDING)
CSV_COLUMNS = ["number", "tenant", "period", "status", "currency", "usage_subtotal", "credit_total", "total",
               "credit_notes", "credited", "balance"]  # fmt: skip


def now_of(state: State) -> datetime:
    """The app's clock (tests freeze it as ``state.clock``)."""
    clock = state.get("clock")
    return clock() if clock else utcnow()


async def _body(request: Request) -> Any:
    raw = await request.body()
    return (await request.json()) if raw else {}


async def _json(session: AsyncSession, invoice) -> dict[str, Any]:
    tenant = await session.get_one(Tenant, invoice.tenant_id)
    return invoice_json(invoice, tenant.slug, await service.credit_notes_of(session, invoice))


@post(
    "/api/v1/tenants/{slug:str}/invoices",
    opt=WRITE,
    status_code=200,
    tags=["invoices"],
    before_request=settle_before_read,
)
async def draft_invoice(
    session: AsyncSession, principal: Principal, state: State, slug: str, period: str | None = None
) -> dict[str, Any]:
    """Draft or re-draft a period (idempotent); 409 before the period has settled plus grace, or once finalized."""
    invoice, _ = await service.draft_invoice(session, principal, slug, period, now=now_of(state))
    return await _json(session, invoice)


@get("/api/v1/tenants/{slug:str}/invoices", opt=READ, tags=["invoices"])
async def list_invoices(
    session: AsyncSession, principal: Principal, slug: str, payment_status: str | None = None
) -> list[dict[str, Any]]:
    """``?payment_status=overdue`` (or open, paid, payment_failed, uncollectible) filters by payment state."""
    state = payment_filter(payment_status)
    found = await service.list_invoices(session, principal, slug=slug, payment_status=state)
    return [invoice_json(inv, s) for inv, s in found]


def payment_filter(value: str | None) -> str | None:
    """A ``payment_status`` filter: empty is none; an unknown state is 422 naming the field."""
    if not value:
        return None
    if value not in PAYMENT_STATES:
        raise InvalidInput([FieldError("payment_status", f"one of {', '.join(PAYMENT_STATES)}")])
    return value


async def settle_invoice_tenant(request: Request) -> None:
    """Before finalizing: the invoice's tenant's pending rollup deltas are applied (see
    ``settle_before_read``), so `service.finalize_invoice` can tell whether the draft is outdated."""
    tenant_id = await service.invoice_tenant_id(request.app.state.db, request.path_params["invoice_id"])
    if tenant_id is not None:
        await settle_rollups(request.app.state.db, tenant_id=tenant_id)


@post(
    "/api/v1/invoices/{invoice_id:str}/finalize",
    opt=WRITE,
    status_code=200,
    tags=["invoices"],
    before_request=settle_invoice_tenant,
)
async def finalize_invoice(
    session: AsyncSession, principal: Principal, state: State, settings: Settings, invoice_id: str
) -> dict[str, Any]:
    invoice = await service.finalize_invoice(
        session, principal, invoice_id, now=now_of(state), provider=settings.payment_provider
    )
    return await _json(session, invoice)


@post("/api/v1/invoices/{invoice_id:str}/void", opt=WRITE, status_code=200, tags=["invoices"])
async def void_invoice(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str
) -> dict[str, Any]:
    invoice = await service.void_invoice(session, principal, invoice_id, await _body(request), now=now_of(state))
    return await _json(session, invoice)


@post("/api/v1/invoices/{invoice_id:str}/credit-notes", opt=WRITE, status_code=201, tags=["invoices"])
async def issue_credit_note(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str
) -> dict[str, Any]:
    await service.issue_credit_note(session, principal, invoice_id, await _body(request), now=now_of(state))
    return await _json(session, await service.get_invoice(session, principal, invoice_id))


@get("/api/v1/invoices/{ref:str}", opt=READ, tags=["invoices"])
async def read_invoice(session: AsyncSession, principal: Principal, ref: str, lang: str | None = None) -> Response:
    """The invoice as JSON; ``{id}.pdf`` beside it, and ``{id}.html`` sends a browser to its page.

    ``lang`` is the document language of the PDF and the page (en, de, fr, ja, zh; 422 for any other);
    the JSON is the same in every language."""
    invoice_id, _, suffix = ref.partition(".")
    if suffix not in ("", "html", "pdf"):
        raise NotFound(f"no invoice {ref!r}")
    document_locale(lang)  # a bad ?lang= is 422 before anything is read
    invoice = await service.get_invoice(session, principal, invoice_id)
    language = await document_language(session, invoice.tenant_id, lang)
    if suffix == "html":
        # The page lives outside /api/ so that its forms (and the header's sign-out) carry a CSRF token.
        query = f"?lang={document_locale(lang)}" if lang else ""
        return Redirect(f"/invoices/{invoice.id}{query}", status_code=303, media_type=MediaType.HTML)
    body = await _json(session, invoice)
    if suffix == "pdf":
        tenant = await session.get_one(Tenant, invoice.tenant_id)
        pdf = render_invoice_pdf(body, {"name": tenant.name, "slug": tenant.slug}, locale=language)
        name = f"{invoice.number or 'draft-' + invoice.period}.pdf"
        return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": inline(name)})
    return Response(body, media_type=MediaType.JSON)


@get("/api/v1/invoices.csv", opt=READ, tags=["invoices"])
async def export_invoices(session: AsyncSession, principal: Principal, state: State, period: str) -> Response:
    """Every invoice of a period (a merchant sees its own) as CSV: one row per invoice (see the module docstring)."""
    month = Period.parse(period, today=now_of(state).date())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for inv, slug in await service.list_invoices(session, principal, period=month.label):
        body = invoice_json(inv, slug, await service.credit_notes_of(session, inv))
        notes = " ".join(n["number"] for n in body["credit_notes"])
        writer.writerow([inv.number or "", slug, inv.period, inv.status, inv.currency, body["usage_subtotal"],
                         body["credit_total"], body["total"], notes, body["credited"], body["balance"]])  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types
        headers={"Content-Disposition": attachment(f"invoices-{month}.csv")},
    )


@post(
    "/api/v1/payments/webhooks/{provider:str}",
    opt=policy(public=True, raw_body=True),
    status_code=200,
    tags=["payments"],
)
async def provider_webhook(
    request: Request, session: AsyncSession, state: State, settings: Settings, provider: str
) -> Any:
    """Polar (Standard Webhooks) or Stripe (Stripe-Signature): verified, stored once by id, invoice marked paid."""
    if provider not in ("polar", "stripe"):
        raise NotFound(f"no payment provider {provider!r}")
    adapter = build_provider(provider, ProviderConfig.load(settings.extra))
    try:
        return await webhooks.receive(session, adapter, await request.body(), dict(request.headers), now=now_of(state))
    except WebhookRefused as exc:
        return problem(
            401, {"status": 401, "code": "bad_signature", "detail": f"webhook refused: {exc}",
                  "request_id": request.scope.get("request_id")},
        )  # fmt: skip


ROUTES = [
    draft_invoice,
    list_invoices,
    finalize_invoice,
    void_invoice,
    issue_credit_note,
    read_invoice,
    export_invoices,
    provider_webhook,
]
