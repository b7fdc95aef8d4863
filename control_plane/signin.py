"""Signing in and staying signed in: password (and TOTP) checks, throttling, server-side sessions.

Throttling: failures are counted per account (``account:<email>``) and per client address
(``address:<ip>``). The fifth failure in a row locks the key for 30 s, each further one doubles the
lock (up to an hour); while locked every attempt is refused with 429 and ``Retry-After``, the right
password included, and is not checked. A failure more than 15 minutes after the previous one starts
counting afresh; a successful sign-in clears the account's count (not the address's, which an attacker
with an account of its own could otherwise clear). An unknown e-mail is verified against a dummy
argon2 hash, so it costs the same time as a known one and counts the same.

Sessions: the cookie holds an opaque random id; the table holds its SHA-256 (``UserSession``). A
session lives 12 hours and ends earlier at sign-out, deactivation, a password change, or when its
merchant's tenant is offboarded (checked on every request, see ``control_plane.auth``).
"""

from __future__ import annotations

import functools
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.actors import SystemActor
from control_plane.audit import append_audit_entry
from control_plane.auth import Principal, hash_secret
from control_plane.database import utcnow
from control_plane.identity import PLATFORM, hasher, staff_role, tenant_slug_of, verify_password
from control_plane.models import PlatformSetting, SignInThrottle, User, UserSession

THRESHOLD = 5
FIRST_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 3600
FORGET_AFTER = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
REQUIRE_TOTP_FOR_STAFF = "require_totp_for_staff"
ANONYMOUS = SystemActor("anonymous", "anonymous")


@functools.cache
def _dummy_hash() -> str:
    return hasher.hash(secrets.token_urlsafe(16))


def lock_seconds(failures: int) -> int:
    return min(FIRST_LOCK_SECONDS * 2 ** (failures - THRESHOLD), MAX_LOCK_SECONDS)


@dataclass(frozen=True)
class SignInOutcome:
    """``user`` when the password (and code) are right; else ``retry_after`` (locked) or a refusal."""

    user: User | None = None
    retry_after: int | None = None
    needs_code: bool = False
    needs_enrolment: bool = False


def throttle_keys(email: str, address: str) -> list[str]:
    return [f"account:{email.strip().lower()}"[:400], f"address:{address}"[:400]]


async def _locked_for(session: AsyncSession, keys: list[str], now: datetime) -> int | None:
    rows = (await session.scalars(sa.select(SignInThrottle).where(SignInThrottle.key.in_(keys)))).all()
    waits = [(r.locked_until - now).total_seconds() for r in rows if r.locked_until and r.locked_until > now]
    return math.ceil(max(waits)) if waits else None


async def _record_failure(session: AsyncSession, keys: list[str], now: datetime) -> int | None:
    """Count a failure on every key; the seconds of the lock it starts, if any."""
    longest = None
    for key in keys:
        row = await session.get(SignInThrottle, key)
        if row is None:
            row = SignInThrottle(key=key, failures=0, last_failure_at=now)
            session.add(row)
        elif now - row.last_failure_at > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= THRESHOLD:
            seconds = lock_seconds(row.failures)
            row.locked_until = now + timedelta(seconds=seconds)
            longest = max(longest or 0, seconds)
    await session.flush()
    return longest


