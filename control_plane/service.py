"""Identity rules: the bootstrap admin, users, sign-in (password and OIDC) and bearer tokens."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import plugins
from control_plane.actors import SYSTEM, Actor
from control_plane.audit import append_audit_entry
from control_plane.auth import MERCHANT_ROLES, Principal, Role, hash_secret, new_expiry, new_secret
from control_plane.database import Databases, utcnow
from control_plane.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Unauthenticated
from control_plane.models import BearerToken, User
from control_plane.validation import parse

PLATFORM = "platform"
_hasher = PasswordHasher()


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: EmailStr
    name: str = Field(default="", max_length=200)
    role: Role
    tenant: str | None = None


async def _tenant_id(session: AsyncSession, role: str, slug: str | None) -> uuid.UUID | None:
    if role in MERCHANT_ROLES:
        if not slug:
            raise InvalidInput([FieldError("tenant", f"a {role} belongs to one tenant: name it")])
        tid = await plugins.tenant_directory().id_of(session, slug)
        if tid is None:
            raise InvalidInput([FieldError("tenant", f"no tenant {slug!r}")])
        return tid
    if slug:
        raise InvalidInput([FieldError("tenant", f"a {role} is staff and belongs to no tenant")])
    return None


async def create_user(session: AsyncSession, actor: Actor, data: Any) -> User:
    spec = parse(UserCreate, data)
    email = spec.email.lower()
    if await session.scalar(sa.select(User.id).where(User.email == email)):
        raise Conflict(f"a user with e-mail {email} exists already", code="email_taken")
    user = User(
        email=email, name=spec.name, role=spec.role.value, tenant_id=await _tenant_id(session, spec.role, spec.tenant)
    )
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


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(sa.select(User).order_by(User.email))).all())


async def ensure_bootstrap_admin(session: AsyncSession, email: str = "admin@bpo.local") -> str | None:
    """Create the local bootstrap admin once; returns its password the one time it is created."""
    if await session.scalar(sa.select(User.id).where(User.email == email)):
        return None
    password = secrets.token_urlsafe(12)
    admin = User(email=email, name="Bootstrap admin", role=Role.platform_admin, password_hash=_hasher.hash(password))
    session.add(admin)
    await session.flush()
    await append_audit_entry(
        session, stream=PLATFORM, actor=SYSTEM, action="user.bootstrap_admin_created", target=f"user:{email}"
    )
    return password


async def set_password(session: AsyncSession, email: str, password: str) -> None:
    user = await session.scalar(sa.select(User).where(User.email == email.lower()))
    if user is None:
        raise NotFound(f"no user {email}")
    user.password_hash = _hasher.hash(password)


async def sign_in_with_password(session: AsyncSession, email: str, password: str) -> User:
    user = await session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    ok = False
    if user is not None and user.active and user.password_hash:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    if not ok or user is None:
        raise Unauthenticated("e-mail or password is wrong")
    await _record_login(session, user, "password")
    return user


async def sign_in_with_oidc(session: AsyncSession, claims: dict[str, Any], issuer: str) -> User:
    """The user a verified ID token names: matched by verified e-mail, provisioned by an admin."""
    email = str(claims.get("email") or "").lower()
    if not email:
        raise Forbidden("the identity provider sent no e-mail address")
    if claims.get("email_verified") is False:
        raise Forbidden("the identity provider has not verified this e-mail address")
    user = await session.scalar(sa.select(User).where(User.email == email))
    if user is None or not user.active:
        raise Forbidden(f"{email} has no account here; ask a platform admin to invite you")
    subject = f"{issuer}|{claims['sub']}"
    if user.oidc_subject and user.oidc_subject != subject:
        raise Forbidden("this account is bound to another identity")
    user.oidc_subject = subject
    await _record_login(session, user, "oidc")
    return user


async def _record_login(session: AsyncSession, user: User, method: str) -> None:
    user.last_login_at = utcnow()
    stream = PLATFORM
    if user.tenant_id is not None:
        stream = await plugins.tenant_directory().slug_of(session, user.tenant_id) or PLATFORM
    await append_audit_entry(
        session,
        stream=stream,
        actor=Principal("user", user.email, user.role),
        action="auth.login",
        target=f"user:{user.email}",
        data={"method": method},
    )


async def issue_token(
    session: AsyncSession, actor: Actor, *, role: str, tenant: str | None, label: str = "", days: int | None = 90
) -> tuple[BearerToken, str]:
    """A bearer token for scripts; the secret is returned once."""
    try:
        role = Role(role).value
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInput([FieldError("role", f"{role!r} is not a role ({known})")]) from None
    tenant_id = await _tenant_id(session, role, tenant)
    prefix, secret = new_secret("tok")
    token = BearerToken(
        prefix=prefix,
        secret_hash=hash_secret(secret),
        role=role,
        tenant_id=tenant_id,
        label=label,
        created_at=utcnow(),
        expires_at=new_expiry(days),
    )
    session.add(token)
    await session.flush()
    await append_audit_entry(
        session,
        stream=tenant or PLATFORM,
        actor=actor,
        action="token.issued",
        target=f"token:{prefix}",
        data={"role": role, "label": label},
    )
    return token, secret


async def rotate_keys(settings: Any, keyring: Any, *, keep_old: bool = False) -> tuple[int, list[str]]:
    """Rotate every key: a new key-ring key, every sealed secret re-sealed under it in one transaction
    (each domain's re-sealers), what domains key themselves rotated (the audit signing key: the old
    one stays published), then key-ring keys nothing uses are dropped.

    The ring is saved with both keys before re-sealing, so a crash midway leaves every secret readable.
    """
    keyring.add_key()
    keyring.save(settings.keyring_path)
    dbs = Databases(settings.database)
    domains = plugins.domains()
    try:
        async with dbs.control_transaction() as session:
            changed = 0
            for reseal in (r for d in domains for r in d.resealers):
                changed += await reseal(session, keyring)
            rotated: dict[str, Any] = {}
            for rotate in (r for d in domains for r in d.key_rotation):
                rotated |= await rotate(session, keyring)
            await append_audit_entry(
                session,
                stream=PLATFORM,
                actor=SYSTEM,
                action="keys.rotated",
                target=f"keyring:{keyring.active}",
                data={"resealed": changed, **rotated},
            )
        retired: list[str] = []
        if not keep_old:
            async with dbs.control_session() as session:
                in_use: set[str] = set()
                for used in (u for d in domains for u in d.key_ids_in_use):
                    in_use |= await used(session)
            retired = keyring.retire_except(in_use)
            keyring.save(settings.keyring_path)
    finally:
        await dbs.dispose()
    return changed, retired
