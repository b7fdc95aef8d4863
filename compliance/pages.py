"""Compliance pages (thin): the overview, audit search across streams and a tenant's Audit tab.

Audit search reads the same filters on both pages: tenant (stream), actor, action, and a time range
whose ends may be a date (``2026-11-01``, as ``<input type=date>`` sends it), a date and time without
an offset (``2026-11-01T09:30``, as ``datetime-local`` sends it; both read as UTC) or RFC 3339. Results
are paged, newest first, and the page says which rows it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import get
from litestar.params import QueryParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from compliance import service, transfers
from compliance.controllers import AUDITORS, entry_out
from compliance.dsr import service as dsr_service
from compliance.dsr.schemas import request_out
from compliance.service import rfc3339
from control_plane.auth import STAFF, Principal, Role, policy
from control_plane.database import utcnow
from control_plane.errors import FieldCollector, InvalidInput
from control_plane.settings import Settings
from tenants.periods import parse_time
from tenants.service import find_tenant, list_integrations, list_tenants, residency_view

PAGES = policy(roles=AUDITORS)
TENANT_PAGES = policy(roles=(*STAFF, Role.merchant_admin))
PAGE_SIZE = 200
FromParam = Annotated[str | None, QueryParameter(name="from")]
ToParam = Annotated[str | None, QueryParameter(name="to")]


def parse_when(value: str | None, name: str, errors: FieldCollector, *, end: bool = False) -> datetime | None:
    """A time-range end from a query (`parse_time`: a date, a date and time read as UTC, or RFC 3339, in
    the one time range; as ``end`` a date means its next midnight, so that the day is included); ``None``
    when blank or refused (the reason is added to ``errors``)."""
    try:
        return parse_time(value, name, end=end)
    except InvalidInput as exc:
        errors.errors.extend(exc.errors)
        return None


def _local(when: datetime | None) -> str:
    """The value a ``datetime-local`` input shows (UTC, to the second)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if when else ""


@dataclass
class AuditSearch:
    stream: str | None
    actor: str
    action: str
    start: str
    end: str
    page: int


async def audit_context(session: AsyncSession, path: str, q: AuditSearch) -> dict[str, Any]:
    """Entries of one page of the search, which rows they are, and the links around them."""
    errors = FieldCollector()
    when_from = parse_when(q.start, "from", errors)
    when_to = parse_when(q.end, "to", errors, end=True)
    filters = {"stream": q.stream or None, "actor": q.actor or None, "action": q.action or None}
    entries, total, page = [], 0, max(q.page, 1)
    if not errors:
        total = await service.count_entries(session, start=when_from, end=when_to, **filters)
        pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        page = min(page, pages)
        entries = await service.search_entries(
            session, start=when_from, end=when_to, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
        )
    query = {"tenant": q.stream if path == "/compliance/audit" else "", "actor": q.actor, "action": q.action}
    query |= {"from": q.start, "to": q.end}
    query = {k: v for k, v in query.items() if v}

    def link(n: int) -> str:
        return f"{path}?{urlencode(query | {'page': n})}"

    first = (page - 1) * PAGE_SIZE + 1
    export = None
    if q.stream and not errors:
        export = {"stream": q.stream}
        export |= {"from": rfc3339(when_from)} if when_from else {}
        export |= {"to": rfc3339(when_to)} if when_to else {}
    return {
        "entries": [entry_out(e) for e in entries],
        "errors": {e.field: e.message for e in errors.errors},
        "values": {
            "tenant": q.stream or "",
            "actor": q.actor,
            "action": q.action,
            "from": _local(when_from) if when_from else q.start,
            "to": _local(when_to) if when_to else q.end,
        },
        "pager": {
            "total": total,
            "first": first if entries else 0,
            "last": first + len(entries) - 1 if entries else 0,
            "page": page,
            "prev": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if page * PAGE_SIZE < total else None,
        },
        "export": urlencode(export) if export else None,
    }


@get("/compliance", opt=PAGES, include_in_schema=False)
async def compliance_page(session: AsyncSession, principal: Principal, settings: Settings) -> Template:
    """Every tenant's regions, regimes, processors, transfers (flagged without a valid mechanism) and
    retention; every subject request, linked to its page."""
    today = utcnow().date()
    rows = []
    for tenant in await list_tenants(session, principal):
        view = await residency_view(session, tenant, settings.regions)
        rows.append(
            {
                "tenant": tenant,
                "cells": {r: (settings.regions.get(r), m) for r, m in sorted(view.cells.items())},
                "integrations": list(await list_integrations(session, principal, tenant.slug)),
                "transfers": view.transfer_mechanisms,
                "flags": transfers.unsupported_transfers(view.cells, view.transfer_mechanisms, settings.regions, today),
            }
        )
    requests = [
        (t, request_out(r, dsr_service.tenant_today(t, utcnow()))) for t, r in await dsr_service.all_requests(session)
    ]
    return Template(
        "compliance_overview.html",
        context={
            "principal": principal,
            "tenants": rows,
            "requests": requests,
            "regions": settings.regions,
            "flagged": [(row["tenant"], f) for row in rows for f in row["flags"]],
        },
    )


@get("/compliance/audit", opt=PAGES, include_in_schema=False)
async def audit_search_page(
    session: AsyncSession,
    principal: Principal,
    tenant: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    start: FromParam = None,
    end: ToParam = None,
    page: int = 1,
) -> Template:
    """Search the audit log by tenant (stream), actor, action and time; export the stream shown."""
    search = AuditSearch(tenant or None, actor or "", action or "", start or "", end or "", page)
    context = await audit_context(session, "/compliance/audit", search)
    streams = ["platform", *(t.slug for t in await list_tenants(session, principal))]
    return Template(
        "compliance_audit.html",
        context={"principal": principal, "streams": streams, "can_export": True} | context,
        status_code=422 if context["errors"] else 200,
    )


@get("/tenants/{slug:str}/audit", opt=TENANT_PAGES, include_in_schema=False)
async def tenant_audit_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    actor: str | None = None,
    action: str | None = None,
    start: FromParam = None,
    end: ToParam = None,
    page: int = 1,
) -> Template:
    """A tenant's own audit stream, with the same search and paging; auditors may export it."""
    tenant = await find_tenant(session, principal, slug)
    search = AuditSearch(tenant.slug, actor or "", action or "", start or "", end or "", page)
    context = await audit_context(session, f"/tenants/{tenant.slug}/audit", search)
    return Template(
        "tenant_audit.html",
        context={"principal": principal, "tenant": tenant, "can_export": principal.role in AUDITORS} | context,
        status_code=422 if context["errors"] else 200,
    )


ROUTES = [compliance_page, audit_search_page, tenant_audit_page]
