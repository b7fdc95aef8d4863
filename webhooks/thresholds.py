"""Usage and spend alerts: per-tenant thresholds on the running period, checked by a periodic job.

``contacts``: contacts resolved in the period so far (AI + human, as the invoice counts them);
``amount``: the usage charged so far in the period (the estimate's ``so_far.usage_subtotal``, in the
contract's currency, before minimum fee, credits and tax — so a minimum fee does not fire every
threshold on the first day). A threshold fires once per period (a row per threshold and period,
and the event key ``usage.threshold_reached:<threshold>:<period>``): a ``usage.threshold_reached``
event (merchant webhooks) and an e-mail to the billing profile's addresses.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance.service import profile_of
from billing.invoices.estimate import running_estimate
from compliance.service import append_audit_entry
from control_plane.database import Databases, utcnow
from control_plane.errors import Conflict, FieldError, InvalidInput, NotFound
from control_plane.events import publish
from control_plane.mail import queue_mail
from control_plane.validation import parse
from tenants.models import Tenant
from tenants.repository import find_tenant
from webhooks.models import UsageThreshold, UsageThresholdHit
from webhooks.schemas import ThresholdIn

log = structlog.get_logger("bpo.webhooks")
TEMPLATE = "usage_threshold_reached"
LIMIT = Decimal(10) ** 15


def _value(metric: str, raw: str) -> str:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value >= LIMIT:  # NaN, Infinity, or beyond any month's usage
        value = Decimal(-1)
    if metric == "contacts":
        if value != value.to_integral_value() or value <= 0:
            raise InvalidInput([FieldError("value", "a whole number of contacts above 0")])
        return str(int(value))
    if value <= 0 or value != value.quantize(Decimal("0.01")):
        raise InvalidInput([FieldError("value", 'a positive amount with at most 2 decimals, such as "5000.00"')])
    return str(value.quantize(Decimal("0.01")))


def threshold_json(row: UsageThreshold) -> dict[str, Any]:
    return {"id": str(row.id), "metric": row.metric, "value": row.value, "created_at": row.created_at.isoformat()}


async def add_threshold(session: AsyncSession, actor: Any, slug: str, data: Any) -> UsageThreshold:
    tenant = await find_tenant(session, actor, slug)
    spec = parse(ThresholdIn, data)
    value = _value(spec.metric, spec.value)
    exists = sa.select(UsageThreshold.id).where(
        UsageThreshold.tenant_id == tenant.id, UsageThreshold.metric == spec.metric, UsageThreshold.value == value
    )
    if await session.scalar(exists) is not None:
        raise Conflict(f"this tenant has a {spec.metric} threshold at {value} already", code="duplicate_threshold")
    row = UsageThreshold(
        id=uuid.uuid4(), tenant_id=tenant.id, metric=spec.metric, value=value, created_at=utcnow(),
        created_by=actor.actor,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="webhook.usage_threshold_added",
        target=f"tenant:{tenant.slug}/usage-thresholds/{row.id}", data={"metric": row.metric, "value": value},
    )  # fmt: skip
    return row


async def list_thresholds(session: AsyncSession, actor: Any, slug: str) -> list[UsageThreshold]:
    tenant = await find_tenant(session, actor, slug)
    stmt = sa.select(UsageThreshold).where(UsageThreshold.tenant_id == tenant.id)
    return list((await session.scalars(stmt.order_by(UsageThreshold.metric, UsageThreshold.created_at))).all())


async def remove_threshold(session: AsyncSession, actor: Any, slug: str, threshold_id: str) -> None:
    tenant = await find_tenant(session, actor, slug)
    try:
        row = await session.get(UsageThreshold, uuid.UUID(str(threshold_id)))
    except ValueError:
        row = None
    if row is None or row.tenant_id != tenant.id:
        raise NotFound(f"no usage threshold {threshold_id!r}")
    await session.execute(sa.delete(UsageThresholdHit).where(UsageThresholdHit.threshold_id == row.id))
    await session.delete(row)
    await session.flush()
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="webhook.usage_threshold_removed",
        target=f"tenant:{tenant.slug}/usage-thresholds/{row.id}", data={"metric": row.metric, "value": row.value},
    )  # fmt: skip


async def check_tenant(session: AsyncSession, tenant: Tenant, *, now: datetime) -> list[UsageThresholdHit]:
    """Fire every threshold of ``tenant`` reached in its running period and not fired in it yet."""
    thresholds = (await session.scalars(sa.select(UsageThreshold).where(UsageThreshold.tenant_id == tenant.id))).all()
    if not thresholds:
        return []
    try:
        estimate = await running_estimate(session, None, tenant.slug, now=now)
    except Conflict:  # no contract in force: nothing is counted
        return []
    period, so_far = estimate["period"], estimate["so_far"]
    observed = {
        "contacts": Decimal(sum(so_far["quantities"].values())),
        "amount": Decimal(so_far["usage_subtotal"]),
    }
    hits: list[UsageThresholdHit] = []
    for row in sorted(thresholds, key=lambda t: (t.metric, Decimal(t.value))):
        if observed[row.metric] < Decimal(row.value):
            continue
        if await session.get(UsageThresholdHit, (row.id, period)) is not None:
            continue
        hit = UsageThresholdHit(threshold_id=row.id, period=period, observed=str(observed[row.metric]), fired_at=now)
        session.add(hit)
        await session.flush()
        hits.append(hit)
        key = f"usage.threshold_reached:{row.id}:{period}"
        data = {
            "tenant": tenant.slug, "period": period, "metric": row.metric, "threshold": row.value,
            "observed": hit.observed, "currency": estimate["currency"] if row.metric == "amount" else None,
            "as_of": now.isoformat(),
        }  # fmt: skip
        await publish(session, type="usage.threshold_reached", tenant_id=tenant.id, key=key, data=data, now=now)
        profile = await profile_of(session, tenant.id)
        if profile is not None and profile.billing_emails:
            await queue_mail(
                session, to=profile.billing_emails, template=TEMPLATE, key=key, locale=profile.locale or "en",
                context=data | {"tenant_name": tenant.name}, tenant_id=str(tenant.id), now=now,
            )  # fmt: skip
    return hits


async def check_all(db: Databases, *, now: datetime | None = None) -> int:
    """The periodic job's work: each tenant with thresholds in its own transaction."""
    now = now or utcnow()
    async with db.control_session() as session:
        ids = (await session.scalars(sa.select(sa.distinct(UsageThreshold.tenant_id)))).all()
    fired = 0
    for tenant_id in ids:
        try:
            async with db.control_transaction() as session:
                tenant = await session.get_one(Tenant, tenant_id)
                fired += len(await check_tenant(session, tenant, now=now))
        except Exception:
            log.exception("usage_thresholds.failed", tenant=str(tenant_id))
    return fired
