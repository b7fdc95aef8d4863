"""Identity rules: the bootstrap admin, OIDC sign-in, bearer tokens and key rotation (users and their
links: ``control_plane.identity``; passwords, throttling and sessions: ``control_plane.signin``)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import plugins
from control_plane.actors import SYSTEM, Actor
from control_plane.audit import append_audit_entry
from control_plane.auth import Role, hash_secret, new_expiry, new_secret
from control_plane.database import Databases, utcnow
from control_plane.errors import FieldError, Forbidden, InvalidInput, NotFound
from control_plane.identity import (  # noqa: F401  (create_user, list_users, set_password: for the CLI, demo, tests)
    PLATFORM,
    create_user,
    hasher,
    list_users,
    reseal_totp_secrets,
    set_password,
    tenant_id_for_role,
    totp_key_ids,
)
from control_plane.keystore import key_store, save_ring
from control_plane.models import BearerToken, User


async def ensure_bootstrap_admin(session: AsyncSession, email: str = "admin@bpo.local") -> str | None:
    """Create the local bootstrap admin once; returns its password the one time it is created."""
    if await session.scalar(sa.select(User.id).where(User.email == email)):
        return None
    password = secrets.token_urlsafe(12)
    admin = User(
        email=email,
        name="Bootstrap admin",
        role=Role.platform_admin,
        password_hash=hasher.hash(password),
        password_changed_at=utcnow(),
    )
    session.add(admin)
    await session.flush()
    await append_audit_entry(
        session, stream=PLATFORM, actor=SYSTEM, action="user.bootstrap_admin_created", target=f"user:{email}"
    )
    return password


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
    return user


async def issue_token(
    session: AsyncSession,
    actor: Actor,
    *,
    role: str,
    tenant: str | None,
    label: str = "",
    days: int | None = 90,
    user_id: uuid.UUID | None = None,
) -> tuple[BearerToken, str]:
    """A bearer token for scripts; the secret is returned once. A token issued to a user (``user_id``)
    is revoked when that user is deactivated."""
    try:
        role = Role(role).value
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInput([FieldError("role", f"{role!r} is not a role ({known})")]) from None
    tenant_id = await tenant_id_for_role(session, role, tenant)
    prefix, secret = new_secret("tok")
    token = BearerToken(
        prefix=prefix,
        secret_hash=hash_secret(secret),
        role=role,
        tenant_id=tenant_id,
        label=label,
        user_id=user_id,
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


async def list_tokens(session: AsyncSession) -> list[tuple[BearerToken, str | None]]:
    """Every bearer token (newest first) with its tenant's slug."""
    tokens = (await session.scalars(sa.select(BearerToken).order_by(BearerToken.created_at.desc()))).all()
    directory = plugins.tenant_directory()
    return [(t, None if t.tenant_id is None else await directory.slug_of(session, t.tenant_id)) for t in tokens]


async def revoke_token(session: AsyncSession, actor: Actor, token_id: uuid.UUID | str) -> BearerToken:
    """Revoke a token at once (the next request with it is 401); revoking twice changes nothing."""
    try:
        tid = token_id if isinstance(token_id, uuid.UUID) else uuid.UUID(str(token_id))
    except ValueError:
        raise NotFound(f"no token {token_id}") from None
    token = await session.get(BearerToken, tid)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        slug = None if token.tenant_id is None else await plugins.tenant_directory().slug_of(session, token.tenant_id)
        await append_audit_entry(
            session,
            stream=slug or PLATFORM,
            actor=actor,
            action="token.revoked",
            target=f"token:{token.prefix}",
            data={"role": token.role, "label": token.label},
        )
    return token


async def rotate_keys(
    settings: Any, keyring: Any, *, keep_old: bool = False, actor: Any = SYSTEM
) -> tuple[int, list[str]]:
    """Rotate every key: a new key-ring key, every sealed secret re-sealed under it in one transaction
    (each domain's re-sealers), what domains key themselves rotated (the audit signing key: the old
    one stays published), then key-ring keys nothing uses are dropped.

    The ring (in the control database, ``control_plane.keystore``) is saved with both keys before
    re-sealing, so a crash midway leaves every secret readable; each save bumps the ring's version,
    so every running instance reloads it within seconds.
    """
    dbs = Databases(settings.database)
    store = key_store(settings)
    domains = plugins.domains()
    try:
        keyring.add_key()
        await save_ring(dbs.control, store, keyring)
        async with dbs.control_transaction() as session:
            changed = 0
            for reseal in (reseal_totp_secrets, *(r for d in domains for r in d.resealers)):
                changed += await reseal(session, keyring)
            rotated: dict[str, Any] = {}
            for rotate in (r for d in domains for r in d.key_rotation):
                rotated |= await rotate(session, keyring)
            await append_audit_entry(
                session,
                stream=PLATFORM,
                actor=actor,
                action="keys.rotated",
                target=f"keyring:{keyring.active}",
                data={"resealed": changed, **rotated},
            )
        retired: list[str] = []
        if not keep_old:
            async with dbs.control_session() as session:
                in_use: set[str] = set()
                for used in (totp_key_ids, *(u for d in domains for u in d.key_ids_in_use)):
                    in_use |= await used(session)
            retired = keyring.retire_except(in_use)
            await save_ring(dbs.control, store, keyring)
    finally:
        await dbs.dispose()
    return changed, retired
