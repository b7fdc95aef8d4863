"""The SLA domain as the app sees it: report and settings routes, the status job, the alert webhook's
outbox handler."""

from __future__ import annotations

from control_plane.plugins import Domain
from sla import jobs
from sla.configuration import reseal_webhook_secrets, webhook_key_ids_in_use
from sla.controllers import ROUTES
from sla.service import ALERT_KIND
from sla.webhook import alert_webhook_handler

DOMAIN = Domain(
    "sla",
    routes=ROUTES,
    jobs={"sla_status": (600, jobs.sla_status)},
    outbox_handlers={ALERT_KIND: alert_webhook_handler},
    resealers=[reseal_webhook_secrets],
    key_ids_in_use=[webhook_key_ids_in_use],
)
