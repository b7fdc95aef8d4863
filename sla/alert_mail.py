"""The SLA alert e-mail: one message to each of the tenant's alert e-mails (its operations contacts,
set on the SLA settings page) per alert, queued in the transaction that raises the alert."""

from __future__ import annotations

from typing import Any

from control_plane.mail import queue_mail
from sla.configuration import alert_emails_of
from sla.models import SlaAlert
from tenants.models import Tenant


async def queue_alert_mail(session: Any, tenant: Tenant, alert: SlaAlert, emails: list[str] | None = None) -> None:
    emails = await alert_emails_of(session, tenant.id) if emails is None else emails
    if not emails:
        return
    await queue_mail(
        session,
        to=emails,
        template="sla_alert",
        context={
            "tenant_name": tenant.name,
            "slug": tenant.slug,
            "period": alert.period,
            "sla": alert.sla,
            "status": alert.status,
            "previous_status": alert.previous_status,
            "actual": alert.actual,
            "projected": alert.projected,
            "target": alert.target,
            "message": alert.message,
        },
        key=f"sla.alert:{alert.id}",
        tenant_id=str(tenant.id),
        now=alert.created_at,
    )