async def sign_in_with_password(
    session: AsyncSession, email: str, password: str, *, address: str, now: datetime | None = None
) -> SignInOutcome:
    """Check a password under the throttle. Nothing here raises for a wrong password: the caller's
    transaction commits the failure count and its audit entries."""
    now = now or utcnow()
    email = email.strip().lower()[:254]  # no e-mail address is longer (RFC 5321)
    keys = throttle_keys(email, address)
    wait = await _locked_for(session, keys, now)
    if wait is not None:
        await _audit(session, None, email, "auth.login_throttled", {"retry_after": wait, "address": address})
        return SignInOutcome(retry_after=wait)
    user = await session.scalar(sa.select(User).where(User.email == email)) if email else None
    usable = user is not None and user.active and bool(user.password_hash)
    # The same argon2 work whether or not the account exists: timing does not tell.
    ok = verify_password(user.password_hash if usable else _dummy_hash(), password) and usable
    if not ok:
        lock = await _record_failure(session, keys, now)
        await _audit(session, user, email, "auth.login_failed", {"method": "password", "address": address})
        if lock is not None:
            await _audit(session, user, email, "auth.locked", {"seconds": lock, "address": address})
        return SignInOutcome()
    await session.execute(sa.delete(SignInThrottle).where(SignInThrottle.key == keys[0]))
    if user.totp_secret:
        return SignInOutcome(user=user, needs_code=True)
    if staff_role(user.role) and await totp_required_for_staff(session):
        return SignInOutcome(user=user, needs_enrolment=True)
    return SignInOutcome(user=user)


async def check_code(
    session: AsyncSession, user: User, secret: str, code: str, *, address: str, now: datetime | None = None
) -> SignInOutcome:
    """The second step: a TOTP code (30 s steps, one step of clock drift either way), throttled too."""
    now = now or utcnow()
    keys = throttle_keys(user.email, address)
    wait = await _locked_for(session, keys, now)
    if wait is not None:
        return SignInOutcome(retry_after=wait)
    if pyotp.TOTP(secret).verify(code.strip().replace(" ", ""), for_time=now, valid_window=1):
        return SignInOutcome(user=user)
    lock = await _record_failure(session, keys, now)
    await _audit(session, user, user.email, "auth.login_failed", {"method": "totp", "address": address})
    if lock is not None:
        await _audit(session, user, user.email, "auth.locked", {"seconds": lock, "address": address})
    return SignInOutcome(retry_after=lock)


async def totp_required_for_staff(session: AsyncSession) -> bool:
    return (await session.get(PlatformSetting, REQUIRE_TOTP_FOR_STAFF)) is not None


async def set_totp_required_for_staff(session: AsyncSession, actor: Principal, required: bool) -> None:
    row = await session.get(PlatformSetting, REQUIRE_TOTP_FOR_STAFF)
    if required and row is None:
        session.add(PlatformSetting(key=REQUIRE_TOTP_FOR_STAFF, value="1"))
    elif not required and row is not None:
        await session.delete(row)
    await append_audit_entry(
        session,
        stream=PLATFORM,
        actor=actor,
        action="platform.totp_for_staff",
        target="platform:settings",
        data={"required": required},
    )


async def _audit(session: AsyncSession, user: User | None, email: str, action: str, data: dict) -> None:
    stream = (await tenant_slug_of(session, user) if user is not None else None) or PLATFORM
    actor = Principal("user", user.email, user.role) if user is not None else ANONYMOUS
    await append_audit_entry(session, stream=stream, actor=actor, action=action, target=f"user:{email}", data=data)


# --- sessions ---------------------------------------------------------------------------------
async def start_session(
    session: AsyncSession, user: User, *, method: str, address: str, user_agent: str = "", now: datetime | None = None
) -> str:
    """A new session for ``user``; returns the opaque id for the cookie (shown nowhere else)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=hash_secret(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
            client_address=address[:100],
            user_agent=user_agent[:300],
        )
    )
    user.last_login_at = now
    await _audit(session, user, user.email, "auth.login", {"method": method, "address": address})
    return token


async def end_session(session: AsyncSession, token: str, reason: str = "signed_out") -> User | None:
    row = await session.scalar(sa.select(UserSession).where(UserSession.token_hash == hash_secret(token)))
    if row is None or row.ended_at is not None:
        return None
    row.ended_at, row.ended_reason = utcnow(), reason
    user = await session.get(User, row.user_id)
    if user is not None:
        await _audit(session, user, user.email, "auth.logout", {"reason": reason})
    return user
