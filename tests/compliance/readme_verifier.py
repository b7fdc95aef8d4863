"""A second audit-export verifier, written only from the README's "Audit export format" section.

It deliberately imports nothing of the application (only json, hashlib, base64 and cryptography),
so that it proves the README is enough to check an export. ``verify(lines, jwks)`` returns
``(True, None, "ok")`` or ``(False, line_number, reason)`` for the first line that breaks a rule.
Format 2 (the header signed by the last line) and the older format 1 (``"ok (format 1)"``).
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ZERO = "0" * 64
HASHED = ("seq", "ts", "stream", "actor", "role", "action", "target", "data", "request_id", "prev_hash")
BODY = ("stream", "seq", "hash", "signed_at", "prev_checkpoint")


def canonical(x: object) -> bytes:
    return json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def H(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify(lines: list[str], jwks: dict) -> tuple[bool, int | None, str]:
    keys = {
        k["kid"]: Ed25519PublicKey.from_public_bytes(unb64url(k["x"]))
        for k in jwks["keys"]
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
    }
    if not lines:
        return False, 1, "empty file"
    try:
        header = json.loads(lines[0])
    except ValueError:
        return False, 1, "header is not JSON"
    if not isinstance(header, dict) or header.get("type") != "header":
        return False, 1, "line 1 is not a header"
    if _last_line_signs_another_header(lines[-1], header, keys):
        return False, 1, "the header differs from the one the last line signs"
    next_seq, prev_hash, prev_cp = header["first_seq"], header["prev_hash"], header["prev_checkpoint"]
    last_entry: tuple[int, str] | None = None
    count = 0
    last_kind = "header"
    signs_header = False
    for n, raw in enumerate(lines[1:], start=2):
        if signs_header:
            return False, n, "a line after the checkpoint that signs the header"
        try:
            obj = json.loads(raw)
        except ValueError:
            return False, n, "not JSON"
        if not isinstance(obj, dict):
            return False, n, "not an object"
        kind = obj.get("type")
        if kind == "entry":
            if set(obj) != {*HASHED, "hash", "type"}:
                return False, n, "entry fields differ from the format"
            if obj["stream"] != header["stream"]:
                return False, n, "wrong stream"
            if obj["seq"] != next_seq:
                return False, n, f"seq {obj['seq']} where {next_seq} was due"
            if obj["prev_hash"] != prev_hash:
                return False, n, "prev_hash breaks the chain"
            if H(canonical({k: obj[k] for k in HASHED})) != obj["hash"]:
                return False, n, "hash does not match the content"
            prev_hash, next_seq = obj["hash"], obj["seq"] + 1
            last_entry = (obj["seq"], obj["hash"])
            count += 1
        elif kind == "checkpoint":
            if any(k not in obj for k in (*BODY, "key_id", "signature")):
                return False, n, "checkpoint lacks a field"
            body = _body(obj)
            if body["stream"] != header["stream"]:
                return False, n, "wrong stream"
            covered = (last_entry or (None, None)) if "header" in body else last_entry
            if covered != (body["seq"], body["hash"]):
                return False, n, "checkpoint does not cover the entry right before it"
            if body["prev_checkpoint"] != prev_cp:
                return False, n, "checkpoint chain broken"
            key = keys.get(obj["key_id"])
            if key is None:
                return False, n, "unknown key id"
            try:
                key.verify(unb64url(obj["signature"]), canonical(body))
            except (InvalidSignature, ValueError):
                return False, n, "bad signature"
            if "header" in body:
                if body["header"] != H(canonical(header)):
                    return False, 1, "the header differs from the one the last line signs"
                signs_header = True
            prev_cp = H(canonical(body))
        else:
            return False, n, "unknown line type"
        last_kind = kind
        last_line = obj
    format_1 = header.get("format") == "bpo-audit-export/1" and not signs_header
    if not format_1 and not signs_header:
        return False, len(lines), "the last line is not a checkpoint that signs the header"
    if count:
        if last_kind != "checkpoint" or (last_line["seq"], last_line["hash"]) != last_entry:
            return False, len(lines), "file does not end with a checkpoint over its last entry"
    if count != header["entries"]:
        return False, len(lines), "entry count differs from the header"
    return True, None, "ok (format 1)" if format_1 else "ok"


def _body(obj: dict) -> dict:
    """Five keys; the last line's checkpoint has a sixth, ``header``."""
    return {k: obj[k] for k in (*BODY, "header") if k in obj}


def _last_line_signs_another_header(raw: str, header: dict, keys: dict) -> bool:
    try:
        last = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(last, dict) or last.get("type") != "checkpoint" or "header" not in last:
        return False
    key = keys.get(last.get("key_id"))
    if key is None or any(k not in last for k in (*BODY, "signature")):
        return False
    try:
        key.verify(unb64url(last["signature"]), canonical(_body(last)))
    except (InvalidSignature, ValueError):
        return False
    return last["header"] != H(canonical(header))
