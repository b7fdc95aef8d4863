"""Finance pages (thin): a tenant's billing profile (form), and the issuers (staff list; platform
admins create and edit). Forms post urlencoded to the same services as the JSON API; bad input
re-renders the form (422) with each error beside its field and the typed values kept; success
redirects with a flash message."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance import service
from billing.finance.inputs import LOCALES, missing_of
from billing.invoices.controllers import now_of
from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Principal, Role, policy
from control_plane.errors import Conflict, InvalidInput
from control_plane.navigation import notify

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
PROFILE_WRITERS = (*ONBOARDING, Role.merchant_admin)


@cache
def _source(name: str) -> str:
    # Read from this package's templates/ (the app's template dirs are one per top-level domain);
    # the issuer form's fields are shared by the two issuer pages.
    text = (TEMPLATES / name).read_text()
    return text.replace('{% include "_issuer_fields.html" %}', (TEMPLATES / "_issuer_fields.html").read_text())


def _page(name: str, principal: Principal, *, status_code: int = 200, **context: Any) -> Template:
    context = {"principal": principal, "errors": {}, "values": {}} | context
    return Template(template_str=_source(name), status_code=status_code, context=context, media_type=MediaType.HTML)


def _form_field(field: str) -> str:
    """The form input an API field error belongs beside."""
    field = re.sub(r"\[\d+\].*$", "", field)
    return {"address.lines": "address_line1"}.get(field, field.removeprefix("address."))


def _sentence(message: str) -> str:
    text = message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _errors(exc: InvalidInput | Conflict, fallback: str) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        out: dict[str, str] = {}
        for e in exc.errors:
            out.setdefault(_form_field(e.field), _sentence(e.message))
        return out
    return {fallback: _sentence(exc.message)}


def _split(text: str, sep: str = ",") -> list[str]:
    return [part.strip() for part in re.split(rf"[{sep}\n]", text or "") if part.strip()]


def _address(data: dict[str, str]) -> dict[str, Any]:
    return {
        "lines": [data.get("address_line1", ""), data.get("address_line2", "")],
        "postal_code": data.get("postal_code") or None,
        "city": data.get("city", ""),
        "country": (data.get("country") or "").strip().upper(),
    }


def _address_values(address: dict[str, Any] | None) -> dict[str, str]:
    a = address or {}
    lines = [*a.get("lines", []), "", ""]
    return {"address_line1": lines[0], "address_line2": lines[1], "postal_code": a.get("postal_code") or "",
            "city": a.get("city") or "", "country": a.get("country") or ""}  # fmt: skip


# --- billing profile ---------------------------------------------------------------------------


async def _profile_page(session, principal, slug, *, values=None, errors=None, status_code=200) -> Template:
    tenant, profile = await service.get_profile(session, principal, slug)
    issuers = await service.list_issuers(session)
    current = await service.issuer_for(session, tenant, profile) if issuers else None
    if values is None:
        body = service.profile_json(profile, slug) or {}
        values = {**_address_values(body.get("address")), "legal_name": body.get("legal_name", ""),
                  "tax_id": body.get("tax_id") or "", "billing_emails": ", ".join(body.get("billing_emails", [])),
                  "purchase_order": body.get("purchase_order") or "", "locale": body.get("locale", "en"),
                  "issuer": body.get("issuer") or ""}  # fmt: skip
    return _page(
        "billing_profile.html", principal, status_code=status_code, tenant=tenant, profile=profile,
        missing=missing_of(profile), values=values, errors=errors or {},
        issuers=[(i.code, f"{i.legal_name} ({i.code})") for i in issuers], current_issuer=current,
        locales=[(code, code) for code in LOCALES], can_write=principal.role in PROFILE_WRITERS,
    )  # fmt: skip


@get("/tenants/{slug:str}/billing-profile", opt=policy(roles=EVERYONE), include_in_schema=False)
async def profile_page(session: AsyncSession, principal: Principal, slug: str) -> Template:
    return await _profile_page(session, principal, slug)


@post("/tenants/{slug:str}/billing-profile", opt=policy(roles=PROFILE_WRITERS), include_in_schema=False)
async def profile_submit(
    request: Request, session: AsyncSession, principal: Principal, state: State, slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:  # fmt: skip
    body = {
        "legal_name": data.get("legal_name", ""), "address": _address(data), "tax_id": data.get("tax_id") or None,
        "billing_emails": _split(data.get("billing_emails", "")), "purchase_order": data.get("purchase_order") or None,
        "locale": data.get("locale") or "en", "issuer": data.get("issuer") or None,
    }  # fmt: skip
    try:
        await service.put_profile(session, principal, slug, body, now=now_of(state))
    except InvalidInput as exc:
        return await _profile_page(session, principal, slug, values=dict(data), errors=_errors(exc, "legal_name"),
                                   status_code=422)  # fmt: skip
    notify(request, "Billing profile saved")
    return Redirect(f"/tenants/{slug}/billing-profile")


# --- issuers -----------------------------------------------------------------------------------


def _issuer_values(issuer: dict[str, Any]) -> dict[str, str]:
    return {
        **_address_values(issuer.get("address")), "code": issuer.get("code", ""),
        "legal_name": issuer.get("legal_name", ""), "invoice_prefix": issuer.get("invoice_prefix", ""),
        "credit_note_prefix": issuer.get("credit_note_prefix", ""),
        "payment_instructions": issuer.get("payment_instructions", ""),
        "tax_registrations": ", ".join(f"{r['country']} {r['tax_id']}" for r in issuer.get("tax_registrations", [])),
        "regions": ", ".join(issuer.get("regions", [])),
    }  # fmt: skip


def _issuer_body(data: dict[str, str], *, creating: bool) -> dict[str, Any]:
    regs = []
    for item in _split(data.get("tax_registrations", "")):
        country, _, tax_id = item.strip().partition(" ")
        regs.append({"country": country.upper(), "tax_id": tax_id.strip()})
    body = {
        "legal_name": data.get("legal_name", ""), "address": _address(data), "tax_registrations": regs,
        "invoice_prefix": data.get("invoice_prefix", "").strip().upper(),
        "credit_note_prefix": data.get("credit_note_prefix", "").strip().upper() or None,
        "payment_instructions": data.get("payment_instructions", ""), "regions": _split(data.get("regions", "")),
    }  # fmt: skip
    if creating:
        body["code"] = data.get("code", "").strip()
    elif body["credit_note_prefix"] is None:
        body.pop("credit_note_prefix")
    return body


async def _issuers_page(session, principal, *, values=None, errors=None, status_code=200) -> Template:
    issuers = [service.issuer_json(i) for i in await service.list_issuers(session)]
    return _page("issuers.html", principal, status_code=status_code, issuers=issuers, values=values or {},
                 errors=errors or {}, can_write=principal.role == Role.platform_admin)  # fmt: skip


@get("/billing/issuers", opt=policy(roles=STAFF), include_in_schema=False)
async def issuers_page(session: AsyncSession, principal: Principal) -> Template:
    return await _issuers_page(session, principal)


@post("/billing/issuers", opt=policy(roles=(Role.platform_admin,)), include_in_schema=False)
async def issuer_create(
    request: Request, session: AsyncSession, principal: Principal, state: State, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    try:
        issuer = await service.create_issuer(session, principal, _issuer_body(data, creating=True), now=now_of(state))
    except (InvalidInput, Conflict) as exc:
        return await _issuers_page(session, principal, values=dict(data), errors=_errors(exc, "code"),
                                   status_code=422 if isinstance(exc, InvalidInput) else 409)  # fmt: skip
    notify(request, f"Issuer {issuer.code} created")
    return Redirect("/billing/issuers")


@get("/billing/issuers/{code:str}", opt=policy(roles=STAFF), include_in_schema=False)
async def issuer_page(session: AsyncSession, principal: Principal, code: str) -> Template:
    issuer = service.issuer_json(await service.get_issuer(session, code))
    return _page("issuer.html", principal, issuer=issuer, values=_issuer_values(issuer),
                 can_write=principal.role == Role.platform_admin)  # fmt: skip


@post("/billing/issuers/{code:str}", opt=policy(roles=(Role.platform_admin,)), include_in_schema=False)
async def issuer_update(
    request: Request, session: AsyncSession, principal: Principal, state: State, code: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:  # fmt: skip
    try:
        await service.update_issuer(session, principal, code, _issuer_body(data, creating=False), now=now_of(state))
    except (InvalidInput, Conflict) as exc:
        issuer = service.issuer_json(await service.get_issuer(session, code))
        return _page("issuer.html", principal, issuer=issuer, values=dict(data), can_write=True,
                     errors=_errors(exc, "invoice_prefix"),
                     status_code=422 if isinstance(exc, InvalidInput) else 409)  # fmt: skip
    notify(request, f"Issuer {code} saved")
    return Redirect(f"/billing/issuers/{code}")


PAGE_ROUTES = [profile_page, profile_submit, issuers_page, issuer_create, issuer_page, issuer_update]
