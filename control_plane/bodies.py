"""The one gate for request bodies of the JSON API, before any handler runs.

Every POST, PUT, PATCH and DELETE under ``/api/`` passes here: a ``Content-Encoding`` other than
identity is 415 (nothing here inflates bodies); a body that is not declared JSON is 415; a JSON body
must be UTF-8, valid JSON without ``NaN``/``Infinity``, nested at most ``MAX_DEPTH`` levels and at most
``MAX_BYTES`` long (400, 413). Each refusal is problem JSON that says what was wrong. Routes that read
their own body as a stream with their own limit (contact ingest, signed webhooks: the signature is
over the raw bytes) say ``opt={"raw_body": True}``; for them only the headers are checked here, and
their own decoder answers malformed bodies.
"""

from __future__ import annotations

import json
from typing import Any

from litestar.datastructures import Headers
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.errors import DomainError

MAX_DEPTH = 32
MAX_BYTES = 2 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class MalformedBody(DomainError):
    status_code = 400
    code = "malformed_json"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class BodyTooLarge(DomainError):
    status_code = 413
    code = "too_large"


def _refuse_constant(name: str) -> Any:
    raise MalformedBody(f"the body holds {name}, which is not JSON: send numbers as numbers or strings")


def check_json(body: bytes) -> None:
    """Raise :class:`MalformedBody` unless ``body`` is UTF-8 JSON of sane depth."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not UTF-8 (invalid byte at offset {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedBody(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise MalformedBody(f"the body is not valid JSON ({exc})") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedBody(f"the body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


class BodyGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            refusal = UnsupportedMediaType(
                f"Content-Encoding {encoding!r} is not accepted: send the body uncompressed",
                code="unsupported_content_encoding",
            )
            refusal.headers = {"Accept-Encoding": "identity"}  # RFC 7694: what the server accepts
            raise refusal
        handler = scope.get("route_handler")
        if handler is not None and (handler.opt or {}).get("raw_body"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BYTES:
                raise BodyTooLarge(f"a request body holds at most {MAX_BYTES} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body.strip():
            if not _is_json(headers.get("content-type", "")):
                raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")
            check_json(body)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
