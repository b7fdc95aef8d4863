"""Traces to a fake OTLP/HTTP collector, the /metrics scrape and the access log (issue 17, part 1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from billing.metering import deltas
from billing.metering import service as metering
from billing.metering.models import RollupDelta
from compliance.dsr.models import SubjectRequest
from control_plane import outbox, scheduler, telemetry
from control_plane.database import utcnow
from control_plane.metrics import REGISTRY
from control_plane.models import OutboxMessage
from control_plane.periodic import JobContext
from tests.billing import conftest as metering_fixtures
from tests.billing.conftest import contact
from tests.control_plane.test_identity import PASSWORD, login, new_user
from tests.fakes.otlp_collector import FakeCollector

INGEST_ROUTE = "/api/v1/tenants/{slug}/contacts"
ingest_tenant = metering_fixtures.ingest_tenant  # the metering tests' fixture
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
async def traced(settings, dbs, monkeypatch) -> AsyncIterator[tuple[AsyncTestClient, FakeCollector]]:
    """A second app over the same databases, exporting its spans to a fake collector (the OTEL_* way)."""
    from control_plane.app import create_app

    with FakeCollector() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        app = create_app(settings, db=dbs)
        async with AsyncTestClient(app=app) as client:
            yield client, collector
        # the app's shutdown flushed its spans; the exporter is detached again
        assert collector.paths and set(collector.paths) == {"/v1/traces"}


def _by_trace(spans: list[dict], trace_id: str) -> dict[str, dict]:
    return {s["span_id"]: s for s in spans if s["trace_id"] == trace_id}


def _ancestors(span: dict, spans: dict[str, dict]) -> list[str]:
    names = []
    while span["parent_id"] in spans:
        span = spans[span["parent_id"]]
        names.append(span["name"])
    return names


class TestTraces:
    async def test_one_ingest_request_is_one_trace_from_the_http_span_to_the_rollups(self, ingest_tenant, traced):
        t = await ingest_tenant()
        client, collector = traced
        caller = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
        resp = await client.post(
            t.path(), json=[contact("tr-1"), contact("tr-2")], headers=t.headers | {"traceparent": caller}
        )
        assert resp.status_code == 200, resp.text
        version, trace_id, span_id, flags = resp.headers["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", CALLER_TRACE, "01") and span_id != "00f067aa0ba902b7"
        request_id = resp.headers["x-request-id"]
        await client.__aexit__(None, None, None)  # shut the app down: its exporter flushes
        await client.__aenter__()

        spans = _by_trace(collector.spans(), CALLER_TRACE)
        server = [s for s in spans.values() if s["attributes"].get("http.route") == INGEST_ROUTE]
        assert len(server) == 1
        http = server[0]
        assert http["name"] == f"POST {INGEST_ROUTE}" and http["parent_id"] == "00f067aa0ba902b7"
        assert http["span_id"] == span_id
        assert http["attributes"]["bpo.request_id"] == request_id
        assert http["attributes"]["bpo.tenant"] == t.slug and http["attributes"]["bpo.role"] == "api_key"
        assert http["attributes"].get("http.status_code", http["attributes"].get("http.response.status_code")) == 200
        cell = [s for s in spans.values() if s["name"] == "cell write"]
        rollup = [s for s in spans.values() if s["name"] == "rollup apply"]
        assert len(cell) == 1 and len(rollup) == 1
        assert cell[0]["attributes"] == {"bpo.region": "eu", "bpo.tenant": t.slug, "bpo.contacts": 2}
        assert rollup[0]["attributes"] == {"bpo.region": "eu", "bpo.deltas": 1}
        assert _ancestors(cell[0], spans)[-1] == http["name"]
        assert _ancestors(rollup[0], spans)[-1] == http["name"]
        # the SQL statements of both steps are spans of the same trace, below them
        cell_sql = [s for s in spans.values() if s["parent_id"] == cell[0]["span_id"]]
        rollup_sql = [s for s in spans.values() if s["parent_id"] == rollup[0]["span_id"]]
        # (the contacts themselves go by the driver's COPY on PostgreSQL: inside "cell write", not a SQL span)
        assert any("rollup_deltas" in s["attributes"].get("db.statement", "") for s in cell_sql)
        assert any("rollup_receipts" in s["attributes"].get("db.statement", "") for s in rollup_sql)

    async def test_no_span_attribute_holds_a_secret_or_personal_data(
        self, dbs, ingest_tenant, traced, staff_headers, issue_token
    ):
        t = await ingest_tenant()
        client, collector = traced
        address = await new_user(dbs, role="account_manager")
        signed_in = await login(client, address)
        assert signed_in.status_code in (302, 303), signed_in.text
        session_cookie = client.cookies.get("bpo_session")
        assert (await client.get("/tenants")).status_code == 200
        key = await client.post(
            f"/api/v1/tenants/{t.slug}/api-keys", json={"scopes": ["contacts:write"]}, headers=staff_headers
        )
        assert key.status_code == 201, key.text
        api_key = key.json()["secret"]
        ref, ticket = f"zora.{uuid.uuid4().hex[:8]}@example.org", f"ticket-{uuid.uuid4().hex[:8]}"
        resp = await client.post(
            t.path(),
            json=[contact(ticket, customer_ref=ref)],
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text
        url_token = uuid.uuid4().hex
        hook = await client.post(
            f"/api/v1/tenants/{t.slug}/webhook-endpoints",
            json={"url": "https://hooks.example.com/sla?token=" + url_token, "events": ["sla.breached"]},
            headers=staff_headers,
        )
        assert hook.status_code == 201, hook.text
        webhook_secret = hook.json()["secret"]
        assert webhook_secret.startswith("whsec_")
        await client.get(f"/tenants?search={ref}", headers=staff_headers)
        await client.__aexit__(None, None, None)
        await client.__aenter__()

        spans = collector.spans()
        assert {s["attributes"].get("http.route") for s in spans} >= {"/login", INGEST_ROUTE, "/tenants"}
        assert any("db.statement" in s["attributes"] for s in spans)
        forbidden = {
            PASSWORD,
            address,
            session_cookie,
            api_key,
            staff_headers["Authorization"].split()[1],
            t.headers["Authorization"].split()[1],
            ref,
            ticket,
            webhook_secret,
            url_token,
        }
        for s in spans:
            keys = set(s["attributes"]) | {k for e in s["events"] for k in e}
            assert all(telemetry._allowed(k) or k == "name" for k in keys), keys
            texts = [s["name"], s["status"], *map(str, s["attributes"].values())]
            texts += [str(v) for e in s["events"] for v in e.values()]
            for text in texts:
                assert not any(secret in text for secret in forbidden), (s["name"], text)

    async def test_jobs_and_outbox_deliveries_are_spans_without_their_errors_text(
        self, dbs, settings, app, traced, monkeypatch
    ):
        _client, collector = traced
        kind, failing = f"obs.{uuid.uuid4().hex[:6]}", f"obs.{uuid.uuid4().hex[:6]}"
        async with dbs.control_transaction() as session:
            await outbox.enqueue(session, kind=kind, payload={}, idempotency_key=kind)
            await outbox.enqueue(session, kind=failing, payload={}, idempotency_key=failing)

        async def sent(payload, key):
            return {"ok": True}

        async def refused(payload, key):
            raise RuntimeError("the receiver said: secret-4711")

        before = _scrape(generate_latest(REGISTRY).decode())
        counts = await outbox.dispatch_due(dbs, {kind: sent, failing: refused}, kinds=[kind, failing])
        assert counts == {"sent": 1, "retry": 1, "dead": 0}

        async def job(ctx):
            async with ctx.db.control_session() as session:
                await outbox.pending_count(session)

        monkeypatch.setattr(scheduler, "periodic_jobs", lambda: {"obs_traced": (60, job)})
        leader = scheduler.Leader(dbs)
        leader.leading = True
        await (
            scheduler.build_scheduler(JobContext(settings, dbs, app.state.keyring), leader).get_job("obs_traced").func()
        )
        after = _scrape(generate_latest(REGISTRY).decode())
        await _client.__aexit__(None, None, None)
        await _client.__aenter__()

        def grew(outcome: str, k: str) -> float:
            key = ("bpo_outbox_deliveries_total", (("kind", k), ("outcome", outcome)))
            return after.get(key, 0.0) - before.get(key, 0.0)

        assert grew("sent", kind) == 1 and grew("retry", failing) == 1 and grew("sent", failing) == 0
        spans = collector.spans()
        (ok,) = [s for s in spans if s["name"] == f"outbox {kind}"]
        (bad,) = [s for s in spans if s["name"] == f"outbox {failing}"]
        assert ok["attributes"] == {"bpo.outbox_kind": kind, "bpo.outbox_attempt": 1}
        assert bad["events"] == [{"name": "exception", "exception.type": "RuntimeError"}] and bad["status"] == ""
        assert "secret-4711" not in json.dumps(spans)
        (run,) = [s for s in spans if s["name"] == "job obs_traced"]
        assert run["attributes"] == {"bpo.job": "obs_traced"}
        assert any(s["parent_id"] == run["span_id"] and "db.statement" in s["attributes"] for s in spans)
        async with dbs.control_transaction() as session:
            await session.execute(sa.delete(OutboxMessage).where(OutboxMessage.kind.in_([kind, failing])))

    async def test_nothing_is_recorded_without_an_endpoint(self, client, ingest_tenant):
        t = await ingest_tenant()
        resp = await client.post(t.path(), json=[contact("quiet")], headers=t.headers)
        version, trace_id, _span, flags = resp.headers["traceparent"].split("-")
        assert version == "00" and int(trace_id, 16) != 0 and int(flags, 16) & 1 == 0  # an id to follow, unsampled
        assert telemetry._EXPORTERS.processors == []


def _scrape(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class TestMetrics:
    async def test_metrics_need_the_token_or_a_platform_admin(self, client, settings, monkeypatch, issue_token):
        monkeypatch.setattr(client.app.state, "settings", replace(settings, metrics_token="m-token-" + "x" * 20))
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": f"Bearer {await issue_token('account_manager')}"},
        ):
            resp = await client.get("/metrics", headers=headers)
            assert resp.status_code == 401 and resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["status"] == 401
        token = await client.get("/metrics", headers={"Authorization": "Bearer m-token-" + "x" * 20})
        admin = await client.get("/metrics", headers={"Authorization": f"Bearer {await issue_token('platform_admin')}"})
        for resp in (token, admin):
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
            assert "bpo_http_request_duration_seconds_bucket" in resp.text

    async def test_a_scrape_reports_what_happened(
        self, client, dbs, settings, app, ingest_tenant, issue_token, monkeypatch
    ):
        admin = {"Authorization": f"Bearer {await issue_token('platform_admin')}"}
        t = await ingest_tenant()
        before = _scrape((await client.get("/metrics", headers=admin)).text)

        batch = [contact("m-1"), contact("m-2"), contact("m-3", channel="pigeon")]
        assert (await client.post(t.path(), json=batch, headers=t.headers)).status_code == 200
        assert (await client.post(t.path(), json=[contact("m-1")], headers=t.headers)).status_code == 200
        pending = await metering.ingest_contacts(
            dbs, app.state.keyring, None, t.slug, [contact("m-4")], defer_rollups=True
        )
        kind = f"obs.{uuid.uuid4().hex[:6]}"
        async with dbs.control_transaction() as session:
            await outbox.enqueue(
                session, kind=kind, payload={}, idempotency_key=kind, now=utcnow() - timedelta(hours=1)
            )
            tenant_id = t.id
            number = uuid.uuid4().int % 1_000_000
            today = utcnow().date()
            session.add(
                SubjectRequest(
                    tenant_id=tenant_id,
                    number=number,
                    kind="access",
                    regime="GDPR",
                    status="open",
                    subject_hash="h" * 64,
                    cells={},
                    details={},
                    received_at=utcnow(),
                    received_on=today,
                    due_on=today + timedelta(days=3),
                    created_by="tests",
                )
            )
        calls = []

        async def ok(ctx):
            calls.append("ok")

        async def broken(ctx):
            raise RuntimeError("boom")

        monkeypatch.setattr(scheduler, "periodic_jobs", lambda: {"obs_ok": (60, ok), "obs_broken": (60, broken)})
        leader = scheduler.Leader(dbs)
        assert await leader.renew()
        jobs = scheduler.build_scheduler(JobContext(settings, dbs, app.state.keyring), leader)
        await jobs.get_job("obs_ok").func()
        await jobs.get_job("obs_broken").func()
        leading = _scrape((await client.get("/metrics", headers=admin)).text)
        await leader.release()
        after = _scrape((await client.get("/metrics", headers=admin)).text)

        def grew(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return leading.get(key, 0.0) - before.get(key, 0.0)

        tenant = {"tenant": t.slug}
        assert grew("bpo_ingest_contacts_total", outcome="accepted", **tenant) == 3  # m-1, m-2, m-4
        assert grew("bpo_ingest_contacts_total", outcome="duplicate", **tenant) == 1
        assert grew("bpo_ingest_contacts_total", outcome="rejected", **tenant) == 1
        assert grew("bpo_http_request_duration_seconds_count", route=INGEST_ROUTE, method="POST", status="200") == 2
        assert grew("bpo_rollup_deltas_pending") == 1
        assert leading[("bpo_rollup_delta_oldest_age_seconds", ())] >= 0
        assert leading[("bpo_outbox_pending", (("kind", kind),))] == 1
        assert leading[("bpo_outbox_oldest_age_seconds", (("kind", kind),))] >= 3600
        assert grew("bpo_dsr_due_within_7_days") == 1
        assert grew("bpo_job_runs_total", job="obs_ok") == 1 and grew("bpo_job_runs_total", job="obs_broken") == 1
        assert (
            grew("bpo_job_failures_total", job="obs_broken") == 1 and grew("bpo_job_failures_total", job="obs_ok") == 0
        )
        assert calls == ["ok"]
        assert leading[("bpo_scheduler_leader", ())] == 1 and after[("bpo_scheduler_leader", ())] == 0
        from billing.invoices.models import Invoice

        async with dbs.control_session() as session:
            drafts = await session.scalar(sa.select(sa.func.count()).where(Invoice.status == "draft"))
        assert leading[("bpo_invoice_drafts", ())] == drafts

        # leave the shared databases as they were
        await deltas.DeltaApplier(dbs).apply(pending.pending)
        async with dbs.control_transaction() as session:
            await session.execute(sa.delete(SubjectRequest).where(SubjectRequest.tenant_id == t.id))
            await session.execute(sa.delete(OutboxMessage).where(OutboxMessage.kind == kind))
        async with dbs.cell_session("eu") as cell:
            assert await cell.scalar(sa.select(sa.func.count()).where(RollupDelta.tenant_id == t.id)) == 0


class TestAccessLog:
    async def test_one_line_per_request_with_who_what_and_how_long(self, client, ingest_tenant, capsys):
        t = await ingest_tenant()
        capsys.readouterr()
        resp = await client.get(
            f"/api/v1/tenants/{t.slug}/usage?month=2026-10&email=zora@example.org",
            headers=t.headers | {"X-Request-ID": "obs-log-0001"},
        )
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        (line,) = [x for x in lines if x.get("event") == "request" and x.get("request_id") == "obs-log-0001"]
        assert set(line) >= {
            "timestamp",
            "request_id",
            "trace_id",
            "actor",
            "role",
            "tenant",
            "method",
            "route",
            "status",
            "duration_ms",
        }
        assert line["route"] == "/api/v1/tenants/{slug}/usage" and line["method"] == "GET"
        assert line["status"] == resp.status_code == 403  # a contacts:write key may not read usage
        assert line["tenant"] == t.slug and line["role"] == "api_key" and line["actor"].startswith("api_key:bpo_")
        assert line["trace_id"] == resp.headers["traceparent"].split("-")[1]
        raw = json.dumps(line)
        assert "zora" not in raw and "month=" not in raw and t.headers["Authorization"].split()[1] not in raw
