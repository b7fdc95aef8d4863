"""Encryption of secrets at rest: AES-GCM under a key ring with key ids, rotatable.

A ciphertext is the text ``v1.<kid>.<base64url(nonce || ciphertext+tag)>``, so every stored secret
names the key that sealed it. The associated data binds a ciphertext to the row and purpose it was
written for, so a secret copied into another row does not decrypt. The ring lives in
``BPO_DATA_DIR/keyring.json`` (mode 0600); ``bpoctl keys rotate`` adds a key, re-encrypts every
secret under it and then drops the keys nothing uses any more.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1"


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
