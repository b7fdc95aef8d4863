"""The merchant webhooks domain as the app sees it: endpoint, delivery and threshold routes and pages,
the event subscriber, the ``webhook`` outbox handler, the usage-threshold job and the secret resealer."""

from __future__ import annotations

from control_plane.auth import STAFF, Role
from control_plane.plugins import Domain, NavLink
from webhooks import jobs
from webhooks.controllers import ROUTES
from webhooks.delivery import KIND, on_event, webhook_handler
from webhooks.pages import PAGES
from webhooks.schemas import EndpointIn, EndpointPatch, ThresholdIn
from webhooks.service import endpoint_key_ids_in_use, reseal_endpoint_secrets

DOMAIN = Domain(
    "webhooks",
    routes=[*ROUTES, *PAGES],
    jobs={"usage_thresholds": (900, jobs.usage_thresholds)},
    outbox_handlers={KIND: webhook_handler},
    resealers=[reseal_endpoint_secrets],
    key_ids_in_use=[endpoint_key_ids_in_use],
    event_subscribers=[on_event],
    request_bodies={
        "POST /api/v1/tenants/{slug}/webhook-endpoints": EndpointIn,
        "PATCH /api/v1/tenants/{slug}/webhook-endpoints/{endpoint_id}": EndpointPatch,
        "POST /api/v1/tenants/{slug}/usage-thresholds": ThresholdIn,
    },
    tenant_tabs=[
        NavLink("webhooks", "Webhooks", "/tenants/{slug}/webhooks", frozenset({*STAFF, Role.merchant_admin}), order=65)
    ],
)
