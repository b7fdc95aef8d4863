"""The Privacy tab and request pages over HTTP: who sees and who acts, the actions each stage allows,
the erasure's confirmation step, 409 on a wrong-state action and 422 beside the field."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from compliance.dsr import service as dsr
from compliance.models import AuditEntry
from control_plane.auth import Principal
from control_plane.database import utcnow
from control_plane.errors import Forbidden
from tests.compliance.conftest import OTHER, SUBJECT, cell_rows, contact, ingest


@pytest.fixture
async def as_role(client, issue_token):
    """``await as_role(role, tenant=None)``: headers of a bearer token plus the CSRF header of a form
    (redirects are not followed, so that a test sees the post-redirect-get)."""
    client.follow_redirects = False

    async def make(role: str, tenant: str | None = None) -> dict[str, str]:
        await client.get("/login")
        token = await issue_token(role, tenant)
        return {"Authorization": f"Bearer {token}", "x-csrftoken": client.cookies.get("bpo_csrf", "")}

    return make


def actions_of(html: str) -> list[str]:
    return re.findall(r'data-action="(\w+)"', html)


async def open_request(client, headers, slug: str, **form: str) -> str:
    """Opens a request through the tab's form; returns the request page's path."""
    r = await client.post(f"/tenants/{slug}/privacy/requests", data=form, headers=headers)
    assert r.status_code in (302, 303), r.text
    path = r.headers["location"]
    assert re.fullmatch(rf"/tenants/{slug}/privacy/requests/[0-9a-f-]{{36}}", path), path
    return path


class TestPrivacyTab:
    async def test_lists_requests_with_their_deadlines_and_links(self, client, cell_tenant, as_role):
        t = await cell_tenant()
        officer = await as_role("compliance_officer")
        path = await open_request(client, officer, t.slug, kind="access", subject=SUBJECT, regime="PDPA")
        page = await client.get(f"/tenants/{t.slug}/privacy", headers=officer)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'data-tab="privacy" aria-current="page"' in page.text
        row = page.text.split(f'href="{path}"', 1)[1].split("</tr>", 1)[0]
        assert re.findall(r"<td>([^<]*)</td>", row)[:2] == ["access", "PDPA"]
        assert '<span class="badge open">open</span>' in row and "overdue" not in row
        assert f'href="/api/v1/tenants/{t.slug}/records-of-processing.html"' in page.text
        assert 'id="open-request"' in page.text

    async def test_an_overdue_request_is_flagged(self, client, cell_tenant, as_role, dbs, keyring, settings):
        t = await cell_tenant()
        officer = Principal("user", "co@bpo.test", "compliance_officer")
        async with dbs.control_transaction() as session:
            late = await dsr.file_request(
                session,
                dbs,
                keyring,
                officer,
                t.slug,
                {"kind": "access", "subject": SUBJECT, "regime": "PDPA"},
                regions=settings.regions,
                now=utcnow() - timedelta(days=31),
            )
            fresh = await dsr.file_request(
                session,
                dbs,
                keyring,
                officer,
                t.slug,
                {"kind": "access", "subject": OTHER, "regime": "PDPA"},
                regions=settings.regions,
            )
        page = await client.get(f"/tenants/{t.slug}/privacy", headers=await as_role("account_manager"))
        row = page.text.split(f'data-request="{late.id}"', 1)[1].split("</tr>", 1)[0]
        assert '<span class="badge overdue">overdue</span>' in row and f"<td>{late.due_on.isoformat()}</td>" in row
        row = page.text.split(f'data-request="{fresh.id}"', 1)[1].split("</tr>", 1)[0]
        assert "overdue" not in row
        detail = await client.get(
            f"/tenants/{t.slug}/privacy/requests/{late.id}", headers=await as_role("merchant_admin", t.slug)
        )
        assert '<span class="badge overdue">overdue</span>' in detail.text

    async def test_opening_a_request_redirects_to_its_page_with_a_flash(self, client, cell_tenant, as_role, dbs):
        t = await cell_tenant()
        await ingest(client, t, [contact("DE", SUBJECT), contact("SG", SUBJECT), contact("US", OTHER)])
        merchant = await as_role("merchant_admin", t.slug)
        path = await open_request(client, merchant, t.slug, kind="erasure", subject=SUBJECT, note="by e-mail")
        page = await client.get(path, headers=merchant)
        assert page.status_code == 200
        assert re.search(
            r'class="flash notice"[^>]*>Request 1 opened: erasure under GDPR, due [0-9-]+; 2 contacts', page.text
        )
        assert '<dd id="request-regime">GDPR</dd>' in page.text
        assert "eu: 1 · sg: 1 · us: 0" in page.text
        async with dbs.control_session() as session:
            _, reqs = await dsr.list_requests(session, None, t.slug)
        assert [(r.kind, r.details.get("note")) for r in reqs] == [("erasure", "by e-mail")]
        assert path.endswith(str(reqs[0].id))

    async def test_bad_input_is_422_beside_each_field_with_the_values_kept(self, client, cell_tenant, as_role):
        t = await cell_tenant()
        officer = await as_role("platform_admin")
        url = f"/tenants/{t.slug}/privacy/requests"
        r = await client.post(url, data={"kind": "", "subject": " ", "note": "arrived by post"}, headers=officer)
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        assert 'id="request-kind-error"' in r.text and 'id="request-subject-error"' in r.text
        assert 'aria-describedby="request-subject-error"' in r.text
        assert ">arrived by post</textarea>" in r.text
        r = await client.post(url, data={"kind": "correction", "subject": SUBJECT}, headers=officer)
        assert r.status_code == 422
        assert re.search(r'id="request-correction-error"[^>]*>a correction request names what to correct', r.text)
        assert f'value="{SUBJECT}"' in r.text and '<option value="correction" selected>' in r.text
        r = await client.post(url, data={"kind": "opt_out_sale_share", "subject": SUBJECT}, headers=officer)
        assert r.status_code == 422 and "opt-out of sale or sharing is a CCPA/CPRA request" in r.text
        fixed = await open_request(
            client, officer, t.slug, kind="correction", subject=SUBJECT, correction="language=de\nmarket=AT"
        )
        assert "language = de; market = AT" in (await client.get(fixed, headers=officer)).text

    async def test_who_may_see_and_who_may_open(
        self, client, cell_tenant, make_tenant, as_role, dbs, keyring, settings
    ):
        t = await cell_tenant()
        other = await make_tenant()
        manager = await as_role("account_manager")
        tab = await client.get(f"/tenants/{t.slug}/privacy", headers=manager)
        assert tab.status_code == 200 and 'id="open-request"' not in tab.text
        url = f"/tenants/{t.slug}/privacy/requests"
        body = {"kind": "access", "subject": SUBJECT}
        assert (await client.post(url, data=body, headers=manager)).status_code == 403
        viewer = await as_role("merchant_viewer", t.slug)
        assert (await client.get(f"/tenants/{t.slug}/privacy", headers=viewer)).status_code == 403
        foreign = await as_role("merchant_admin", other["slug"])
        assert (await client.get(f"/tenants/{t.slug}/privacy", headers=foreign)).status_code == 404
        assert (await client.post(url, data=body, headers=foreign)).status_code == 404
        # The service refuses as well, whoever calls it.
        async with dbs.control_session() as session:
            with pytest.raises(Forbidden, match="account_manager may read"):
                await dsr.file_request(
                    session,
                    dbs,
                    keyring,
                    Principal("user", "am@bpo.test", "account_manager"),
                    t.slug,
                    body,
                    regions=settings.regions,
                )


class TestRequestPage:
    async def test_each_stage_shows_only_its_actions(self, client, cell_tenant, as_role):
        t = await cell_tenant()
        officer = await as_role("compliance_officer")
        access = await open_request(client, officer, t.slug, kind="access", subject=SUBJECT)
        assert actions_of((await client.get(access, headers=officer)).text) == [
            "export",
            "complete",
            "extend",
            "reject",
        ]
        pdpa = await open_request(client, officer, t.slug, kind="access", subject=SUBJECT, regime="PDPA")
        assert actions_of((await client.get(pdpa, headers=officer)).text) == ["export", "complete", "reject"]
        fix = await open_request(client, officer, t.slug, kind="correction", subject=SUBJECT, correction="csat=4")
        assert actions_of((await client.get(fix, headers=officer)).text) == ["complete", "extend", "reject"]
        erasure = await open_request(client, officer, t.slug, kind="erasure", subject=SUBJECT)
        page = await client.get(erasure, headers=officer)
        assert actions_of(page.text) == ["export", "erase", "extend", "reject"]
        assert f'href="{erasure}/erase"' in page.text  # erasing starts with a confirmation page
        r = await client.post(f"{erasure}/erase", headers=officer)
        assert r.status_code in (302, 303)
        page = await client.get(erasure, headers=officer)
        assert actions_of(page.text) == ["complete"] and 'id="request-stage">erased<' in page.text
        await client.post(f"{erasure}/complete", data={"note": ""}, headers=officer)
        page = await client.get(erasure, headers=officer)
        assert actions_of(page.text) == [] and 'id="request-stage">completed<' in page.text
        history = re.findall(r'<td class="action">([^<]+)</td>', page.text)
        assert history == ["dsr.received", "dsr.erased", "dsr.completed"]

    async def test_erasure_confirm_erase_then_complete(self, client, cell_tenant, as_role, dbs):
        t = await cell_tenant()
        mine = [contact("DE", SUBJECT), contact("US", SUBJECT)]
        await ingest(client, t, [*mine, contact("SG", OTHER)])
        merchant = await as_role("merchant_admin", t.slug)
        path = await open_request(client, merchant, t.slug, kind="erasure", subject=SUBJECT)
        confirm = await client.get(f"{path}/erase", headers=merchant)
        assert confirm.status_code == 200 and "Erase the subject's data for request 1?" in confirm.text
        assert f'<form method="post" action="{path}/erase">' in confirm.text and actions_of(confirm.text) == []
        rows = await cell_rows(dbs, t.id)
        assert rows["eu"][mine[0]["external_id"]].customer_hash is not None  # nothing happens before the POST
        done = await client.post(f"{path}/erase", headers=merchant)
        assert done.status_code in (302, 303) and done.headers["location"] == path
        page = await client.get(path, headers=merchant)
        assert (
            "Request 1 carried out: the subject&#39;s reference was erased from 2 contacts in eu, sg, us" in page.text
        )
        rows = await cell_rows(dbs, t.id)
        assert rows["eu"][mine[0]["external_id"]].customer_hash is None
        assert rows["us"][mine[1]["external_id"]].customer_hash is None
        assert next(iter(rows["sg"].values())).customer_hash is not None
        closed = await client.post(f"{path}/complete", data={"note": "told the subject"}, headers=merchant)
        assert closed.status_code in (302, 303)
        page = await client.get(path, headers=merchant)
        assert "Request 1 completed" in page.text and "told the subject" in page.text

    async def test_a_wrong_state_action_is_409_with_the_reason(self, client, cell_tenant, as_role):
        t = await cell_tenant()
        officer = await as_role("compliance_officer")
        path = await open_request(client, officer, t.slug, kind="erasure", subject=SUBJECT)
        early = await client.post(f"{path}/complete", data={}, headers=officer)
        assert early.status_code == 409 and early.headers["content-type"].startswith("text/html")
        assert re.search(
            r'id="refused">subject request 1 is an erasure request: carry out the erasure before completing it<',
            early.text,
        )
        rejected = await client.post(f"{path}/reject", data={"reason": "identity not verified"}, headers=officer)
        assert rejected.status_code in (302, 303)
        for action, form in (("erase", {}), ("extend", {"reason": "complex case"}), ("export", {})):
            late = await client.post(f"{path}/{action}", data=form, headers=officer)
            assert late.status_code == 409, action
            assert "subject request 1 is rejected; it can no longer change" in late.text
        confirm = await client.get(f"{path}/erase", headers=officer)
        assert confirm.status_code == 409 and "it can no longer change" in confirm.text
        access = await open_request(client, officer, t.slug, kind="access", subject=SUBJECT)
        wrong = await client.post(f"{access}/erase", headers=officer)
        assert wrong.status_code == 409 and "is a access request, not an erasure request" in wrong.text

    async def test_extend_and_reject_need_a_reason_beside_the_field(self, client, cell_tenant, as_role):
        t = await cell_tenant()
        officer = await as_role("compliance_officer")
        path = await open_request(client, officer, t.slug, kind="access", subject=SUBJECT, regime="CCPA")
        short = await client.post(f"{path}/extend", data={"reason": "no"}, headers=officer)
        assert short.status_code == 422
        assert re.search(r'id="extend-reason-error" data-field="reason">String should have at least 3', short.text)
        assert 'id="extend-reason" name="reason" type="text" value="no"' in short.text
        ok = await client.post(f"{path}/extend", data={"reason": "complex request, notice sent"}, headers=officer)
        assert ok.status_code in (302, 303)
        page = await client.get(path, headers=officer)
        assert re.search(r"Request 1 extended: now due [0-9-]+", page.text)
        assert "complex request, notice sent" in page.text and "extend" not in actions_of(page.text)
        empty = await client.post(f"{path}/reject", data={"reason": ""}, headers=officer)
        assert empty.status_code == 422 and 'id="reject-reason-error"' in empty.text

    async def test_export_downloads_the_subjects_contacts_and_is_audited(self, client, cell_tenant, as_role, dbs):
        t = await cell_tenant()
        mine = [contact("DE", SUBJECT), contact("SG", SUBJECT)]
        await ingest(client, t, [*mine, contact("US", OTHER)])
        officer = await as_role("compliance_officer")
        path = await open_request(client, officer, t.slug, kind="access", subject=SUBJECT)
        r = await client.post(f"{path}/export", headers=officer)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.headers["content-disposition"] == f'attachment; filename="subject-request-{t.slug}-1.json"'
        body = json.loads(r.content)
        assert sorted(c["external_id"] for c in body["contacts"]) == sorted(c["external_id"] for c in mine)
        async with dbs.control_session() as session:
            last = await session.scalar(
                sa.select(AuditEntry).where(AuditEntry.stream == t.slug).order_by(AuditEntry.seq.desc()).limit(1)
            )
        assert last.action == "dsr.access_exported" and last.data["contacts"] == {"eu": 1, "sg": 1, "us": 0}

    async def test_readers_read_and_only_handlers_act(self, client, cell_tenant, make_tenant, as_role):
        t = await cell_tenant()
        other = await make_tenant()
        officer = await as_role("compliance_officer")
        path = await open_request(client, officer, t.slug, kind="erasure", subject=SUBJECT)
        manager = await as_role("account_manager")
        page = await client.get(path, headers=manager)
        assert page.status_code == 200 and actions_of(page.text) == [] and "You may read this request" in page.text
        for action in ("export", "erase", "extend", "complete", "reject"):
            assert (await client.post(f"{path}/{action}", data={}, headers=manager)).status_code == 403, action
        assert (await client.get(f"{path}/erase", headers=manager)).status_code == 403
        foreign = await as_role("merchant_admin", other["slug"])
        assert (await client.get(path, headers=foreign)).status_code == 404
        assert (await client.post(f"{path}/erase", headers=foreign)).status_code == 404
        elsewhere = path.replace(t.slug, other["slug"])
        assert (await client.get(elsewhere, headers=officer)).status_code == 404  # not that tenant's request
        missing = f"/tenants/{t.slug}/privacy/requests/{uuid.uuid4()}"
        assert (await client.get(missing, headers=officer)).status_code == 404
