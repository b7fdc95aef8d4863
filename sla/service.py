"""SLA rules over storage: the period report, status tracking with alerts, excluded windows, calendars.

Data flow: rollups (control DB) -> `billing.metering.counts.period_counts` -> `sla.evaluation.evaluate_period`
-> `billing.rating.rate_counts` (the invoice's own path, so the report's credits are the invoice's)
-> the report (`period_report`): each SLA with target, actual, met, status and credit, plus the
figures beside them (percentiles, handoff and reopen rates, breakdowns, daily trend).

Status through the month (`tracking_status`): a finished month is `breached` when missed and
`on_track` otherwise. In the running month, with the month so far (num/den) and the volume
expected for the remaining days (the daily average so far):
- `breached`: even if every remaining contact succeeded the month would end below target;
- `at_risk`: the month so far is below target, or the projection (the last 7 days' rate applied
  to the remaining volume) ends below it;
- `on_track` otherwise (and for a CSAT sample that cannot reach the minimum).
`track_statuses` stores the status per SLA and raises one alert per change to at_risk or breached
(in the app, and as an ``sla.at_risk`` / ``sla.breached`` event for merchant webhooks); the same status
again sends nothing, so re-running the job is harmless. Services never commit: the request or the job does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import counts
from billing.metering.models import HISTOGRAM_BOUNDS
from billing.money import money_str
from billing.rating.lines import LineKind
from billing.rating.service import rate_counts
from control_plane.database import utcnow
from control_plane.events import publish
from sla.alert_mail import queue_alert_mail
from sla.configuration import alert_emails_of
from sla.credits import service_credits
from sla.evaluation import OutcomeStatus, SlaOutcome, evaluate_period
from sla.models import SlaAlert, SlaStatus
from sla.terms import SlaKind, SlaTerms
from sla.windows import excluded_days, recorded_windows, window_json
from tenants import service as tenants
from tenants.models import Tenant
from tenants.periods import Period

ON_TRACK, AT_RISK, BREACHED = "on_track", "at_risk", "breached"
RECENT_DAYS = 7


def rate_str(value: Fraction | None, places: int = 4) -> str | None:
    """An exact rate shown as a decimal string, half up ("0.7123"); display only, never compared."""
    if value is None:
        return None
    q = Decimal(value.numerator) / Decimal(value.denominator)
    return str(q.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _frac(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(tenant.timezone)).date()


# --- status ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tracking:
    status: str
    projected: Fraction | None


def tracking_status(
    outcome: SlaOutcome,
    *,
    period: Period,
    today: date,
    recent: tuple[int, int] | None = None,
    min_sample: int = 0,
) -> Tracking:
    """on_track / at_risk / breached for one SLA (see the module docstring); `recent` = (num, den)."""
    target, num, den = outcome.target, outcome.numerator, outcome.denominator
    if today >= period.end:  # the month is over: its outcome is final
        return Tracking(BREACHED if outcome.missed else ON_TRACK, outcome.actual)
    if today < period.first or den == 0:
        return Tracking(ON_TRACK, None)
    elapsed = (today - period.first).days + 1
    remaining_den = Fraction(den, elapsed) * (period.days - elapsed)
    recent_rate = Fraction(*recent) if recent and recent[1] else Fraction(num, den)
    projected = (num + recent_rate * remaining_den) / (den + remaining_den)
    if outcome.sla is SlaKind.csat and den + remaining_den < min_sample:
        return Tracking(ON_TRACK, projected)  # the month will not reach the minimum sample
    best = (num + remaining_den) / (den + remaining_den)
    if best < target:
        return Tracking(BREACHED, projected)
    if projected < target or Fraction(num, den) < target:
        return Tracking(AT_RISK, projected)
    return Tracking(ON_TRACK, projected)


# --- the report --------------------------------------------------------------------------------
def exact_percentile(distribution: Sequence[tuple[int, int]], q: Fraction) -> int | None:
    """Nearest-rank percentile of ``[(value, count)]`` ascending: the smallest value covering q of all."""
    total = sum(n for _, n in distribution)
    if not total:
        return None
    rank, seen = max(1, -(-q * total // 1)), 0
    for value, n in distribution:
        seen += n
        if seen >= rank:
            return value
    return distribution[-1][0]


def bucket_percentile(counts: Sequence[int], q: Fraction) -> int | None:
    """Percentile from the rollup duration histogram, interpolated inside its bucket (an estimate)."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = HISTOGRAM_BOUNDS[i - 1] if i else 0
            upper = HISTOGRAM_BOUNDS[i] if i < len(HISTOGRAM_BOUNDS) else lower * 2
            return int(lower + (upper - lower) * (rank - seen) / n)
        seen += n
    return HISTOGRAM_BOUNDS[-1]


