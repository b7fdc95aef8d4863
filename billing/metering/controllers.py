"""Metering routes (thin): contact ingest, usage JSON, the merchant usage page; helpdesk webhooks beside them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import deltas, service, usage
from billing.metering.schemas import MAX_BYTES, MAX_CONTACTS, decode_batch
from billing.metering.throttle import KeyRateLimiter
from billing.metering.webhooks.controllers import ROUTES as WEBHOOK_ROUTES
from control_plane.auth import EVERYONE, ApiScope, Principal, policy
from control_plane.database import utcnow
from control_plane.errors import DomainError, FieldError, InvalidInput, problem
from control_plane.keyring import KeyRing
from tenants import service as tenants

API = "/api/v1/tenants"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _limiter(state: State) -> KeyRateLimiter:
    limiter = state.get("ingest_limiter")
    if limiter is None:
        limiter = state["ingest_limiter"] = KeyRateLimiter.from_env()
    return limiter


def _applier(state: State) -> deltas.DeltaApplier:
    """The process's rollup applier: a batch's delta (durable in its cell) is applied after the answer."""
    applier = state.get("rollup_applier")
    if applier is None:
        applier = state["rollup_applier"] = deltas.DeltaApplier(state.db, interval=state.settings.rollup_interval)
    return applier


async def settle_before_read(request: Request) -> None:
    """``before_request`` of the routes that read a tenant's rollups (``{slug}`` in the path): its
    pending deltas are applied first (`service.settle_rollups`), so the read counts every contact
    accepted before it. Runs after the guard: only a caller who may read the tenant settles it."""
    await service.settle_rollups(request.app.state.db, slug=request.path_params["slug"])


async def rollups_ready(state: State) -> tuple[str, str]:
    """Readiness of the usage read model: no delta has waited in a cell longer than
    ``BPO_READY_MAX_DELTA_AGE`` (its applier and the ``rollup_deltas`` job both failing)."""
    oldest = await deltas.oldest_pending(state.db)
    age = 0.0 if oldest is None else (utcnow() - oldest).total_seconds()
    limit = state.settings.ready_max_delta_age
    return (
        "rollups",
        "ok" if age <= limit else f"lagging: the oldest pending delta is {age:.0f} s old (limit {limit:.0f} s)",
    )


def _too_large(request: Request, detail: str, contacts: int | None = None) -> Response:
    body = {
        "status": 413,
        "code": "batch_too_large",
        "detail": detail,
        "limit": {"contacts": MAX_CONTACTS, "bytes": MAX_BYTES},
        "request_id": request.scope.get("request_id"),
    }
    if contacts is not None:
        body["contacts"] = contacts
    return problem(413, body)


async def _read_limited(request: Request) -> bytes | None:
    """The body, or ``None`` as soon as it passes ``MAX_BYTES`` (a huge upload is not buffered)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _unsupported_body(request: Request) -> Response | None:
    """415 unless the body is declared plain JSON: ``Content-Type: application/json`` (UTF-8) and no
    ``Content-Encoding`` but ``identity``. Ingest reads its body itself (streamed, see `_read_limited`),
    so it checks the headers itself before reading a byte."""
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != "application/json" or _charset(params) not in ("utf-8", "utf8"):
        detail = "send the batch as JSON with Content-Type: application/json (UTF-8)"
        return problem(415, _problem_body(request, 415, "unsupported_media_type", detail))
    encodings = [e.strip().lower() for e in request.headers.get("content-encoding", "").split(",") if e.strip()]
    if any(e != "identity" for e in encodings):
        detail = "the body must not be compressed or encoded: send it without Content-Encoding"
        body = _problem_body(request, 415, "unsupported_content_encoding", detail)
        return problem(415, body, headers={"Accept-Encoding": "identity"})
    return None


def _charset(params: str) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return "utf-8"


def _problem_body(request: Request, status: int, code: str, detail: str) -> dict[str, Any]:
    return {"status": status, "code": code, "detail": detail, "request_id": request.scope.get("request_id")}


