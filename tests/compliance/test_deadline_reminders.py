"""Data-subject request deadlines approaching: the compliance officers are e-mailed once per request
and deadline, a week (or less) before it; not earlier, not after it passed, not once closed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from compliance.dsr.models import SubjectRequest
from compliance.dsr.reminders import queue_deadline_reminders
from compliance.service import SystemActor
from control_plane import service
from control_plane.models import MailMessage, OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from tests.compliance.conftest import SUBJECT


async def _reminders(dbs, request_id: str) -> list[OutboxMessage]:
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail"))).all()
    return [r for r in rows if r.payload["key"].startswith(f"subject_request.due_soon:{request_id}:")]


async def test_officers_are_mailed_once_a_week_before_the_deadline(
    client, cell_tenant, auditor, dbs, keyring, settings
):
    officer = f"co-{uuid.uuid4().hex[:8]}@example.com"
    async with dbs.control_transaction() as session:
        await service.create_user(session, SystemActor("tests"), {"email": officer, "role": "compliance_officer"})
    t = await cell_tenant()
    r = await client.post(
        f"/api/v1/tenants/{t.slug}/subject-requests", json={"kind": "access", "subject": SUBJECT}, headers=auditor
    )
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    async with dbs.control_session() as session:
        due = (await session.get(SubjectRequest, uuid.UUID(request_id))).due_on

    async def run(today) -> int:
        async with dbs.control_transaction() as session:
            return await queue_deadline_reminders(session, public_url="https://cp.example", today=today)

    await run(due - timedelta(days=8))
    assert await _reminders(dbs, request_id) == []  # too early
    await run(due - timedelta(days=7))
    await run(due - timedelta(days=3))  # again: nothing more
    sent = await _reminders(dbs, request_id)
    assert officer in {m.payload["to"] for m in sent}
    assert len(sent) == len({m.payload["to"] for m in sent})  # one per officer
    assert sent[0].payload["key"] == f"subject_request.due_soon:{request_id}:{due.isoformat()}"

    await dispatch_due(dbs, outbox_handlers(JobContext(settings, dbs, keyring)), kinds={"mail"})
    async with dbs.control_session() as session:
        [mail] = (await session.scalars(sa.select(MailMessage).where(MailMessage.to_address == officer))).all()
    assert mail.subject.startswith(f"Data-subject request {t.slug} #")
    assert "7 days left" in mail.text
    assert f"https://cp.example/tenants/{t.slug}/privacy/requests/{request_id}" in mail.text

    # Past the deadline or closed: no reminder (the overdue state shows on the privacy pages).
    async with dbs.control_transaction() as session:
        request = await session.get(SubjectRequest, uuid.UUID(request_id))
        request.status = "completed"
    async with dbs.control_transaction() as session:
        request = await session.get(SubjectRequest, uuid.UUID(request_id))
        request.extended_due_on = due + timedelta(days=30)
    await run(due + timedelta(days=27))
    assert len(await _reminders(dbs, request_id)) == len(sent)
