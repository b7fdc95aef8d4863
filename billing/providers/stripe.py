"""Stripe through ``stripe`` (`StripeClient`): customer, one invoice item per line, finalize.

Every call carries an idempotency key derived from the outbox row's key (``…:invoice``,
``…:item:3``, ``…:finalize``), so a retry after a timeout returns the object Stripe already made.
Negative lines (SLA credits, adjustments) are invoice items with negative amounts. The customer is
found by ``metadata['tenant']`` (search) before one is created. Stripe's own retries are off: the
outbox retries with backoff.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import stripe

from billing.providers.port import (
    ChargeRequest,
    CreditRequest,
    PaymentEvent,
    ProviderConfig,
    ProviderCredit,
    ProviderInvoice,
    ProviderRecords,
    ProviderUnavailable,
    RemoteCredit,
    RemoteInvoice,
    WebhookRefused,
)

PAID_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded"})


class StripeProvider:
    name = "stripe"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def _client(self) -> stripe.StripeClient:
        base = {"api": self.config.stripe_base_url} if self.config.stripe_base_url else None
        return stripe.StripeClient(
            self.config.stripe_api_key,
            base_addresses=base,
            max_network_retries=0,
            http_client=stripe.HTTPXClient(timeout=self.config.timeout_seconds, allow_sync_methods=False),
        )

    async def send_invoice(self, request: ChargeRequest, idempotency_key: str) -> ProviderInvoice:
        client = self._client().v1
        try:
            found = await client.customers.search_async({"query": f"metadata['tenant']:'{request.tenant_slug}'"})
            if found.data:
                customer = found.data[0]
            else:
                customer = await client.customers.create_async(
                    {"name": request.tenant_name, "metadata": {"tenant": request.tenant_slug}},
                    {"idempotency_key": f"customer:{request.tenant_slug}"},
                )
            invoice = await client.invoices.create_async(
                {
                    "customer": customer.id,
                    "currency": request.currency.lower(),
                    "collection_method": "send_invoice",
                    "days_until_due": 30,
                    "auto_advance": False,
                    "pending_invoice_items_behavior": "exclude",
                    "metadata": {"invoice_id": request.invoice_id, "number": request.number, "period": request.period},
                    "description": f"Invoice {request.number} for {request.period}",
                },
                {"idempotency_key": f"{idempotency_key}:invoice"},
            )
            for index, line in enumerate(request.lines):
                await client.invoice_items.create_async(
                    {
                        "customer": customer.id,
                        "invoice": invoice.id,
                        "currency": request.currency.lower(),
                        "amount": line.amount_minor,
                        "description": line.description[:500],
                        "metadata": {"quantity": str(line.quantity)},
                    },
                    {"idempotency_key": f"{idempotency_key}:item:{index}"},
                )
            final = await client.invoices.finalize_invoice_async(
                invoice.id, options={"idempotency_key": f"{idempotency_key}:finalize"}
            )
            return ProviderInvoice(self.name, final.id, str(final.status))
        except stripe.StripeError as exc:
            raise _failure(exc, "the invoice") from exc

    async def credit_invoice(self, request: CreditRequest, idempotency_key: str) -> ProviderCredit:
        """One Stripe credit note with the outbox row's key: with ``refund_amount`` on a paid invoice
        (Stripe refunds the charge), without on an open one (it lowers ``amount_due``)."""
        params: dict = {
            "invoice": request.provider_invoice_id,
            "lines": [
                {
                    "type": "custom_line_item",
                    "unit_amount": request.amount_minor,
                    "quantity": 1,
                    "description": f"Credit note {request.number}: {request.reason}"[:500],
                }
            ],
            "memo": request.reason[:500],
            "email_type": "none",
            "metadata": {
                "credit_note_id": request.credit_note_id, "number": request.number, "invoice_id": request.invoice_id,
            },
        }  # fmt: skip
        if request.action == "refund":
            params["refund_amount"] = request.amount_minor
        try:
            note = await self._client().v1.credit_notes.create_async(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _failure(exc, "the credit note") from exc
        refund = _refund_of(note)
        return ProviderCredit(self.name, note.id, refund, "refunded" if refund else "reduced")

    async def records(self) -> ProviderRecords:
        """Every invoice and credit note of the account (auto-paging through the lists)."""
        client = self._client().v1
        try:
            invoices = [
                i.to_dict() async for i in (await client.invoices.list_async({"limit": 100})).auto_paging_iter()
            ]
            notes = [
                n.to_dict() async for n in (await client.credit_notes.list_async({"limit": 100})).auto_paging_iter()
            ]
        except stripe.StripeError as exc:
            raise _failure(exc, "the listing") from exc
        return ProviderRecords(
            tuple(
                RemoteInvoice(i["id"], (i.get("metadata") or {}).get("invoice_id"),
                              (i.get("metadata") or {}).get("period"), int(i.get("total") or 0), str(i["status"]))
                for i in invoices
            ),
            tuple(
                RemoteCredit(n["id"], (n.get("metadata") or {}).get("credit_note_id"), int(n["total"]),
                             _refund_of(n) is not None)
                for n in notes
            ),
        )  # fmt: skip

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            event = stripe.Webhook.construct_event(
                body, lowered.get("stripe-signature"), self.config.stripe_webhook_secret
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookRefused(str(exc)) from exc
        # The library refuses a signature that is too old but not one from the future, which could
        # be replayed for ever: the signed time must be within the tolerance on both sides of now.
        if abs(int(time.time()) - _signed_at(lowered["stripe-signature"])) > stripe.Webhook.DEFAULT_TOLERANCE:
            raise WebhookRefused(f"the signature timestamp is more than {stripe.Webhook.DEFAULT_TOLERANCE} s from now")
        obj = event.data.object.to_dict()
        metadata = obj.get("metadata") or {}
        return PaymentEvent(
            event_id=event.id,
            event_type=event.type,
            invoice_id=metadata.get("invoice_id"),
            provider_invoice_id=obj.get("id"),
            paid=event.type in PAID_EVENTS,
            payload={"type": event.type, "object_id": obj.get("id")},
        )


def _failure(exc: stripe.StripeError, what: str) -> Exception:
    """5xx, 429 and connection failures are retried (`ProviderUnavailable`); a refusal is an error."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (exc.http_status or 0) >= 500:
        return ProviderUnavailable(f"stripe {exc.http_status or 'unreachable'}: {exc}")
    return RuntimeError(f"stripe refused {what} ({exc.http_status}): {exc}")


def _refund_of(note: Any) -> str | None:
    """The refund a credit note made (``refunds[].refund`` in current API versions, ``refund`` before)."""
    data = note if isinstance(note, dict) else note.to_dict()
    for item in data.get("refunds") or []:
        refund = item.get("refund")
        return refund if isinstance(refund, str) else (refund or {}).get("id")
    refund = data.get("refund")
    return refund if isinstance(refund, str) else (refund or {}).get("id") if refund else None


def _signed_at(header: str) -> int:
    """The ``t=`` of a ``Stripe-Signature`` header, read as the library reads it (it verified it already)."""
    return int(next(value for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t"))
