"""Typed failures raised by services, and the one place that maps them to HTTP problem JSON."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.exceptions import NotFoundException as LitestarNotFound
from litestar.exceptions import ValidationException as LitestarValidation
from litestar.response import Redirect, Template
from sqlalchemy import exc as sa_exc


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

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
    return problem(exc.status_code, exc.body() | {"request_id": request.scope.get("request_id")}, headers, request)


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
    return problem(
        exc.status_code,
        {"status": exc.status_code, "code": code, "detail": exc.detail, "request_id": request.scope.get("request_id")},
        headers=exc.headers,
        request=request,
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
    "TooManyRequests",
    "Unauthenticated",
]
