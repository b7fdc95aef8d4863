"""Offline verification of an audit export (JSON Lines), needing only the public keys (a JWK set).

This module imports nothing of the application, so it can be copied next to an export and run
anywhere: ``python -m compliance.verify FILE --keys JWKS`` or ``bpoctl audit verify FILE``.
The format is documented in the README ("Audit export format"). Format 2 binds the header: the
final checkpoint's signed body carries ``header``, the SHA-256 of the canonical header line, so a
changed header is refused at line 1. Format 1 files (exported before) still verify by their own
rules, and the verdict says that their header is not signed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
FORMAT_1, FORMAT_2 = "bpo-audit-export/1", "bpo-audit-export/2"
ENTRY_FIELDS = ("seq", "ts", "stream", "actor", "role", "action", "target", "data", "request_id", "prev_hash")


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def checkpoint_body(cp: dict) -> dict:
    """What a checkpoint signs: stream, seq, hash, signed_at and the previous checkpoint's hash, and
    for an export's final checkpoint (format 2) ``header``, the hash of the export's header line."""
    body = {k: cp[k] for k in ("stream", "seq", "hash", "signed_at", "prev_checkpoint")}
    if "header" in cp:
        body["header"] = cp["header"]
    return body


def header_hash(header: dict) -> str:
    """What the final checkpoint signs of the header: SHA-256 of its canonical JSON (every field)."""
    return sha256_hex(canonical(header))


def public_keys(jwks: dict) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    return keys


@dataclass(frozen=True)
class Verdict:
    ok: bool
    line: int | None = None
    reason: str = ""
    entries: int = 0
    checkpoints: int = 0

    header_signed: bool = True

    def __str__(self) -> str:
        if self.ok:
            note = "" if self.header_signed else " (format 1: its header is not signed)"
            return f"OK: {self.entries} entries, {self.checkpoints} checkpoints verified{note}"
        return f"line {self.line}: {self.reason}"


def _signed(obj: dict, keys: dict[str, Ed25519PublicKey]) -> bool:
    """Whether the checkpoint line ``obj``'s signature verifies over its body."""
    key = keys.get(obj.get("key_id"))
    try:
        key.verify(b64url_decode(obj.get("signature", "")), canonical(checkpoint_body(obj)))
    except (AttributeError, InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True


def _header_changed(first: str, last: str, keys: dict[str, Ed25519PublicKey]) -> bool:
    """Line 1 is checked first: the final checkpoint, when its signature verifies, names the header's hash."""
    try:
        header, final = json.loads(first), json.loads(last)
    except ValueError:
        return False
    if not isinstance(header, dict) or not isinstance(final, dict) or final.get("type") != "checkpoint":
        return False
    return "header" in final and _signed(final, keys) and final["header"] != header_hash(header)


HEADER_CHANGED = "the header was changed: its hash is not the one the final checkpoint signs"


def verify_lines(lines: Iterable[str], jwks: dict, *, last: str | None = None) -> Verdict:
    """Check an export line by line; the verdict names the first bad line (1-based). ``last``: the
    file's last line, when ``lines`` is a stream (a sequence gives its own)."""
    keys = public_keys(jwks)
    if isinstance(lines, Sequence) and lines:
        last = lines[-1]
    lines = iter(lines)
    first = next(lines, None)
    if first is not None and last is not None and _header_changed(first, last, keys):
        return Verdict(False, 1, HEADER_CHANGED)
    return _verify([first] if first is not None else [], lines, keys)


def _verify(head: list[str], rest: Iterable[str], keys: dict[str, Ed25519PublicKey]) -> Verdict:
    header = None
    prev_hash = None
    expected_seq = None
    hashes: dict[int, str] = {}
    last_line_kind = None
    last_seq = None
    prev_cp = None
    sealed = None  # the final checkpoint (it signs the header): nothing may follow it
    entries = checkpoints = 0
    n = 0
    for n, raw in enumerate(_chain(head, rest), start=1):
        if sealed is not None:
            return Verdict(False, n, "a line follows the final checkpoint (the one that signs the header)")
        try:
            obj = json.loads(raw)
        except ValueError:
            return Verdict(False, n, "not a JSON object")
        if not isinstance(obj, dict):
            return Verdict(False, n, "not a JSON object")
        kind = obj.get("type")
        if n == 1:
            if kind != "header":
                return Verdict(False, n, "the first line must be the header")
            header = obj
            prev_hash = obj.get("prev_hash", GENESIS)
            expected_seq = obj.get("first_seq")
            prev_cp = obj.get("prev_checkpoint")
            last_line_kind = "header"
            continue
        if kind == "entry":
            body = {k: obj.get(k) for k in ENTRY_FIELDS}
            if set(obj) - {"type", "hash", *ENTRY_FIELDS}:
                return Verdict(False, n, "the entry has fields that are not part of the format")
            if obj.get("stream") != header.get("stream"):
                return Verdict(False, n, "the entry belongs to another stream")
            if expected_seq is not None and obj.get("seq") != expected_seq:
                return Verdict(
                    False, n, f"expected seq {expected_seq}, found {obj.get('seq')} (a line is missing or moved)"
                )
            if obj.get("prev_hash") != prev_hash:
                return Verdict(False, n, "prev_hash does not match the previous entry (a line is missing or moved)")
            if sha256_hex(canonical(body)) != obj.get("hash"):
                return Verdict(False, n, "hash does not match the entry's content (the entry was changed)")
            prev_hash = obj["hash"]
            hashes[obj["seq"]] = obj["hash"]
            expected_seq = obj["seq"] + 1
            last_seq = obj["seq"]
            entries += 1
        elif kind == "checkpoint":
            try:
                body = checkpoint_body(obj)
            except KeyError as exc:
                return Verdict(False, n, f"the checkpoint lacks {exc.args[0]!r}")
            if body["stream"] != header.get("stream"):
                return Verdict(False, n, "the checkpoint belongs to another stream")
            if body["seq"] is None and "header" not in body:
                return Verdict(False, n, "the checkpoint covers no entry")
            if body["seq"] != last_seq or hashes.get(body["seq"]) != body["hash"]:
                # A checkpoint follows the entry it covers: one moved past another entry is refused.
                return Verdict(False, n, "the checkpoint does not match the entry right before it")
            if prev_cp is not None and body["prev_checkpoint"] != prev_cp:
                return Verdict(False, n, "the checkpoint does not follow the previous checkpoint")
            key = keys.get(obj.get("key_id"))
            if key is None:
                return Verdict(False, n, f"no public key {obj.get('key_id')!r} in the key set")
            try:
                key.verify(b64url_decode(obj.get("signature", "")), canonical(body))
            except (InvalidSignature, ValueError):
                return Verdict(False, n, "the checkpoint's signature does not verify")
            if "header" in body:
                if body["header"] != header_hash(header):
                    return Verdict(False, 1, HEADER_CHANGED)
                sealed = body
            prev_cp = sha256_hex(canonical(body))
            checkpoints += 1
        else:
            return Verdict(False, n, f"unknown line type {kind!r}")
        last_line_kind = kind
    if header is None:
        return Verdict(False, 1, "the file is empty")
    legacy = header.get("format") == FORMAT_1 and sealed is None
    if not legacy and sealed is None:
        return Verdict(False, n, "the file does not end with the final checkpoint that signs the header (it was cut)")
    if entries and (last_line_kind != "checkpoint" or hashes.get(last_seq) is None):
        return Verdict(False, n, "the file does not end with a checkpoint over its last entry (it was cut)")
    if header.get("entries") is not None and header["entries"] != entries:
        return Verdict(False, n, f"the header announces {header['entries']} entries, the file has {entries}")
    return Verdict(True, entries=entries, checkpoints=checkpoints, header_signed=not legacy)


def _chain(head: list[str], rest: Iterable[str]) -> Iterable[str]:
    yield from head
    yield from rest


def verify_file(path: str, jwks: dict) -> Verdict:
    """Two passes in constant memory: the first finds the last line (it signs the header), the second checks."""
    last = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                last = line.rstrip("\n")
    with open(path, encoding="utf-8") as fh:
        return verify_lines((line.rstrip("\n") for line in fh if line.strip()), jwks, last=last)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description="Verify a BPO audit export offline.")
    parser.add_argument("file")
    parser.add_argument("--keys", required=True, help="JWK set file (GET /api/v1/audit/keys)")
    args = parser.parse_args(argv)
    with open(args.keys, encoding="utf-8") as fh:
        verdict = verify_file(args.file, json.load(fh))
    print(verdict)
    return 0 if verdict.ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
