"""Routes for people and credentials: the users API and pages, invitation and reset links, the
caller's own account (password, two-factor), and bearer tokens (list, revoke)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, post, put
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import identity, plugins, service, signin
from control_plane.auth import ONBOARDING, Principal, Role, policy
from control_plane.controllers import FORM, form_errors, safe_next
from control_plane.errors import Conflict, DomainError, InvalidInput, NotFound
from control_plane.models import User
from control_plane.navigation import notify
from control_plane.settings import Settings

MANAGERS = policy(roles=(*ONBOARDING, Role.merchant_admin))
ADMIN = policy(roles=(Role.platform_admin,))


def _user_json(user: User, tenant: str | None, link: identity.IssuedLink | None = None) -> dict[str, Any]:
    body = {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "tenant": tenant,
        "status": identity.status_of(user),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }
    if link is not None:
        body |= {"invitation_url": link.url, "invitation_expires_at": link.expires_at.isoformat()}
    return body


# --- API ----------------------------------------------------------------------------------------
@post("/api/v1/users", opt=MANAGERS, tags=["users"], status_code=201)
async def create_user(
    session: AsyncSession, principal: Principal, settings: Settings, data: dict[str, Any]
) -> dict[str, Any]:
    """Invite a user: the answer carries a one-time ``invitation_url`` (72 h) to set a password."""
    user, link = await identity.invite_user(session, principal, data, public_url=settings.public_url)
    return _user_json(user, data.get("tenant"), link)


@get("/api/v1/users", opt=MANAGERS, tags=["users"])
async def list_users(session: AsyncSession, principal: Principal, tenant: str | None = None) -> list[dict[str, Any]]:
    if principal.tenant_bound:
        tenant = principal.tenant_slug
    return [_user_json(u, slug) for u, slug in await identity.list_users(session, principal, tenant)]


@post("/api/v1/users/{user_id:str}/invitation", opt=MANAGERS, tags=["users"], status_code=201)
async def resend_invitation(
    session: AsyncSession, principal: Principal, settings: Settings, user_id: str
) -> dict[str, Any]:
    """A new invitation link; the earlier one stops working."""
    user = await identity.managed_user(session, principal, user_id)
    link = await identity.issue_link(session, principal, user, "invitation", public_url=settings.public_url)
    return _user_json(user, await identity.tenant_slug_of(session, user), link)


@post("/api/v1/users/{user_id:str}/password-reset", opt=MANAGERS, tags=["users"], status_code=201)
async def password_reset(
    session: AsyncSession, principal: Principal, settings: Settings, user_id: str
) -> dict[str, Any]:
    """A one-time password-reset link (24 h) to hand to the user."""
    user = await identity.managed_user(session, principal, user_id)
    link = await identity.issue_link(session, principal, user, "reset", public_url=settings.public_url)
    return {"id": str(user.id), "email": user.email, "reset_url": link.url, "expires_at": link.expires_at.isoformat()}


@put("/api/v1/users/{user_id:str}/role", opt=MANAGERS, tags=["users"])
async def change_role(session: AsyncSession, principal: Principal, user_id: str, data: dict[str, Any]) -> dict:
    user = await identity.change_role(session, principal, user_id, str(data.get("role", "")))
    return _user_json(user, await identity.tenant_slug_of(session, user))


@post("/api/v1/users/{user_id:str}/deactivate", opt=MANAGERS, tags=["users"], status_code=200)
async def deactivate_user(session: AsyncSession, principal: Principal, user_id: str) -> dict[str, Any]:
    """No more sign-in: the user's sessions end and its tokens are revoked at once."""
    user = await identity.deactivate_user(session, principal, await identity.managed_user(session, principal, user_id))
    return _user_json(user, await identity.tenant_slug_of(session, user))


@get("/api/v1/tokens", opt=ADMIN, tags=["users"])
async def list_tokens(session: AsyncSession) -> list[dict[str, Any]]:
    return [_token_json(t, slug) for t, slug in await service.list_tokens(session)]


@delete("/api/v1/tokens/{token_id:str}", opt=ADMIN, tags=["users"], status_code=200)
async def revoke_token(session: AsyncSession, principal: Principal, token_id: str) -> dict[str, Any]:
    token = await service.revoke_token(session, principal, token_id)
    return _token_json(token, None)


def _token_json(t: Any, slug: str | None) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "prefix": t.prefix,
        "role": t.role,
        "tenant": slug,
        "label": t.label,
        "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
    }


