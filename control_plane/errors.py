"""Typed failures raised by services, and the one place that maps them to HTTP problem JSON.

It also keeps the evidence of what was refused (like CloudTrail's AccessDenied events): every 403,
and every error that carries a :class:`Refusal` (a residency or integration change refused by the
rules, a webhook whose signature does not verify), becomes an audit entry, written after the
request's own transaction has rolled back, in a short transaction of its own, best effort (a write
that fails is logged and the answer stays what it was), and rate-limited by :class:`RefusalLimiter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import psycopg
import structlog
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.exceptions import NotFoundException as LitestarNotFound
from litestar.exceptions import ValidationException as LitestarValidation
from litestar.response import Redirect, Template
from sqlalchemy import exc as sa_exc

from control_plane import plugins
from control_plane.actors import SystemActor


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class Refusal:
    """What a refused request tried, for the audit log: ``action`` (``residency.change_refused``), its
    ``target``, the ``stream`` (the tenant's slug; ``None``: the path's tenant, else ``platform``) and
    what else the entry records (never a secret)."""

    action: str
    target: str
    stream: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class DomainError(Exception):
    status_code = 400
    code = "bad_request"
    refusal: Refusal | None = None

    def __init__(self, message: str, *, code: str | None = None, refusal: Refusal | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.refusal = refusal

    def body(self) -> dict:
        return {"status": self.status_code, "code": self.code, "detail": self.message}


class InvalidInput(DomainError):
    """Bad input: every bad field is named with its reason."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, errors: list[FieldError], message: str = "Some fields are not valid") -> None:
        super().__init__(message)
        self.errors = errors

    def body(self) -> dict:
        return super().body() | {"errors": [e.as_dict() for e in self.errors]}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request conflicts with the current state; the message says why."""

    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class TooManyRequests(DomainError):
    """Too many attempts: refused until ``retry_after`` seconds have passed (sent as ``Retry-After``)."""

    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}

    def body(self) -> dict:
        return super().body() | {"retry_after": self.retry_after}


class FieldCollector:
    """Collects field errors so that one answer names every bad field."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


def wants_html(request: Request) -> bool:
    """Content negotiation: a browser (``Accept`` prefers ``text/html`` to JSON) gets an HTML page;
    API clients, and clients that accept anything, get problem JSON."""
    if request.url.path.startswith("/schema"):
        return False
    return request.accept.best_match(["application/json", "text/html"], default="application/json") == "text/html"


TITLES = {
    400: "This request is not valid",
    401: "Please sign in",
    403: "You may not do this",
    404: "Not found",
    405: "Not allowed here",
    409: "This conflicts with the current state",
    422: "Some fields are not valid",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable for a moment",
}


def problem(status: int, body: dict, headers: dict[str, str] | None = None, request: Request | None = None) -> Response:
    """Problem JSON, or for a browser the same facts as an HTML page (``error.html``)."""
    if request is not None and wants_html(request):
        return Template(
            "error.html",
            status_code=status,
            headers=headers,
            context={
                "status": status,
                "title": TITLES.get(status, "Error"),
                "detail": body.get("detail", ""),
                "errors": body.get("errors") or [],
                "request_id": body.get("request_id"),
            },
        )
    return Response(content=body, status_code=status, media_type="application/problem+json", headers=headers)


def domain_error_handler(request: Request, exc: DomainError) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status_code == 503 else None
    headers = getattr(exc, "headers", None) or headers
    response = problem(exc.status_code, exc.body() | {"request_id": request.scope.get("request_id")}, headers, request)
    return _with_refusal_recorded(response, request, exc)


