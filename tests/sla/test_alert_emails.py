"""SLA alert e-mails: the tenant's operations contacts set on the SLA settings page (stored, audited,
422 beside the field for a bad address), and one e-mail per alert to each of them, queued with the
alert and rendered as the at-risk or breached message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from compliance.service import list_entries
from control_plane.models import MailMessage, OutboxMessage
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from sla import service
from sla.models import AlertEmails
from tenants.models import Tenant
from tests.sla.test_settings_pages import error_beside, html_of


@pytest.fixture
async def tenant(make_tenant):
    return await make_tenant(onboard=True)


async def _page_headers(client, issue_token, role: str, tenant: str | None = None) -> dict[str, str]:
    token = await issue_token(role, tenant)
    await client.get("/login")
    return {
        "Authorization": f"Bearer {token}",
        "x-csrftoken": client.cookies.get("bpo_csrf", ""),
        "Accept": "text/html",
    }


async def test_alert_emails_are_set_on_the_settings_page(client, issue_token, tenant, dbs):
    slug = tenant["slug"]
    headers = await _page_headers(client, issue_token, "account_manager")
    url = f"/tenants/{slug}/settings/alert-emails"
    bad = await client.post(url, data={"emails": "ops@example.com\nnot-an-address"}, headers=headers)
    assert bad.status_code == 422
    html = html_of(bad)
    assert error_beside(html, "emails-emails") == "The address on line 2, not-an-address, is not an e-mail address."
    assert "ops@example.com\nnot-an-address</textarea>" in html  # the typed value kept

    ok = await client.post(
        url,
        data={"emails": "Ops@Example.com\nlead@example.com, ops@example.com"},
        headers=headers,
        follow_redirects=False,
    )
    assert (ok.status_code, ok.headers["location"]) == (303, f"/tenants/{slug}/settings#emails")
    html = html_of(await client.get(f"/tenants/{slug}/settings", headers=headers))
    assert "Alert e-mails saved" in html and "Alerts are e-mailed to <strong>Ops@example.com, lead@example.com" in html
    async with dbs.control_session() as session:
        row = await session.get(AlertEmails, uuid.UUID(tenant["id"]))
        entries = await list_entries(session, slug)
    assert row.emails == ["Ops@example.com", "lead@example.com"]
    assert "sla.alert_emails_set" in [e.action for e in entries]

    merchant = await _page_headers(client, issue_token, "merchant_admin", slug)
    denied = await client.post(url, data={"emails": "x@example.com"}, headers=merchant, follow_redirects=False)
    assert denied.status_code == 403


async def test_each_alert_is_mailed_to_the_operations_contacts(client, issue_token, tenant, dbs, keyring, settings):
    slug = tenant["slug"]
    headers = await _page_headers(client, issue_token, "account_manager")
    ops = [f"ops-{uuid.uuid4().hex[:6]}@example.com", f"lead-{uuid.uuid4().hex[:6]}@example.com"]
    resp = await client.post(
        f"/tenants/{slug}/settings/alert-emails",
        data={"emails": "\n".join(ops)},
        headers=headers,
        follow_redirects=False,
    )
    assert resp.status_code == 303
    item = {"sla": "deflection", "status": "at_risk", "actual": "0.6333", "projected": "0.65", "target": "0.70"}
    now = datetime(2026, 10, 15, 18, tzinfo=UTC)
    async with dbs.control_transaction() as session:
        model = await session.scalar(sa.select(Tenant).where(Tenant.slug == slug))
        report = {"period": "2026-10", "slas": [item]}
        [alert] = await service.track_statuses(session, model, report, now=now)
        breached = {"period": "2026-10", "slas": [item | {"status": "breached"}]}
        [second] = await service.track_statuses(session, model, breached, now=now)
        assert await service.track_statuses(session, model, breached, now=now) == []  # no change, no mail
    async with dbs.control_session() as session:
        rows = (await session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail"))).all()
    mine = [r for r in rows if r.payload["to"] in ops]
    assert sorted((r.payload["to"], r.payload["key"]) for r in mine) == sorted(
        (to, f"sla.alert:{a.id}") for to in ops for a in (alert, second)
    )

    await dispatch_due(dbs, outbox_handlers(JobContext(settings, dbs, keyring)), kinds={"mail"})
    async with dbs.control_session() as session:
        kept = (await session.scalars(sa.select(MailMessage).where(MailMessage.to_address == ops[0]))).all()
    assert sorted(m.subject for m in kept) == [
        f"SLA at risk: deflection of {model.name} for 2026-10",
        f"SLA breached: deflection of {model.name} for 2026-10",
    ]
    assert all(m.status == "kept" and "Target: 0.70" in m.text for m in kept)
