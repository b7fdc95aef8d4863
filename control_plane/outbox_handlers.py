"""Which code sends each kind of outbox message (payment providers, alert webhooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.outbox.service import Handler
    from control_plane.periodic import JobContext

# kind -> factory(ctx) -> handler; domains register theirs.
HANDLER_FACTORIES: dict[str, object] = {}


def _register() -> None:
    from billing.providers.handlers import FACTORIES as payments
    from sla.webhook import alert_webhook_handler

    HANDLER_FACTORIES.update(payments)
    HANDLER_FACTORIES["sla.alert_webhook"] = alert_webhook_handler


def handlers(ctx: JobContext) -> dict[str, Handler]:
    _register()
    return {kind: factory(ctx) for kind, factory in HANDLER_FACTORIES.items()}  # type: ignore[operator]
