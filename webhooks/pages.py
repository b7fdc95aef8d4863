"""Webhook pages (thin): a tenant's endpoints (add, enable/disable, delete with confirmation), each
endpoint's delivery log with replay, and the usage thresholds. Forms post urlencoded to the same
services as the API; bad input re-renders the form (422) with the error beside its field and the typed
values kept; success redirects with a flash message. Adding an endpoint redirects to its page, which
shows the signing secret once: it waits in the session (Litestar's cookie session, encrypted with
AES-GCM under the session key) until that page takes it, and a reload no longer shows it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import EVERYONE, Principal, policy
from control_plane.errors import Conflict, InvalidInput
from control_plane.events import EVENT_TYPES
from control_plane.keyring import KeyRing
from control_plane.navigation import notify
from control_plane.settings import Settings
from webhooks import delivery, service, thresholds
from webhooks.controllers import MANAGERS

TEMPLATES = Path(__file__).resolve().parent / "templates"
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
READ = policy(roles=EVERYONE)
WRITE = policy(roles=MANAGERS)
PAGE = "/tenants/{slug:str}/webhooks"
NEW_SECRET = "webhook_secret_once"


@cache
def _source(name: str) -> str:
    return (TEMPLATES / name).read_text()  # this package's templates/ (the app's dirs are per domain)


def _page(name: str, principal: Principal, *, status_code: int = 200, **context: Any) -> Template:
    context = {"principal": principal, "errors": {}, "values": {}, "can_write": principal.role in MANAGERS} | context
    return Template(template_str=_source(name), status_code=status_code, context=context, media_type=MediaType.HTML)


def _sentence(message: str) -> str:
    text = message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _errors(exc: InvalidInput | Conflict, fallback: str) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        out: dict[str, str] = {}
        for e in exc.errors:
            out.setdefault(e.field.split(".")[0].split("[")[0] if e.field != "body" else fallback, _sentence(e.message))
        return out
    return {fallback: _sentence(exc.message)}


async def _list_page(session, principal, slug, *, values=None, errors=None, section="", status_code=200) -> Template:
    tenant, endpoints = await service.list_endpoints(session, principal, slug)
    rows = await thresholds.list_thresholds(session, principal, slug)
    return _page(
        "webhooks.html", principal, status_code=status_code, tenant=tenant, slug=tenant.slug, endpoints=endpoints,
        thresholds=rows, event_types=EVENT_TYPES, values=values or {"events": []}, errors=errors or {}, section=section,
    )  # fmt: skip


@get(PAGE, opt=READ, include_in_schema=False)
async def webhooks_page(session: AsyncSession, principal: Principal, slug: str) -> Template:
    return await _list_page(session, principal, slug)


@post(PAGE, opt=WRITE, include_in_schema=False)
async def add_endpoint_form(
    request: Request, session: AsyncSession, principal: Principal, keyring: KeyRing, settings: Settings, slug: str,
) -> Template | Redirect:  # fmt: skip
    form = await request.form()
    body = {"url": (form.get("url") or "").strip(), "description": (form.get("description") or "").strip(),
            "events": [e for e in form.getall("events", []) if e]}  # fmt: skip
    try:
        tenant, row, secret = await service.create_endpoint(
            session, principal, slug, body, keyring=keyring, allow_private=settings.allow_private_webhooks
        )
    except InvalidInput as exc:
        return await _list_page(session, principal, slug, values=body, errors=_errors(exc, "url"), section="add",
                                status_code=422)  # fmt: skip
    if not isinstance(request.scope.get("session"), dict):
        request.set_session({})
    request.session[NEW_SECRET] = {"id": str(row.id), "secret": secret}
    return Redirect(f"/tenants/{tenant.slug}/webhooks/{row.id}")


async def _endpoint_page(session, principal, slug, endpoint_id, *, secret=None, status_code=200) -> Template:
    tenant, endpoint, rows = await delivery.list_deliveries(session, principal, slug, endpoint_id)
    return _page(
        "webhook_endpoint.html", principal, status_code=status_code, tenant=tenant, slug=tenant.slug,
        endpoint=endpoint, deliveries=rows, secret=secret,
    )  # fmt: skip


@get(PAGE + "/{endpoint_id:str}", opt=READ, include_in_schema=False)
async def endpoint_page(
    request: Request, session: AsyncSession, principal: Principal, slug: str, endpoint_id: str
) -> Template:
    kept = request.scope.get("session")
    once = kept.pop(NEW_SECRET, None) if isinstance(kept, dict) else None
    secret = once["secret"] if isinstance(once, dict) and once.get("id") == endpoint_id else None
    return await _endpoint_page(session, principal, slug, endpoint_id, secret=secret)


@post(PAGE + "/{endpoint_id:str}/enabled", opt=WRITE, include_in_schema=False)
async def enabled_form(
    request: Request, session: AsyncSession, principal: Principal, settings: Settings, slug: str, endpoint_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Redirect:  # fmt: skip
    enabled = data.get("enabled") == "on"
    _, row = await service.update_endpoint(
        session, principal, slug, endpoint_id, {"enabled": enabled}, allow_private=settings.allow_private_webhooks
    )
    notify(request, f"Endpoint {'enabled' if enabled else 'disabled'}: {row.url}")
    return Redirect(f"/tenants/{slug}/webhooks/{endpoint_id}")


@get(PAGE + "/{endpoint_id:str}/delete", opt=WRITE, include_in_schema=False)
async def delete_confirm(session: AsyncSession, principal: Principal, slug: str, endpoint_id: str) -> Template:
    tenant, row = await service.get_endpoint(session, principal, slug, endpoint_id)
    return Template(
        "confirm.html",
        context={
            "title": f"Delete the endpoint {row.url}?",
            "detail": "Events are no longer sent there, and its delivery log is deleted with it.",
            "action": f"/tenants/{tenant.slug}/webhooks/{row.id}/delete", "button": "Delete endpoint",
            "danger": True, "back": f"/tenants/{tenant.slug}/webhooks/{row.id}", "fields": [],
        },
    )  # fmt: skip


@post(PAGE + "/{endpoint_id:str}/delete", opt=WRITE, include_in_schema=False)
async def delete_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, endpoint_id: str
) -> Redirect:
    await service.delete_endpoint(session, principal, slug, endpoint_id)
    notify(request, "Endpoint deleted")
    return Redirect(f"/tenants/{slug}/webhooks")


@post(PAGE + "/{endpoint_id:str}/deliveries/{delivery_id:str}/replay", opt=WRITE, include_in_schema=False)
async def replay_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, endpoint_id: str, delivery_id: str
) -> Redirect:
    try:
        await delivery.replay(session, principal, slug, endpoint_id, delivery_id)
    except Conflict as exc:
        notify(request, _sentence(exc.message), "error")
    else:
        notify(request, "Delivery queued again, with the same webhook-id")
    return Redirect(f"/tenants/{slug}/webhooks/{endpoint_id}")


@post(PAGE + "/thresholds", opt=WRITE, include_in_schema=False)
async def add_threshold_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    body = {"metric": data.get("metric", ""), "value": data.get("value", "")}
    try:
        row = await thresholds.add_threshold(session, principal, slug, body)
    except (InvalidInput, Conflict) as exc:
        return await _list_page(session, principal, slug, values={"events": [], **body}, errors=_errors(exc, "value"),
                                section="thresholds", status_code=422)  # fmt: skip
    notify(request, f"Threshold added: {row.metric} at {row.value}")
    return Redirect(f"/tenants/{slug}/webhooks#thresholds")


@post(PAGE + "/thresholds/{threshold_id:str}/remove", opt=WRITE, include_in_schema=False)
async def remove_threshold_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, threshold_id: str
) -> Redirect:
    await thresholds.remove_threshold(session, principal, slug, threshold_id)
    notify(request, "Threshold removed")
    return Redirect(f"/tenants/{slug}/webhooks#thresholds")


PAGES = [
    webhooks_page, add_endpoint_form, endpoint_page, enabled_form, delete_confirm, delete_form, replay_form,
    add_threshold_form, remove_threshold_form,
]  # fmt: skip
