"""Metrics: ``GET /metrics`` in the Prometheus text format (prometheus-client).

Counters and histograms live in `REGISTRY` (this process's, since it started); gauges that describe the
databases (outbox depth, pending rollup deltas, DSRs due, drafts) are read at scrape time by readers:
the kernel's own (`outbox_readings`) and each domain's ``Domain.metrics``. ``/metrics`` answers only
``Authorization: Bearer $BPO_METRICS_TOKEN`` or a platform admin's token or session (401 problem JSON
otherwise); it is an ASGI route outside the OpenAPI document.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from litestar import asgi
from litestar.exceptions import NotAuthorizedException
from litestar.types import Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from control_plane import plugins
from control_plane.database import Databases, utcnow
from control_plane.models import OutboxMessage

log = structlog.get_logger("bpo.metrics")
REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_SECONDS = Histogram(
    "bpo_http_request_duration_seconds",
    "Request latency by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
JOB_RUNS = Counter("bpo_job_runs", "Periodic job runs (by this process, as leader)", ["job"], registry=REGISTRY)
JOB_FAILURES = Counter("bpo_job_failures", "Periodic job runs that raised", ["job"], registry=REGISTRY)
LEADER = Gauge("bpo_scheduler_leader", "1 while this process holds the scheduler lease", registry=REGISTRY)
OUTBOX_DELIVERIES = Counter(
    "bpo_outbox_deliveries",
    "Outbox delivery attempts by kind and outcome (sent, retry, dead)",
    ["kind", "outcome"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class Reading:
    """One gauge sample read at scrape time."""

    name: str
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


GaugeReader = Callable[[Databases], Awaitable[Sequence[Reading]]]


async def outbox_readings(db: Databases) -> list[Reading]:
    """Pending outbox messages and the oldest one's age, per kind (0 for a kind with none pending)."""
    now = utcnow()
    async with db.control_session() as session:
        rows = (
            await session.execute(
                sa.select(
                    OutboxMessage.kind, OutboxMessage.status, sa.func.count(), sa.func.min(OutboxMessage.created_at)
                )
                .where(OutboxMessage.status.in_(("pending", "dead")))
                .group_by(OutboxMessage.kind, OutboxMessage.status)
            )
        ).all()
    out: list[Reading] = []
    for kind, status, count, oldest in rows:
        label = {"kind": kind}
        if status == "dead":
            out.append(Reading("bpo_outbox_dead", "Outbox messages parked after their last attempt", count, label))
            continue
        out.append(Reading("bpo_outbox_pending", "Outbox messages waiting to be sent", count, label))
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        out.append(Reading("bpo_outbox_oldest_age_seconds", "Age of the oldest pending outbox message", age, label))
    return out


def _families(readings: Iterable[Reading]) -> list[GaugeMetricFamily]:
    families: dict[str, GaugeMetricFamily] = {}
    for r in readings:
        family = families.get(r.name)
        if family is None:
            family = families[r.name] = GaugeMetricFamily(r.name, r.help, labels=sorted(r.labels))
        family.add_metric([r.labels[k] for k in sorted(r.labels)], float(r.value))
    return list(families.values())


class _Snapshot:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


async def exposition(db: Databases, readers: Sequence[GaugeReader] | None = None) -> bytes:
    """The whole text exposition: this process's counters, then every reader's gauges."""
    readings: list[Reading] = []
    for reader in readers if readers is not None else [outbox_readings, *plugins.metric_readers()]:
        try:
            readings.extend(await reader(db))
        except Exception:  # one broken reader does not hide the other metrics
            log.exception("metrics.reader_failed", reader=getattr(reader, "__qualname__", str(reader)))
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Snapshot(_families(readings)))
    return generate_latest(REGISTRY) + generate_latest(scrape)


def allowed(scope: Scope) -> bool:
    """The metrics token (``BPO_METRICS_TOKEN``), or a platform admin."""
    token = scope["app"].state.settings.metrics_token
    headers = dict(scope.get("headers") or [])
    scheme, _, given = headers.get(b"authorization", b"").decode(errors="replace").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    principal = scope.get("user")
    return principal is not None and principal.role == "platform_admin"


@asgi("/metrics", opt={"public": True, "roles": (), "scopes": ()}, copy_scope=False)
async def metrics_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if not allowed(scope):
        raise NotAuthorizedException("send Authorization: Bearer $BPO_METRICS_TOKEN, or a platform admin's token")
    body = await exposition(scope["app"].state.db)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
