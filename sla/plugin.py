"""The SLA domain as the app sees it: report and settings routes, the status job, the alert webhook's
outbox handler."""

from __future__ import annotations

from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Role
from control_plane.plugins import Domain, NavLink
from sla import jobs
from sla.configuration import reseal_webhook_secrets, webhook_key_ids_in_use
from sla.controllers import ROUTES
from sla.pages import PAGES
from sla.schemas import AlertWebhookPut, ExcludedWindowCreate, SupportCalendarPut
from sla.service import ALERT_KIND
from sla.webhook import alert_webhook_handler

DOMAIN = Domain(
    "sla",
    routes=[*ROUTES, *PAGES],
    jobs={"sla_status": (600, jobs.sla_status)},
    outbox_handlers={ALERT_KIND: alert_webhook_handler},
    resealers=[reseal_webhook_secrets],
    key_ids_in_use=[webhook_key_ids_in_use],
    request_bodies={
        "PUT /api/v1/tenants/{slug}/sla/calendar": SupportCalendarPut,
        "POST /api/v1/tenants/{slug}/sla/excluded-windows": ExcludedWindowCreate,
        "PUT /api/v1/tenants/{slug}/sla/webhook": AlertWebhookPut,
    },
    answers={
        "GET /api/v1/tenants/{slug}/sla.csv": {"200": ["text/csv"]},
        "GET /api/v1/tenants/{slug}/sla.pdf": {"200": ["application/pdf"]},
    },
    nav=[NavLink("sla_alerts", "SLA alerts", "/sla/alerts", frozenset(ONBOARDING), order=30)],
    tenant_tabs=[
        NavLink("sla", "SLA", "/tenants/{slug}/sla", frozenset(EVERYONE), order=30),
        NavLink("settings", "Settings", "/tenants/{slug}/settings", frozenset({*STAFF, Role.merchant_admin}), order=70),
    ],
)
