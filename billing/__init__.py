"""Billing: contact metering (ingest into region cells, rollups), rating, invoices, payment providers, outbox."""
