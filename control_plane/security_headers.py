"""Secure web defaults on every response: what a browser may do with what we send.

Every response: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``; with secure
cookies on (``BPO_SECURE_COOKIES=1``, i.e. behind HTTPS) also HSTS. HTML responses: a strict
Content-Security-Policy (scripts only from this origin and none inline; no framing, no plugins, forms
post only here) and ``X-Frame-Options: DENY`` for older browsers. Inline ``style`` attributes stay
allowed: they cannot run code. The server banner is off where uvicorn is started (``bpoctl serve``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(*, secure: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """A ``before_send`` hook: it sees every response, unrouted 404s included."""

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        if secure:
            headers["Strict-Transport-Security"] = HSTS
        if headers.get("content-type", "").startswith("text/html"):
            headers["Content-Security-Policy"] = CSP
            headers["X-Frame-Options"] = "DENY"

    return add_headers
