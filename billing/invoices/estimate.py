"""The running period's estimate: what the month has cost so far, and a month-end projection.

Nothing is stored: the period is rated by the drafting path (`invoice_counts`, the adjustments the
next invoice will carry, `rate_counts`) from the rollups as they stand, under the contract in force
at the period's start.

The projection continues the current rate to the end of the month: each usage quantity so far is
scaled by the month's length over the time elapsed (both measured as instants in the tenant's zone,
so a daylight-saving day counts its real hours), i.e. ``quantity / elapsed days x days in the
month``, rounded half up to a whole contact. The projected quantities are priced by the contract
(tiers, minimum fee) as a draft would price them, with the SLA credits at the outcomes measured so
far. It is an estimate, labelled as one: the invoice is drafted from the settled month.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.invoices.adjustments import pending_adjustments
from billing.invoices.counting import invoice_counts
from billing.rating import rate_counts
from billing.rating.service import Usage
from control_plane.errors import Conflict
from tenants.periods import Period
from tenants.service import contract_in_force, find_tenant

METHOD = (
    "Quantities so far divided by the days elapsed, times the days in the month (rounded to whole "
    "contacts), priced by the contract; SLA credits at the outcomes measured so far."
)
NOTE = "Estimate only, before tax: the invoice is drafted from the whole month once its contacts have settled."


def project(quantity: int, elapsed_seconds: float, period_seconds: float) -> int:
    """``quantity`` at its current rate over the whole period, to the nearest whole contact."""
    if quantity <= 0 or elapsed_seconds <= 0:
        return 0
    if elapsed_seconds >= period_seconds:
        return quantity
    scaled = Decimal(quantity) * Decimal(int(period_seconds)) / Decimal(int(elapsed_seconds) or 1)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_UP))


async def running_estimate(session: AsyncSession, actor: Any, slug: str, *, now: datetime) -> dict[str, Any]:
    """The estimate of the tenant's running month at ``now`` (see the module docstring)."""
    tenant = await find_tenant(session, actor, slug)
    period = Period.at(now, tenant.timezone)
    contract = await contract_in_force(session, tenant.id, period.first)
    if contract is None:
        raise Conflict(f"no contract is in force on {period.first} for {slug!r}", code="no_contract")
    terms = contract.terms
    counts = await invoice_counts(session, tenant, period, terms)
    adjustments = [line for line, _ in await pending_adjustments(session, tenant, period)]
    so_far = rate_counts(terms, counts, adjustments)

    start, end = period.start_utc(tenant.timezone), period.end_utc(tenant.timezone)
    elapsed = max(0.0, min((now - start).total_seconds(), (end - start).total_seconds()))
    length = (end - start).total_seconds()
    projected_usage = Usage(
        ai_resolved=project(counts.ai_resolved, elapsed, length),
        human_resolved=project(counts.human_resolved, elapsed, length),
    )
    projected = rate_counts(terms, counts, adjustments, usage=projected_usage)
    quantities = {"ai_resolved": counts.ai_resolved, "human_resolved": counts.human_resolved}
    projected_quantities = {
        "ai_resolved": projected_usage.ai_resolved,
        "human_resolved": projected_usage.human_resolved,
    }
    days_elapsed = Decimal(elapsed / 86400).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "estimate": True,
        "tenant": tenant.slug,
        "period": period.label,
        "timezone": tenant.timezone,
        "currency": so_far.currency,
        "as_of": now.isoformat(),
        "days_elapsed": str(days_elapsed),
        "days_in_period": period.days,
        "note": NOTE,
        "so_far": so_far.as_json() | {"quantities": quantities},
        "projection": projected.as_json() | {"quantities": projected_quantities, "method": METHOD},
    }


__all__ = ["METHOD", "NOTE", "project", "running_estimate"]
