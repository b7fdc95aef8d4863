"""Signature schemes of the helpdesks, each HMAC-SHA256 over a timestamp and the raw body.

- Zendesk (documented): ``X-Zendesk-Webhook-Signature`` = base64(HMAC(secret, timestamp + body)) with
  ``X-Zendesk-Webhook-Signature-Timestamp`` an RFC 3339 time.
- Generic: Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
  ``webhook-signature`` = ``v1,`` base64(HMAC(secret, id + "." + timestamp + "." + body)), several
  separated by spaces; a ``whsec_`` secret is base64.
- Gorgias: its HTTP integrations do not sign requests themselves; deliveries come through the
  merchant's signing relay with ``X-Gorgias-Timestamp`` (Unix seconds) and ``X-Gorgias-Signature``
  = ``sha256=`` hex(HMAC(secret, timestamp + "." + body)), the same construction as the generic one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime

TOLERANCE_SECONDS = 300
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SignatureError(Exception):
    """Why a delivery is not trusted (answered 401; the delivery is not stored)."""


def _mac(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


def _matches(expected: str, offered: str) -> bool:
    """Constant-time comparison of header text (bytes: a header may carry any Latin-1 character,
    which ``compare_digest`` refuses in a ``str``)."""
    return hmac.compare_digest(expected.encode(), offered.strip().encode())


def _fresh(seconds: float, now: datetime) -> None:
    """The signed timestamp (seconds since the epoch) is within the tolerance of ``now``."""
    if not abs(now.timestamp() - seconds) <= TOLERANCE_SECONDS:
        raise SignatureError(f"the signature timestamp is more than {TOLERANCE_SECONDS} s from now (a replay?)")


_UNIX = re.compile(r"-?[0-9]{1,20}")


def _unix(value: str) -> int:
    """Unix seconds as an integer, compared as one: no date is built from it, so no value overflows."""
    if not _UNIX.fullmatch(value.strip()):
        raise SignatureError("the signature timestamp header is not Unix seconds")
    return int(value)


def _rfc3339_seconds(value: str) -> float:
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SignatureError("X-Zendesk-Webhook-Signature-Timestamp is not an RFC 3339 time") from None
    if ts.tzinfo is None:
        raise SignatureError("X-Zendesk-Webhook-Signature-Timestamp has no offset")
    return (ts - EPOCH).total_seconds()  # a difference, not a conversion to UTC: year 1 at +14:00 is fine


# Each verifier checks the signature over the raw headers first, then reads the timestamp: an
# unsigned, forged, unparsable or stale delivery is a SignatureError (401), whatever its headers hold.
def verify_zendesk(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    signature, stamp = headers.get("x-zendesk-webhook-signature"), headers.get("x-zendesk-webhook-signature-timestamp")
    if not signature or not stamp:
        raise SignatureError("X-Zendesk-Webhook-Signature and its timestamp header are required")
    expected = base64.b64encode(_mac(secret.encode(), stamp.encode() + body)).decode()
    if not _matches(expected, signature):
        raise SignatureError("the Zendesk signature does not match")
    _fresh(_rfc3339_seconds(stamp), now)


def sign_zendesk(body: bytes, secret: str, stamp: str) -> str:
    return base64.b64encode(_mac(secret.encode(), stamp.encode() + body)).decode()


def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()


def verify_generic(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> str:
    """Verify a Standard Webhooks delivery; returns its ``webhook-id``."""
    msg_id, stamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    expected = base64.b64encode(_mac(_standard_key(secret), f"{msg_id}.{stamp}.".encode() + body)).decode()
    offered = [s.partition(",")[2] for s in signatures.split() if s.startswith("v1,")]
    if not any(_matches(expected, s) for s in offered):
        raise SignatureError("no webhook-signature matches")
    _fresh(_unix(stamp), now)
    return msg_id


def sign_generic(msg_id: str, stamp: str, body: bytes, secret: str) -> str:
    return "v1," + base64.b64encode(_mac(_standard_key(secret), f"{msg_id}.{stamp}.".encode() + body)).decode()


def verify_gorgias(headers: Mapping[str, str], body: bytes, secret: str, now: datetime) -> None:
    signature, stamp = headers.get("x-gorgias-signature"), headers.get("x-gorgias-timestamp")
    if not signature or not stamp:
        raise SignatureError("X-Gorgias-Signature and X-Gorgias-Timestamp are required")
    expected = "sha256=" + _mac(secret.encode(), stamp.encode() + b"." + body).hex()
    if not _matches(expected, signature):
        raise SignatureError("the Gorgias signature does not match")
    _fresh(_unix(stamp), now)


def sign_gorgias(body: bytes, secret: str, stamp: str) -> str:
    return "sha256=" + _mac(secret.encode(), stamp.encode() + b"." + body).hex()
