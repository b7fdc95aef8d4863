"""Invoices: a tenant's settled period, rated from rollups, drafted, finalized, collected.

Data flow: rollups (control DB) -> `billing.metering.counts.period_counts` (via `billing.invoices.counting`)
-> `billing.rating.rate_counts`
-> `service.draft_invoice` stores lines in integer minor units -> `finalize_invoice` gives the
gapless number and writes the provider call to the outbox in the same transaction -> the
outbox job sends it through `billing.providers` -> the provider's webhook marks it paid.
A finalized invoice never changes: later rollup changes become `adjustment` lines of the next
invoice, corrections are credit notes.
"""
