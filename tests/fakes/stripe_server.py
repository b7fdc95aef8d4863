"""A fake Stripe API (customers, search, invoices, invoice items, finalize, credit notes with refunds,
listings) with idempotency keys.

A request that repeats an ``Idempotency-Key`` gets the first response again and creates nothing,
as Stripe does. Webhook deliveries are signed like Stripe's (``t=…,v1=HMAC-SHA256``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.http import FakeServer


def _form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[invoice_id]=…``) as a nested dict."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)
        self.customers: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.replies: dict[str, tuple[int, Any]] = {}
        self.credit_notes: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):06d}"

    def route(self, method, path, query, headers, body):
        if headers.get("authorization", "") != "Bearer sk_test_fake":
            return 401, {"error": {"message": "bad key", "type": "invalid_request_error"}}
        key = headers.get("idempotency-key")
        if method == "POST" and key and key in self.replies:
            return self.replies[key]
        reply = self._route(method, path, query, _form(body) if method == "POST" else {})
        if method == "POST" and key:
            self.replies[key] = reply
        return reply

    def _route(self, method, path, query, form):
        if method == "GET" and path == "/v1/customers/search":
            match = re.match(r"metadata\['tenant'\]:'(.+)'", query.get("query", ""))
            found = [c for c in self.customers.values() if match and c["metadata"].get("tenant") == match[1]]
            return 200, {"object": "search_result", "data": found, "has_more": False, "url": path}
        if method == "POST" and path == "/v1/customers":
            cid = self._id("cus")
            self.customers[cid] = {"id": cid, "object": "customer", "name": form.get("name"),
                                   "metadata": form.get("metadata", {})}  # fmt: skip
            return 200, self.customers[cid]
        if method == "POST" and path == "/v1/invoices":
            iid = self._id("in")
            self.invoices[iid] = {
                "id": iid, "object": "invoice", "status": "draft", "customer": form["customer"],
                "currency": form["currency"], "metadata": form.get("metadata", {}), "total": 0,
                "amount_due": 0, "amount_paid": 0,
            }  # fmt: skip
            return 200, self.invoices[iid]
        if method == "POST" and path == "/v1/invoiceitems":
            invoice = self.invoices[form["invoice"]]
            if invoice["status"] != "draft":
                return 400, {"error": {"message": "invoice is not a draft", "type": "invalid_request_error"}}
            ii = self._id("ii")
            self.items[ii] = {"id": ii, "object": "invoiceitem", "invoice": form["invoice"],
                              "amount": int(form["amount"]), "description": form.get("description")}  # fmt: skip
            invoice["total"] += int(form["amount"])
            invoice["amount_due"] += int(form["amount"])
            return 200, self.items[ii]
        match = re.fullmatch(r"/v1/invoices/(in_\d+)/finalize", path)
        if method == "POST" and match:
            invoice = self.invoices[match[1]]
            invoice["status"] = "open"
            return 200, invoice
        if method == "POST" and path == "/v1/credit_notes":
            return self._credit_note(form)
        if method == "GET" and path in ("/v1/invoices", "/v1/credit_notes"):
            objects = self.invoices if path == "/v1/invoices" else self.credit_notes
            return 200, {"object": "list", "data": list(objects.values()), "has_more": False, "url": path}
        return 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}}

    def _credit_note(self, form: dict[str, Any]) -> tuple[int, Any]:
        """As Stripe: on a paid invoice ``refund_amount`` refunds the charge; on an open one the note
        lowers ``amount_due``; never more than the invoice's total, and a refund only of a paid one."""
        invoice = self.invoices.get(form.get("invoice", ""))
        if invoice is None or invoice["status"] not in ("open", "paid"):
            return 400, {"error": {"message": "no such open or paid invoice", "type": "invalid_request_error"}}
        lines = form.get("lines", {}).values()
        amount = sum(int(line["unit_amount"]) * int(line.get("quantity", 1)) for line in lines)
        credited = sum(n["total"] for n in self.credit_notes.values() if n["invoice"] == invoice["id"])
        refund_amount = int(form.get("refund_amount", 0))
        if amount <= 0 or credited + amount > invoice["total"] or refund_amount > amount:
            return 400, {"error": {"message": "credit note amount out of range", "type": "invalid_request_error"}}
        if refund_amount and invoice["status"] != "paid":
            return 400, {"error": {"message": "the invoice has no payment to refund", "type": "invalid_request_error"}}
        note_id = self._id("cn")
        refunds = []
        if refund_amount:
            rid = self._id("re")
            self.refunds[rid] = {"id": rid, "object": "refund", "amount": refund_amount, "status": "succeeded",
                                 "charge": f"ch_{invoice['id']}", "metadata": {"credit_note": note_id}}  # fmt: skip
            refunds = [{"refund": rid, "amount_refunded": refund_amount, "type": "refund"}]
        else:
            invoice["amount_due"] -= amount
        self.credit_notes[note_id] = {
            "id": note_id, "object": "credit_note", "invoice": invoice["id"], "amount": amount, "total": amount,
            "currency": invoice["currency"], "status": "issued", "memo": form.get("memo"),
            "metadata": form.get("metadata", {}), "refunds": refunds,
            "type": "post_payment" if invoice["status"] == "paid" else "pre_payment",
        }  # fmt: skip
        return 200, self.credit_notes[note_id]

    def pay(self, invoice_id: str) -> None:
        """The customer paid the invoice (what Stripe does when the hosted page is used)."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_due=0)

    def refunds_of(self, invoice_id: str) -> list[dict]:
        return [r for r in self.refunds.values() if r["charge"] == f"ch_{invoice_id}"]

    def items_of(self, invoice_id: str) -> list[dict]:
        return [i for i in self.items.values() if i["invoice"] == invoice_id]

    def invoice_event(self, secret: str, event_type: str, invoice_id: str) -> tuple[bytes, dict[str, str]]:
        """A signed ``invoice.payment_failed`` or ``invoice.paid`` about one of this fake's invoices, as
        Stripe sends when a collection attempt fails (``attempt_count`` grows) or succeeds."""
        invoice = self.invoices[invoice_id]
        if event_type == "invoice.payment_failed":
            invoice["attempt_count"] = invoice.get("attempt_count", 0) + 1
        elif event_type == "invoice.paid":
            invoice["status"], invoice["amount_paid"] = "paid", invoice["total"]
        return self.signed_event(secret, self._id("evt"), event_type, dict(invoice))

    def refund_event(self, secret: str, invoice_id: str, amount: int) -> tuple[bytes, dict[str, str]]:
        """A signed ``charge.refunded`` for the charge that paid ``invoice_id`` (the charge names its
        invoice; it carries no metadata of ours)."""
        charge = {"id": self._id("ch"), "object": "charge", "invoice": invoice_id, "amount_refunded": amount,
                  "refunded": True, "metadata": {}}  # fmt: skip
        return self.signed_event(secret, self._id("evt"), "charge.refunded", charge)

    @staticmethod
    def signed_event(secret: str, event_id: str, event_type: str, obj: dict) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}).encode()
        ts = int(time.time())
        sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return body, {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}
