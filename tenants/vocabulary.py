"""The contact vocabulary, defined once: channels, intents and resolutions (DESIGN.md, "Contacts").

Contracts name them (response targets per channel, deflection exclusions per intent), ingest
validates against them, rollups and reports group by them.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    email = "email"
    chat = "chat"
    voice = "voice"
    sms = "sms"
    social = "social"
    marketplace = "marketplace"


class Intent(StrEnum):
    wismo = "wismo"
    delivery_exception = "delivery_exception"
    return_ = "return"
    refund = "refund"
    exchange = "exchange"
    cancellation = "cancellation"
    address_change = "address_change"
    damaged_item = "damaged_item"
    missing_item = "missing_item"
    product_question = "product_question"
    sizing = "sizing"
    payment = "payment"
    discount_code = "discount_code"
    subscription = "subscription"
    chargeback = "chargeback"
    fraud = "fraud"
    complaint = "complaint"
    other = "other"


class Resolution(StrEnum):
    open = "open"
    ai_resolved = "ai_resolved"
    human_resolved = "human_resolved"
    abandoned = "abandoned"


CHANNELS: frozenset[str] = frozenset(c.value for c in Channel)
INTENTS: frozenset[str] = frozenset(i.value for i in Intent)
RESOLUTIONS: frozenset[str] = frozenset(r.value for r in Resolution)
# The resolutions that are billed and measured (deflection, CSAT); in this order on every page.
RESOLVED: tuple[str, str] = (Resolution.ai_resolved.value, Resolution.human_resolved.value)
