"""Signed audit checkpoints: Ed25519 signatures over each stream's head, chained per stream.

A checkpoint signs the canonical JSON of ``{"stream", "seq", "hash", "signed_at", "prev_checkpoint"}``
where ``prev_checkpoint`` is the SHA-256 of the stream's previous checkpoint body (64 zeros for the
first). An export's final checkpoint also signs ``header``, the hash of the export's header line
(``compliance.export``); it is never stored. Private keys are sealed by the key ring in the control
database; public keys are published as a JWK set. Rotation adds a key and retires the old one,
which stays published for old exports.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.models import AuditEntry, Checkpoint, SigningKey
from compliance.service import GENESIS_HASH, canonical_json, rfc3339
from compliance.verify import checkpoint_body, sha256_hex
from control_plane.database import utcnow
from control_plane.keyring import KeyRing


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _aad(kid: str) -> str:
    return f"audit-signing-key:{kid}"


async def create_signing_key(session: AsyncSession, keyring: KeyRing) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = f"audit-{utcnow():%Y%m%d}-{secrets.token_hex(3)}"
    key = SigningKey(
        kid=kid,
        public_key=_b64url(raw_public),
        private_key=keyring.encrypt(raw_private, _aad(kid)),
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    return key


async def active_signing_key(session: AsyncSession, keyring: KeyRing) -> SigningKey:
    key = await session.scalar(
        sa.select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.created_at.desc()).limit(1)
    )
    return key or await create_signing_key(session, keyring)


async def rotate_signing_key(session: AsyncSession, keyring: KeyRing) -> tuple[SigningKey, list[str]]:
    """A new active key; the previous ones are retired but stay published."""
    now = utcnow()
    retired = list((await session.scalars(sa.select(SigningKey).where(SigningKey.retired_at.is_(None)))).all())
    for key in retired:
        key.retired_at = now
    await session.flush()
    return await create_signing_key(session, keyring), [k.kid for k in retired]


async def rotate_signing(session: AsyncSession, keyring: KeyRing) -> dict[str, Any]:
    """`rotate_signing_key` as ``bpoctl keys rotate`` records it: the new key id and the retired ones."""
    new_key, retired = await rotate_signing_key(session, keyring)
    return {"signing_key": new_key.kid, "retired": retired}


async def reseal_signing_keys(session: AsyncSession, keyring: KeyRing) -> int:
    changed = 0
    for key in (await session.scalars(sa.select(SigningKey))).all():
        new = keyring.reencrypt(key.private_key, _aad(key.kid))
        changed += new != key.private_key
        key.private_key = new
    return changed


async def signing_key_ids_in_use(session: AsyncSession) -> set[str]:
    """Key-ring key ids that seal signing keys (so rotation keeps them)."""
    return {KeyRing.key_id_of(t) for t in (await session.scalars(sa.select(SigningKey.private_key))).all()}


async def jwks(session: AsyncSession) -> dict[str, Any]:
    keys = (await session.scalars(sa.select(SigningKey).order_by(SigningKey.created_at))).all()
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": k.public_key,
                "kid": k.kid,
                "use": "sig",
                "alg": "EdDSA",
                "status": "retired" if k.retired_at else "active",
            }
            for k in keys
        ]
    }


def sign_body(key: SigningKey, keyring: KeyRing, body: dict[str, Any]) -> str:
    private = Ed25519PrivateKey.from_private_bytes(keyring.decrypt(key.private_key, _aad(key.kid)))
    return _b64url(private.sign(canonical_json(body)))


def checkpoint_line(cp: Checkpoint | dict[str, Any]) -> dict[str, Any]:
    get = cp.get if isinstance(cp, dict) else lambda k: getattr(cp, k)
    signed_at = get("signed_at")
    line = {
        "type": "checkpoint",
        "stream": get("stream"),
        "seq": get("seq"),
        "hash": get("hash"),
        "signed_at": signed_at if isinstance(signed_at, str) else rfc3339(signed_at),
        "prev_checkpoint": get("prev_checkpoint"),
        "key_id": get("key_id"),
        "signature": get("signature"),
    }
    if isinstance(cp, dict) and "header" in cp:  # an export's final checkpoint (never a stored one)
        line["header"] = cp["header"]
    return line


def checkpoint_hash(cp: Checkpoint | dict[str, Any]) -> str:
    return sha256_hex(canonical_json(checkpoint_body(checkpoint_line(cp))))


async def latest_checkpoint(session: AsyncSession, stream: str, before_seq: int | None = None) -> Checkpoint | None:
    stmt = sa.select(Checkpoint).where(Checkpoint.stream == stream)
    if before_seq is not None:
        stmt = stmt.where(Checkpoint.seq < before_seq)
    return await session.scalar(stmt.order_by(Checkpoint.id.desc()).limit(1))


async def sign_checkpoint(
    session: AsyncSession,
    keyring: KeyRing,
    *,
    stream: str,
    seq: int | None,
    hash_: str | None,
    prev_checkpoint: str,
    now: datetime | None = None,
    store: bool = True,
    header: str | None = None,
) -> dict[str, Any]:
    """Sign ``stream``'s entry ``seq``; stored (and so chained) when ``store``. ``header``: an export's
    header hash, signed by its final checkpoint (which is not stored: the table has no place for it)."""
    if store and (header is not None or seq is None):
        raise ValueError("a stored checkpoint covers an entry and signs no export header")
    key = await active_signing_key(session, keyring)
    body = {
        "stream": stream,
        "seq": seq,
        "hash": hash_,
        "signed_at": rfc3339(now or utcnow()),
        "prev_checkpoint": prev_checkpoint,
    }
    if header is not None:
        body["header"] = header
    line = checkpoint_line(body | {"key_id": key.kid, "signature": sign_body(key, keyring, body)})
    if store:
        session.add(
            Checkpoint(
                stream=stream,
                seq=seq,
                hash=hash_,
                signed_at=datetime.fromisoformat(body["signed_at"].replace("Z", "+00:00")),
                prev_checkpoint=prev_checkpoint,
                key_id=key.kid,
                signature=line["signature"],
            )
        )
        await session.flush()
    return line


async def checkpoint_stream(session: AsyncSession, keyring: KeyRing, stream: str) -> dict[str, Any] | None:
    """Checkpoint the stream's head unless its latest checkpoint already covers it."""
    head = (
        await session.execute(
            sa.select(AuditEntry.seq, AuditEntry.hash)
            .where(AuditEntry.stream == stream)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        )
    ).first()
    if head is None:
        return None
    last = await latest_checkpoint(session, stream)
    if last is not None and last.seq == head.seq:
        return None
    return await sign_checkpoint(
        session,
        keyring,
        stream=stream,
        seq=head.seq,
        hash_=head.hash,
        prev_checkpoint=checkpoint_hash(last) if last else GENESIS_HASH,
    )


async def checkpoint_all_streams(session: AsyncSession, keyring: KeyRing) -> int:
    """The scheduled job: one checkpoint per stream that moved since its last one."""
    streams = (await session.scalars(sa.select(AuditEntry.stream).distinct())).all()
    return sum([await checkpoint_stream(session, keyring, s) is not None for s in streams])
