"""SLA routes (thin): the report as JSON, page, CSV and PDF; excluded windows; calendar; alerts."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post, put
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering.controllers import settle_before_read
from control_plane.auth import EVERYONE, ONBOARDING, STAFF, ApiScope, Principal, policy
from control_plane.downloads import attachment
from control_plane.errors import InvalidInput
from sla import charts, configuration, export, service
from sla.windows import window_json
from tenants.periods import EARLIEST_PERIOD, Period

API = "/api/v1/tenants"
READ = policy(roles=EVERYONE, scopes=(ApiScope.sla_read,))


@get(API + "/{slug:str}/sla", opt=READ, tags=["sla"], before_request=settle_before_read)
async def sla_report(session: AsyncSession, principal: Principal, slug: str, period: str | None = None) -> dict:
    """Each SLA of the month with target, actual, met, status and credit (YYYY-MM; default: this month)."""
    return await service.period_report(session, principal, slug, service.check_period(period))


@get(API + "/{slug:str}/sla.csv", opt=READ, tags=["sla"], before_request=settle_before_read)
async def sla_csv(session: AsyncSession, principal: Principal, slug: str, period: str | None = None) -> Response:
    report = await service.period_report(session, principal, slug, service.check_period(period))
    name = f"sla-{report['tenant']}-{report['period']}.csv"
    return Response(
        export.report_csv(report),
        media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types itself
        headers={"content-disposition": attachment(name)},
    )


@get(API + "/{slug:str}/sla.pdf", opt=READ, tags=["sla"], before_request=settle_before_read)
async def sla_pdf(session: AsyncSession, principal: Principal, slug: str, period: str | None = None) -> Response:
    report = await service.period_report(session, principal, slug, service.check_period(period))
    name = f"sla-{report['tenant']}-{report['period']}.pdf"
    return Response(
        export.report_pdf(report),
        media_type="application/pdf",
        headers={"content-disposition": attachment(name)},
    )


@get("/tenants/{slug:str}/sla", opt=policy(roles=EVERYONE), include_in_schema=False, before_request=settle_before_read)
async def sla_page(session: AsyncSession, principal: Principal, slug: str, period: str | None = None) -> Template:
    """The month's report; a month the selector cannot show is named beside it (422) above this month's."""
    errors: dict[str, str] = {}
    try:
        month = service.check_period(period)
    except InvalidInput as exc:
        errors, month = {e.field: e.message for e in exc.errors}, None
    report = await service.period_report(session, principal, slug, month)
    alerts = await service.list_alerts(session, principal, slug, limit=20) if principal.is_staff else []
    context = {"report": report, "charts": charts.report_charts(report), "principal": principal, "alerts": alerts}
    context |= {"errors": errors, "typed": period if errors else report["period"]}
    context |= {"earliest": EARLIEST_PERIOD.label, "latest": Period.latest().label}
    return Template(template_name="sla_report.html", context=context, status_code=422 if errors else 200)


@get(API + "/{slug:str}/sla/excluded-windows", opt=policy(roles=EVERYONE), tags=["sla"])
async def list_windows(session: AsyncSession, principal: Principal, slug: str) -> list[dict]:
    return [window_json(w) for w in await configuration.list_excluded_windows(session, principal, slug)]


@post(API + "/{slug:str}/sla/excluded-windows", opt=policy(roles=ONBOARDING), tags=["sla"], status_code=201)
async def add_window(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    """Take whole days (tenant's zone) out of SLA measurement: force majeure or a client-caused outage."""
    return window_json(await configuration.add_excluded_window(session, principal, slug, data))


@post(API + "/{slug:str}/sla/excluded-windows/{window_id:str}/withdraw", opt=policy(roles=ONBOARDING), tags=["sla"])
async def withdraw_window(session: AsyncSession, principal: Principal, slug: str, window_id: str) -> dict:
    return window_json(await configuration.withdraw_excluded_window(session, principal, slug, window_id))


@put(API + "/{slug:str}/sla/calendar", opt=policy(roles=ONBOARDING), tags=["sla"])
async def put_calendar(session: AsyncSession, principal: Principal, slug: str, data: dict[str, Any]) -> dict:
    return (await configuration.set_support_calendar(session, principal, slug, data)).to_json()


@get(API + "/{slug:str}/sla/alerts", opt=policy(roles=STAFF), tags=["sla"])
async def tenant_alerts(session: AsyncSession, principal: Principal, slug: str) -> list[dict]:
    return await service.list_alerts(session, principal, slug)


@get("/sla/alerts", opt=policy(roles=STAFF), include_in_schema=False)
async def alerts_page(session: AsyncSession, principal: Principal) -> Template:
    alerts = await service.list_alerts(session, principal)
    return Template(template_name="sla_alerts.html", context={"alerts": alerts, "principal": principal})


ROUTES = [
    sla_report,
    sla_csv,
    sla_pdf,
    sla_page,
    list_windows,
    add_window,
    withdraw_window,
    put_calendar,
    tenant_alerts,
    alerts_page,
]
