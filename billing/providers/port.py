"""The port every payment provider adapter implements, and its configuration from ``BPO_*`` settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from control_plane.outbox import RetryLater


class ProviderUnavailable(RetryLater):
    """A transient provider failure (5xx, 429, timeout, connection): the outbox retries with backoff."""


class WebhookRefused(Exception):
    """A webhook whose signature (or shape) does not verify."""


@dataclass(frozen=True, slots=True)
class ChargeLine:
    description: str
    quantity: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """What a provider needs to collect one finalized invoice, in integer minor units."""

    invoice_id: str
    number: str
    period: str
    tenant_slug: str
    tenant_name: str
    currency: str
    total_minor: int
    lines: tuple[ChargeLine, ...]


@dataclass(frozen=True, slots=True)
class ProviderInvoice:
    provider: str
    provider_invoice_id: str | None  # None when there was nothing to collect
    status: str


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified webhook: its id (for deduplication), type, and the invoice it says was paid, if any."""

    event_id: str
    event_type: str
    invoice_id: str | None
    provider_invoice_id: str | None
    paid: bool
    payload: dict


@dataclass(frozen=True, slots=True)
class CreditRequest:
    """One credit note to take to the provider: ``action`` is ``refund`` (the invoice was paid) or
    ``reduce`` (it was open: lower what is due), decided when the note was issued."""

    credit_note_id: str
    number: str
    invoice_id: str
    provider_invoice_id: str
    currency: str
    amount_minor: int
    reason: str
    action: str


@dataclass(frozen=True, slots=True)
class ProviderCredit:
    provider: str
    provider_credit_note_id: str | None  # Stripe's credit note; None at Polar (a refund is all there is)
    provider_refund_id: str | None
    status: str  # refunded | reduced | awaiting_payment


@dataclass(frozen=True, slots=True)
class RemoteInvoice:
    """An invoice as the provider holds it; ``invoice_id`` is ours, from its metadata."""

    provider_id: str
    invoice_id: str | None
    period: str | None
    amount_minor: int
    status: str  # open | paid | void | draft | uncollectible


@dataclass(frozen=True, slots=True)
class RemoteCredit:
    """A credit note or refund as the provider holds it; ``credit_note_id`` is ours, from its metadata."""

    provider_id: str
    credit_note_id: str | None
    amount_minor: int
    refunded: bool


@dataclass(frozen=True, slots=True)
class ProviderRecords:
    invoices: tuple[RemoteInvoice, ...]
    credits: tuple[RemoteCredit, ...]


class PaymentProvider(Protocol):
    name: str

    async def send_invoice(self, request: ChargeRequest, idempotency_key: str) -> ProviderInvoice: ...

    async def credit_invoice(self, request: CreditRequest, idempotency_key: str) -> ProviderCredit: ...

    async def records(self) -> ProviderRecords: ...

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent: ...


@dataclass(frozen=True)
class ProviderConfig:
    """``BPO_POLAR_*`` / ``BPO_STRIPE_*``; tests pass overrides through ``Settings.extra``."""

    polar_token: str = ""
    polar_base_url: str | None = None
    polar_product_id: str = ""
    polar_organization_id: str | None = None
    polar_webhook_secret: str = ""
    stripe_api_key: str = ""
    stripe_base_url: str | None = None
    stripe_webhook_secret: str = ""
    timeout_seconds: float = 10.0

    @classmethod
    def load(cls, extra: Mapping[str, str] | None = None) -> ProviderConfig:
        env = {**os.environ, **(extra or {})}

        def get(name: str) -> str:
            return env.get(f"BPO_{name}", "")

        return cls(
            polar_token=get("POLAR_TOKEN"),
            polar_base_url=get("POLAR_BASE_URL") or None,
            polar_product_id=get("POLAR_PRODUCT_ID"),
            polar_organization_id=get("POLAR_ORGANIZATION_ID") or None,
            polar_webhook_secret=get("POLAR_WEBHOOK_SECRET"),
            stripe_api_key=get("STRIPE_API_KEY"),
            stripe_base_url=get("STRIPE_BASE_URL") or None,
            stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET"),
            timeout_seconds=float(get("PROVIDER_TIMEOUT_SECONDS") or 10),
        )
