"""Data-subject request pages (thin): a tenant's Privacy tab and each request's page with its actions.

Staff and merchant admins read them; opening requests and acting on them is for compliance officers,
platform admins and merchant admins (``service.may_act``, also enforced by the service). Each action is
a form POST that calls the service and redirects back with a flash; a refused action (409) or bad
input (422) re-renders the request page with the reason, and erasure asks for confirmation first.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.dsr import deadlines, service
from compliance.dsr.schemas import Kind, request_out
from compliance.service import entry_body
from control_plane.auth import STAFF, Principal, Role, policy
from control_plane.database import utcnow
from control_plane.downloads import attachment
from control_plane.errors import Conflict, InvalidInput
from control_plane.keyring import KeyRing
from control_plane.navigation import notify
from control_plane.settings import Settings

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
READERS = policy(roles=(*STAFF, Role.merchant_admin))
HANDLERS = policy(roles=tuple(service.HANDLER_ROLES))
TAB = "/tenants/{slug:str}/privacy"
ONE = TAB + "/requests/{request_id:str}"
KINDS = [
    (Kind.access.value, "Access (a copy of the subject's data)"),
    (Kind.erasure.value, "Erasure (remove the subject's reference)"),
    (Kind.correction.value, "Correction"),
    (Kind.opt_out_sale_share.value, "Opt-out of sale or sharing (CCPA/CPRA)"),
]
FORM_FIELDS = ("kind", "subject", "regime", "note", "correction")


def _field_errors(exc: InvalidInput, known: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors:
        name = e.field.split(".", 1)[0]
        out.setdefault(name if name in known else "_form", e.message)
    return out


def _correction(text: str) -> dict[str, str] | None:
    """``"language=de\\nmarket=AT"`` -> ``{"language": "de", "market": "AT"}``; ``None`` when blank."""
    out = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            out[key.strip()] = value.strip()
    return out or None


def _page_url(slug: str, req: Any) -> str:
    return f"/tenants/{slug}/privacy/requests/{req.id}"


# --- the Privacy tab ---------------------------------------------------------------------------
async def _tab(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    tenant, reqs = await service.list_requests(session, principal, slug)
    today = service.tenant_today(tenant, utcnow())
    return Template(
        "privacy_tab.html",
        status_code=status_code,
        context={
            "principal": principal,
            "tenant": tenant,
            "requests": [request_out(r, today) for r in reqs],
            "can_act": service.may_act(principal),
            "kinds": KINDS,
            "regimes": deadlines.REGIMES,
            "home_regime": settings.regions.get(tenant.home_region),
            "errors": errors or {},
            "values": values or {},
        },
    )


@get(TAB, opt=READERS, include_in_schema=False)
async def privacy_tab(request: Request, session: AsyncSession, principal: Principal, slug: str) -> Template:
    """The tenant's data-subject requests with their deadlines, and the form to open one."""
    return await _tab(request, session, principal, slug)


@post(TAB + "/requests", opt=HANDLERS, include_in_schema=False)
async def open_request(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    keyring: KeyRing,
    slug: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = {k: (data.get(k) or "").strip() for k in FORM_FIELDS}
    body: dict[str, Any] = {"kind": form["kind"], "subject": form["subject"]}
    body |= {k: form[k] for k in ("regime", "note") if form[k]}
    if form["correction"]:
        body["correction"] = _correction(form["correction"])
    try:
        req = await service.file_request(
            session, request.app.state.db, keyring, principal, slug, body, regions=settings.regions
        )
    except InvalidInput as exc:
        await session.rollback()
        return await _tab(
            request, session, principal, slug, errors=_field_errors(exc, FORM_FIELDS), values=form, status_code=422
        )
    await session.commit()
    found = sum(req.cells.values())
    notify(
        request,
        f"Request {req.number} opened: {req.kind} under {req.regime}, due {req.deadline.isoformat()}; "
        f"{found} contact{'s' if found != 1 else ''} of the subject found in the tenant's cells",
    )
    return Redirect(_page_url(slug, req))


# --- one request -------------------------------------------------------------------------------
async def _request_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    request_id: str,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, dict[str, str]] | None = None,
    refused: str | None = None,
    confirm_erase: bool = False,
    status_code: int = 200,
) -> Template:
    tenant, req = await service.get_request(session, principal, slug, request_id)
    history = await service.request_history(session, slug, req)
    return Template(
        "privacy_request.html",
        status_code=status_code,
        context={
            "principal": principal,
            "tenant": tenant,
            "req": request_out(req, service.tenant_today(tenant, utcnow())),
            "stage": service.stage(req),
            "actions": service.allowed_actions(req) if service.may_act(principal) else [],
            "can_act": service.may_act(principal),
            "extension": deadlines.rule_for(req.regime).extendable and req.extended_due_on is None,
            "history": [entry_body(e) for e in history],
            "errors": errors or {},
            "values": values or {},
            "refused": refused,
            "confirm_erase": confirm_erase,
        },
    )


