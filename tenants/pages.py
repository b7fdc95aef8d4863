"""The tenant pages: the tenant list and the onboarding page (contract, residency and transfer
mechanisms, integrations, API keys, status), calling the same services as the API.

Every form posts; on success it redirects to the tenant page with a flash message (post-redirect-
get: a reload repeats nothing), on bad input it re-renders the page with the error's status, each
error as a sentence beside its field and every value typed kept (never a credential). A new API
key's secret travels to the next page in the session and is dropped there: it is shown once.
Destructive actions (revoking a mechanism or a key) ask first, in a ``<details>`` confirmation.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import cells
from control_plane.auth import EVERYONE, ONBOARDING, ApiScope, Principal, Role, policy
from control_plane.errors import DomainError, InvalidInput, record_refusal
from control_plane.keyring import KeyRing
from control_plane.navigation import notify
from control_plane.settings import Settings
from tenants import regimes, residency_service, service
from tenants.catalogue import INTEGRATION_KINDS

ADMINS = (*ONBOARDING, Role.merchant_admin)
RESIDENCY_WRITERS = (*ONBOARDING, Role.compliance_officer)
READERS = policy(roles=EVERYONE)
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
NEW_KEY = "tenant_new_api_key"  # session: the secret of the key just issued, for the next page only
MECHANISM_FIELDS = ("choice", "market", "to_region", "reference", "valid_until")


def _nest(form: dict[str, str]) -> dict[str, Any]:
    """``{"ai_resolved.unit_price": "1.40"}`` -> ``{"ai_resolved": {"unit_price": "1.40"}}``; blanks dropped."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith("_") or value is None or str(value).strip() == "":
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.strip() if isinstance(value, str) else value
    return out


def _pairs(text: str) -> dict[str, str]:
    """``"DE=eu\\nCN=cn"`` -> ``{"DE": "eu", "CN": "cn"}``."""
    out = {}
    for line in (text or "").replace(",", "\n").splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            out[key.strip()] = value.strip()
    return out


