"""A fake Polar API (customers by external id, checkouts with ad-hoc prices, orders, refunds) that
`PolarAsync` talks to. A POST that repeats an ``Idempotency-Key`` gets the first answer again.

Responses are shaped from the SDK's own output types (`sample` fills every required field), so the
real SDK deserializes them exactly as it would Polar's. Webhooks are signed per Standard Webhooks.
"""

from __future__ import annotations

import base64
import collections.abc
import dataclasses
import datetime as dt
import enum
import hashlib
import hmac
import itertools
import json
import time
import types
import typing
import uuid
from typing import Any

from polar.v2027_01 import outputs
from polar.v2027_01 import webhooks as polar_webhooks

from tests.fakes.http import FakeServer

TOKEN = "polar_oat_fake"


def sample(tp: Any) -> Any:
    """The smallest JSON value that the SDK loads as ``tp`` (None for optionals, first literal, empty lists)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None) or tp is typing.Any:
        return None
    if origin is typing.Annotated:
        return sample(args[0])
    if origin in (typing.Union, types.UnionType):
        return None if type(None) in args else sample(args[0])
    if origin is typing.Literal:
        return args[0]
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence):
        return []
    if origin in (dict, collections.abc.Mapping) or tp is dict:
        return {}
    simple = {str: "x", bool: False, int: 0, float: 0.0, dt.datetime: "2026-11-01T00:00:00Z", dt.date: "2026-11-01"}
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp)).value
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {f.name: sample(hints[f.name]) for f in dataclasses.fields(tp)}
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        return {k: sample(v) for k, v in hints.items() if k in tp.__required_keys__}
    raise TypeError(f"cannot shape a sample of {tp!r}")


class FakePolar(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)
        self.customers: dict[str, dict] = {}  # by external_id
        self.checkouts: list[dict] = []
        self.orders: list[dict] = []
        self.refunds: list[dict] = []
        self.replies: dict[str, tuple[int, Any]] = {}

    def route(self, method, path, query, headers, body):
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "Unauthorized", "detail": "bad token"}
        key = headers.get("idempotency-key")
        if method == "POST" and key and key in self.replies:
            return self.replies[key]
        reply = self._route(method, path, query, json.loads(body) if body else {})
        if method == "POST" and key:
            self.replies[key] = reply
        return reply

    @staticmethod
    def _listing(tp: Any, items: list[dict]) -> dict:
        listing = sample(tp)
        listing["items"] = items
        listing["pagination"] = {"total_count": len(items), "max_page": 1}
        return listing

    def _route(self, method, path, query, data):
        if method == "GET" and path.startswith("/v1/customers/external/"):
            external = path.rsplit("/", 1)[1]
            if external not in self.customers:
                return 404, {"error": "ResourceNotFound", "detail": "Not found"}
            return 200, self.customers[external]
        if method == "POST" and path == "/v1/customers/":
            customer = sample(outputs.CustomerIndividual) | {
                "id": str(uuid.uuid4()), "external_id": data["external_id"], "email": data["email"],
                "name": data.get("name"), "metadata": data.get("metadata", {}),
            }  # fmt: skip
            self.customers[data["external_id"]] = customer
            return 201, customer
        if method == "GET" and path == "/v1/checkouts/":
            wanted = query.get("external_customer_id")
            items = [c for c in self.checkouts if wanted is None or c["external_customer_id"] == wanted]
            return 200, self._listing(outputs.ListResourceCheckout, items)
        if method == "GET" and path == "/v1/orders/":
            wanted = query.get("checkout_id")
            items = [o for o in self.orders if wanted is None or o["checkout_id"] == wanted]
            return 200, self._listing(outputs.ListResourceOrder, items)
        if method == "GET" and path == "/v1/refunds/":
            wanted = query.get("order_id")
            items = [r for r in self.refunds if wanted is None or r["order_id"] == wanted]
            return 200, self._listing(outputs.ListResourceRefund, items)
        if method == "POST" and path == "/v1/refunds/":
            return self._refund(data)
        if method == "POST" and path == "/v1/checkouts/":
            product = data["products"][0]
            price = data["prices"][product][0]
            checkout = sample(outputs.Checkout) | {
                "id": str(uuid.uuid4()), "status": "open", "amount": price["price_amount"],
                "total_amount": price["price_amount"], "net_amount": price["price_amount"],
                "currency": price.get("price_currency", "usd"), "product_id": product,
                "customer_id": data.get("customer_id"), "external_customer_id": data.get("external_customer_id"),
                "metadata": data.get("metadata", {}),
            }  # fmt: skip
            self.checkouts.append(checkout)
            return 201, checkout
        return 404, {"error": "ResourceNotFound", "detail": f"no route {method} {path}"}

    def _refund(self, data: dict) -> tuple[int, Any]:
        """As Polar: a refund of a paid order, at most what is left refundable (403 when fully refunded)."""
        order = next((o for o in self.orders if o["id"] == data.get("order_id")), None)
        if order is None:
            return 404, {"error": "ResourceNotFound", "detail": "order not found"}
        left = order["total_amount"] - order["refunded_amount"]
        if left <= 0:
            return 403, {"error": "RefundedAlready", "detail": "Order is already fully refunded"}
        amount = int(data["amount"])
        if amount < 1 or amount > left:
            return 422, {"detail": [{"loc": ["body", "amount"], "msg": "out of range", "type": "value_error"}]}
        refund = sample(outputs.Refund) | {
            "id": str(uuid.uuid4()), "status": "succeeded", "reason": data["reason"], "amount": amount,
            "currency": order["currency"], "order_id": order["id"], "customer_id": order["customer_id"],
            "metadata": data.get("metadata", {}),
        }  # fmt: skip
        self.refunds.append(refund)
        order["refunded_amount"] += amount
        order["status"] = "refunded" if order["refunded_amount"] == order["total_amount"] else "partially_refunded"
        return 201, refund

    def pay(self, checkout_id: str) -> dict:
        """The customer paid the checkout: Polar makes an order that carries its metadata."""
        with self.lock:
            checkout = next(c for c in self.checkouts if c["id"] == checkout_id)
            checkout["status"] = "succeeded"
            order = sample(outputs.Order) | {
                "id": str(uuid.uuid4()), "status": "paid", "paid": True, "checkout_id": checkout_id,
                "total_amount": checkout["amount"], "net_amount": checkout["amount"],
                "subtotal_amount": checkout["amount"],
                "refunded_amount": 0, "currency": checkout["currency"], "customer_id": checkout["customer_id"] or "",
                "metadata": checkout["metadata"],
            }  # fmt: skip
            self.orders.append(order)
            return order

    def refunds_of(self, invoice_id: str) -> list[dict]:
        return [r for r in self.refunds if r["metadata"].get("invoice_id") == invoice_id]

    @staticmethod
    def order_paid(secret: str, webhook_id: str, invoice_id: str) -> tuple[bytes, dict[str, str]]:
        """A signed ``order.paid`` delivery whose order carries the invoice id in its metadata."""
        return FakePolar.order_event(secret, webhook_id, invoice_id, "order.paid")

    @staticmethod
    def order_event(
        secret: str, webhook_id: str, invoice_id: str, event_type: str, refunded_amount: int = 0
    ) -> tuple[bytes, dict[str, str]]:
        """A signed ``order.paid`` or ``order.refunded`` delivery about the order of ``invoice_id``."""
        shape = {"order.paid": polar_webhooks.WebhookOrderPaidPayload,
                 "order.refunded": polar_webhooks.WebhookOrderRefundedPayload}[event_type]  # fmt: skip
        payload = sample(shape)
        payload["data"]["metadata"] = {"invoice_id": invoice_id}
        payload["data"]["checkout_id"] = None
        payload["data"]["refunded_amount"] = refunded_amount
        body = json.dumps(payload)
        ts = str(int(time.time()))
        key = base64.b64decode(secret.removeprefix("whsec_"))
        sig = base64.b64encode(hmac.new(key, f"{webhook_id}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
        headers = {"webhook-id": webhook_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{sig}"}
        return body.encode(), headers | {"content-type": "application/json"}
