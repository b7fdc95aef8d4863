"""Compliance routes: audit streams, signed export and keys, records of processing.

Data-subject request routes live in ``compliance.dsr.controllers`` and are listed in ``ROUTES`` here;
the pages are in ``compliance.pages`` and ``compliance.dsr.pages``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get
from litestar.params import QueryParameter
from litestar.response import Stream, Template
from sqlalchemy.ext.asyncio import AsyncSession

from compliance import checkpoints, export, records, service
from compliance.dsr import controllers as dsr
from compliance.models import AuditEntry
from control_plane.auth import EVERYONE, STAFF, Principal, Role, policy
from control_plane.downloads import attachment, inline
from control_plane.errors import FieldCollector, InvalidInput
from control_plane.keyring import KeyRing
from control_plane.settings import Settings
from tenants.periods import parse_time
from tenants.service import find_tenant

AUDITORS = (Role.platform_admin, Role.compliance_officer)


def entry_out(e: AuditEntry) -> dict[str, Any]:
    return service.entry_body(e) | {"hash": e.hash}


@get("/api/v1/tenants/{slug:str}/audit", opt=policy(roles=(*STAFF, Role.merchant_admin)), tags=["audit"])
async def tenant_audit(session: AsyncSession, principal: Principal, slug: str, limit: int = 200) -> list[dict]:
    """The tenant's audit stream, oldest first (the last ``limit`` entries)."""
    await find_tenant(session, principal, slug)
    entries = await service.list_entries(session, slug, limit=min(max(limit, 1), 1000))
    return [entry_out(e) for e in reversed(entries)]


@get("/api/v1/audit/platform", opt=policy(roles=(Role.platform_admin, Role.compliance_officer)), tags=["audit"])
async def platform_audit(session: AsyncSession, limit: int = 200) -> list[dict]:
    entries = await service.list_entries(session, "platform", limit=min(max(limit, 1), 1000))
    return [entry_out(e) for e in reversed(entries)]


def _time(value: str | None, field: str, errors: FieldCollector) -> datetime | None:
    """``from``/``to`` of the export: RFC 3339 with an offset, in the one time range (`parse_time`)."""
    try:
        return parse_time(value, field, offset_required=True)
    except InvalidInput as exc:
        errors.errors.extend(exc.errors)
        return None


@get("/api/v1/audit/export", opt=policy(roles=AUDITORS), tags=["audit"])
async def audit_export(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    stream: str,
    start: Annotated[str | None, QueryParameter(name="from")] = None,
    end: Annotated[str | None, QueryParameter(name="to")] = None,
    format: str = "jsonl",
) -> Stream:
    """One stream's entries in ``[from, to)`` as signed JSON Lines (or CSV to read); the export is audited."""
    errors = FieldCollector()
    when_from, when_to = _time(start, "from", errors), _time(end, "to", errors)
    if format not in ("jsonl", "csv"):
        errors.add("format", "must be jsonl or csv")
    errors.raise_if_any()
    if stream != "platform":
        await find_tenant(session, principal, stream)
    await service.append_audit_entry(
        session,
        stream="platform",
        actor=principal,
        action="audit.exported",
        target=f"audit:{stream}",
        data={"stream": stream, "from": start, "to": end, "format": format},
    )
    await session.commit()
    state = request.app.state
    name = f"audit-{stream}.{format}"
    if format == "csv":
        body = export.export_csv(state.db, stream=stream, start=when_from, end=when_to)
        media = "text/csv"
    else:
        body = export.export_jsonl(state.db, state.keyring, stream=stream, start=when_from, end=when_to)
        media = "application/x-ndjson"
    return Stream(body, media_type=media, headers={"content-disposition": attachment(name)})


@get("/api/v1/audit/keys", opt=policy(public=True), tags=["audit"])
async def audit_keys(session: AsyncSession) -> dict:
    """The public keys of audit checkpoints (a JWK set), retired ones included."""
    return await checkpoints.jwks(session)


# --- records of processing ---------------------------------------------------------------------
RECORDS = "/api/v1/tenants/{slug:str}/records-of-processing"


async def _record(session, principal, settings, keyring, slug) -> dict[str, Any]:
    return await records.record_of_processing(session, principal, slug, regions=settings.regions, keyring=keyring)


@get(RECORDS, opt=policy(roles=EVERYONE), tags=["compliance"])
async def record_json(
    session: AsyncSession, principal: Principal, settings: Settings, keyring: KeyRing, slug: str
) -> dict[str, Any]:
    """The tenant's record of processing (GDPR Art. 30 style), generated from configuration."""
    return await _record(session, principal, settings, keyring, slug)


@get(RECORDS + ".html", opt=policy(roles=EVERYONE), tags=["compliance"], media_type=MediaType.HTML)
async def record_html(
    session: AsyncSession, principal: Principal, settings: Settings, keyring: KeyRing, slug: str
) -> Template:
    record = await _record(session, principal, settings, keyring, slug)
    return Template("compliance_record.html", context={"principal": principal, "record": record, "slug": slug})


@get(RECORDS + ".pdf", opt=policy(roles=EVERYONE), tags=["compliance"], media_type="application/pdf")
async def record_pdf(
    session: AsyncSession, principal: Principal, settings: Settings, keyring: KeyRing, slug: str
) -> Response:
    record = await _record(session, principal, settings, keyring, slug)
    return Response(
        records.record_pdf(record),
        media_type="application/pdf",
        headers={"content-disposition": inline(f"records-of-processing-{slug}.pdf")},
    )


ROUTES = [
    tenant_audit,
    platform_audit,
    audit_export,
    audit_keys,
    record_json,
    record_html,
    record_pdf,
    *dsr.ROUTES,
]
