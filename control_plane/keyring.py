"""Encryption of secrets at rest: AES-GCM under a key ring with key ids, rotatable.

A ciphertext is the text ``v1.<kid>.<base64url(nonce || ciphertext+tag)>``, so every stored secret
names the key that sealed it. The associated data binds a ciphertext to the row and purpose it was
written for, so a secret copied into another row does not decrypt. The ring lives in the control
database, each data key sealed by the **master key** (``control_plane.keystore``), so every instance
shares it; ``bpoctl keys rotate`` adds a key, re-encrypts every secret under it and then drops the
keys nothing uses any more.

The master key is a port (:class:`MasterKey`: ``seal``/``unseal``) that a cloud KMS could implement
later; :class:`LocalMasterKey` is AES-GCM under 32 bytes from ``BPO_MASTER_KEY`` (base64url) or
``BPO_MASTER_KEY_FILE``, else a development key file ``BPO_DATA_DIR/master.key`` created on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1"
MASTER_PREFIX = "m1"
DEV_MASTER_KEY_FILE = "master.key"

log = logging.getLogger("bpo.keyring")


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyRingError(Exception):
    pass


@dataclass
class KeyRing:
    keys: dict[str, bytes] = field(default_factory=dict)
    active: str = ""
    # Called with a key id this ring does not hold before a decryption gives up: a running instance's
    # ring reloads itself there (another instance rotated it since the last poll, keystore.RingWatcher).
    on_unknown_key: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def generate(cls) -> KeyRing:
        ring = cls()
        ring.add_key()
        return ring

    def add_key(self) -> str:
        kid = f"k{secrets.token_hex(4)}"
        self.keys[kid] = AESGCM.generate_key(bit_length=256)
        self.active = kid
        return kid

    def encrypt(self, plaintext: bytes | str, aad: str) -> str:
        if isinstance(plaintext, str):
            plaintext = plaintext.encode()
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext, aad.encode())
        return f"{PREFIX}.{self.active}.{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, aad: str) -> bytes:
        try:
            prefix, kid, body = token.split(".", 2)
        except ValueError:
            raise KeyRingError("not a key-ring ciphertext") from None
        if prefix != PREFIX:
            raise KeyRingError(f"unknown ciphertext version {prefix!r}")
        key = self.keys.get(kid)
        if key is None and self.on_unknown_key is not None:
            self.on_unknown_key(kid)
            key = self.keys.get(kid)
        if key is None:
            raise KeyRingError(f"key {kid!r} is not in the key ring")
        raw = _b64d(body)
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode())

    @staticmethod
    def key_id_of(token: str) -> str:
        return token.split(".", 2)[1]

    def reencrypt(self, token: str, aad: str) -> str:
        """Seal ``token``'s plaintext again under the active key (no-op when it already is)."""
        if self.key_id_of(token) == self.active:
            return token
        return self.encrypt(self.decrypt(token, aad), aad)

    def retire_except(self, keep: set[str]) -> list[str]:
        keep = keep | {self.active}
        gone = [kid for kid in self.keys if kid not in keep]
        for kid in gone:
            del self.keys[kid]
        return gone

    # --- storage -------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"active": self.active, "keys": {k: _b64e(v) for k, v in self.keys.items()}}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        data = json.loads(text)
        ring = cls(keys={k: _b64d(v) for k, v in data["keys"].items()}, active=data["active"])
        if ring.active not in ring.keys:
            raise KeyRingError("the active key is missing from the key ring")
        return ring

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        if path.exists():
            return cls.from_json(path.read_text())
        ring = cls.generate()
        ring.save(path)
        return ring


# --- the master key ----------------------------------------------------------------------------
class MasterKey(Protocol):
    """What seals the key ring's data keys (and the shared session secret) at rest."""

    @property
    def key_id(self) -> str: ...

    def seal(self, plaintext: bytes, aad: str) -> str: ...

    def unseal(self, token: str, aad: str) -> bytes: ...


@dataclass(frozen=True)
class LocalMasterKey:
    """AES-GCM under a 32-byte key held by the process; ``m1.<key id>.<base64url(nonce || sealed)>``."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise KeyRingError(f"the master key must be 32 bytes, got {len(self.key)}")

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"bpo-master-key:" + self.key).hexdigest()[:12]

    def seal(self, plaintext: bytes, aad: str) -> str:
        nonce = os.urandom(12)
        return (
            f"{MASTER_PREFIX}.{self.key_id}.{_b64e(nonce + AESGCM(self.key).encrypt(nonce, plaintext, aad.encode()))}"
        )

    def unseal(self, token: str, aad: str) -> bytes:
        prefix, kid, body = token.split(".", 2)
        if prefix != MASTER_PREFIX:
            raise KeyRingError(f"unknown master-key ciphertext version {prefix!r}")
        if kid != self.key_id:
            raise KeyRingError(
                f"sealed by master key {kid}, this instance holds {self.key_id}: "
                "every instance needs the same BPO_MASTER_KEY / BPO_MASTER_KEY_FILE"
            )
        raw = _b64d(body)
        return AESGCM(self.key).decrypt(raw[:12], raw[12:], aad.encode())


def _decode_master(text: str, where: str) -> LocalMasterKey:
    try:
        return LocalMasterKey(_b64d(text.strip()))
    except (ValueError, KeyRingError) as exc:
        raise KeyRingError(f"{where}: expected base64url of 32 bytes ({exc})") from None


def load_master_key(data_dir: Path, env: Mapping[str, str] | None = None) -> LocalMasterKey:
    """``BPO_MASTER_KEY``, else ``BPO_MASTER_KEY_FILE``, else the development key file under
    ``data_dir`` (created on first use, with a warning: fine for one machine, not for production)."""
    env = os.environ if env is None else env
    if env.get("BPO_MASTER_KEY"):
        return _decode_master(env["BPO_MASTER_KEY"], "BPO_MASTER_KEY")
    if env.get("BPO_MASTER_KEY_FILE"):
        path = Path(env["BPO_MASTER_KEY_FILE"])
        return _decode_master(path.read_text(), f"BPO_MASTER_KEY_FILE {path}")
    path = data_dir / DEV_MASTER_KEY_FILE
    log.warning(
        "no BPO_MASTER_KEY or BPO_MASTER_KEY_FILE: using the development master key %s; "
        "set one of them in production (every instance needs the same master key)",
        path,
    )
    if not path.exists():  # written aside, then linked: a process starting beside us reads all or nothing
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_b64e(secrets.token_bytes(32)))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return _decode_master(path.read_text(), str(path))
