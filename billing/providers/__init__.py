"""Payment providers behind one port (`port.PaymentProvider`): Polar (merchant of record) and Stripe.

Nothing here is called from a business rule: finalizing an invoice writes an outbox row
(`payments.send_invoice`) in its transaction; the outbox job calls `handlers.send_invoice`, which
loads the invoice and calls the configured adapter with the row's idempotency key. Provider
webhooks come back through `webhooks.receive`, verified, stored once by event id, marking invoices paid.
"""
