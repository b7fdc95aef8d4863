"""From a helpdesk's ticket payload to our contact shape, in two steps.

``pseudonymise_*`` runs before the event is stored: customer identifiers become their HMAC under the
tenant's key and free text (subjects, messages, names) is dropped. ``map_*`` runs on the stored
event and returns one contact dict of DESIGN.md (its ``customer_ref`` already an HMAC), or raises
:class:`MappingError`; a stored event can be mapped again after a fix (``replay_events``).

Tags carry what a helpdesk has no field for: an intent name (``wismo``, ``refund``, …),
``lang-xx`` / ``lang_xx``, ``market-XX`` / ``market_XX``, ``ai_resolved`` / ``ai-resolved`` /
``ai-agent`` (resolved by the AI agent), ``handover`` (handed to a human) and ``abandoned``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from billing.metering.schemas import INTENTS

Hasher = Callable[[str], str]
AI_TAGS = frozenset({"ai_resolved", "ai-resolved", "ai-agent", "ai_agent", "automated"})
ZENDESK_CHANNELS = {
    "email": "email",
    "web": "email",
    "web_form": "email",
    "api": "email",
    "chat": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "web_widget": "chat",
    "voice": "voice",
    "phone": "voice",
    "sms": "sms",
    "facebook": "social",
    "twitter": "social",
    "instagram_dm": "social",
    "whatsapp": "social",
    "any_channel": "marketplace",
}
GORGIAS_CHANNELS = {
    "email": "email",
    "contact_form": "email",
    "api": "email",
    "chat": "chat",
    "help-center": "chat",
    "phone": "voice",
    "sms": "sms",
    "facebook": "social",
    "facebook-messenger": "social",
    "instagram-comment": "social",
    "instagram-direct-message": "social",
    "twitter": "social",
    "whatsapp": "social",
    "yotpo-review": "marketplace",
    "amazon": "marketplace",
}


class MappingError(Exception):
    pass


def _tag_names(tags: Any) -> list[str]:
    out = []
    for tag in tags or []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str):
            out.append(name.strip().lower())
    return out


def _from_tags(tags: list[str], default_market: str, default_language: str) -> dict[str, str]:
    intent = next((t.replace("-", "_") for t in tags if t.replace("-", "_") in INTENTS), "other")
    market = next((t[7:].upper() for t in tags if t[:7] in ("market-", "market_")), default_market)
    language = next((t[5:] for t in tags if t[:5] in ("lang-", "lang_")), default_language)
    if "-" in language:  # zh-hans -> zh-Hans, pt-br -> pt-BR
        head, *rest = language.split("-")
        language = "-".join([head, *(p.title() if len(p) == 4 else p.upper() if len(p) == 2 else p for p in rest)])
    return {"intent": intent, "market": market, "language": language}


# --- Zendesk (event-subscription webhooks: {"type": "zen:event-type:ticket.…", "detail": {ticket}}) ------
def pseudonymise_zendesk(payload: dict[str, Any], hasher: Hasher) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    detail = out.get("detail") if isinstance(out.get("detail"), dict) else {}
    for key in ("requester_id", "submitter_id"):
        if detail.get(key) is not None:
            detail[key] = hasher(str(detail[key]))
    for key in ("subject", "description"):
        detail.pop(key, None)
    if isinstance(out.get("event"), dict):
        for key in ("subject", "description", "comment", "body"):
            out["event"].pop(key, None)
    return out


def map_zendesk(payload: dict[str, Any], *, default_market: str, default_language: str) -> dict[str, Any]:
    detail = payload.get("detail")
    if not isinstance(detail, dict) or detail.get("id") is None:
        raise MappingError("a Zendesk ticket event needs detail.id")
    tags = _tag_names(detail.get("tags"))
    status = str(detail.get("status") or "").upper()
    resolved = status in {"SOLVED", "CLOSED"}
    updated_at = detail.get("updated_at") or payload.get("time")
    if "abandoned" in tags:
        resolution = "abandoned"
    elif resolved:
        resolution = "ai_resolved" if AI_TAGS.intersection(tags) and "handover" not in tags else "human_resolved"
    else:
        resolution = "open"
    rating = detail.get("satisfaction_rating")
    score = rating.get("score") if isinstance(rating, dict) else rating
    csat = {"good": 5, "bad": 1}.get(str(score).lower()) if score else None
    via = detail.get("via") or {}
    return {
        "external_id": f"zendesk:{detail['id']}",
        "channel": ZENDESK_CHANNELS.get(str(via.get("channel", "")).lower(), "email"),
        **_from_tags(tags, default_market, default_language),
        "opened_at": detail.get("created_at"),
        "resolved_at": updated_at if resolution != "open" else None,
        "handoff_at": updated_at if "handover" in tags and resolution == "human_resolved" else None,
        "resolution": resolution,
        "csat": csat,
        "customer_ref": detail.get("requester_id"),
        "updated_at": updated_at,
    }


# --- Gorgias (HTTP integration body: {"event": "ticket-updated", "ticket": {…}} or the ticket) --------
def _gorgias_ticket(payload: dict[str, Any]) -> dict[str, Any]:
    ticket = payload.get("ticket", payload)
    return ticket if isinstance(ticket, dict) else {}


def pseudonymise_gorgias(payload: dict[str, Any], hasher: Hasher) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    ticket = _gorgias_ticket(out)
    customer = ticket.get("customer")
    if isinstance(customer, dict):
        ref = customer.get("email") or customer.get("id")
        ticket["customer"] = {"ref": hasher(str(ref))} if ref is not None else {}
    for key in ("subject", "excerpt", "messages", "last_message", "note"):
        ticket.pop(key, None)
    return out


def map_gorgias(payload: dict[str, Any], *, default_market: str, default_language: str) -> dict[str, Any]:
    ticket = _gorgias_ticket(payload)
    if ticket.get("id") is None:
        raise MappingError("a Gorgias ticket needs an id")
    tags = _tag_names(ticket.get("tags"))
    closed = str(ticket.get("status") or "").lower() == "closed"
    if "abandoned" in tags:
        resolution = "abandoned"
    elif closed:
        resolution = "ai_resolved" if AI_TAGS.intersection(tags) and "handover" not in tags else "human_resolved"
    else:
        resolution = "open"
    survey = ticket.get("satisfaction_survey")
    score = survey.get("score") if isinstance(survey, dict) else None
    updated_at = ticket.get("updated_datetime")
    resolved_at = (ticket.get("closed_datetime") or updated_at) if resolution != "open" else None
    defaults = {"default_market": default_market, "default_language": ticket.get("language") or default_language}
    return {
        "external_id": f"gorgias:{ticket['id']}",
        "channel": GORGIAS_CHANNELS.get(str(ticket.get("channel", "")).lower(), "email"),
        **_from_tags(tags, defaults["default_market"], defaults["default_language"]),
        "opened_at": ticket.get("opened_datetime") or ticket.get("created_datetime"),
        "first_response_at": ticket.get("first_response_datetime"),
        "resolved_at": resolved_at,
        "handoff_at": updated_at if "handover" in tags and resolution == "human_resolved" else None,
        "resolution": resolution,
        "csat": score if isinstance(score, int) else None,
        "customer_ref": (ticket.get("customer") or {}).get("ref"),
        "updated_at": updated_at,
    }


# --- generic: {"type": "contact.upserted", "contact": {DESIGN.md contact}} ------------------------------
def pseudonymise_generic(payload: dict[str, Any], hasher: Hasher) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    contact = out.get("contact")
    if isinstance(contact, dict) and isinstance(contact.get("customer_ref"), str):
        contact["customer_ref"] = hasher(contact["customer_ref"])
    return out


def map_generic(payload: dict[str, Any], *, default_market: str, default_language: str) -> dict[str, Any]:
    contact = payload.get("contact")
    if not isinstance(contact, dict):
        raise MappingError("a generic event carries one contact under 'contact'")
    return {k: v for k, v in contact.items() if v is not None}


def delivery_id(source: str, payload: dict[str, Any], headers: Any) -> str | None:
    if source == "zendesk":
        return str(payload.get("id") or headers.get("x-zendesk-webhook-invocation-id") or "") or None
    if source == "gorgias":
        given = headers.get("x-gorgias-delivery-id")
        ticket = _gorgias_ticket(payload)
        if given:
            return given
        if ticket.get("id") is not None and ticket.get("updated_datetime"):
            return f"{ticket['id']}@{ticket['updated_datetime']}"
        return None
    return headers.get("webhook-id")


def event_type(source: str, payload: dict[str, Any]) -> str:
    value = payload.get("type") if source in ("zendesk", "generic") else payload.get("event", "ticket")
    return str(value or "unknown")[:100]


PSEUDONYMISE = {"zendesk": pseudonymise_zendesk, "gorgias": pseudonymise_gorgias, "generic": pseudonymise_generic}
MAP = {"zendesk": map_zendesk, "gorgias": map_gorgias, "generic": map_generic}
