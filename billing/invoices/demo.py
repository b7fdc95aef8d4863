"""Last month's invoices of the demo tenants: one finalized and paid, the others drafts (idempotent).

The invoices go through the same services as the API and the scheduler: `draft_invoice` from the
rollups the demo contacts made, `finalize_invoice` for the paid one, and its payment arrives as a
signed Stripe ``invoice.paid`` event through `billing.providers.webhooks.receive` — the service
behind ``POST /api/v1/payments/webhooks/stripe`` — verified with a demo-only secret, stored by its
event id and audited as ``webhook:stripe``. Running the demo again drafts nothing new (an unchanged
period is left as it is), finalizes nothing twice, and the same event id is a duplicate delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime

import sqlalchemy as sa

from billing.invoices import service
from billing.invoices.models import Invoice
from billing.money import from_minor_units, money_str
from billing.providers import webhooks
from billing.providers.port import ProviderConfig
from billing.providers.stripe import StripeProvider
from compliance.service import Actor
from control_plane.database import Databases, utcnow
from control_plane.errors import Conflict
from tenants.models import Tenant
from tenants.periods import Period

PAID_TENANT = "acme-eu"
DEMO_WEBHOOK_SECRET = "whsec_demo_only_not_a_real_stripe_secret"


def _signed_paid_event(invoice: Invoice) -> tuple[bytes, dict[str, str]]:
    """A Stripe ``invoice.paid`` event for the invoice, signed as Stripe signs (t=…,v1=HMAC-SHA256)."""
    obj = {"id": f"in_demo_{invoice.id.hex[:16]}", "object": "invoice", "status": "paid",
           "amount_paid": invoice.total_minor, "currency": invoice.currency.lower(),
           "metadata": {"invoice_id": str(invoice.id), "invoice_number": invoice.number}}  # fmt: skip
    body = json.dumps(
        {"id": f"evt_demo_{invoice.id.hex}", "object": "event", "type": "invoice.paid", "data": {"object": obj}}
    ).encode()
    stamp = int(time.time())
    signature = hmac.new(DEMO_WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}


async def seed_demo_invoices(
    dbs: Databases, actor: Actor, slugs: list[str], *, now: datetime | None = None
) -> list[str]:
    """Draft last month's invoice of each tenant, finalize and pay `PAID_TENANT`'s; one line each for the report."""
    now = now or utcnow()
    report = []
    for slug in slugs:
        async with dbs.control_transaction() as session:
            tenant = await session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
            if tenant is None:
                continue
            period = Period.at(now, tenant.timezone).previous()
            invoice = await session.scalar(
                sa.select(Invoice).where(Invoice.tenant_id == tenant.id, Invoice.period == period.label)
            )
            if invoice is None or invoice.status == service.OPEN:
                try:
                    invoice, _ = await service.draft_invoice(session, actor, slug, period.label, now=now)
                except Conflict as exc:
                    report.append(f"{slug} {period.label}: not drafted ({exc})")
                    continue
            if slug == PAID_TENANT and invoice.status == service.OPEN:
                invoice = await service.finalize_invoice(session, actor, invoice.id, now=now)
            invoice_id = invoice.id
        if slug == PAID_TENANT:
            async with dbs.control_transaction() as session:
                invoice = await service.get_invoice(session, None, invoice_id)
                if invoice.status == "finalized":
                    body, headers = _signed_paid_event(invoice)
                    provider = StripeProvider(ProviderConfig(stripe_webhook_secret=DEMO_WEBHOOK_SECRET))
                    await webhooks.receive(session, provider, body, headers, now=now)
        async with dbs.control_session() as session:
            invoice = await service.get_invoice(session, None, invoice_id)
            total = money_str(from_minor_units(invoice.total_minor, invoice.currency), invoice.currency)
            number = invoice.number or "(no number)"
            report.append(f"{slug} {invoice.period}: {invoice.status} {number} {total} {invoice.currency}")
    return report
