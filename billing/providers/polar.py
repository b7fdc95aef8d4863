"""Polar (merchant of record) through ``polar-sdk`` 1.x (`PolarAsync`).

How Polar charges exactly the invoice total: Polar sells products, so one product stands for
"BPO services invoice" (``BPO_POLAR_PRODUCT_ID``), and each invoice becomes a checkout session of
that product with an **ad-hoc fixed price** (``prices={product: [{"amount_type": "fixed",
"price_amount": total in minor units, "price_currency": …}]}``) for the customer whose
``external_id`` is the tenant slug. The price is the invoice's total — the sum of the rounded
lines including negative SLA credits and adjustments, which Polar cannot take as line items —
and the invoice id and number travel in the checkout's metadata, which Polar copies to the order
(``order.paid`` comes back with them). Polar has no idempotency keys, so before creating a
checkout the adapter looks for one carrying the invoice id: a retry after a timeout never makes a
second one. A total of zero or less is not sent (nothing to collect).
"""

from __future__ import annotations

from collections.abc import Mapping

from polar import PolarError, PolarNetworkError, PolarServerError
from polar.base import PolarRateLimitError
from polar.v2027_01 import PolarAsync
from polar.v2027_01.errors import ResourceNotFound
from polar.v2027_01.webhooks import PolarWebhookError, validate_event

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

PAID_EVENTS = frozenset({"order.paid"})


class PolarProvider:
    name = "polar"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def _client(self) -> PolarAsync:
        return PolarAsync(
            self.config.polar_token,
            base_url=self.config.polar_base_url,
            timeout=self.config.timeout_seconds,
            organization_id=self.config.polar_organization_id,
        )

    async def send_invoice(self, request: ChargeRequest, idempotency_key: str) -> ProviderInvoice:
        if request.total_minor <= 0:
            return ProviderInvoice(self.name, None, "nothing_to_collect")
        try:
            async with self._client() as polar:
                try:
                    customer = await polar.customers.get_external(external_id=request.tenant_slug)
                except ResourceNotFound:
                    customer = await polar.customers.create(
                        external_id=request.tenant_slug,
                        email=f"billing@{request.tenant_slug}.merchants.invalid",
                        name=request.tenant_name,
                        metadata={"tenant": request.tenant_slug},
                    )
                existing = await polar.checkouts.list(external_customer_id=request.tenant_slug, limit=100)
                for checkout in existing.items:
                    if checkout.metadata.get("invoice_id") == request.invoice_id:
                        return ProviderInvoice(self.name, checkout.id, str(checkout.status))
                product = self.config.polar_product_id
                checkout = await polar.checkouts.create(
                    products=[product],
                    prices={
                        product: [
                            {
                                "amount_type": "fixed",
                                "price_amount": request.total_minor,
                                "price_currency": request.currency.lower(),
                            }
                        ]
                    },
                    customer_id=customer.id,
                    external_customer_id=request.tenant_slug,
                    metadata={
                        "invoice_id": request.invoice_id,
                        "invoice_number": request.number,
                        "period": request.period,
                        "idempotency_key": idempotency_key[:500],
                    },
                )
                return ProviderInvoice(self.name, checkout.id, str(checkout.status))
        except (PolarServerError, PolarRateLimitError, PolarNetworkError) as exc:
            raise ProviderUnavailable(f"polar: {exc}") from exc
        except PolarError as exc:
            raise RuntimeError(f"polar refused the invoice: {exc}") from exc

    async def credit_invoice(self, request: CreditRequest, idempotency_key: str) -> ProviderCredit:
        try:
            async with self._client() as polar:
                orders = await polar.orders.list(checkout_id=request.provider_invoice_id, limit=10)
                order = next((o for o in orders.items if o.paid), None)
                if order is None:
                    if request.action == "refund":
                        raise RuntimeError(f"polar has no paid order for checkout {request.provider_invoice_id}")
                    return ProviderCredit(self.name, None, None, "awaiting_payment")
                refunds = await polar.refunds.list(order_id=order.id, limit=100)
                for refund in refunds.items:
                    if refund.metadata.get("credit_note_id") == request.credit_note_id:
                        return ProviderCredit(self.name, None, refund.id, "refunded")
                refund = await polar.refunds.create(
                    order_id=order.id,
                    reason="service_disruption",
                    amount=request.amount_minor,
                    comment=f"Credit note {request.number}: {request.reason}"[:500],
                    metadata={
                        "credit_note_id": request.credit_note_id, "number": request.number,
                        "invoice_id": request.invoice_id, "idempotency_key": idempotency_key[:500],
                    },
                )  # fmt: skip
                return ProviderCredit(self.name, None, refund.id, "refunded")
        except (PolarServerError, PolarRateLimitError, PolarNetworkError) as exc:
            raise ProviderUnavailable(f"polar: {exc}") from exc
        except PolarError as exc:
            raise RuntimeError(f"polar refused the refund: {exc}") from exc

    async def records(self) -> ProviderRecords:
        """Every checkout (an invoice), order (its payment) and refund (a credit note) of the organization."""
        try:
            async with self._client() as polar:
                checkouts = [c async for c in polar.checkouts.iter_list(limit=100)]
                orders = [o async for o in polar.orders.iter_list(limit=100)]
                refunds = [r async for r in polar.refunds.iter_list(limit=100)]
        except (PolarServerError, PolarRateLimitError, PolarNetworkError) as exc:
            raise ProviderUnavailable(f"polar: {exc}") from exc
        paid = {o.checkout_id for o in orders if o.paid}
        invoices = tuple(
            RemoteInvoice(
                c.id,
                _str(c.metadata.get("invoice_id")),
                _str(c.metadata.get("period")),
                int(c.amount),
                "paid" if c.id in paid else "open",
            )
            for c in checkouts
        )
        credits = tuple(
            RemoteCredit(r.id, _str(r.metadata.get("credit_note_id")), int(r.amount), True) for r in refunds
        )
        return ProviderRecords(invoices, credits)

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        try:
            event = validate_event(body, dict(headers), self.config.polar_webhook_secret)
        except PolarWebhookError as exc:
            raise WebhookRefused(str(exc)) from exc
        lowered = {k.lower(): v for k, v in headers.items()}
        metadata = getattr(event.data, "metadata", None) or {}
        invoice_id = metadata.get("invoice_id") if isinstance(metadata, dict) else None
        return PaymentEvent(
            event_id=lowered["webhook-id"],
            event_type=event.type,
            invoice_id=str(invoice_id) if invoice_id else None,
            provider_invoice_id=getattr(event.data, "checkout_id", None),
            paid=event.type in PAID_EVENTS,
            payload={"type": event.type, "data_id": getattr(event.data, "id", None)},
        )


def _str(value: object) -> str | None:
    return None if value is None else str(value)