# --- pages: users --------------------------------------------------------------------------------
async def _users_page(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant: str | None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    rows = [(u, slug, identity.status_of(u)) for u, slug in await identity.list_users(session, principal, tenant)]
    admin = principal.role == Role.platform_admin
    roles = identity.invitable_roles(principal)
    return Template(
        "users.html",
        status_code=status_code,
        context={
            "principal": principal,
            "tenant": tenant,
            "rows": rows,
            "roles": roles,
            "errors": errors or {},
            "values": values or {},
            "tokens": await service.list_tokens(session) if admin and tenant is None else [],
            "totp_required": await signin.totp_required_for_staff(session) if admin else False,
            "back": f"/tenants/{tenant}/users" if tenant else "/users",
        },
    )


@get("/users", opt=policy(roles=ONBOARDING), include_in_schema=False)
async def users_page(session: AsyncSession, principal: Principal) -> Template:
    return await _users_page(session, principal, tenant=None)


@get("/tenants/{slug:str}/users", opt=MANAGERS, include_in_schema=False)
async def tenant_users_page(session: AsyncSession, principal: Principal, slug: str) -> Template:
    if await plugins.tenant_directory().id_of(session, slug) is None:
        raise NotFound(f"no tenant {slug!r}")
    return await _users_page(session, principal, tenant=slug)


@post("/users", opt=MANAGERS, include_in_schema=False)
async def invite_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    tenant = principal.tenant_slug if principal.tenant_bound else (data.get("tenant") or "").strip() or None
    body = {
        "email": data.get("email", ""),
        "name": data.get("name", ""),
        "role": data.get("role", ""),
        "tenant": tenant,
    }
    try:
        user, link = await identity.invite_user(session, principal, body, public_url=settings.public_url)
    except DomainError as exc:
        await session.rollback()
        page_tenant = tenant if data.get("scope") == "tenant" else None
        return await _users_page(
            session, principal, tenant=page_tenant, errors=form_errors(exc), values=data, status_code=exc.status_code
        )
    notify(request, f"Invited {user.email}. Send them this one-time link (valid 72 hours): {link.url}", "invitation")
    return Redirect(_back(data, tenant))


def _back(data: dict[str, str], tenant: str | None) -> str:
    return safe_next(data.get("back") or (f"/tenants/{tenant}/users" if tenant else "/users"))


async def _user_action(request: Request, session: AsyncSession, data: dict[str, str], action: Any) -> Redirect:
    """Run one change on a user; its message (or its refusal) is flashed on the page we return to."""
    try:
        message = await action()
        notify(request, message)
    except (Conflict, InvalidInput) as exc:
        await session.rollback()
        notify(request, "; ".join(form_errors(exc).values()), "error")
    return Redirect(safe_next(data.get("back") or "/users"))


async def _link_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    user_id: str,
    data: dict[str, str],
    purpose: str,
) -> Redirect:
    """Issue a new one-time link (invitation or reset) and show it on the page we return to."""

    async def act() -> str:
        user = await identity.managed_user(session, principal, user_id)
        link = await identity.issue_link(session, principal, user, purpose, public_url=settings.public_url)
        if purpose == "invitation":
            return f"New invitation for {user.email} (the earlier link no longer works): {link.url}"
        return f"Password reset link for {user.email} (valid 24 hours): {link.url}"

    return await _user_action(request, session, data, act)


@post("/users/{user_id:str}/invitation", opt=MANAGERS, include_in_schema=False)
async def resend_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    user_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Redirect:
    return await _link_form(request, session, principal, settings, user_id, data, "invitation")


@post("/users/{user_id:str}/password-reset", opt=MANAGERS, include_in_schema=False)
async def reset_form(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    user_id: str,
    data: Annotated[dict[str, str], FORM],
) -> Redirect:
    return await _link_form(request, session, principal, settings, user_id, data, "reset")


@post("/users/{user_id:str}/role", opt=MANAGERS, include_in_schema=False)
async def role_form(
    request: Request, session: AsyncSession, principal: Principal, user_id: str, data: Annotated[dict[str, str], FORM]
) -> Redirect:
    async def act() -> str:
        user = await identity.change_role(session, principal, user_id, data.get("role", ""))
        return f"{user.email} is now {user.role}."

    return await _user_action(request, session, data, act)


@get("/users/{user_id:str}/deactivate", opt=MANAGERS, include_in_schema=False)
async def deactivate_confirm(session: AsyncSession, principal: Principal, user_id: str, back: str = "") -> Template:
    user = await identity.managed_user(session, principal, user_id)
    return Template(
        "confirm.html",
        context={
            "title": f"Deactivate {user.email}?",
            "detail": "They can no longer sign in; their open sessions end and their tokens are revoked at once.",
            "action": f"/users/{user.id}/deactivate",
            "button": "Deactivate",
            "danger": True,
            "back": safe_next(back or "/users"),
            "fields": [],
        },
    )


@post("/users/{user_id:str}/deactivate", opt=MANAGERS, include_in_schema=False)
async def deactivate_form(
    request: Request, session: AsyncSession, principal: Principal, user_id: str, data: Annotated[dict[str, str], FORM]
) -> Redirect:
    async def act() -> str:
        user = await identity.managed_user(session, principal, user_id)
        await identity.deactivate_user(session, principal, user, data.get("reason", ""))
        return f"{user.email} is deactivated; their sessions and tokens ended."

    return await _user_action(request, session, data, act)


@post("/tokens/{token_id:str}/revoke", opt=ADMIN, include_in_schema=False)
async def revoke_token_form(request: Request, session: AsyncSession, principal: Principal, token_id: str) -> Redirect:
    token = await service.revoke_token(session, principal, token_id)
    notify(request, f"Token {token.prefix} is revoked.")
    return Redirect("/users")


@post("/platform/two-factor", opt=ADMIN, include_in_schema=False)
async def require_totp_form(
    request: Request, session: AsyncSession, principal: Principal, data: Annotated[dict[str, str], FORM]
) -> Redirect:
    required = data.get("required") == "1"
    await signin.set_totp_required_for_staff(session, principal, required)
    notify(request, "Staff must now use a second factor." if required else "A second factor is optional for staff.")
    return Redirect("/users")


ROUTES = [
    create_user,
    list_users,
    resend_invitation,
    password_reset,
    change_role,
    deactivate_user,
    list_tokens,
    revoke_token,
    users_page,
    tenant_users_page,
    invite_form,
    resend_form,
    reset_form,
    role_form,
    deactivate_confirm,
    deactivate_form,
    revoke_token_form,
    require_totp_form,
]