def _mechanism_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(regime, [("GDPR:sccs", "standard contractual clauses (GDPR Art. 46(2)(c))"), …]), …]``."""
    return [
        (r.code, [(f"{r.code}:{m.code}", f"{r.code}: {m.label} ({m.reference})") for m in r.mechanisms])
        for r in regimes.REGIMES.values()
        if r.export_controlled
    ]


def _as_list(value: Any) -> list[str]:
    return [] if value in (None, "") else value if isinstance(value, list) else [value]


async def _tenant_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    errors: dict[str, dict] | None = None,
    values: dict[str, dict] | None = None,
    new_key: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    tenant = await service.find_tenant(session, principal, slug)
    today = date.today()
    sees_secrets = principal.is_staff or principal.role == Role.merchant_admin
    return Template(
        "tenant_detail.html",
        status_code=status_code,
        context={
            "principal": principal,
            "tenant": tenant,
            "checklist": await service.checklist(session, tenant),
            "contracts": await service.contract_versions(session, principal, slug),
            "residency": await service.residency_view(session, tenant, settings.regions),
            "placements": await cells.placements(session, tenant.id),  # regions with several cells
            "mechanisms": await residency_service.list_mechanisms(
                session, principal, slug, regions=settings.regions, today=today
            ),
            "mechanism_choices": _mechanism_choices(),
            "market_options": [(m, f"{m} ({regimes.regime_of_market(m) or 'no regime'})") for m in tenant.markets],
            "region_options": [(r, f"{r} ({g})") for r, g in sorted(settings.regions.items())],
            "scopes": sorted(s.value for s in ApiScope),
            "integrations": await service.list_integrations(session, principal, slug) if sees_secrets else [],
            "api_keys": await service.list_api_keys(session, principal, slug) if sees_secrets else [],
            "kinds": INTEGRATION_KINDS,
            "regions": settings.regions,
            "transitions": sorted(service.TRANSITIONS[tenant.status]),
            "can_edit": principal.role in ONBOARDING,
            "can_edit_residency": principal.role in RESIDENCY_WRITERS,
            "can_manage_keys": principal.role in ADMINS,
            "errors": errors or {},
            "values": values or {},
            "new_key": new_key,
        },
    )


def _form_errors(exc: DomainError, rename: dict[str, str] | None = None) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        out: dict[str, str] = {}
        for e in exc.errors:
            name = (rename or {}).get(e.field, e.field)
            out[name] = f"{out[name]} {e.message}" if name in out else e.message
        return out
    return {"_form": exc.message}


async def _form_action(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    section: str,
    values: dict[str, Any],
    action: Any,
    *,
    notice: str,
    rename: dict[str, str] | None = None,
    override: dict[str, str] | None = None,
    after: Any = None,
) -> Template | Redirect:
    """Run ``action``; on success commit, call ``after(result)``, flash ``notice`` and redirect to the
    tenant page. On a refusal re-render: ``rename`` maps API fields to the form's, ``override``
    replaces the message of a form field that has one."""
    # Pages must say what they return: with ``Any`` Litestar would serve the rendered page as JSON.
    try:
        result = await action()
    except DomainError as exc:
        await session.rollback()
        if exc.status_code in (403, 404):
            raise
        await record_refusal(request, exc)  # a change the rules refused is audited (after the rollback)
        errors = _form_errors(exc, rename)
        errors |= {k: v for k, v in (override or {}).items() if k in errors}
        return await _tenant_page(
            request,
            session,
            principal,
            slug,
            errors={section: errors},
            values={section: values},
            status_code=exc.status_code,
        )
    await session.commit()
    if after is not None:
        after(result)
    notify(request, notice)
    return Redirect(f"/tenants/{slug}")


@get("/tenants", opt=READERS, include_in_schema=False)
async def tenants_page(session: AsyncSession, principal: Principal) -> Template | Redirect:
    if principal.tenant_bound:
        return Redirect(f"/tenants/{principal.tenant_slug}")
    return Template(
        "tenant_list.html",
        context={
            "principal": principal,
            "tenants": await service.list_tenants(session, principal),
            "errors": {},
            "values": {},
            "can_edit": principal.role in ONBOARDING,
        },
    )


@post("/tenants", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def tenants_create_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = _nest(data)
    if "markets" in form:
        form["markets"] = [m.strip() for m in form["markets"].replace(",", " ").split() if m.strip()]
    try:
        tenant = await service.create_tenant(session, principal, form, regions=settings.regions, keyring=keyring)
    except DomainError as exc:
        await session.rollback()
        return Template(
            "tenant_list.html",
            status_code=exc.status_code,
            context={
                "principal": principal,
                "tenants": await service.list_tenants(session, principal),
                "errors": _form_errors(exc),
                "values": data,
                "can_edit": True,
            },
        )
    await session.commit()
    notify(request, f"Tenant {tenant.name} created")
    return Redirect(f"/tenants/{tenant.slug}")


@get("/tenants/{slug:str}", opt=READERS, include_in_schema=False)
async def tenant_page(request: Request, session: AsyncSession, principal: Principal, slug: str) -> Template:
    # The secret of a key issued on the previous request is shown on this page and dropped here.
    new_key = request.session.pop(NEW_KEY, None) if isinstance(request.session, dict) else None
    if not (isinstance(new_key, dict) and new_key.get("slug") == slug):
        new_key = None
    return await _tenant_page(request, session, principal, slug, new_key=new_key)


@post("/tenants/{slug:str}/contract", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def contract_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    form = _nest(data)
    terms = form.pop("terms_json", None)
    if terms:
        try:
            form |= json.loads(terms)
        except ValueError as exc:
            return await _tenant_page(
                request,
                session,
                principal,
                slug,
                errors={"contract": {"terms_json": f"These terms are not valid JSON: {exc}."}},
                values={"contract": data},
                status_code=422,
            )
    form.setdefault("currency", (await service.find_tenant(session, principal, slug)).currency)
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "contract",
        data,
        lambda: service.add_contract_version(session, principal, slug, form),
        notice="Contract version added",
    )


@post("/tenants/{slug:str}/residency", opt=policy(roles=RESIDENCY_WRITERS), include_in_schema=False)
async def residency_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    """Markets -> regions only: the recorded mechanisms stay as they are."""
    body = {"markets": _pairs(data.get("markets", ""))}
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "residency",
        data,
        lambda: service.set_residency(session, principal, slug, body, regions=settings.regions, today=date.today()),
        notice="Residency saved",
    )


@post("/tenants/{slug:str}/transfer-mechanisms", opt=policy(roles=RESIDENCY_WRITERS), include_in_schema=False)
async def mechanism_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    """Add one mechanism; ``choice`` is "REGIME:mechanism" (one select, so the pair always fits)."""
    values = {k: (data.get(k) or "").strip() for k in MECHANISM_FIELDS}
    regime, _, mechanism = values["choice"].partition(":")
    body = {k: values[k] for k in ("market", "to_region", "reference", "valid_until")}
    body = {k: v for k, v in (body | {"regime": regime, "mechanism": mechanism}).items() if v}
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "mechanism",
        values,
        lambda: residency_service.add_mechanism(
            session, principal, slug, body, regions=settings.regions, today=date.today()
        ),
        notice=f"Transfer mechanism recorded: {regime} {mechanism} to {values['to_region']}",
        rename={"regime": "choice", "mechanism": "choice"},
        override=None if values["choice"] else {"choice": "Choose a mechanism; its regime comes with it."},
    )


@post(
    "/tenants/{slug:str}/transfer-mechanisms/{mechanism_id:str}/revoke",
    opt=policy(roles=RESIDENCY_WRITERS),
    include_in_schema=False,
)
async def mechanism_revoke_form(
    request: Request, session: AsyncSession, principal: Principal, settings: Settings, slug: str, mechanism_id: str
) -> Template | Redirect:
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "mechanisms",
        {"id": mechanism_id},
        lambda: residency_service.revoke_mechanism(
            session, principal, slug, mechanism_id, regions=settings.regions, today=date.today()
        ),
        notice="Transfer mechanism revoked",
    )


@post("/tenants/{slug:str}/integrations", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def integration_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = _nest(data)
    body = {k: form[k] for k in ("kind", "name", "processing_region", "webhook_secret") if k in form}
    body["credentials"] = _pairs(form.get("credentials", ""))
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "integration",
        # Credentials and the webhook secret are write-only: a re-rendered form asks for them again.
        {k: v for k, v in data.items() if k in ("kind", "name", "processing_region")},
        lambda: service.add_integration(
            session, principal, slug, body, regions=settings.regions, keyring=keyring, today=date.today()
        ),
        notice="Integration added",
    )


@post("/tenants/{slug:str}/api-keys", opt=policy(roles=ADMINS), include_in_schema=False)
async def api_key_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, Any], FORM]
) -> Template | Redirect:
    body = {"scopes": _as_list(data.get("scopes")), "label": (data.get("label") or "").strip()}

    def keep_secret(issued: tuple[Any, str]) -> None:
        # Once committed, kept for the next page only (which drops it): a reload shows and issues nothing.
        request.session[NEW_KEY] = {"slug": slug, "prefix": issued[0].prefix, "secret": issued[1]}

    return await _form_action(
        request,
        session,
        principal,
        slug,
        "api_key",
        body,
        lambda: service.issue_api_key(session, principal, slug, body),
        notice="API key issued: copy its secret now, it is not shown again",
        after=keep_secret,
    )


@post("/tenants/{slug:str}/api-keys/{key_id:str}/revoke", opt=policy(roles=ADMINS), include_in_schema=False)
async def api_key_revoke_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, key_id: str
) -> Template | Redirect:
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "api_keys",
        {"id": key_id},
        lambda: service.revoke_api_key(session, principal, slug, key_id),
        notice="API key revoked: it no longer authenticates",
    )


@post("/tenants/{slug:str}/status", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def status_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    return await _form_action(
        request,
        session,
        principal,
        slug,
        "status",
        data,
        lambda: service.transition_tenant(session, principal, slug, _nest(data)),
        notice=f"Status changed to {data.get('to', '')}",
    )


PAGES = [
    tenants_page,
    tenants_create_form,
    tenant_page,
    contract_form,
    residency_form,
    mechanism_form,
    mechanism_revoke_form,
    integration_form,
    api_key_form,
    api_key_revoke_form,
    status_form,
]
