"""People: inviting users, one-time links (invitation, password reset), passwords, roles, deactivation.

Who may manage whom: a platform admin anyone; an account manager the merchant users of any tenant; a
merchant admin the merchant users of its own tenant. A user is *invited* until it sets a password by
its invitation link (72 h, one use, stored as a SHA-256 hash, replaced by a newer one when resent);
staff may instead sign in with OIDC. A password is at least 12 characters, not the e-mail address and
not one of the 30,000 most common passwords (zxcvbn's list). Setting or changing a password and
deactivating a user end every session of that user; deactivation also revokes the user's tokens.
Every change is an audit entry.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import plugins
from control_plane.actors import Actor
from control_plane.audit import append_audit_entry
from control_plane.auth import MERCHANT_ROLES, STAFF_ROLES, Principal, Role, hash_secret
from control_plane.database import utcnow
from control_plane.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from control_plane.keyring import KeyRing
from control_plane.mail import queue_mail
from control_plane.models import BearerToken, User, UserLink, UserSession
from control_plane.validation import parse

PLATFORM = "platform"
INVITATION_TTL = timedelta(hours=72)
RESET_TTL = timedelta(hours=24)
MIN_PASSWORD = 12
MAX_PASSWORD = 256
hasher = PasswordHasher()


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: EmailStr
    name: str = Field(default="", max_length=200)
    role: Role
    tenant: str | None = None


@dataclass(frozen=True)
class IssuedLink:
    url: str
    expires_at: datetime


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, email: str) -> list[str]:
    """Why ``password`` may not be used (empty when it may), as sentences."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"Use at least {MIN_PASSWORD} characters (this one has {len(password)}).")
    if len(password) > MAX_PASSWORD:
        problems.append(f"Use at most {MAX_PASSWORD} characters.")
    lowered = password.strip().lower()
    if email and lowered in {email.lower(), email.lower().split("@")[0]}:
        problems.append("Do not use your e-mail address as your password.")
    if lowered in _common_passwords():
        problems.append("This password is on a list of commonly used passwords; choose another.")
    return problems


def check_new_password(password: str, confirm: str, email: str) -> None:
    errors = [FieldError("password", p) for p in password_problems(password, email)]
    if password != confirm:
        errors.append(FieldError("confirm", "The two passwords differ; type the same password twice."))
    if errors:
        raise InvalidInput(errors, "The password cannot be used")


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- who may manage whom ---------------------------------------------------------------------
def _may_manage(actor: Actor, role: str, tenant_slug: str | None) -> bool:
    if not isinstance(actor, Principal):  # the system, the CLI
        return True
    if actor.role == Role.platform_admin:
        return True
    if role not in MERCHANT_ROLES:
        return False
    if actor.role == Role.account_manager:
        return True
    return actor.role == Role.merchant_admin and tenant_slug is not None and tenant_slug == actor.tenant_slug


async def tenant_id_for_role(session: AsyncSession, role: str, slug: str | None) -> uuid.UUID | None:
    if role in MERCHANT_ROLES:
        if not slug:
            raise InvalidInput([FieldError("tenant", f"A {role} belongs to one tenant: name it.")])
        tid = await plugins.tenant_directory().id_of(session, slug)
        if tid is None:
            raise InvalidInput([FieldError("tenant", f"There is no tenant {slug!r}.")])
        return tid
    if slug:
        raise InvalidInput([FieldError("tenant", f"A {role} is staff and belongs to no tenant.")])
    return None


async def tenant_slug_of(session: AsyncSession, user: User) -> str | None:
    return None if user.tenant_id is None else await plugins.tenant_directory().slug_of(session, user.tenant_id)


async def _stream(session: AsyncSession, user: User) -> str:
    return await tenant_slug_of(session, user) or PLATFORM


async def create_user(session: AsyncSession, actor: Actor, data: Any) -> User:
    """A user, not yet able to sign in with a password (see :func:`invite_user` for the link)."""
    spec = parse(UserCreate, data)
    email = spec.email.lower()
    if not _may_manage(actor, spec.role.value, spec.tenant):
        raise Forbidden(f"a {actor.role} may not invite a {spec.role.value}")
    if await session.scalar(sa.select(User.id).where(User.email == email)):
        raise Conflict(f"A user with e-mail {email} exists already.", code="email_taken")
    tenant_id = await tenant_id_for_role(session, spec.role.value, spec.tenant)
    user = User(email=email, name=spec.name, role=spec.role.value, tenant_id=tenant_id)
    session.add(user)
    await session.flush()
    await append_audit_entry(
        session,
        stream=spec.tenant or PLATFORM,
        actor=actor,
        action="user.created",
        target=f"user:{email}",
        data={"role": spec.role.value, "tenant": spec.tenant},
    )
    return user


async def invite_user(session: AsyncSession, actor: Actor, data: Any, *, public_url: str) -> tuple[User, IssuedLink]:
    user = await create_user(session, actor, data)
    return user, await issue_link(session, actor, user, "invitation", public_url=public_url)


