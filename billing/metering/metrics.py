"""Metering's metrics: ingest outcomes per tenant (counted as batches are answered) and the pending
rollup deltas (read from the cells at scrape time, for ``/metrics``)."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import Counter

from billing.metering.models import RollupDelta
from control_plane.database import Databases, utcnow
from control_plane.metrics import REGISTRY, Reading

INGESTED = Counter(
    "bpo_ingest_contacts",
    "Contacts ingested per tenant by outcome (accepted, updated, duplicate, rejected)",
    ["tenant", "outcome"],
    registry=REGISTRY,
)


def count_ingest(tenant: str, *, accepted: int, updated: int, duplicates: int, rejected: int) -> None:
    for outcome, n in (("accepted", accepted), ("updated", updated), ("duplicate", duplicates), ("rejected", rejected)):
        if n:
            INGESTED.labels(tenant, outcome).inc(n)


async def pending_deltas(db: Databases) -> list[Reading]:
    """Deltas waiting in every cell, and the oldest one's age (0 when none waits)."""
    count, oldest = 0, None
    for region in db.cells:
        async with db.cell_session(region) as cell:
            n, first = (await cell.execute(sa.select(sa.func.count(), sa.func.min(RollupDelta.created_at)))).one()
        count += n
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    return [
        Reading("bpo_rollup_deltas_pending", "Rollup deltas written in cells, not yet applied", count),
        Reading("bpo_rollup_delta_oldest_age_seconds", "Age of the oldest pending rollup delta", age),
    ]
