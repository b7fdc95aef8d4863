"""Operations routes, sign-in (password and OIDC), sign-out, users and the caller's identity."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlparse

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import service, signin
from control_plane.auth import EVERYONE, Principal, policy
from control_plane.database import utcnow
from control_plane.errors import DomainError, InvalidInput
from control_plane.identity import totp_aad
from control_plane.keyring import KeyRing
from control_plane.models import User
from control_plane.oidc import OIDCClient, OIDCError
from control_plane.plugins import readiness_checks
from control_plane.settings import Settings

PUBLIC = policy(public=True)
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")  # RFC 6749 error codes; anything else is not echoed


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after sign-in would be a phishing aid."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or urlparse(target).netloc:
        return "/"
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


# --- pages: sign-in --------------------------------------------------------------------------
@get("/", opt=PUBLIC, include_in_schema=False)
async def home(request: Request) -> Redirect:
    """Staff land on the tenant list, a merchant on its own tenant."""
    who: Principal | None = request.scope.get("user")
    if who is None:
        return Redirect("/login")
    if who.tenant_bound and who.tenant_slug:
        return Redirect(f"/tenants/{who.tenant_slug}")
    return Redirect("/tenants")


@get("/login", opt=PUBLIC, include_in_schema=False)
async def login_page(settings: Settings, next: str | None = None, email: str | None = None) -> Template:
    return _login_page(settings, safe_next(next), email=email or "")


def _client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _login_page(
    settings: Settings, next_path: str, *, error: str | None = None, email: str = "", step: str = "password", **kw: Any
) -> Template:
    status = kw.pop("status_code", 200)
    return Template(
        "login.html",
        status_code=status,
        headers=kw.pop("headers", None),
        context={"oidc": settings.oidc.enabled, "next": next_path, "error": error, "email": email, "step": step},
    )


async def signed_in(request: Request, session: AsyncSession, user: Any, method: str, next_path: str) -> Redirect:
    token = await signin.start_session(
        session, user, method=method, address=_client_address(request), user_agent=request.headers.get("user-agent", "")
    )
    request.set_session({"sid": token})  # a new cookie value: no session fixation
    return Redirect(next_path)


def _refused(settings: Settings, next_path: str, outcome: signin.SignInOutcome, email: str) -> Template:
    if outcome.retry_after is not None:
        return _login_page(
            settings,
            next_path,
            email=email,
            error=f"Too many failed sign-ins. Try again in {outcome.retry_after} seconds.",
            status_code=429,
            headers={"Retry-After": str(outcome.retry_after)},
        )
    return _login_page(settings, next_path, email=email, error="Email or password is wrong.", status_code=401)


@post("/login", opt=PUBLIC, include_in_schema=False)
async def login_submit(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    keyring: KeyRing,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    """Step one: e-mail and password (throttled). Step two, for users with a TOTP factor: the code."""
    next_path = safe_next(data.get("next"))
    pending = (request.session or {}).get("pending") if isinstance(request.session, dict) else None
    if pending and "code" in data:
        user = await session.get(User, uuid.UUID(pending["user"]))
        if user is None or pending["until"] < utcnow().timestamp() or not user.totp_secret:
            request.clear_session()
            return _login_page(settings, next_path, error="The sign-in took too long; start again.", status_code=401)
        secret = keyring.decrypt(user.totp_secret, totp_aad(user.id)).decode()
        outcome = await signin.check_code(session, user, secret, data.get("code", ""), address=_client_address(request))
        if outcome.user is None:
            if outcome.retry_after is not None:
                request.clear_session()
                return _refused(settings, next_path, outcome, user.email)
            return _login_page(settings, next_path, step="code", error="This code is not right.", status_code=401)
        return await signed_in(request, session, user, "password+totp", next_path)

    email = data.get("email", "")
    outcome = await signin.sign_in_with_password(
        session, email, data.get("password", ""), address=_client_address(request)
    )
    if outcome.user is None:
        return _refused(settings, next_path, outcome, email)
    if outcome.needs_code:
        request.set_session({"pending": {"user": str(outcome.user.id), "until": utcnow().timestamp() + 300}})
        return _login_page(settings, next_path, step="code", email=email)
    if outcome.needs_enrolment:
        request.set_session({"enrol": {"user": str(outcome.user.id), "until": utcnow().timestamp() + 600}})
        return Redirect("/sign-in/two-factor")
    return await signed_in(request, session, outcome.user, "password", next_path)


@post("/logout", opt=policy(roles=EVERYONE), include_in_schema=False)
async def logout(request: Request, session: AsyncSession) -> Redirect:
    sid = request.session.get("sid") if isinstance(request.session, dict) else None
    if sid:
        await signin.end_session(session, sid, "signed_out")
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
        "login.html",
        status_code=status_code,
        context={"oidc": True, "next": "/", "error": message, "email": "", "step": "password"},
    )


def form_errors(exc: DomainError) -> dict[str, str]:
    """A refusal as a form shows it: each field's sentence under its name, the rest under ``_form``."""
    if isinstance(exc, InvalidInput):
        return {e.field: e.message for e in exc.errors}
    return {"_form": exc.message}


@get("/auth/oidc/login", opt=PUBLIC, include_in_schema=False)
async def oidc_login(request: Request, next: str | None = None) -> Redirect | Template:
    try:
        url, pending = await _oidc(request).authorization_request()
    except OIDCError as exc:
        return _sign_in_refused(f"Single sign-on is unavailable: {exc}", 503)
    request.set_session({"oidc": pending | {"next": safe_next(next)}})
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
    return await signed_in(request, session, user, "oidc", safe_next(pending.get("next")))


ROUTES = [health, ready, me, home, login_page, login_submit, logout, oidc_login, oidc_callback]
