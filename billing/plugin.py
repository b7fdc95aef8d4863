"""The billing domain as the app sees it: metering and invoice routes (the API and the pages), its
jobs, the payment providers' outbox handlers, the usage read model's readiness check and the
``rollups`` / ``webhooks`` / ``payments`` commands."""

from __future__ import annotations

from billing import jobs
from billing.demo import seed_demo_billing
from billing.finance.controllers import ROUTES as FINANCE_ROUTES
from billing.finance.controllers import BillingProfileIn, IssuerIn, IssuerPatch, TaxRateIn
from billing.finance.pages import PAGE_ROUTES as FINANCE_PAGES
from billing.invoices.controllers import ROUTES as INVOICE_ROUTES
from billing.invoices.itemised import ROUTES as ITEMISED_ROUTES
from billing.invoices.mail import INVOICE_PDF, invoice_pdf
from billing.invoices.metrics import drafts_awaiting
from billing.invoices.pages import PAGE_ROUTES as INVOICE_PAGES
from billing.invoices.payment_controllers import ROUTES as PAYMENT_ROUTES
from billing.invoices.payment_pages import PAGE_ROUTES as PAYMENT_PAGES
from billing.invoices.schemas import CreditNoteIn, ReasonIn, VoidIn
from billing.metering.cell_pages import ROUTES as CELL_PAGES
from billing.metering.cli import rollups_group, tenants_group, webhooks_group
from billing.metering.controllers import ROUTES as METERING_ROUTES
from billing.metering.controllers import rollups_ready
from billing.metering.metrics import pending_deltas
from billing.metering.schemas import ContactWire
from billing.providers.cli import payments_group
from billing.providers.credits import credit_note_followups
from billing.providers.handlers import FACTORIES as PAYMENT_HANDLERS
from control_plane.auth import EVERYONE, ONBOARDING, Role
from control_plane.plugins import Domain, NavLink

DOMAIN = Domain(
    "billing",
    routes=[
        *METERING_ROUTES,
        *CELL_PAGES,
        *INVOICE_ROUTES,
        *ITEMISED_ROUTES,
        *INVOICE_PAGES,
        *PAYMENT_ROUTES,
        *PAYMENT_PAGES,
        *FINANCE_ROUTES,
        *FINANCE_PAGES,
    ],
    jobs={
        "outbox": (10, jobs.dispatch_outbox),
        "draft_invoices": (3600, jobs.draft_invoices),
        "dunning": (3600, jobs.dunning),
        "rollup_deltas": (10, jobs.rollup_deltas),
        "contact_partitions": (3600, jobs.contact_partitions),
        "credit_note_followups": (300, credit_note_followups),
    },
    outbox_handlers=PAYMENT_HANDLERS,
    mail_attachments={INVOICE_PDF: invoice_pdf},
    commands=[rollups_group, webhooks_group, payments_group, tenants_group],
    readiness=[rollups_ready],
    metrics=[pending_deltas, drafts_awaiting],
    on_start=[jobs.settle_at_start],
    demo_seeders=[seed_demo_billing],
    request_bodies={
        "POST /api/v1/tenants/{slug}/contacts": list[ContactWire],
        "POST /api/v1/invoices/{invoice_id}/void": VoidIn,
        "POST /api/v1/invoices/{invoice_id}/credit-notes": CreditNoteIn,
        "POST /api/v1/invoices/{invoice_id}/uncollectible": ReasonIn,
        "POST /api/v1/invoices/{invoice_id}/suspension-override": ReasonIn,
        "POST /api/v1/issuers": IssuerIn,
        "PATCH /api/v1/issuers/{code}": IssuerPatch,
        "PUT /api/v1/tenants/{slug}/billing-profile": BillingProfileIn,
        "POST /api/v1/tax-rates": TaxRateIn,
    },
    answers={
        "GET /api/v1/invoices/{ref}": {"200": ["application/json", "application/pdf"], "303": []},
        "GET /api/v1/invoices.csv": {"200": ["text/csv"]},
        "GET /api/v1/invoices/{invoice_id}/usage.csv": {"200": ["text/csv"]},
    },
    nav=[
        NavLink("drafts", "Drafts", "/billing/drafts", frozenset(ONBOARDING), order=20),
        NavLink("issuers", "Issuers", "/billing/issuers", frozenset({Role.platform_admin}), order=21),
        NavLink("cells", "Cells", "/cells", frozenset({Role.platform_admin}), order=70),
    ],
    tenant_tabs=[
        NavLink("usage", "Usage", "/tenants/{slug}/usage", frozenset(EVERYONE), order=20),
        NavLink("invoices", "Invoices", "/tenants/{slug}/invoices", frozenset(EVERYONE), order=40),
    ],
)
