"""Who is calling and what they may do: roles, scopes, principals, and the one guard that decides.

A request is authenticated by exactly one of: a browser session (server-side, see
``control_plane.signin``), a bearer token issued by ``bpoctl token issue``, or a tenant API key.
A merchant's session or token stops working when its tenant is offboarded; while it is suspended
it may read (GET) but not change anything: the merchant must still see its invoices and reports to
settle what got it suspended. Route handlers declare what they allow in ``opt``: ``public``,
``roles`` and, for API keys, ``scopes``.
The guard :func:`authorize` applies it uniformly, in this order: 401 (who are you), 404 (a
tenant-bound caller naming another tenant), 403 (what you may do).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import plugins
from control_plane.database import Databases, utcnow
from control_plane.models import BearerToken, User, UserSession

log = logging.getLogger(__name__)


class Role(StrEnum):
    platform_admin = "platform_admin"
    account_manager = "account_manager"
    compliance_officer = "compliance_officer"
    merchant_admin = "merchant_admin"
    merchant_viewer = "merchant_viewer"


class ApiScope(StrEnum):
    contacts_write = "contacts:write"
    sla_read = "sla:read"
    invoices_read = "invoices:read"


STAFF_ROLES = frozenset({Role.platform_admin, Role.account_manager, Role.compliance_officer})
MERCHANT_ROLES = frozenset({Role.merchant_admin, Role.merchant_viewer})
ONBOARDING = (Role.platform_admin, Role.account_manager)
STAFF = tuple(STAFF_ROLES)
EVERYONE = (*STAFF_ROLES, *MERCHANT_ROLES)
API_KEY_ROLE = "api_key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_USE_EVERY = timedelta(seconds=60)  # resolution of a key's or token's recorded last use


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" | "token" | "api_key"
    subject: str  # e-mail, token prefix or key prefix
    role: str
    tenant_id: uuid.UUID | None = None
    tenant_slug: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: uuid.UUID | None = None
    tenant_status: str | None = None  # of a tenant-bound user or token

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.subject}"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def tenant_bound(self) -> bool:
        return not self.is_staff


def hash_secret(secret: str) -> str:
    """Secrets we issue are 256-bit random: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind: str) -> tuple[str, str]:
    """``(prefix, secret)`` such as ``("bpo_live_ab12cd34", "bpo_live_ab12cd34_…")``."""
    prefix = f"bpo_{kind}_{secrets.token_hex(4)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(secret: str) -> str:
    parts = secret.split("_")
    return "_".join(parts[:3]) if len(parts) >= 4 else ""


async def authenticate_bearer(db: Databases, secret: str) -> Principal | None:
    """A token or API key's principal, recording its last use (to the minute); ``None`` when unknown or revoked."""
    prefix = prefix_of(secret)
    if not prefix:
        return None
    digest = hash_secret(secret)
    now = utcnow()
    # One SELECT, and at most once a minute one UPDATE of last use: each commits by itself.
    async with db.control_autocommit() as session:
        principal, used = await _bearer_principal(session, prefix, digest, now)
        if used is not None and (used.last_used_at is None or now - used.last_used_at >= LAST_USE_EVERY):
            await _record_last_use(session, used, now)
    return principal


async def _bearer_principal(session, prefix: str, digest: str, now) -> tuple[Principal | None, Any]:
    """The principal of a token or key and its row (for its last use); ``(None, None)`` when unknown or
    revoked. Bearer tokens are the kernel's; other credentials (tenant API keys) are resolved by the
    domain that issues them (``control_plane.plugins.credential_resolver``)."""
    if prefix.startswith("bpo_tok_"):
        token = (await session.execute(sa.select(BearerToken).where(BearerToken.prefix == prefix))).scalar()
        if token is None or token.revoked_at is not None or not hmac.compare_digest(token.secret_hash, digest):
            return None, None
        if token.expires_at is not None and token.expires_at <= now:
            return None, None
        slug = status = None
        if token.tenant_id is not None:
            slug, status = await plugins.tenant_directory().slug_and_status(session, token.tenant_id)
            if status == "offboarded":
                return None, None
        return Principal("token", prefix, token.role, token.tenant_id, slug, tenant_status=status), token
    resolve = plugins.credential_resolver(prefix)
    return (None, None) if resolve is None else await resolve(session, prefix, digest, now)


async def _record_last_use(session, row: Any, now) -> None:
    """Best effort: a control database that refuses the write (read-only, full, busy, gone) must not
    fail the request that the credential authenticates; the next use a minute on tries again."""
    model = type(row)
    try:
        await session.execute(sa.update(model).where(model.id == row.id).values(last_used_at=now))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("last use of %s not recorded: %s", row.prefix, type(exc).__name__)


