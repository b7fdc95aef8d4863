"""SLA settings of a tenant, each change audited: excluded windows (days taken out of the measurement,
with the reason) and the support calendar (business hours for response targets). SLA alerts go to
merchant webhook endpoints subscribed to ``sla.at_risk`` / ``sla.breached`` (the webhooks domain).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from compliance.service import Actor, append_audit_entry
from control_plane.database import utcnow
from control_plane.errors import Conflict, FieldError, InvalidInput, NotFound
from control_plane.validation import parse
from sla.models import AlertEmails, ExcludedWindow
from sla.schemas import ExcludedWindowCreate, SupportCalendarPut
from tenants import service as tenants
from tenants.calendar import BusinessCalendar, load_calendar
from tenants.models import SupportCalendar


async def add_excluded_window(session: AsyncSession, actor: Actor, slug: str, data: Any) -> ExcludedWindow:
    """Record days taken out of SLA measurement (audited). Days are whole days in the tenant's zone."""
    tenant = await tenants.find_tenant(session, actor, slug)
    spec = parse(ExcludedWindowCreate, data)
    window = ExcludedWindow(
        tenant_id=tenant.id,
        first_day=spec.first_day,
        last_day=spec.last_day,
        kind=spec.kind,
        reason=spec.reason,
        created_at=utcnow(),
        created_by=actor.actor,
    )
    session.add(window)
    await session.flush()
    await append_audit_entry(
        session,
        stream=tenant.slug,
        actor=actor,
        action="sla.excluded_window_added",
        target=f"tenant:{tenant.slug}/sla/excluded-windows/{window.id}",
        data=spec.model_dump(mode="json"),
    )
    return window


async def withdraw_excluded_window(session: AsyncSession, actor: Actor, slug: str, window_id: str) -> ExcludedWindow:
    tenant = await tenants.find_tenant(session, actor, slug)
    try:
        wid = uuid.UUID(window_id)
    except ValueError:
        raise NotFound(f"no excluded window {window_id!r}") from None
    window = await session.get(ExcludedWindow, wid)
    if window is None or window.tenant_id != tenant.id:
        raise NotFound(f"no excluded window {window_id!r}")
    if window.withdrawn_at is not None:
        raise Conflict("this excluded window was withdrawn already", code="already_withdrawn")
    window.withdrawn_at, window.withdrawn_by = utcnow(), actor.actor
    await session.flush()
    await append_audit_entry(
        session,
        stream=tenant.slug,
        actor=actor,
        action="sla.excluded_window_withdrawn",
        target=f"tenant:{tenant.slug}/sla/excluded-windows/{window.id}",
        data={"first_day": window.first_day, "last_day": window.last_day},
    )
    return window


async def list_excluded_windows(session: AsyncSession, actor: Any, slug: str) -> list[ExcludedWindow]:
    tenant = await tenants.find_tenant(session, actor, slug)
    stmt = sa.select(ExcludedWindow).where(ExcludedWindow.tenant_id == tenant.id).order_by(ExcludedWindow.first_day)
    return list((await session.scalars(stmt)).all())


# --- support calendar --------------------------------------------------------------------------
async def _calendar_row(session: AsyncSession, tenant_id: uuid.UUID) -> SupportCalendar | None:
    return await session.get(SupportCalendar, tenant_id)


async def set_support_calendar(session: AsyncSession, actor: Actor, slug: str, data: Any) -> BusinessCalendar:
    """Set the tenant's weekly hours and holidays (audited). Business-hours response times are computed
    at ingest: run ``bpoctl rollups rebuild --tenant SLUG`` to recount contacts stored before the change."""
    tenant = await tenants.find_tenant(session, actor, slug)
    spec = parse(SupportCalendarPut, data)
    weekly = {day: [[a, b] for a, b in spans] for day, spans in spec.weekly.items()}
    holidays = sorted(d.isoformat() for d in spec.holidays)
    row = await _calendar_row(session, tenant.id)
    if row is None:
        row = SupportCalendar(tenant_id=tenant.id)
        session.add(row)
    row.timezone, row.weekly, row.holidays = tenant.timezone, weekly, holidays
    row.updated_at, row.updated_by = utcnow(), actor.actor
    await session.flush()
    await append_audit_entry(
        session,
        stream=tenant.slug,
        actor=actor,
        action="sla.support_calendar_set",
        target=f"tenant:{tenant.slug}/sla/calendar",
        data={"timezone": tenant.timezone, "weekly": weekly, "holidays": holidays},
    )
    return BusinessCalendar.from_json(tenant.timezone, weekly, holidays)


async def find_support_calendar(session: AsyncSession, actor: Any, slug: str) -> BusinessCalendar | None:
    """The tenant's support calendar, or None when none is set (business-hours targets count calendar time)."""
    tenant = await tenants.find_tenant(session, actor, slug)
    return await load_calendar(session, tenant.id)


# --- alert e-mails ------------------------------------------------------------------------------
MAX_ALERT_EMAILS = 10


def alert_email_list(data: Any) -> list[str]:
    """``{"emails": [...]}``: up to 10 addresses, normalised, each error named by its place."""
    emails = data.get("emails") if isinstance(data, dict) else None
    if not isinstance(emails, list) or len(emails) > MAX_ALERT_EMAILS:
        raise InvalidInput([FieldError("emails", f"a list of up to {MAX_ALERT_EMAILS} e-mail addresses")])
    clean, errors = [], []
    for i, email in enumerate(emails):
        try:
            clean.append(validate_email(str(email), check_deliverability=False).normalized)
        except EmailNotValidError:
            errors.append(
                FieldError("emails", f"the address on line {i + 1}, {str(email)[:100]}, is not an e-mail address")
            )
    if errors:
        raise InvalidInput(errors)
    firsts: dict[str, str] = {}
    for email in clean:  # the first of each address, whatever its case
        firsts.setdefault(email.lower(), email)
    return list(firsts.values())


async def set_alert_emails(session: AsyncSession, actor: Actor, slug: str, data: Any) -> list[str]:
    """The tenant's operations contacts for SLA alerts (an empty list: no alert e-mails)."""
    tenant = await tenants.find_tenant(session, actor, slug)
    emails = alert_email_list(data)
    row = await session.get(AlertEmails, tenant.id)
    if row is None:
        row = AlertEmails(tenant_id=tenant.id)
        session.add(row)
    row.emails, row.updated_at, row.updated_by = emails, utcnow(), actor.actor
    await session.flush()
    await append_audit_entry(
        session,
        stream=tenant.slug,
        actor=actor,
        action="sla.alert_emails_set",
        target=f"tenant:{tenant.slug}/sla/alert-emails",
        data={"emails": emails},
    )
    return emails


async def alert_emails_of(session: AsyncSession, tenant_id: uuid.UUID) -> list[str]:
    row = await session.get(AlertEmails, tenant_id)
    return list(row.emails) if row is not None else []
