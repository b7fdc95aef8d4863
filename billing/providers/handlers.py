"""Outbox handlers of the payment providers: `payments.send_invoice` and `payments.credit_note` (credits.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from billing.invoices.models import Invoice
from billing.money import to_minor_units
from billing.providers.credits import CREDIT_NOTE, credit_note_factory
from billing.providers.factory import build_provider
from billing.providers.port import ChargeLine, ChargeRequest, ProviderConfig
from tenants.models import Tenant

if TYPE_CHECKING:
    from control_plane.outbox import Handler
    from control_plane.periodic import JobContext


def send_invoice_factory(ctx: JobContext) -> Handler:
    config = ProviderConfig.load(ctx.settings.extra)

    async def send_invoice(payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        invoice_id = uuid.UUID(payload["invoice_id"])
        async with ctx.db.control_session() as session:
            invoice = await session.get_one(Invoice, invoice_id)
            tenant = await session.get_one(Tenant, invoice.tenant_id)
            request = ChargeRequest(
                invoice_id=str(invoice.id),
                number=invoice.number or "",
                period=invoice.period,
                tenant_slug=tenant.slug,
                tenant_name=tenant.name,
                currency=invoice.currency,
                total_minor=invoice.total_minor,
                lines=(
                    *(ChargeLine(r.description, int(r.quantity), int(r.amount_minor)) for r in invoice.lines),
                    # Tax is charged as lines of its own, so the provider's total is the invoice's total.
                    *(
                        ChargeLine(
                            f"Tax {t['code']} ({t['rate']})", 1, to_minor_units(Decimal(t["amount"]), invoice.currency)
                        )
                        for t in invoice.tax_lines or []
                        if Decimal(t["amount"]) != 0
                    ),
                ),
            )
        result = await build_provider(payload["provider"], config).send_invoice(request, idempotency_key)
        async with ctx.db.control_transaction() as session:
            await session.execute(
                sa.update(Invoice)
                .where(Invoice.id == invoice_id, Invoice.provider_invoice_id.is_(None))
                .values(provider_invoice_id=result.provider_invoice_id)
            )
        return {"provider": result.provider, "provider_invoice_id": result.provider_invoice_id, "status": result.status}

    return send_invoice


FACTORIES = {"payments.send_invoice": send_invoice_factory, CREDIT_NOTE: credit_note_factory}