SEEN_EVERY = timedelta(seconds=60)  # resolution of a session's recorded last activity


async def session_principal(session: AsyncSession, token: str, now: datetime | None = None) -> Principal | None:
    """The principal of a live session; ``None`` when unknown, ended, expired, or its user inactive."""
    now = now or utcnow()
    row = (
        await session.execute(
            sa.select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == hash_secret(token))
        )
    ).first()
    if row is None:
        return None
    live, user = row
    if live.ended_at is not None or live.expires_at <= now or not user.active:
        return None
    if now - live.last_seen_at >= SEEN_EVERY:
        await _record_last_seen(session, live.id, now)
    slug = status = None
    if user.tenant_id is not None:
        slug, status = await plugins.tenant_directory().slug_and_status(session, user.tenant_id)
    return Principal("user", user.email, user.role, user.tenant_id, slug, user_id=user.id, tenant_status=status)


async def _record_last_seen(session: AsyncSession, session_id: uuid.UUID, now: datetime) -> None:
    """Best effort, like a token's last use: a database that refuses the write does not sign anyone out."""
    try:
        await session.execute(sa.update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("last activity of a session not recorded: %s", type(exc).__name__)


async def principal_for_session(db: Databases, token: str) -> Principal | None:
    async with db.control_autocommit() as session:
        principal = await session_principal(session, token)
    if principal is None or principal.tenant_status == "offboarded":
        return None
    return principal


class AuthenticationMiddleware:
    """Sets ``scope["user"]`` to the caller's :class:`Principal`, or ``None``; never refuses.

    A browser session authenticates pages and safe API reads only: unsafe API calls need a bearer
    token or an API key, so CSRF protection is needed on forms and nowhere else.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["user"] = await self._principal(scope)
            scope["auth"] = None
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal | None:
        db: Databases = scope["app"].state.db
        headers = dict(scope.get("headers") or [])
        authz = headers.get(b"authorization", b"").decode(errors="replace")
        if authz:
            scheme, _, credential = authz.partition(" ")
            if scheme.lower() != "bearer" or not credential:
                return None
            return await authenticate_bearer(db, credential.strip())
        session = scope.get("session") or {}
        sid = session.get("sid") if isinstance(session, dict) else None
        if not sid or not isinstance(sid, str):
            return None
        if scope["path"].startswith("/api/") and scope.get("method", "GET") not in SAFE_METHODS:
            return None
        return await principal_for_session(db, sid)


def route_policy(handler: BaseRouteHandler) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    opt = handler.opt or {}
    return bool(opt.get("public")), tuple(opt.get("roles", ())), tuple(opt.get("scopes", ()))


def authorize(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The one guard: 401, then 404 for another tenant, then 403."""
    public, roles, scopes = route_policy(handler)
    # OPTIONS says which methods exist (and carries CORS preflights): it reveals and changes nothing.
    if public or connection.scope.get("method") == "OPTIONS":
        return
    principal: Principal | None = connection.scope.get("user")
    if principal is None:
        raise NotAuthorizedException("sign in, or send a bearer token or an API key")
    slug = connection.path_params.get("slug")
    if slug is not None and principal.tenant_bound and slug != principal.tenant_slug:
        raise NotFoundException(f"no tenant {slug!r}")
    if principal.tenant_status == "suspended" and connection.scope.get("method", "GET") not in SAFE_METHODS:
        raise PermissionDeniedException(f"tenant {principal.tenant_slug} is suspended: its users may read, not change")
    if principal.kind == "api_key":
        if not scopes or not principal.scopes.intersection(scopes):
            raise PermissionDeniedException(
                f"this API key lacks the scope this route needs ({', '.join(scopes) or 'staff or user only'})"
            )
        return
    if principal.role not in roles:
        raise PermissionDeniedException(f"role {principal.role} may not do this")


def policy(
    *, roles: tuple[str, ...] = (), scopes: tuple[str, ...] = (), public: bool = False, raw_body: bool = False
) -> dict[str, object]:
    """The ``opt`` of a route handler: ``@get(..., opt=policy(roles=STAFF))``. ``raw_body``: the handler
    reads and checks its own body (``control_plane.bodies``)."""
    opt: dict[str, object] = {"roles": tuple(str(r) for r in roles), "scopes": tuple(str(s) for s in scopes)}
    return opt | {"public": public, "raw_body": raw_body}


def new_expiry(days: int | None) -> datetime | None:
    return None if days is None else utcnow() + timedelta(days=days)
