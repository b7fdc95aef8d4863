"""Operations routes, sign-in (password and OIDC), sign-out, users and the caller's identity."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlparse

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import service
from control_plane.auth import EVERYONE, Principal, Role, policy
from control_plane.errors import DomainError, Unauthenticated
from control_plane.oidc import OIDCClient, OIDCError
from control_plane.plugins import readiness_checks
from control_plane.settings import Settings

PUBLIC = policy(public=True)
_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")  # RFC 6749 error codes; anything else is not echoed


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after sign-in would be a phishing aid."""
    if not target or not target.startswith("/") or target.startswith("//") or urlparse(target).netloc:
        return "/tenants"
    return target


@get("/health", opt=PUBLIC, tags=["operations"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", opt=PUBLIC, tags=["operations"])
async def ready(state: State) -> Any:
    """503 unless every database takes a write and every registered check (e.g. rollup lag) passes."""

    checks = await state.db.check()
    for check in readiness_checks():
        try:
            name, outcome = await check(state)
        except Exception as exc:  # readiness reports, it never raises
            name, outcome = getattr(check, "__name__", "check"), f"error: {type(exc).__name__}"
        checks[name] = outcome
    ok = all(v == "ok" for v in checks.values())
    return Response({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


@get("/api/v1/me", opt=policy(roles=EVERYONE, scopes=("contacts:write", "sla:read", "invoices:read")), tags=["auth"])
async def me(principal: Principal) -> dict[str, Any]:
    return {
        "actor": principal.actor,
        "role": principal.role,
        "tenant": principal.tenant_slug,
        "scopes": sorted(principal.scopes),
    }


@post("/api/v1/users", opt=policy(roles=(Role.platform_admin,)), tags=["auth"])
async def create_user(session: AsyncSession, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    user = await service.create_user(session, principal, data)
    return {"id": str(user.id), "email": user.email, "role": user.role}


@get("/api/v1/users", opt=policy(roles=(Role.platform_admin,)), tags=["auth"])
async def list_users(session: AsyncSession) -> list[dict[str, Any]]:
    return [
        {
            "id": str(u.id),
            "email": u.email,
            "role": u.role,
            "active": u.active,
            "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
        }
        for u in await service.list_users(session)
    ]


# --- pages: sign-in --------------------------------------------------------------------------
@get("/", opt=PUBLIC, include_in_schema=False)
async def home(request: Request) -> Redirect:
    return Redirect("/tenants" if request.scope.get("user") else "/login")


@get("/login", opt=PUBLIC, include_in_schema=False)
async def login_page(settings: Settings, next: str | None = None, error: str | None = None) -> Template:
    return Template(
        "login.html", context={"oidc": settings.oidc.enabled, "next": _safe_next(next), "error": error, "email": ""}
    )


@post("/login", opt=PUBLIC, include_in_schema=False)
async def login_submit(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Any:
    try:
        user = await service.sign_in_with_password(session, data.get("email", ""), data.get("password", ""))
    except Unauthenticated as exc:
        return Template(
            "login.html",
            status_code=401,
            context={
                "oidc": settings.oidc.enabled,
                "next": _safe_next(data.get("next")),
                "error": exc.message,
                "email": data.get("email", ""),
            },
        )
    request.set_session({"user_id": str(user.id)})
    return Redirect(_safe_next(data.get("next")))


@post("/logout", opt=policy(roles=EVERYONE), include_in_schema=False)
async def logout(request: Request) -> Redirect:
    request.clear_session()
    return Redirect("/login")


def _oidc(request: Request) -> OIDCClient:
    state = request.app.state
    settings: Settings = state.settings
    if not settings.oidc.enabled:
        raise DomainError("single sign-on is not configured (BPO_OIDC_ISSUER, BPO_OIDC_CLIENT_ID)", code="sso_off")
    if state.oidc is None:
        state.oidc = OIDCClient(settings.oidc, redirect_uri=f"{settings.public_url}/auth/oidc/callback")
    return state.oidc


def _sign_in_refused(message: str, status_code: int) -> Template:
    return Template(
        "login.html", status_code=status_code, context={"oidc": True, "next": "/tenants", "error": message, "email": ""}
    )


@get("/auth/oidc/login", opt=PUBLIC, include_in_schema=False)
async def oidc_login(request: Request, next: str | None = None) -> Redirect | Template:
    try:
        url, pending = await _oidc(request).authorization_request()
    except OIDCError as exc:
        return _sign_in_refused(f"Single sign-on is unavailable: {exc}", 503)
    request.set_session({"oidc": pending | {"next": _safe_next(next)}})
    return Redirect(url)


@get("/auth/oidc/callback", opt=PUBLIC, include_in_schema=False)
async def oidc_callback(
    request: Request,
    session: AsyncSession,
    code: str | None = None,
    oidc_state: Annotated[str | None, QueryParameter(name="state")] = None,
    error: str | None = None,
) -> Redirect | Template:
    client = _oidc(request)
    pending = (request.session or {}).get("oidc") or {}
    # One callback per sign-in attempt: whatever happens next, this state is never accepted again.
    request.clear_session()
    if error or not code:
        reason = (error if _OAUTH_ERROR.fullmatch(error) else "error") if error else "no code"
        return _sign_in_refused(f"The identity provider refused the sign-in ({reason})", 401)
    try:
        claims = await client.complete(code=code, state=oidc_state or "", pending=pending)
    except OIDCError as exc:
        return _sign_in_refused(f"Sign-in refused: {exc}", 401)
    try:
        user = await service.sign_in_with_oidc(session, claims, client.settings.issuer or "")
    except DomainError as exc:
        return _sign_in_refused(exc.message, exc.status_code)
    request.set_session({"user_id": str(user.id)})
    return Redirect(pending.get("next") or "/tenants")


ROUTES = [health, ready, me, create_user, list_users, home, login_page, login_submit, logout, oidc_login, oidc_callback]
