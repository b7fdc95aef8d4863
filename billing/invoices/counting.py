"""The counts an invoice rates: metering's `period_counts` with the contract's response targets and
the SLA layer's excluded days (they leave the SLA measurement, never the billed usage). The SLA
report reads the same function with the same arguments, so an invoice's credits are the report's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import counts
from sla.terms import SlaTerms
from sla.windows import skipped_days
from tenants.models import Tenant
from tenants.periods import Period


async def invoice_counts(session: AsyncSession, tenant: Tenant, period: Period, terms: Mapping[str, Any]) -> Any:
    """The `PeriodCounts` of the tenant's period under the contract ``terms``."""
    skip = await skipped_days(session, tenant.id, period)
    targets = SlaTerms.from_terms(terms).response_targets
    return await counts.period_counts(session, tenant.id, period, targets, skip)
