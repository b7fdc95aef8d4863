"""The tenant's SLA settings page (thin): business hours and excluded windows; SLA alerts go to the
tenant's webhook endpoints (the page links to the Webhooks page).

Staff and the tenant's merchant admins read it; platform admins and account managers change it, each
form posting to its own route that calls one ``sla.configuration`` function. Bad input re-renders the
page with status 422 (or the error's), the errors beside their fields and the typed values kept;
success redirects back with a flash message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth import ONBOARDING, STAFF, Principal, Role, policy
from control_plane.errors import DomainError
from control_plane.navigation import notify
from sla import configuration
from sla.settings_form import (
    DAY_NAMES,
    WINDOW_KINDS,
    alert_emails_body,
    form_errors,
    hours_body,
    hours_values,
    split_days,
    window_body,
)
from tenants import service as tenants

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
VIEWERS = policy(roles=(*STAFF, Role.merchant_admin))
CHANGERS = policy(roles=ONBOARDING)
PAGE = "/tenants/{slug:str}/settings"


async def _settings_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    section: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    tenant = await tenants.find_tenant(session, principal, slug)
    calendar = await configuration.find_support_calendar(session, principal, slug)
    emails = await configuration.alert_emails_of(session, tenant.id)
    form_values = {"hours": hours_values(calendar), "window": {}, "emails": {"emails": "\n".join(emails)}}
    if section and values is not None:
        form_values[section] = dict(values)
    return Template(
        "sla_settings.html",
        status_code=status_code,
        context={
            "principal": principal,
            "tenant": tenant,
            "slug": tenant.slug,
            "can_edit": principal.role in ONBOARDING,
            "calendar": calendar.to_json() if calendar else None,
            "split_days": split_days(calendar),
            "windows": await configuration.list_excluded_windows(session, principal, slug),
            "alert_emails": emails,
            "days": DAY_NAMES,
            "kinds": WINDOW_KINDS,
            "errors": {section: errors or {}} if section else {},
            "values": form_values,
        },
    )


async def _apply(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    slug: str,
    section: str,
    form: dict[str, Any],
    action: Callable[[], Awaitable[Any]],
    *,
    notice: str,
    moved: dict[str, str] | None = None,
) -> Template | Redirect:
    """Run one change: on failure the page again with the errors beside the fields, else redirect."""
    try:
        await action()
    except DomainError as exc:
        await session.rollback()
        if exc.status_code == 404:
            raise
        errors = form_errors(exc, moved=moved)
        return await _settings_page(
            session, principal, slug, section=section, errors=errors, values=form, status_code=exc.status_code
        )
    await session.commit()
    notify(request, notice)
    return Redirect(f"/tenants/{slug}/settings#{section}", status_code=303)


@get(PAGE, opt=VIEWERS, include_in_schema=False)
async def settings_page(session: AsyncSession, principal: Principal, slug: str) -> Template:
    return await _settings_page(session, principal, slug)


@post(PAGE + "/business-hours", opt=CHANGERS, include_in_schema=False)
async def business_hours_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, Any], FORM]
) -> Template | Redirect:
    body, errors = hours_body(data)
    if errors:
        return await _settings_page(
            session, principal, slug, section="hours", errors=errors, values=data, status_code=422
        )
    return await _apply(
        request,
        session,
        principal,
        slug,
        "hours",
        data,
        lambda: configuration.set_support_calendar(session, principal, slug, body),
        notice="Business hours saved",
    )


@post(PAGE + "/excluded-windows", opt=CHANGERS, include_in_schema=False)
async def excluded_window_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, Any], FORM]
) -> Template | Redirect:
    return await _apply(
        request,
        session,
        principal,
        slug,
        "window",
        data,
        lambda: configuration.add_excluded_window(session, principal, slug, window_body(data)),
        notice="Excluded window added: its days no longer count in the SLA",
        moved={"body": "last_day"},
    )


@post(PAGE + "/excluded-windows/{window_id:str}/withdraw", opt=CHANGERS, include_in_schema=False)
async def withdraw_window_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, window_id: str
) -> Template | Redirect:
    return await _apply(
        request,
        session,
        principal,
        slug,
        "windows",
        {},
        lambda: configuration.withdraw_excluded_window(session, principal, slug, window_id),
        notice="Excluded window withdrawn: its days count in the SLA again",
    )


@post(PAGE + "/alert-emails", opt=CHANGERS, include_in_schema=False)
async def alert_emails_form(
    request: Request, session: AsyncSession, principal: Principal, slug: str, data: Annotated[dict[str, Any], FORM]
) -> Template | Redirect:
    return await _apply(
        request,
        session,
        principal,
        slug,
        "emails",
        data,
        lambda: configuration.set_alert_emails(session, principal, slug, alert_emails_body(data)),
        notice="Alert e-mails saved",
    )


PAGES = [
    settings_page,
    business_hours_form,
    excluded_window_form,
    withdraw_window_form,
    alert_emails_form,
]
