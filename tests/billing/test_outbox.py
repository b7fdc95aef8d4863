"""The outbox sends each message exactly once through outages, and one scheduler leads at a time."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from control_plane import outbox
from control_plane.database import utcnow
from control_plane.models import OutboxMessage
from control_plane.scheduler import Leader


class FlakyProvider:
    """Stands for an outside service: fails ``failures`` times, then records each key it accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.accepted: dict[str, dict] = {}
        self.calls = 0

    async def __call__(self, payload: dict, key: str) -> dict:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise outbox.RetryLater("503 from provider")
        self.accepted.setdefault(key, payload)
        return {"provider_id": f"p-{len(self.accepted)}"}


async def _messages(dbs, kind: str) -> list[OutboxMessage]:
    async with dbs.control_session() as session:
        return list((await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind))).all())


class TestEnqueue:
    async def test_same_key_is_one_message_and_rollback_leaves_none(self, dbs):
        kind, key = f"test.{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        async with dbs.control_transaction() as session:
            first = await outbox.enqueue(session, kind=kind, payload={"n": 1}, idempotency_key=key)
            again = await outbox.enqueue(session, kind=kind, payload={"n": 2}, idempotency_key=key)
            assert first.id == again.id
        async with dbs.control_session() as session, session.begin():
            await outbox.enqueue(session, kind=kind, payload={"n": 3}, idempotency_key=uuid.uuid4().hex)
            await session.rollback()
        assert [m.payload for m in await _messages(dbs, kind)] == [{"n": 1}]


class TestDispatch:
    async def test_outage_then_recovery_delivers_exactly_once(self, dbs):
        kind = f"test.{uuid.uuid4().hex[:8]}"
        provider = FlakyProvider(failures=3)
        async with dbs.control_transaction() as session:
            for i in range(4):
                await outbox.enqueue(session, kind=kind, payload={"invoice": i}, idempotency_key=f"{kind}:{i}")
        clock = utcnow()
        for _ in range(12):  # the scheduler's ticks, with the clock moved past each backoff
            await outbox.dispatch_due(dbs, {kind: provider}, now=clock, kinds={kind})
            clock += timedelta(hours=1)
        msgs = await _messages(dbs, kind)
        assert {m.status for m in msgs} == {"sent"}
        assert sorted(provider.accepted) == sorted(f"{kind}:{i}" for i in range(4))
        assert provider.calls == 4 + 3
        # The first tick met the outage three times (one failure per message), the second sent the rest.
        assert sorted(m.attempts for m in msgs) == [1, 2, 2, 2] and all(m.result["provider_id"] for m in msgs)
        again = await outbox.dispatch_due(dbs, {kind: provider}, now=clock, kinds={kind})
        assert again == {"sent": 0, "retry": 0, "dead": 0} and provider.calls == 7

    async def test_backoff_waits_before_the_next_attempt(self, dbs):
        kind = f"test.{uuid.uuid4().hex[:8]}"
        provider = FlakyProvider(failures=1)
        async with dbs.control_transaction() as session:
            await outbox.enqueue(session, kind=kind, payload={}, idempotency_key=f"{kind}:x")
        now = utcnow()
        await outbox.dispatch_due(dbs, {kind: provider}, now=now, kinds={kind})
        (msg,) = await _messages(dbs, kind)
        assert msg.status == "pending" and msg.attempts == 1 and "503" in msg.last_error
        assert msg.next_attempt_at > now
        await outbox.dispatch_due(dbs, {kind: provider}, now=now, kinds={kind})  # not due yet
        assert provider.calls == 1

    async def test_unknown_kind_is_parked_after_max_attempts(self, dbs):
        kind = f"test.{uuid.uuid4().hex[:8]}"
        async with dbs.control_transaction() as session:
            await outbox.enqueue(session, kind=kind, payload={}, idempotency_key=f"{kind}:x")
        clock = utcnow()
        for _ in range(outbox.MAX_ATTEMPTS):
            await outbox.dispatch_due(dbs, {}, now=clock, kinds={kind})
            clock += timedelta(hours=2)
        (msg,) = await _messages(dbs, kind)
        assert msg.status == "dead" and "no handler" in msg.last_error


class TestLeader:
    async def test_one_leader_and_takeover_after_expiry(self, dbs):
        a, b = Leader(dbs), Leader(dbs)
        now = utcnow() + timedelta(days=1)  # past any lease other tests left
        assert await a.renew(now) is True
        assert await b.renew(now) is False
        assert await a.renew(now + timedelta(seconds=10)) is True
        later = now + timedelta(minutes=5)  # a crashed without renewing
        assert await b.renew(later) is True
        assert await a.renew(later) is False
        await b.release()
        assert await a.renew(later) is True
        await a.release()