def validation_error_handler(request: Request, exc: LitestarValidation) -> Response:
    """Litestar/pydantic validation failures, reshaped to ``errors: [{field, message}]``."""
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            errors.append({"field": key, "message": str(item.get("message", "is not valid"))})
    status = 422 if errors else 400
    detail = "Some fields are not valid" if errors else (exc.detail or "Malformed request")
    return problem(
        status,
        {
            "status": status,
            "code": "invalid_input" if errors else "bad_request",
            "detail": detail,
            "errors": errors,
            "request_id": request.scope.get("request_id"),
        },
        request=request,
    )


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    # A page sends a browser to sign in and back; an API path answers 401 (HTML or JSON) and never moves.
    if isinstance(exc, NotAuthorizedException) and wants_html(request) and not request.url.path.startswith("/api/"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(path=f"/login?{urlencode({'next': target}, safe='/')}")
    code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "error"
    )
    response = problem(
        exc.status_code,
        {"status": exc.status_code, "code": code, "detail": exc.detail, "request_id": request.scope.get("request_id")},
        headers=exc.headers,
        request=request,
    )
    return _with_refusal_recorded(response, request, exc)


# --- evidence of what was refused ----------------------------------------------------------------
PLATFORM = "platform"
REFUSAL_WINDOW = 60.0  # seconds
REFUSAL_HELD_FOR = 600.0  # a held-back count whose key does not come back is moved to its stream's count
ANONYMOUS = SystemActor("anonymous", "anonymous")


class RefusalLimiter:
    """Keeps a flood of refusals from bloating the audit log (per process): at most one entry per
    ``(stream, actor, action, target)`` a minute, and at most ``per_stream`` entries a minute per
    stream. What it holds back is counted into the next entry written: ``suppressed`` (the same
    actor, action and target since its last entry) and ``suppressed_in_stream`` (others of the stream,
    held back by the cap, or whose own count waited more than ten minutes for a next entry)."""

    def __init__(self, per_stream: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_stream = per_stream
        self.clock = clock
        self._last: dict[tuple[str, str, str, str], float] = {}
        self._held: dict[tuple[str, str, str, str], int] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self._held_in_stream: dict[str, int] = {}
        self._pruned_at: float | None = None

    def admit(self, stream: str, actor: str, action: str, target: str) -> dict[str, int] | None:
        """The counts for the entry to write, or ``None``: hold this one back (it is counted)."""
        now = self.clock()
        self._prune(now)
        key = (stream, actor, action, target)
        last = self._last.get(key)
        if last is not None and now - last < REFUSAL_WINDOW:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        start, count = self._windows.get(stream, (now, 0))
        if now - start >= REFUSAL_WINDOW:
            start, count = now, 0
        if count >= self.per_stream:
            self._held_in_stream[stream] = self._held_in_stream.get(stream, 0) + 1
            return None
        self._windows[stream] = (start, count + 1)
        self._last[key] = now
        return {"suppressed": self._held.pop(key, 0), "suppressed_in_stream": self._held_in_stream.pop(stream, 0)}

    def _prune(self, now: float) -> None:
        if self._pruned_at is not None and now - self._pruned_at < REFUSAL_WINDOW:
            return
        self._pruned_at = now
        for key, last in list(self._last.items()):
            if now - last >= REFUSAL_HELD_FOR:
                del self._last[key]
                if held := self._held.pop(key, 0):
                    self._held_in_stream[key[0]] = self._held_in_stream.get(key[0], 0) + held
        for stream, (start, _count) in list(self._windows.items()):
            if now - start >= REFUSAL_WINDOW:
                del self._windows[stream]


def refusal_limiter(request: Request) -> RefusalLimiter:
    """The app's limiter (one per process; a test may set ``app.state.refusals`` with its own clock)."""
    state = request.app.state
    if not isinstance(state.get("refusals"), RefusalLimiter):
        state.refusals = RefusalLimiter()
    return state.refusals


def _refusal_of(request: Request, exc: Exception) -> Refusal | None:
    refusal = getattr(exc, "refusal", None)
    if refusal is None and getattr(exc, "status_code", None) == 403:
        refusal = Refusal("access.denied", f"{request.method} {request.url.path}"[:300])
    return refusal


def _with_refusal_recorded(response: Response, request: Request, exc: Exception) -> Response:
    """The answer unchanged; its refusal (if any) recorded once the answer is sent."""
    if _refusal_of(request, exc) is not None:
        response.background = BackgroundTask(record_refusal, request, exc)
    return response


async def _stream_of(request: Request, refusal: Refusal, principal: Any) -> str:
    """The refusal's own stream, else the tenant named in the path when it exists, else ``platform``."""
    if refusal.stream:
        return refusal.stream
    slug = (request.scope.get("path_params") or {}).get("slug")
    if not isinstance(slug, str) or not slug:
        return PLATFORM
    if principal is not None and slug == principal.tenant_slug:
        return slug
    async with request.app.state.db.control_autocommit() as session:
        return slug if await plugins.tenant_directory().id_of(session, slug) is not None else PLATFORM


async def record_refusal(request: Request, exc: Exception) -> None:
    """Append the audit entry of a refused request (a 403, or an error carrying a :class:`Refusal`)
    in its own transaction. Best effort: any failure is logged, never raised."""
    try:
        refusal = _refusal_of(request, exc)
        if refusal is None:
            return
        principal = request.scope.get("user")
        actor = principal if principal is not None else ANONYMOUS
        stream = await _stream_of(request, refusal, principal)
        counts = refusal_limiter(request).admit(stream, actor.actor, refusal.action, refusal.target)
        if counts is None:
            return
        data = {
            "reason": str(getattr(exc, "message", None) or getattr(exc, "detail", "") or "")[:1000],
            "status": getattr(exc, "status_code", None),
            "code": getattr(exc, "code", None) or "forbidden",
            "client": request.client.host if request.client else None,
            **refusal.data,
            **counts,
        }
        async with request.app.state.db.control_transaction() as session:
            await plugins.audit_log()(
                session,
                stream=stream,
                actor=actor,
                action=refusal.action,
                target=refusal.target,
                data=data,
                request_id=request.scope.get("request_id"),
            )
    except Exception as error:  # evidence is best effort: the refusal's answer stands regardless
        structlog.get_logger("bpo.audit").warning(
            "refusal_not_recorded", path=request.url.path, error=type(error).__name__
        )


def internal_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered without internals."""

    structlog.get_logger("bpo.error").error("unhandled", path=request.url.path, exc_info=exc)
    return problem(
        500,
        {
            "status": 500,
            "code": "internal_error",
            "detail": "Something went wrong on our side",
            "request_id": request.scope.get("request_id"),
        },
        request=request,
    )


RETRY_AFTER_SECONDS = 1


def is_database_fault(exc: BaseException) -> bool:
    """A database error the client did not cause: the connection was lost or refused, the database is
    read-only, full, shutting down, or a lock or serialization timed out. Integrity and data errors
    (the request's own values) and programming errors (ours) are not faults of this kind."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.InternalError)
        )
    return isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError, psycopg.OperationalError))