def _contacts_of(raw: bytes) -> list[Any]:
    try:
        body = decode_batch(raw)
    except msgspec.DecodeError:
        raise DomainError("the body is not valid JSON", code="malformed_json") from None
    except RecursionError:
        raise DomainError("the body nests arrays or objects too deeply", code="malformed_json") from None
    if isinstance(body, dict) and set(body) <= {"contacts"}:
        body = body.get("contacts")
    if not isinstance(body, list):
        raise InvalidInput([FieldError("contacts", 'send a JSON array of contacts, or {"contacts": [...]}')])
    return body


@post(
    API + "/{slug:str}/contacts",
    opt=policy(scopes=(ApiScope.contacts_write,), raw_body=True),
    status_code=200,
    request_max_body_size=None,
    tags=["contacts"],
)
async def ingest_contacts(request: Request, state: State, principal: Principal, keyring: KeyRing, slug: str) -> Any:
    """Ingest up to 1,000 contacts (1 MiB): ``{"accepted", "updated", "duplicates", "rejected": [...]}``."""
    wait = _limiter(state).take(principal.actor)
    if wait:
        seconds = max(1, math.ceil(wait))
        return problem(
            429,
            {
                "status": 429,
                "code": "rate_limited",
                "detail": f"too many batches for this API key; retry in {seconds} s",
                "request_id": request.scope.get("request_id"),
            },
            headers={"Retry-After": str(seconds)},
        )
    refused = _unsupported_body(request)
    if refused is not None:
        return refused
    raw = await _read_limited(request)
    if raw is None:
        return _too_large(request, f"a batch holds at most {MAX_BYTES} bytes (1 MiB): split it")
    contacts = _contacts_of(raw)
    if len(contacts) > MAX_CONTACTS:
        return _too_large(request, f"a batch holds at most {MAX_CONTACTS} contacts: split it", len(contacts))
    result = await service.ingest_contacts(state.db, keyring, principal, slug, contacts, defer_rollups=True)
    # The answer goes out once the cells committed; the rollups follow right after it, unless the
    # applier is behind, in which case this batch waits for its own (backpressure).
    applier, later = _applier(state), None
    if result.pending and applier.behind:
        await applier.apply(result.pending)
    elif result.pending:
        later = BackgroundTask(applier.apply, result.pending)
    return Response(msgspec.json.encode(result.as_dict()), media_type="application/json", background=later)


@get(API + "/{slug:str}/usage", opt=policy(roles=EVERYONE), tags=["contacts"], before_request=settle_before_read)
async def usage_json(session: AsyncSession, principal: Principal, slug: str, month: str | None = None) -> dict:
    """Contacts per day (by the tenant's day of ``opened_at``) by resolution, channel and intent."""
    tenant = await tenants.find_tenant(session, principal, slug)
    period = usage.usage_month(month, tenant.timezone)
    return await usage.month_usage(session, tenant.id, period.first, period.end, period.label)


_PAGE: str | None = None


@get(
    "/tenants/{slug:str}/usage", opt=policy(roles=EVERYONE), include_in_schema=False, before_request=settle_before_read
)
async def usage_page(session: AsyncSession, principal: Principal, slug: str, month: str | None = None) -> Template:
    global _PAGE
    if _PAGE is None:
        _PAGE = (TEMPLATES / "usage.html").read_text()
    tenant = await tenants.find_tenant(session, principal, slug)
    try:
        period, invalid = usage.usage_month(month, tenant.timezone), {}
    except InvalidInput as exc:  # named beside the month field, above the current month's usage
        period, invalid = usage.usage_month(None, tenant.timezone), {e.field: e.message for e in exc.errors}
    data = await usage.month_usage(session, tenant.id, period.first, period.end, period.label)
    return Template(
        template_str=_PAGE,
        status_code=422 if invalid else 200,
        context={
            "principal": principal,
            "tenant": tenant,
            "usage": data,
            "chart": usage.daily_chart(data, period.first, period.end),
            "errors": await service.latest_errors(session, tenant.id),
            "invalid": invalid,
            "typed": month if invalid else data["month"],
        },
    )


ROUTES = [ingest_contacts, usage_json, usage_page, *WEBHOOK_ROUTES]
