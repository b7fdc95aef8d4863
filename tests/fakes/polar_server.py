"""A fake Polar API (customers by external id, checkouts with ad-hoc prices) that `PolarAsync` talks to.

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

    def route(self, method, path, query, headers, body):
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "Unauthorized", "detail": "bad token"}
        data = json.loads(body) if body else {}
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
            items = [c for c in self.checkouts if c["external_customer_id"] == query.get("external_customer_id")]
            listing = sample(outputs.ListResourceCheckout)
            listing["items"] = items
            listing["pagination"] = {"total_count": len(items), "max_page": 1}
            return 200, listing
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