async def issue_link(
    session: AsyncSession, actor: Actor, user: User, purpose: str, *, public_url: str, now: datetime | None = None
) -> IssuedLink:
    """A new one-time link; earlier unused links of the same purpose stop working."""
    now = now or utcnow()
    if not user.active:
        raise Conflict(f"{user.email} is deactivated.", code="user_inactive")
    if purpose == "invitation" and user.password_hash:
        raise Conflict(f"{user.email} has set a password already; send a password reset instead.", code="not_invited")
    await session.execute(
        sa.update(UserLink)
        .where(UserLink.user_id == user.id, UserLink.purpose == purpose, UserLink.used_at.is_(None))
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    expires = now + (INVITATION_TTL if purpose == "invitation" else RESET_TTL)
    session.add(
        UserLink(
            token_hash=hash_secret(token),
            user_id=user.id,
            purpose=purpose,
            created_at=now,
            expires_at=expires,
            created_by=actor.actor,
        )
    )
    await append_audit_entry(
        session,
        stream=await _stream(session, user),
        actor=actor,
        action="user.invited" if purpose == "invitation" else "user.password_reset_issued",
        target=f"user:{user.email}",
        data={"expires_at": expires.isoformat()},
    )
    path = "invitations" if purpose == "invitation" else "password-reset"
    issued = IssuedLink(f"{public_url}/{path}/{token}", expires)
    await queue_mail(  # the link is mailed to the user (and stays in the answer for whoever issued it)
        session,
        to=[user.email],
        template="invitation" if purpose == "invitation" else "password_reset",
        context={"email": user.email, "link": issued.url, "expires_at": expires.isoformat(), "by": actor.actor},
        key=f"user.{purpose}:{hash_secret(token)[:32]}",
        now=now,
    )
    return issued


async def open_link(session: AsyncSession, token: str, purpose: str, now: datetime | None = None) -> User:
    """The user a valid link names; 404 when unknown, used, replaced or expired (one message for all)."""
    now = now or utcnow()
    link = await session.scalar(sa.select(UserLink).where(UserLink.token_hash == hash_secret(token)))
    user = None if link is None else await session.get(User, link.user_id)
    if link is None or link.purpose != purpose or link.used_at is not None or link.expires_at <= now or user is None:
        raise NotFound("This link is not valid any more: it was used, replaced by a newer one, or it expired.")
    if not user.active:
        raise NotFound("This account is deactivated.")
    return user


async def redeem_link(
    session: AsyncSession, token: str, purpose: str, password: str, confirm: str, now: datetime | None = None
) -> User:
    """Set the password a link allows; the link is spent and every session of the user ends."""
    now = now or utcnow()
    user = await open_link(session, token, purpose, now)
    check_new_password(password, confirm, user.email)
    await session.execute(sa.update(UserLink).where(UserLink.token_hash == hash_secret(token)).values(used_at=now))
    await _set_password(session, user, password, now, reason="password_set")
    await append_audit_entry(
        session,
        stream=await _stream(session, user),
        actor=Principal("user", user.email, user.role),
        action="user.password_set",
        target=f"user:{user.email}",
        data={"by": purpose},
    )
    return user


async def change_password(session: AsyncSession, user_id: uuid.UUID, current: str, password: str, confirm: str) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.password_hash or not verify_password(user.password_hash, current):
        raise InvalidInput([FieldError("current", "This is not your current password.")])
    check_new_password(password, confirm, user.email)
    await _set_password(session, user, password, utcnow(), reason="password_changed")
    await append_audit_entry(
        session,
        stream=await _stream(session, user),
        actor=Principal("user", user.email, user.role),
        action="user.password_changed",
        target=f"user:{user.email}",
    )
    return user


async def _set_password(session: AsyncSession, user: User, password: str, now: datetime, *, reason: str) -> None:
    user.password_hash = hasher.hash(password)
    user.password_changed_at = now
    await end_sessions(session, user.id, reason, now)


async def set_password(session: AsyncSession, email: str, password: str) -> None:
    """For the operator (and tests): set a password directly, ending the user's sessions."""
    user = await session.scalar(sa.select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFound(f"no user {email}")
    await _set_password(session, user, password, utcnow(), reason="password_set")


async def end_sessions(session: AsyncSession, user_id: uuid.UUID, reason: str, now: datetime | None = None) -> int:
    result = await session.execute(
        sa.update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=now or utcnow(), ended_reason=reason)
    )
    return result.rowcount or 0


# --- listing and changing users ----------------------------------------------------------------
async def managed_user(session: AsyncSession, actor: Principal, user_id: uuid.UUID | str) -> User:
    """A user ``actor`` may manage; 404 for any other (never says who exists)."""
    try:
        uid = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError:
        raise NotFound(f"no user {user_id}") from None
    user = await session.get(User, uid)
    if user is None or not _may_manage(actor, user.role, await tenant_slug_of(session, user)):
        raise NotFound(f"no user {user_id}")
    return user


async def list_users(
    session: AsyncSession, actor: Actor | None = None, tenant: str | None = None
) -> list[tuple[User, str | None]]:
    """The users ``actor`` may manage (all for the system), optionally of one tenant, each with its
    tenant's slug (``None`` for staff); the slugs in one query."""
    query = sa.select(User).order_by(User.email)
    if tenant is not None:
        tid = await plugins.tenant_directory().id_of(session, tenant)
        query = query.where(User.tenant_id == tid)
    users = list((await session.scalars(query)).all())
    slugs = await plugins.tenant_directory().slugs_of(session, {u.tenant_id for u in users if u.tenant_id})
    pairs = [(u, slugs.get(u.tenant_id) if u.tenant_id else None) for u in users]
    return [(u, slug) for u, slug in pairs if _may_manage(actor, u.role, slug)]


def invitable_roles(actor: Actor) -> list[str]:
    """The roles ``actor`` may give (the rule of :func:`_may_manage`): all for a platform admin, else
    the merchant roles."""
    every = [r.value for r in Role]
    return [r for r in every if _may_manage(actor, r, getattr(actor, "tenant_slug", None))]


def status_of(user: User) -> str:
    if not user.active:
        return "deactivated"
    return "active" if user.password_hash or user.oidc_subject else "invited"


async def change_role(session: AsyncSession, actor: Principal, user_id: uuid.UUID | str, role: str) -> User:
    user = await managed_user(session, actor, user_id)
    try:
        new = Role(role).value
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInput([FieldError("role", f"{role!r} is not a role; choose one of {known}.")]) from None
    slug = await tenant_slug_of(session, user)
    if (new in MERCHANT_ROLES) != (user.role in MERCHANT_ROLES):
        raise InvalidInput([FieldError("role", "A merchant user stays a merchant user and staff stay staff.")])
    if not _may_manage(actor, new, slug):
        raise Forbidden(f"a {actor.role} may not make anyone a {new}")
    if user.id == actor.user_id and new != user.role:
        raise Conflict("You cannot change your own role.", code="own_role")
    old, user.role = user.role, new
    await append_audit_entry(
        session,
        stream=slug or PLATFORM,
        actor=actor,
        action="user.role_changed",
        target=f"user:{user.email}",
        data={"from": old, "to": new},
    )
    return user


async def deactivate_user(session: AsyncSession, actor: Actor, user: User, reason: str = "") -> User:
    """No more sign-in: every session of the user ends and every token issued to it is revoked, now."""
    if isinstance(actor, Principal) and actor.user_id == user.id:
        raise Conflict("You cannot deactivate yourself.", code="own_account")
    if not user.active:
        return user
    now = utcnow()
    user.active = False
    ended = await end_sessions(session, user.id, "deactivated", now)
    revoked = await session.execute(
        sa.update(BearerToken)
        .where(BearerToken.user_id == user.id, BearerToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await append_audit_entry(
        session,
        stream=await _stream(session, user),
        actor=actor,
        action="user.deactivated",
        target=f"user:{user.email}",
        data={"reason": reason, "sessions_ended": ended, "tokens_revoked": revoked.rowcount or 0},
    )
    return user


def staff_role(role: str) -> bool:
    return role in STAFF_ROLES


# --- sealed TOTP secrets and key rotation -------------------------------------------------------
def totp_aad(user_id: uuid.UUID) -> str:
    """Binds a sealed TOTP secret to its user (a secret copied to another row does not open)."""
    return f"user-totp:{user_id}"


async def reseal_totp_secrets(session: AsyncSession, keyring: Any) -> int:
    """Seal every user's TOTP secret again under the ring's active key (``bpoctl keys rotate``)."""
    changed = 0
    for user in (await session.scalars(sa.select(User).where(User.totp_secret.is_not(None)))).all():
        new = keyring.reencrypt(user.totp_secret, totp_aad(user.id))
        changed += new != user.totp_secret
        user.totp_secret = new
    await session.flush()
    return changed


async def totp_key_ids(session: AsyncSession) -> set[str]:
    secrets_ = (await session.scalars(sa.select(User.totp_secret).where(User.totp_secret.is_not(None)))).all()
    return {KeyRing.key_id_of(s) for s in secrets_}


async def set_totp_secret(session: AsyncSession, keyring: KeyRing, user: User, secret: str | None) -> None:
    """Turn the user's second factor on (``secret`` sealed by the key ring) or off (``None``); audited."""
    user.totp_secret = None if secret is None else keyring.encrypt(secret, totp_aad(user.id))
    await append_audit_entry(
        session,
        stream=await _stream(session, user),
        actor=Principal("user", user.email, user.role),
        action="user.totp_enrolled" if secret else "user.totp_removed",
        target=f"user:{user.email}",
    )
