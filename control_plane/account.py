"""Routes for one's own account: setting a password by an invitation or reset link (public pages),
changing it, and the TOTP second factor (enrolling from "My account", or at sign-in when a platform
admin requires it for staff)."""

from __future__ import annotations

import uuid
from typing import Annotated

import pyotp
from litestar import Request, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import identity, signin
from control_plane.auth import EVERYONE, Principal, policy
from control_plane.controllers import FORM, PUBLIC, form_errors, signed_in
from control_plane.database import utcnow
from control_plane.errors import InvalidInput, NotFound
from control_plane.keyring import KeyRing
from control_plane.models import User
from control_plane.navigation import notify

WRONG_CODE = "This code is not right; try the next one."


def _set_password_page(user: User, token: str, purpose: str, errors: dict | None = None, status: int = 200) -> Template:
    path = "invitations" if purpose == "invitation" else "password-reset"
    return Template(
        "set_password.html",
        status_code=status,
        context={
            "heading": "Welcome: choose your password" if purpose == "invitation" else "Choose a new password",
            "email": user.email,
            "action": f"/{path}/{token}",
            "errors": errors or {},
        },
    )


async def _link_page(session: AsyncSession, token: str, purpose: str) -> Template:
    return _set_password_page(await identity.open_link(session, token, purpose), token, purpose)


async def _link_submit(
    request: Request, session: AsyncSession, token: str, purpose: str, data: dict[str, str]
) -> Template | Redirect:
    try:
        user = await identity.redeem_link(session, token, purpose, data.get("password", ""), data.get("confirm", ""))
    except InvalidInput as exc:
        await session.rollback()
        user = await identity.open_link(session, token, purpose)
        return _set_password_page(user, token, purpose, form_errors(exc), 422)
    request.clear_session()
    notify(request, "Your password is set. Sign in with your e-mail address and the new password.")
    return Redirect(f"/login?email={user.email}")


@get("/invitations/{token:str}", opt=PUBLIC, include_in_schema=False)
async def invitation_page(session: AsyncSession, token: str) -> Template:
    return await _link_page(session, token, "invitation")


@post("/invitations/{token:str}", opt=PUBLIC, include_in_schema=False)
async def invitation_submit(
    request: Request, session: AsyncSession, token: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    return await _link_submit(request, session, token, "invitation", data)


@get("/password-reset/{token:str}", opt=PUBLIC, include_in_schema=False)
async def reset_page(session: AsyncSession, token: str) -> Template:
    return await _link_page(session, token, "reset")


@post("/password-reset/{token:str}", opt=PUBLIC, include_in_schema=False)
async def reset_submit(
    request: Request, session: AsyncSession, token: str, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    return await _link_submit(request, session, token, "reset", data)


# --- pages: my account ------------------------------------------------------------------------
async def _account_page(
    request: Request, session: AsyncSession, principal: Principal, errors: dict | None = None, status: int = 200
) -> Template:
    user = await session.get(User, principal.user_id) if principal.user_id else None
    if user is None:
        raise NotFound("this page is for people who sign in, not for tokens")
    setup = None
    if not user.totp_secret:
        secret = request.session.get("totp_setup") if isinstance(request.session, dict) else None
        if not secret:
            secret = pyotp.random_base32()
            request.session["totp_setup"] = secret
        setup = _totp_setup(user, secret)
    return Template(
        "account.html",
        status_code=status,
        context={
            "user": user,
            "setup": setup,
            "errors": errors or {},
            "required": identity.staff_role(user.role) and await signin.totp_required_for_staff(session),
        },
    )


@get("/account", opt=policy(roles=EVERYONE), include_in_schema=False)
async def account_page(request: Request, session: AsyncSession, principal: Principal) -> Template:
    return await _account_page(request, session, principal)


@post("/account/password", opt=policy(roles=EVERYONE), include_in_schema=False)
async def account_password(
    request: Request, session: AsyncSession, principal: Principal, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    try:
        user = await identity.change_password(
            session, principal.user_id, data.get("current", ""), data.get("password", ""), data.get("confirm", "")
        )
    except InvalidInput as exc:
        await session.rollback()
        return await _account_page(request, session, principal, form_errors(exc), 422)
    # Every session ended with the change, this one too: a fresh one for the person who changed it.
    return await signed_in(request, session, user, "password_change", "/account")


@post("/account/two-factor", opt=policy(roles=EVERYONE), include_in_schema=False)
async def account_totp(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    keyring: KeyRing,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    user = await session.get(User, principal.user_id)
    if data.get("action") == "disable":
        if identity.staff_role(user.role) and await signin.totp_required_for_staff(session):
            return await _account_page(request, session, principal, {"code": "Staff must keep a second factor."}, 409)
        await identity.set_totp_secret(session, keyring, user, None)
        notify(request, "Two-factor sign-in is off.")
        return Redirect("/account")
    secret = request.session.get("totp_setup", "") if isinstance(request.session, dict) else ""
    if not secret or not pyotp.TOTP(secret).verify(data.get("code", "").replace(" ", ""), valid_window=1):
        return await _account_page(request, session, principal, {"code": WRONG_CODE}, 422)
    await identity.set_totp_secret(session, keyring, user, secret)
    request.session.pop("totp_setup", None)
    notify(request, "Two-factor sign-in is on: you will be asked for a code when you sign in.")
    return Redirect("/account")


def _totp_setup(user: User, secret: str) -> dict[str, str]:
    return {
        "secret": secret,
        "uri": pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="BPO Control Plane"),
    }


def _enrolment_page(user: User, secret: str, errors: dict | None = None, status: int = 200) -> Template:
    context = {"user": user, "setup": _totp_setup(user, secret), "errors": errors or {}, "required": True}
    return Template("account.html", status_code=status, context=context | {"enrolling": True})


@get("/sign-in/two-factor", opt=PUBLIC, include_in_schema=False)
async def enrolment_page(request: Request, session: AsyncSession) -> Template | Redirect:
    """Staff who must use a second factor and have none set it up here before their session starts."""
    user = await _enrolling(request, session)
    if user is None:
        return Redirect("/login")
    return _enrolment_page(user, request.session.setdefault("totp_setup", pyotp.random_base32()))


@post("/sign-in/two-factor", opt=PUBLIC, include_in_schema=False)
async def enrolment_submit(
    request: Request, session: AsyncSession, keyring: KeyRing, data: Annotated[dict[str, str], FORM]
) -> Template | Redirect:
    user = await _enrolling(request, session)
    secret = request.session.get("totp_setup", "") if isinstance(request.session, dict) else ""
    if user is None or not secret:
        return Redirect("/login")
    if not pyotp.TOTP(secret).verify(data.get("code", "").replace(" ", ""), valid_window=1):
        return _enrolment_page(user, secret, {"code": WRONG_CODE}, 422)
    await identity.set_totp_secret(session, keyring, user, secret)
    return await signed_in(request, session, user, "password+totp", "/")


async def _enrolling(request: Request, session: AsyncSession) -> User | None:
    enrol = request.session.get("enrol") if isinstance(request.session, dict) else None
    if not enrol or enrol.get("until", 0) < utcnow().timestamp():
        return None
    return await session.get(User, uuid.UUID(enrol["user"]))


ROUTES = [
    invitation_page,
    invitation_submit,
    reset_page,
    reset_submit,
    account_page,
    account_password,
    account_totp,
    enrolment_page,
    enrolment_submit,
]
