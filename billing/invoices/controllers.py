"""Invoice routes (thin): draft, finalize, void, credit notes, JSON/HTML/PDF, CSV export, pages, provider webhooks."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices import service
from billing.invoices.pdf import render_invoice_pdf
from billing.invoices.schemas import draft_differences, invoice_json, lines_json
from billing.metering.controllers import settle_before_read
from billing.metering.service import settle_rollups
from billing.money import format_money, from_minor_units
from billing.providers import webhooks
from billing.providers.factory import build_provider
from billing.providers.port import ProviderConfig, WebhookRefused
from control_plane.auth import EVERYONE, ONBOARDING, STAFF, ApiScope, Principal, policy
from control_plane.database import utcnow
from control_plane.errors import NotFound, problem
from control_plane.settings import Settings
from tenants.models import Tenant
from tenants.service import find_tenant

TEMPLATES = Path(__file__).resolve().parent / "templates"
READ = policy(roles=EVERYONE, scopes=(ApiScope.invoices_read,))
WRITE = policy(roles=ONBOARDING)


@cache
def _page(name: str) -> str:
    # Read from this package's templates/ (the app's template dirs are one per top-level domain).
    return (TEMPLATES / name).read_text()


def _now(state: State) -> datetime:
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
    invoice, _ = await service.draft_invoice(session, principal, slug, period, now=_now(state))
    return await _json(session, invoice)


@get("/api/v1/tenants/{slug:str}/invoices", opt=READ, tags=["invoices"])
async def list_invoices(session: AsyncSession, principal: Principal, slug: str) -> list[dict[str, Any]]:
    return [invoice_json(inv, s) for inv, s in await service.list_invoices(session, principal, slug=slug)]


async def _settle_invoice_tenant(request: Request) -> None:
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
    before_request=_settle_invoice_tenant,
)
async def finalize_invoice(
    session: AsyncSession, principal: Principal, state: State, settings: Settings, invoice_id: str
) -> dict[str, Any]:
    invoice = await service.finalize_invoice(
        session, principal, invoice_id, now=_now(state), provider=settings.payment_provider
    )
    return await _json(session, invoice)


@post("/api/v1/invoices/{invoice_id:str}/void", opt=WRITE, status_code=200, tags=["invoices"])
async def void_invoice(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str
) -> dict[str, Any]:
    invoice = await service.void_invoice(session, principal, invoice_id, await _body(request), now=_now(state))
    return await _json(session, invoice)


@post("/api/v1/invoices/{invoice_id:str}/credit-notes", opt=WRITE, status_code=201, tags=["invoices"])
async def issue_credit_note(
    request: Request, session: AsyncSession, principal: Principal, state: State, invoice_id: str
) -> dict[str, Any]:
    await service.issue_credit_note(session, principal, invoice_id, await _body(request), now=_now(state))
    return await _json(session, await service.get_invoice(session, principal, invoice_id))


@get("/api/v1/invoices/{ref:str}", opt=READ, tags=["invoices"])
async def read_invoice(session: AsyncSession, principal: Principal, ref: str) -> Any:
    """The invoice as JSON; ``{id}.html`` and ``{id}.pdf`` beside it."""
    invoice_id, _, suffix = ref.partition(".")
    if suffix not in ("", "html", "pdf"):
        raise NotFound(f"no invoice {ref!r}")
    invoice = await service.get_invoice(session, principal, invoice_id)
    body = await _json(session, invoice)
    tenant = await session.get_one(Tenant, invoice.tenant_id)
    if suffix == "pdf":
        pdf = render_invoice_pdf(body, {"name": tenant.name, "slug": tenant.slug})
        name = f"{invoice.number or 'draft-' + invoice.period}.pdf"
        return Response(
            pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
        )
    if suffix == "html":
        return Template(
            template_str=_page("invoice.html"), context={"principal": principal, "tenant": tenant, **_view(body)}
        )
    return body


def _view(body: dict[str, Any]) -> dict[str, Any]:

    cur = body["currency"]

    def fmt(value: str) -> str:
        return format_money(Decimal(value), cur)

    return {"invoice": body, "fmt": fmt}


@get("/api/v1/invoices.csv", opt=READ, tags=["invoices"])
async def export_invoices(session: AsyncSession, principal: Principal, period: str) -> Response:
    """Every invoice of a period (a merchant sees its own) as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "tenant", "period", "status", "currency", "usage_subtotal", "credit_total", "total"])
    for inv, slug in await service.list_invoices(session, principal, period=period):
        body = lines_json(inv)
        writer.writerow([inv.number or "", slug, inv.period, inv.status, inv.currency,
                         body["usage_subtotal"], body["credit_total"], body["total"]])  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="invoices-{period}.csv"'},
    )


@post("/api/v1/payments/webhooks/{provider:str}", opt=policy(public=True), status_code=200, tags=["payments"])
async def provider_webhook(
    request: Request, session: AsyncSession, state: State, settings: Settings, provider: str
) -> Any:
    """Polar (Standard Webhooks) or Stripe (Stripe-Signature): verified, stored once by id, invoice marked paid."""
    if provider not in ("polar", "stripe"):
        raise NotFound(f"no payment provider {provider!r}")
    adapter = build_provider(provider, ProviderConfig.load(settings.extra))
    try:
        return await webhooks.receive(session, adapter, await request.body(), dict(request.headers), now=_now(state))
    except WebhookRefused as exc:
        return problem(
            401, {"status": 401, "code": "bad_signature", "detail": f"webhook refused: {exc}",
                  "request_id": request.scope.get("request_id")},
        )  # fmt: skip


# --- pages ------------------------------------------------------------------------------------
@get("/tenants/{slug:str}/invoices", opt=policy(roles=EVERYONE), include_in_schema=False)
async def invoices_page(session: AsyncSession, principal: Principal, slug: str) -> Template:

    tenant = await find_tenant(session, principal, slug)
    rows = [invoice_json(inv, s) for inv, s in await service.list_invoices(session, principal, slug=slug)]
    for row in rows:
        row["total_text"] = format_money(from_minor_units(0, row["currency"]) + _dec(row["total"]), row["currency"])
    return Template(
        template_str=_page("invoice_list.html"), context={"principal": principal, "tenant": tenant, "invoices": rows}
    )


def _dec(value: str):

    return Decimal(value)


@get("/billing/drafts", opt=policy(roles=STAFF), include_in_schema=False)
async def drafts_page(session: AsyncSession, principal: Principal) -> Template:
    """Drafts awaiting finalization, each with what changed since its previous draft."""
    drafts = []
    for inv, slug in await service.list_invoices(session, principal, status="draft"):
        body = invoice_json(inv, slug)
        body["total_text"] = format_money(_dec(body["total"]), body["currency"])
        drafts.append({"invoice": body, "drafts": inv.drafts, "differences": draft_differences(inv)})
    return Template(template_str=_page("invoice_drafts.html"), context={"principal": principal, "drafts": drafts})


ROUTES = [
    draft_invoice,
    list_invoices,
    finalize_invoice,
    void_invoice,
    issue_credit_note,
    read_invoice,
    export_invoices,
    provider_webhook,
    invoices_page,
    drafts_page,
]