def database_fault_handler(request: Request, exc: Exception) -> Response:
    """A database fault is 503 ``retry_later`` with ``Retry-After``: the request's transaction was
    rolled back, so sending it again is safe (ingest answers its own ``ingest_interrupted``)."""
    if not is_database_fault(exc):
        return internal_error_handler(request, exc)

    structlog.get_logger("bpo.error").warning(
        "database_fault", path=request.url.path, error=type(getattr(exc, "orig", None) or exc).__name__
    )
    return problem(
        503,
        {
            "status": 503,
            "code": "retry_later",
            "detail": "A database is unavailable for a moment; nothing of this request was kept. Send it again.",
            "retry": "safe",
            "request_id": request.scope.get("request_id"),
        },
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        request=request,
    )


EXCEPTION_HANDLERS = {
    Exception: internal_error_handler,
    sa_exc.DBAPIError: database_fault_handler,
    sa_exc.TimeoutError: database_fault_handler,
    sa_exc.DisconnectionError: database_fault_handler,
    psycopg.OperationalError: database_fault_handler,
    DomainError: domain_error_handler,
    LitestarValidation: validation_error_handler,
    HTTPException: http_error_handler,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "Conflict",
    "DomainError",
    "FieldCollector",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "LitestarNotFound",
    "NotFound",
    "PermissionDeniedException",
    "Refusal",
    "RefusalLimiter",
    "TooManyRequests",
    "Unauthenticated",
]
