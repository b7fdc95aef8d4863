"""The SLA domain as the app sees it: report and settings routes, the status job (its alerts are events:
merchant webhooks subscribe to them)."""

from __future__ import annotations

from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Role
from control_plane.plugins import Domain, NavLink
from sla import jobs
from sla.controllers import ROUTES
from sla.pages import PAGES
from sla.schemas import ExcludedWindowCreate, SupportCalendarPut

DOMAIN = Domain(
    "sla",
    routes=[*ROUTES, *PAGES],
    jobs={"sla_status": (600, jobs.sla_status)},
    request_bodies={
        "PUT /api/v1/tenants/{slug}/sla/calendar": SupportCalendarPut,
        "POST /api/v1/tenants/{slug}/sla/excluded-windows": ExcludedWindowCreate,
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