def _deflection_parts(rows: Mapping[str, Mapping[str, int]], exclusions: frozenset[str]) -> tuple[int, int]:
    ai = sum(r.get("ai_resolved", 0) for i, r in rows.items() if i not in exclusions)
    human = sum(r.get("human_resolved", 0) for i, r in rows.items() if i not in exclusions)
    return ai, ai + human


async def period_report(
    session: AsyncSession, actor: Any, slug: str, period: str | Period | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The SLA report of one tenant's month (the current one by default), as JSON-ready data."""
    tenant = await tenants.find_tenant(session, actor, slug)
    today = local_today(tenant, now)
    p = Period.of(today) if period is None else Period.parse(period)
    contract = await tenants.contract_in_force(session, tenant.id, p.first)
    terms: dict[str, Any] = dict(contract.terms) if contract else {}
    sla = SlaTerms.from_terms(terms)
    windows = await recorded_windows(session, tenant.id, p)
    skip = excluded_days(windows, p)
    figures = await counts.report_figures(session, tenant.id, p, sla.response_targets, skip)
    handoffs, resolved_total, res_hist = figures.handoffs, figures.resolved_total, figures.res_hist

    outcomes: tuple[SlaOutcome, ...] = ()
    rated_invoice = None
    if contract:
        period_counts = await counts.period_counts(session, tenant.id, p, sla.response_targets, skip, figures=figures)
        outcomes, rated_invoice = evaluate_period(terms, period_counts), rate_counts(terms, period_counts)
    credits = service_credits(terms, outcomes, rated_invoice.usage_subtotal, tenant.currency) if contract else None

    slas = _sla_rows(outcomes, figures, sla, credits, period=p, today=today, currency=tenant.currency)
    credit_lines = rated_invoice.lines_of(LineKind.sla_credit) if rated_invoice else ()
    days = _daily_rows(figures, sla, p, skip)

    frt_dist = figures.frt_distribution
    opened_total = sum(figures.opened_by_day.values())
    return {
        "tenant": tenant.slug,
        "tenant_name": tenant.name,
        "period": p.label,
        "previous_period": p.previous().label,
        "next_period": p.next().label,
        "timezone": tenant.timezone,
        "currency": tenant.currency,
        "as_of": min(today, p.end - timedelta(days=1)).isoformat(),
        "complete": today >= p.end,
        "contract_version": contract.version if contract else None,
        "excluded_windows": [window_json(w) for w in windows],
        "slas": slas,
        "credits": {
            "usage_subtotal": money_str(rated_invoice.usage_subtotal, tenant.currency) if rated_invoice else None,
            "lines": [
                {"sla": line.sla, "description": line.description, "amount": money_str(line.amount, tenant.currency)}
                for line in credit_lines
            ],
            "total": money_str(sum((line.amount for line in credit_lines), Decimal(0)), tenant.currency),
            "capped": bool(credits and credits.capped),
        },
        "metrics": {
            "contacts_opened": opened_total,
            "contacts_resolved": resolved_total,
            "handoff_rate": rate_str(_frac(handoffs, resolved_total)),
            # Resolved contacts of the period that had been reopened (open again, or resolved later).
            "reopen_rate": rate_str(_frac(figures.reopened, resolved_total)),
            "first_response_p50_seconds": exact_percentile(frt_dist, Fraction(1, 2)),
            "first_response_p90_seconds": exact_percentile(frt_dist, Fraction(9, 10)),
            "resolution_p50_seconds": bucket_percentile(res_hist, Fraction(1, 2)),
            "resolution_p90_seconds": bucket_percentile(res_hist, Fraction(9, 10)),
        },
        "breakdowns": {
            "intent": _breakdown(figures.intents, sla.deflection_exclusions),
            "language": _breakdown(figures.languages),
            "channel": _breakdown(figures.channels),
        },
        "daily": days,
    }


def _recent(figures: Any, sla: SlaTerms, o: SlaOutcome, recent_days: Sequence[date]) -> tuple[int, int]:
    """(numerator, denominator) of one SLA over the recent measured days, for the projection."""
    daily = figures.daily
    if o.sla is SlaKind.deflection:
        return _sum_pairs(_deflection_parts(daily.get(d, {}), sla.deflection_exclusions) for d in recent_days)
    if o.sla is SlaKind.csat:
        return _sum_pairs(
            (
                sum(r["satisfied"] for r in daily.get(d, {}).values()),
                sum(r["rated"] for r in daily.get(d, {}).values()),
            )
            for d in recent_days
        )
    return _sum_pairs(
        (
            figures.within_by_day.get((o.channel, o.first_response_seconds, d), 0),
            figures.opened_by_day.get((d, o.channel), 0),
        )
        for d in recent_days
    )


def _sla_rows(
    outcomes: Sequence[SlaOutcome], figures: Any, sla: SlaTerms, credits: Any, *, period: Period, today: date,
    currency: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per SLA: target, actual, outcome, tracking status (projected on the last 7 measured
    days up to today) and credit."""
    measured = sorted(figures.daily.keys() | {k[0] for k in figures.opened_by_day})
    recent_days = [d for d in measured if d <= today][-RECENT_DAYS:]
    rows = []
    for o in outcomes:
        recent = _recent(figures, sla, o, recent_days)
        track = tracking_status(o, period=period, today=today, recent=recent, min_sample=sla.csat_min_sample)
        credit = credits.credit_for(o.key) if credits else None
        rows.append(
            {
                "sla": o.key,
                "kind": str(o.sla),
                "channel": o.channel,
                "first_response_seconds": o.first_response_seconds,
                "business_hours": next(
                    (t.business_hours for t in sla.response_targets if t.channel == o.channel), False
                )
                if o.sla is SlaKind.response
                else None,
                "target": rate_str(o.target),
                "actual": rate_str(o.actual),
                "numerator": o.numerator,
                "denominator": o.denominator,
                "outcome": str(o.status),
                "met": None if o.status in (OutcomeStatus.no_data, OutcomeStatus.insufficient_sample) else not o.missed,
                "status": track.status,
                "projected": rate_str(track.projected),
                "credit": {
                    "percent": rate_str(credit.percent, 4) if credit else "0.0000",
                    "amount": credit.amount_str(currency) if credit else money_str(Decimal(0), currency),
                },
            }
        )
    return rows


def _daily_rows(figures: Any, sla: SlaTerms, period: Period, skip: frozenset[date]) -> list[dict[str, Any]]:
    """The month's trend, one row per local day."""
    days = []
    for i in range(period.days):
        day = period.first + timedelta(days=i)
        rows = figures.daily.get(day, {})
        ai, den = _deflection_parts(rows, sla.deflection_exclusions)
        sat, rated = sum(r["satisfied"] for r in rows.values()), sum(r["rated"] for r in rows.values())
        days.append(
            {
                "day": day.isoformat(),
                "excluded": day in skip,
                "resolved": sum(r["ai_resolved"] + r["human_resolved"] for r in rows.values()),
                "deflection": rate_str(_frac(ai, den)),
                "csat": rate_str(_frac(sat, rated)),
                "response": {
                    t.channel: rate_str(
                        _frac(
                            figures.within_by_day.get((t.channel, t.first_response_seconds, day), 0),
                            figures.opened_by_day.get((day, t.channel), 0),
                        )
                    )
                    for t in sla.response_targets
                },
            }
        )
    return days


def _sum_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    a = b = 0
    for x, y in pairs:
        a, b = a + x, b + y
    return a, b


def _breakdown(rows: Mapping[str, Mapping[str, int]], exclusions: frozenset[str] = frozenset()) -> list[dict]:
    out = []
    for key, r in rows.items():
        resolved = r["ai_resolved"] + r["human_resolved"]
        out.append(
            {
                "key": key,
                "resolved": resolved,
                "ai_resolved": r["ai_resolved"],
                "human_resolved": r["human_resolved"],
                "deflection": rate_str(_frac(r["ai_resolved"], resolved)),
                "excluded_from_deflection": key in exclusions,
                "rated": r["rated"],
                "csat": rate_str(_frac(r["satisfied"], r["rated"])),
            }
        )
    return sorted(out, key=lambda x: (-x["resolved"], x["key"]))


# --- tracking and alerts -----------------------------------------------------------------------
async def track_statuses(
    session: AsyncSession, tenant: Tenant, report: Mapping[str, Any], *, now: datetime | None = None
) -> list[SlaAlert]:
    """Store each SLA's status; one alert (in-app + an event for webhooks) per change to at_risk/breached."""
    now = now or utcnow()
    period = report["period"]
    stored = {
        s.sla: s
        for s in (
            await session.scalars(
                sa.select(SlaStatus).where(SlaStatus.tenant_id == tenant.id, SlaStatus.period == period)
            )
        ).all()
    }
    emails = await alert_emails_of(session, tenant.id)
    alerts: list[SlaAlert] = []
    for item in report["slas"]:
        current = stored.get(item["sla"])
        previous = current.status if current else None
        if current is None:
            session.add(
                SlaStatus(
                    tenant_id=tenant.id,
                    period=period,
                    sla=item["sla"],
                    status=item["status"],
                    evaluated_at=now,
                    changed_at=now,
                )
            )
        else:
            current.evaluated_at = now
            if current.status == item["status"]:
                continue
            current.status, current.changed_at = item["status"], now
        if item["status"] not in (AT_RISK, BREACHED) or previous == item["status"]:
            continue
        alert = SlaAlert(
            tenant_id=tenant.id,
            period=period,
            sla=item["sla"],
            previous_status=previous,
            status=item["status"],
            actual=item["actual"],
            projected=item["projected"],
            target=item["target"],
            message=_alert_message(tenant, period, item, previous),
            created_at=now,
        )
        session.add(alert)
        await session.flush()
        alerts.append(alert)
        await queue_alert_mail(session, tenant, alert, emails)
        await publish(
            session, type=f"sla.{alert.status}", tenant_id=tenant.id, key=f"sla.alert:{alert.id}",
            data=alert_event(tenant, alert), now=now,
        )  # fmt: skip
    await session.flush()
    return alerts


def _alert_message(tenant: Tenant, period: str, item: Mapping[str, Any], previous: str | None) -> str:
    what = f"{item['sla']} SLA of {tenant.slug} for {period}"
    figures = f"actual {item['actual'] or 'n/a'}, projected {item['projected'] or 'n/a'}, target {item['target']}"
    change = f"{previous or 'new'} → {item['status']}"
    return f"{what}: {change} ({figures})"


def alert_event(tenant: Tenant, alert: SlaAlert) -> dict[str, Any]:
    return {
        "type": f"sla.{alert.status}",
        "tenant": tenant.slug,
        "period": alert.period,
        "sla": alert.sla,
        "previous_status": alert.previous_status,
        "status": alert.status,
        "actual": alert.actual,
        "projected": alert.projected,
        "target": alert.target,
        "message": alert.message,
        "created_at": alert.created_at.isoformat(),
    }


async def evaluate_tenant(session: AsyncSession, tenant: Tenant, *, now: datetime | None = None) -> list[SlaAlert]:
    """Evaluate the tenant's running month and track its statuses (the periodic job, per tenant)."""
    report = await period_report(session, None, tenant.slug, now=now)
    return await track_statuses(session, tenant, report, now=now)


async def evaluate_all(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Every active tenant's running month; returns the number of alerts raised."""
    active = (await session.scalars(sa.select(Tenant).where(Tenant.status == "active").order_by(Tenant.slug))).all()
    raised = 0
    for tenant in active:
        raised += len(await evaluate_tenant(session, tenant, now=now))
    return raised


async def list_alerts(session: AsyncSession, actor: Any, slug: str | None = None, limit: int = 100) -> list[dict]:
    stmt = sa.select(SlaAlert, Tenant.slug).join(Tenant, Tenant.id == SlaAlert.tenant_id)
    if slug is not None:
        tenant = await tenants.find_tenant(session, actor, slug)
        stmt = stmt.where(SlaAlert.tenant_id == tenant.id)
    elif actor is not None and actor.tenant_bound:
        stmt = stmt.where(SlaAlert.tenant_id == actor.tenant_id)
    rows = await session.execute(stmt.order_by(SlaAlert.id.desc()).limit(limit))
    return [
        {
            "id": a.id,
            "tenant": s,
            "period": a.period,
            "sla": a.sla,
            "previous_status": a.previous_status,
            "status": a.status,
            "actual": a.actual,
            "projected": a.projected,
            "target": a.target,
            "message": a.message,
            "created_at": a.created_at.isoformat(),
        }
        for a, s in rows
    ]


# --- excluded windows --------------------------------------------------------------------------
def check_period(value: str | None) -> str | None:
    """A report's ``period=`` (blank: the current month), checked by the one month parser: 422 on ``period``."""
    if value is None or value == "":
        return None
    return Period.parse(value).label
