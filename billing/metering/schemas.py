"""The contact shape of DESIGN.md ("Contacts") and its validation, fast enough for 1,000-contact batches.

Validation is hand-written rather than a pydantic model per contact: a batch is validated in a few
milliseconds, every bad field of every contact is named with its reason, and no submitted value is
echoed back (a ``customer_ref`` must never appear in an answer or a log).

The API decodes a batch straight into :class:`ContactWire` structs (msgspec, in C: types, unknown
fields and RFC 3339 timestamps checked while parsing); only the rules left (choices, order of the
timestamps, …) run in Python, in :func:`validate_contact`. A batch that does not fit the wire types
is decoded as plain JSON instead and every contact takes the general path, which names each field's
problem. Both paths accept and reject the same contacts (a hypothesis test compares them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pycountry

from tenants.vocabulary import CHANNELS, INTENTS, RESOLUTIONS, RESOLVED

MAX_CONTACTS = 1000
MAX_BYTES = 1024 * 1024

MARKETS = frozenset(c.alpha_2 for c in pycountry.countries)
FIELDS = (
    "external_id",
    "channel",
    "language",
    "market",
    "intent",
    "opened_at",
    "first_response_at",
    "handoff_at",
    "resolved_at",
    "resolution",
    "csat",
    "customer_ref",
    "updated_at",
)
KNOWN = frozenset(FIELDS)
TIMESTAMP_FIELDS = ("opened_at", "first_response_at", "handoff_at", "resolved_at", "updated_at")
# The plausible range of a contact's timestamps: none before 2000, none more than a day after the ingest.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)
EARLY_MSG = "must not be before 2000-01-01T00:00:00Z"
AHEAD_MSG = "must not be more than one day after the time of ingest (check the clock and the offset)"
# C0 and C1 control characters (NUL, line breaks, DEL, …) and lone surrogates: no identifier holds one
# (PostgreSQL text cannot hold NUL; a surrogate cannot be encoded, so not hashed or stored either).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_MSG = "must not contain control characters (such as NUL, tab or line breaks)"


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


# BCP 47 (RFC 5646) language tag: primary language, optional script, region and variants.
_BCP47 = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(-[A-WY-Za-wy-z0-9](-[A-Za-z0-9]{2,8})+)*(-[Xx](-[A-Za-z0-9]{1,8})+)?$"
)


def _choices(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


CHANNEL_MSG = f"must be one of {_choices(CHANNELS)}"
INTENT_MSG = f"must be one of {_choices(INTENTS)}"
RESOLUTION_MSG = f"must be one of {_choices(RESOLUTIONS)}"


@dataclass(slots=True)
class ContactIn:
    """One valid contact version, timestamps aware, ``customer_ref`` still raw (hashed before storage)."""

    index: int
    external_id: str
    channel: str
    language: str
    market: str
    intent: str
    opened_at: datetime
    first_response_at: datetime | None
    handoff_at: datetime | None
    resolved_at: datetime | None
    resolution: str
    csat: int | None
    customer_ref: str | None
    updated_at: datetime
    reopens: int = 0  # set by ingest from the versions it has seen (see cell_writes.reopened)
    first_resolved_at: datetime | None = None  # likewise: the earliest resolution of any version


class ContactWire(msgspec.Struct, forbid_unknown_fields=True):
    """A contact as the API decodes it when the whole batch has the right JSON types (see the module)."""

    external_id: str
    channel: str
    language: str
    market: str
    intent: str
    opened_at: datetime
    resolution: str
    updated_at: datetime
    first_response_at: datetime | None = None
    handoff_at: datetime | None = None
    resolved_at: datetime | None = None
    csat: int | None = None
    customer_ref: str | None = None


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    contacts: list[ContactWire]


_WIRE_BATCH = msgspec.json.Decoder(list[ContactWire])
_WIRE_ENVELOPE = msgspec.json.Decoder(_Envelope)


def decode_batch(raw: bytes) -> Any:
    """The request body: a list of :class:`ContactWire` when every contact fits the wire types,
    else the plain JSON value (``msgspec.DecodeError`` when it is not JSON)."""
    try:
        if raw.lstrip()[:1] == b"{":
            return _WIRE_ENVELOPE.decode(raw).contacts
        return _WIRE_BATCH.decode(raw)
    except msgspec.ValidationError:
        return msgspec.json.decode(raw)


@dataclass(slots=True)
class Rejection:
    index: int
    external_id: str | None
    errors: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "external_id": self.external_id, "errors": self.errors}


def _timestamp(
    raw: dict[str, Any], name: str, errors: list[dict[str, str]], latest: datetime, *, required: bool
) -> datetime | None:
    value = raw.get(name)
    if value is None:
        if required:
            errors.append({"field": name, "message": "is required"})
        return None
    if not isinstance(value, str):
        errors.append({"field": name, "message": "must be an RFC 3339 timestamp string"})
        return None
    try:
        parsed = msgspec.convert(value, datetime)  # the parser of the wire path (ContactWire), RFC 3339
    except msgspec.ValidationError:
        parsed = None
    if parsed is None:
        try:  # only to say what is missing: "2026-10-14 09:00" lacks the offset first
            naive = datetime.fromisoformat(value).tzinfo is None
        except (ValueError, OverflowError):
            naive = False
        message = "is not an RFC 3339 timestamp (e.g. 2026-10-01T09:30:00+02:00)"
        errors.append(
            {"field": name, "message": "needs a time zone offset (RFC 3339, e.g. Z or +02:00)" if naive else message}
        )
        return None
    if parsed.tzinfo is None:
        errors.append({"field": name, "message": "needs a time zone offset (RFC 3339, e.g. Z or +02:00)"})
        return None
    if parsed < EARLIEST:  # aware datetimes compare without conversion: no overflow at year 1 or 9999
        errors.append({"field": name, "message": EARLY_MSG})
        return None
    if parsed > latest:
        errors.append({"field": name, "message": AHEAD_MSG})
        return None
    return parsed


_LANGUAGES: dict[str, bool] = {}  # tags seen: valid or not (bounded, see _language_ok)


def _language_ok(tag: str) -> bool:
    known = _LANGUAGES.get(tag)
    if known is None:
        known = len(tag) <= 35 and _BCP47.match(tag) is not None
        if len(_LANGUAGES) < 10_000:
            _LANGUAGES[tag] = known
    return known


def _wire_ok(w: ContactWire, latest: datetime) -> bool:
    """Every rule of :func:`validate_contact` that the wire types do not check already. The time zone
    checks come first: a naive and an aware datetime do not compare."""
    opened, updated, first, handoff, resolved, resolution, ref = (
        w.opened_at,
        w.updated_at,
        w.first_response_at,
        w.handoff_at,
        w.resolved_at,
        w.resolution,
        w.customer_ref,
    )
    return (
        w.channel in CHANNELS
        and w.intent in INTENTS
        and resolution in RESOLUTIONS
        and w.market in MARKETS
        and 1 <= len(w.external_id) <= 200
        and not w.external_id.isspace()
        and _CONTROL.search(w.external_id) is None
        and _language_ok(w.language)
        and opened.tzinfo is not None
        and updated.tzinfo is not None
        and EARLIEST <= opened <= latest
        and opened <= updated <= latest
        and (first is None or (first.tzinfo is not None and opened <= first <= latest))
        and (handoff is None or (handoff.tzinfo is not None and opened <= handoff <= latest))
        and (resolved is None or (resolved.tzinfo is not None and opened <= resolved <= latest))
        and not (resolution == "ai_resolved" and handoff is not None)
        and not (resolution in RESOLVED and resolved is None)
        and not (resolution == "open" and resolved is not None)
        and (w.csat is None or 1 <= w.csat <= 5)
        and (ref is None or (1 <= len(ref) <= 320 and _CONTROL.search(ref) is None))
    )


def _hashable(value: Any) -> Any:
    """``value`` when it can be looked up in a set of choices, else ``None`` (a list or object never matches)."""
    return value if value is None or isinstance(value, str | int | float) else False


# Long on purpose: ingest's hot path, every field checked in one pass with no call per field (a
# hypothesis test holds the fast and the general path to the same answers).
def validate_contact(index: int, raw: Any, latest: datetime | None = None) -> ContactIn | Rejection:
    """A valid contact, or the rejection naming every bad field with its reason. ``latest``: the
    latest plausible timestamp, one day after the time of ingest (default: one day from now)."""
    if latest is None:
        latest = datetime.now(UTC) + AHEAD
    if type(raw) is ContactWire:
        if not _wire_ok(raw, latest):  # the general path names the problems
            return validate_contact(index, msgspec.to_builtins(raw), latest)
        w = raw
        return ContactIn(
            index,
            w.external_id,
            w.channel,
            w.language,
            w.market,
            w.intent,
            w.opened_at,
            w.first_response_at,
            w.handoff_at,
            w.resolved_at,
            w.resolution,
            w.csat,
            w.customer_ref,
            w.updated_at,
        )
    if not isinstance(raw, dict):
        return Rejection(index, None, [{"field": "contact", "message": "must be a JSON object"}])
    errors: list[dict[str, str]] = []
    unknown = raw.keys() - KNOWN
    for name in sorted(unknown):  # named as sent, cut short and without control characters
        shown = _CONTROL.sub("\ufffd", name if len(name) <= 60 else name[:59] + "\u2026")
        errors.append({"field": shown, "message": "is not a known field"})

    external_id = raw.get("external_id")
    shown_id = external_id if isinstance(external_id, str) and 0 < len(external_id) <= 200 else None
    if external_id is None:
        errors.append({"field": "external_id", "message": "is required"})
    elif not isinstance(external_id, str) or not 1 <= len(external_id) <= 200 or not external_id.strip():
        errors.append({"field": "external_id", "message": "must be a string of 1 to 200 characters"})
    elif _CONTROL.search(external_id):
        errors.append({"field": "external_id", "message": CONTROL_MSG})
        shown_id = None  # never echoed: it could break a log line or a terminal

    channel = _hashable(raw.get("channel"))
    if channel not in CHANNELS:
        errors.append({"field": "channel", "message": "is required" if channel is None else CHANNEL_MSG})
    intent = _hashable(raw.get("intent"))
    if intent not in INTENTS:
        errors.append({"field": "intent", "message": "is required" if intent is None else INTENT_MSG})
    resolution = _hashable(raw.get("resolution"))
    if resolution not in RESOLUTIONS:
        errors.append({"field": "resolution", "message": "is required" if resolution is None else RESOLUTION_MSG})

    language = raw.get("language")
    if language is None:
        errors.append({"field": "language", "message": "is required"})
    elif not isinstance(language, str) or len(language) > 35 or not _BCP47.match(language):
        errors.append({"field": "language", "message": "must be a BCP 47 language tag such as en, zh-Hans or pt-BR"})
    market = _hashable(raw.get("market"))
    if market is None:
        errors.append({"field": "market", "message": "is required"})
    elif market not in MARKETS:
        errors.append({"field": "market", "message": "must be an ISO 3166-1 alpha-2 country code in capitals, e.g. DE"})

    opened_at = _timestamp(raw, "opened_at", errors, latest, required=True)
    first_response_at = _timestamp(raw, "first_response_at", errors, latest, required=False)
    handoff_at = _timestamp(raw, "handoff_at", errors, latest, required=False)
    resolved_at = _timestamp(raw, "resolved_at", errors, latest, required=False)
    updated_at = _timestamp(raw, "updated_at", errors, latest, required=True)
    if opened_at is not None:
        for name, value in (
            ("first_response_at", first_response_at),
            ("handoff_at", handoff_at),
            ("resolved_at", resolved_at),
            ("updated_at", updated_at),
        ):
            if value is not None and value < opened_at:
                errors.append({"field": name, "message": "must not be before opened_at"})
    if resolution == "ai_resolved" and handoff_at is not None:
        errors.append({"field": "handoff_at", "message": "an ai_resolved contact cannot have been handed to a human"})
    if resolution in RESOLVED and resolved_at is None and "resolved_at" not in {e["field"] for e in errors}:
        errors.append({"field": "resolved_at", "message": f"is required when resolution is {resolution}"})
    if resolution == "open" and resolved_at is not None:
        errors.append({"field": "resolved_at", "message": "must be empty while resolution is open"})

    csat = raw.get("csat")
    if csat is not None and (type(csat) is not int or not 1 <= csat <= 5):
        errors.append({"field": "csat", "message": "must be an integer from 1 to 5"})
    customer_ref = raw.get("customer_ref")
    if customer_ref is not None and (not isinstance(customer_ref, str) or not 1 <= len(customer_ref) <= 320):
        errors.append({"field": "customer_ref", "message": "must be a string of 1 to 320 characters"})
    elif customer_ref is not None and _CONTROL.search(customer_ref):
        errors.append({"field": "customer_ref", "message": CONTROL_MSG})

    if errors:
        return Rejection(index, shown_id, errors)
    return ContactIn(
        index,
        external_id,
        channel,
        language,
        market,
        intent,
        opened_at,
        first_response_at,
        handoff_at,
        resolved_at,
        resolution,
        csat,
        customer_ref,
        updated_at,
    )


@dataclass
class IngestResult:
    accepted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[Rejection] | None = None
    # Deltas committed in their cells but not yet applied (``ingest_contacts(defer_rollups=True)``).
    pending: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected or []],
        }