@get(ONE, opt=READERS, include_in_schema=False)
async def request_page(session: AsyncSession, principal: Principal, slug: str, request_id: str) -> Template:
    """A request's regime, deadline, stage and history, and the actions its stage allows."""
    return await _request_page(session, principal, slug, request_id)


async def _act(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    request_id: str,
    section: str,
    data: dict[str, str],
    action: Callable[[], Awaitable[Any]],
    notice: Callable[[Any], str],
) -> Template | Redirect:
    try:
        req = await action()
    except (InvalidInput, Conflict) as exc:
        await session.rollback()
        if isinstance(exc, InvalidInput):
            errors = {section: _field_errors(exc, tuple(data))}
            return await _request_page(
                session, principal, slug, request_id, errors=errors, values={section: data}, status_code=422
            )
        return await _request_page(session, principal, slug, request_id, refused=exc.message, status_code=409)
    await session.commit()
    notify(request, notice(req))
    return Redirect(_page_url(slug, req))


@get(ONE + "/erase", opt=HANDLERS, include_in_schema=False)
async def confirm_erase(session: AsyncSession, principal: Principal, slug: str, request_id: str) -> Template:
    """The confirmation step before an erasure is carried out (it cannot be undone)."""
    _, req = await service.get_request(session, principal, slug, request_id)
    problem = service.refusal(req, "erase")
    if problem is not None:
        return await _request_page(session, principal, slug, request_id, refused=problem.message, status_code=409)
    return await _request_page(session, principal, slug, request_id, confirm_erase=True)


@post(ONE + "/erase", opt=HANDLERS, include_in_schema=False)
async def erase(
    request: Request, session: AsyncSession, principal: Principal, slug: str, request_id: str
) -> Template | Redirect:
    def notice(req: Any) -> str:
        erased = req.details.get("erased", {})
        n = sum(cell.get("contacts", 0) for cell in erased.values())
        return (
            f"Request {req.number} carried out: the subject's reference was erased from {n} "
            f"contact{'s' if n != 1 else ''} in {', '.join(sorted(erased)) or 'no cells'}; complete it once "
            "the subject is told"
        )

    return await _act(
        request,
        session,
        principal,
        slug,
        request_id,
        "erase",
        {},
        lambda: service.erase_subject(session, request.app.state.db, principal, slug, request_id),
        notice,
    )


@post(ONE + "/extend", opt=HANDLERS, include_in_schema=False)
async def extend(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    request_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = {"reason": (data.get("reason") or "").strip()}
    return await _act(
        request,
        session,
        principal,
        slug,
        request_id,
        "extend",
        form,
        lambda: service.extend_request(session, principal, slug, request_id, form),
        lambda req: f"Request {req.number} extended: now due {req.deadline.isoformat()}",
    )


@post(ONE + "/complete", opt=HANDLERS, include_in_schema=False)
async def complete(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    request_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = {"note": (data.get("note") or "").strip()}
    body = {"note": form["note"]} if form["note"] else {}
    return await _act(
        request,
        session,
        principal,
        slug,
        request_id,
        "complete",
        form,
        lambda: service.complete_request(session, principal, slug, request_id, body),
        lambda req: f"Request {req.number} completed",
    )


@post(ONE + "/reject", opt=HANDLERS, include_in_schema=False)
async def reject(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    request_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    form = {"reason": (data.get("reason") or "").strip()}
    return await _act(
        request,
        session,
        principal,
        slug,
        request_id,
        "reject",
        form,
        lambda: service.reject_request(session, principal, slug, request_id, form),
        lambda req: f"Request {req.number} rejected",
    )


@post(ONE + "/export", opt=HANDLERS, status_code=200, include_in_schema=False)
async def export(request: Request, session: AsyncSession, principal: Principal, slug: str, request_id: str) -> Response:
    """The subject's contacts as a JSON download (an audited read, hence a form POST with its CSRF token)."""
    try:
        body = await service.access_export(session, request.app.state.db, principal, slug, request_id)
    except Conflict as exc:
        await session.rollback()
        return await _request_page(session, principal, slug, request_id, refused=exc.message, status_code=409)
    await session.commit()
    name = f"subject-request-{slug}-{body['request']['number']}.json"
    return Response(
        json.dumps(body, indent=2, ensure_ascii=False).encode(),
        media_type="application/json",
        headers={"content-disposition": attachment(name), "cache-control": "no-store"},
    )


ROUTES = [privacy_tab, open_request, request_page, confirm_erase, erase, extend, complete, reject, export]
