"""The scheduler (APScheduler): periodic jobs run by exactly one leader across processes.

Leadership is a lease row in the control database (``scheduler_leases``), renewed every few seconds
and taken over when it expires, so it works the same on SQLite and PostgreSQL. Every job is
idempotent and safe to re-run; the state that matters (outbox rows, invoices, checkpoints) lives in
the control database, so the periodic jobs are declared here and registered again at every start
instead of being pickled into a job store.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from opentelemetry import trace

from control_plane import telemetry
from control_plane.database import Databases, utcnow
from control_plane.metrics import JOB_FAILURES, JOB_RUNS, LEADER
from control_plane.models import JobRunCount, SchedulerLease
from control_plane.periodic import Job, JobContext
from control_plane.plugins import periodic_jobs

log = structlog.get_logger("bpo.scheduler")
LEASE = "scheduler"
LEASE_SECONDS = 30


@dataclass
class Leader:
    db: Databases
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    leading: bool = False

    async def renew(self, now: datetime | None = None) -> bool:
        """Take or keep the lease; ``True`` while this process leads."""
        now = now or utcnow()
        expires = now + timedelta(seconds=LEASE_SECONDS)
        async with self.db.control_transaction() as session:
            updated = await session.execute(
                sa.update(SchedulerLease)
                .where(
                    SchedulerLease.name == LEASE,
                    sa.or_(SchedulerLease.holder == self.holder, SchedulerLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            if updated.rowcount == 0:
                exists = await session.scalar(sa.select(SchedulerLease.name).where(SchedulerLease.name == LEASE))
                if exists is None:
                    session.add(SchedulerLease(name=LEASE, holder=self.holder, expires_at=expires))
                    try:
                        await session.flush()
                        updated_ok = True
                    except sa.exc.IntegrityError:
                        updated_ok = False
                else:
                    updated_ok = False
            else:
                updated_ok = True
        if updated_ok != self.leading:
            log.info("scheduler.leadership", holder=self.holder, leading=updated_ok)
        self.leading = updated_ok
        LEADER.set(1 if updated_ok else 0)
        return updated_ok

    async def release(self) -> None:
        async with self.db.control_transaction() as session:
            await session.execute(
                sa.delete(SchedulerLease).where(SchedulerLease.name == LEASE, SchedulerLease.holder == self.holder)
            )
        self.leading = False
        LEADER.set(0)


async def count_job_run(db: Databases, job: str, holder: str) -> None:
    """One more run of ``job`` in ``job_run_counts`` (shared by every process: shows that the leader
    lock lets each run happen once, whatever the number of servers and workers)."""
    now = utcnow()
    async with db.control_transaction() as session:
        updated = await session.execute(
            sa.update(JobRunCount)
            .where(JobRunCount.job == job)
            .values(runs=JobRunCount.runs + 1, last_run_at=now, last_holder=holder)
        )
        if updated.rowcount == 0:
            session.add(JobRunCount(job=job, runs=1, last_run_at=now, last_holder=holder))


def build_scheduler(ctx: JobContext, leader: Leader) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    # A worker's traces (a server's app attached the exporter already: then this only instruments).
    scheduler.tracing = telemetry.enable_tracing([ctx.db.control, *ctx.db.cells.values()])

    async def renew() -> None:
        await leader.renew()

    scheduler.add_job(renew, "interval", seconds=10, id="leader", next_run_time=utcnow())
    for name, (seconds, job) in periodic_jobs().items():

        async def run(job: Job = job, name: str = name) -> None:
            if not leader.leading:
                return
            JOB_RUNS.labels(name).inc()
            await count_job_run(ctx.db, name, leader.holder)
            with telemetry.span(f"job {name}", job=name) as current:
                try:
                    result = await job(ctx)
                    if result and (not isinstance(result, dict) or any(result.values())):
                        log.info("job.done", job=name, result=str(result))
                except Exception as exc:
                    JOB_FAILURES.labels(name).inc()
                    current.set_status(trace.StatusCode.ERROR)
                    current.set_attribute("error.type", type(exc).__name__)
                    log.exception("job.failed", job=name)

        scheduler.add_job(run, "interval", seconds=seconds, id=name, next_run_time=utcnow() + timedelta(seconds=5))
    return scheduler
