"""Structured JSON logs with a request id on every line of a request, and on its response.

`RequestIdMiddleware` also writes the access log: one ``"event": "request"`` line per request with
``timestamp``, ``request_id``, ``trace_id``, ``actor``, ``role``, ``tenant``, ``method``, ``route`` (the
template, never the path with its query string), ``status`` and ``duration_ms``; it puts the request id
and the caller's role and tenant on the request's span, answers the W3C ``traceparent`` and observes the
request latency histogram (control_plane.metrics).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace

from control_plane import telemetry
from control_plane.metrics import REQUEST_SECONDS

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class _CurrentStdout:
    """Whatever ``sys.stdout`` is when a line is written (test capture swaps it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stdout for our loggers and for libraries' stdlib loggers alike."""
    handler = logging.StreamHandler(_CurrentStdout())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*SHARED, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            *SHARED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )


log = structlog.get_logger("bpo.http")


def _role_and_tenant(scope: Scope) -> tuple[str | None, str | None]:
    principal = scope.get("user")
    tenant = (scope.get("path_params") or {}).get("slug") or getattr(principal, "tenant_slug", None)
    return getattr(principal, "role", None), tenant


def _span_attributes(scope: Scope, request_id: str) -> dict[str, str]:
    """What the request's span says about it: never the actor's name, a secret or the query string."""
    role, tenant = _role_and_tenant(scope)
    return {"bpo.request_id": request_id, "bpo.role": role or "anonymous", "bpo.tenant": tenant or ""}


class RequestIdMiddleware:
    """Binds a request id (the caller's ``X-Request-ID`` when well-formed) and logs each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode(errors="replace")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        scope["request_id"] = request_id
        span = trace.get_current_span()  # the server span (telemetry.server_spans wraps this middleware)
        trace_id, _ = telemetry.current_ids()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500}
        parent = telemetry.traceparent()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if span.is_recording():  # before the body: the ASGI instrumentation ends the span with it
                    span.set_attributes(_span_attributes(scope, request_id))
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if parent:
                    headers.append((b"traceparent", parent.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or "(unmatched)"
            principal = scope.get("user")
            role, tenant = _role_and_tenant(scope)
            REQUEST_SECONDS.labels(route, scope.get("method", ""), str(status["code"])).observe(seconds)
            log.info(
                "request",
                trace_id=trace_id,
                actor=getattr(principal, "actor", None),
                role=role,
                tenant=tenant,
                method=scope.get("method"),
                route=route,
                status=status["code"],
                duration_ms=round(seconds * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
