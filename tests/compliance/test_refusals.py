"""Evidence of what was refused (issue 14, like CloudTrail's AccessDenied events): a 403, a residency or
integration change the rules refuse (409) and a webhook whose signature does not verify become audit
entries in the tenant's stream (else ``platform``), rate-limited, and the export carries them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from billing.metering.webhooks.signatures import sign_zendesk
from compliance.verify import verify_lines
from control_plane.auth import prefix_of
from control_plane.errors import RefusalLimiter


async def _export(client, auditor, stream: str) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/audit/export", params={"stream": stream}, headers=auditor)
    assert resp.status_code == 200, resp.text
    lines = resp.text.splitlines()
    assert verify_lines(lines, (await client.get("/api/v1/audit/keys")).json()).ok
    return [json.loads(x) for x in lines]


def _entries(export: list[dict[str, Any]], action: str, actor: str | None = None) -> list[dict[str, Any]]:
    return [o for o in export if o["type"] == "entry" and o["action"] == action and actor in (None, o["actor"])]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(app) -> Iterator[Clock]:
    """A fresh limiter on the test's clock (the app is shared by the session), and a fresh one after."""
    clock = Clock()
    app.state.refusals = RefusalLimiter(clock=clock)
    yield clock
    app.state.refusals = RefusalLimiter()


class TestRefusedChanges:
    async def test_a_refused_residency_change_is_in_the_tenant_export(
        self, client, make_tenant, staff_headers, auditor
    ):
        t = await make_tenant()
        slug = t["slug"]
        refused = await client.put(
            f"/api/v1/tenants/{slug}/residency", json={"markets": {"FR": "us"}}, headers=staff_headers
        )
        assert refused.status_code == 409 and refused.json()["code"] == "residency_refused"
        [entry] = _entries(await _export(client, auditor, slug), "residency.change_refused")
        actor = f"token:{prefix_of(staff_headers['Authorization'].split()[1])}"
        assert (entry["actor"], entry["role"], entry["target"]) == (
            actor,
            "account_manager",
            f"tenant:{slug}/residency",
        )
        assert entry["request_id"] == refused.json()["request_id"] and entry["request_id"]
        data = entry["data"]
        assert data["reason"] == refused.json()["detail"] and "GDPR" in data["reason"]
        assert (data["status"], data["code"], data["markets"]) == (409, "residency_refused", {"FR": "us"})
        assert (data["suppressed"], data["suppressed_in_stream"]) == (0, 0)
        # The change itself was rolled back: no residency.updated, the policy has no FR route.
        assert _entries(await _export(client, auditor, slug), "residency.updated") == []
        residency = await client.get(f"/api/v1/tenants/{slug}/residency", headers=staff_headers)
        assert "FR" not in (residency.json().get("markets") or {})

    async def test_a_refused_integration_is_recorded_from_the_api_and_the_page(
        self, client, make_tenant, staff_headers, auditor
    ):
        t = await make_tenant()
        slug = t["slug"]
        api = await client.post(
            f"/api/v1/tenants/{slug}/integrations",
            json={"kind": "zendesk", "credentials": {"token": "zd-secret-1"}},
            headers=staff_headers,
        )
        assert api.status_code == 409 and api.json()["code"] == "cross_border_transfer_refused"
        await client.get("/login")
        page = await client.post(
            f"/tenants/{slug}/integrations",
            data={"kind": "zendesk", "processing_region": "us", "credentials": "token=zd-secret-2"},
            headers=staff_headers | {"x-csrftoken": client.cookies.get("bpo_csrf", "")},
        )
        assert page.status_code == 409 and "text/html" in page.headers["content-type"]
        entries = _entries(await _export(client, auditor, slug), "integration.change_refused")
        # One per actor, action and target a minute: the page's refusal is held back and counted.
        assert len(entries) == 1
        [entry] = entries
        assert (
            entry["target"] == f"tenant:{slug}/integrations"
            and entry["data"]["code"] == "cross_border_transfer_refused"
        )
        assert entry["data"]["kind"] == "zendesk" and "zd-secret" not in json.dumps(entry)

    async def test_a_refused_residency_change_on_the_page_is_recorded(
        self, client, make_tenant, staff_headers, auditor
    ):
        t = await make_tenant()
        await client.get("/login")
        page = await client.post(
            f"/tenants/{t['slug']}/residency",
            data={"markets": "FR=us"},
            headers=staff_headers | {"x-csrftoken": client.cookies.get("bpo_csrf", "")},
        )
        assert page.status_code == 409
        [entry] = _entries(await _export(client, auditor, t["slug"]), "residency.change_refused")
        assert entry["data"]["markets"] == {"FR": "us"}


class TestAccessDenied:
    async def test_a_403_on_a_tenant_route_is_in_the_tenant_export(self, client, make_tenant, issue_token, auditor):
        t = await make_tenant()
        slug = t["slug"]
        secret = await issue_token("merchant_admin", slug)
        merchant = {"Authorization": f"Bearer {secret}"}
        path = f"/api/v1/tenants/{slug}/contract"
        denied = await client.put(path, json={"effective_from": "2026-10-01"}, headers=merchant)
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
        assert denied.json()["code"] == "forbidden" and denied.json()["detail"] == "role merchant_admin may not do this"
        [entry] = _entries(await _export(client, auditor, slug), "access.denied")
        assert (entry["actor"], entry["role"]) == (f"token:{prefix_of(secret)}", "merchant_admin")
        assert entry["target"] == f"PUT {path}" and entry["request_id"] == denied.json()["request_id"]
        assert entry["data"]["reason"] == "role merchant_admin may not do this" and entry["data"]["status"] == 403

    async def test_a_403_page_for_a_browser_is_recorded_too(self, client, make_tenant, issue_token, auditor):
        t = await make_tenant()
        secret = await issue_token("merchant_admin", t["slug"])
        await client.get("/login")
        headers = {
            "Authorization": f"Bearer {secret}",
            "x-csrftoken": client.cookies.get("bpo_csrf", ""),
            "Accept": "text/html",
        }
        denied = await client.post(
            f"/tenants/{t['slug']}/contract", data={"effective_from": "2026-10-01"}, headers=headers
        )
        assert denied.status_code == 403 and "text/html" in denied.headers["content-type"]
        [entry] = _entries(await _export(client, auditor, t["slug"]), "access.denied", f"token:{prefix_of(secret)}")
        assert entry["target"] == f"POST /tenants/{t['slug']}/contract"

    async def test_a_403_without_a_tenant_goes_to_the_platform_stream(self, client, issue_token, auditor):
        secret = await issue_token("compliance_officer")
        officer = {"Authorization": f"Bearer {secret}"}
        denied = await client.post("/api/v1/tenants", json={"slug": "nope"}, headers=officer)
        assert denied.status_code == 403
        [entry] = _entries(await _export(client, auditor, "platform"), "access.denied", f"token:{prefix_of(secret)}")
        assert entry["target"] == "POST /api/v1/tenants" and entry["role"] == "compliance_officer"

    async def test_a_staff_403_naming_an_unknown_tenant_goes_to_platform(self, client, issue_token, auditor):
        """A slug in the path makes no stream unless the tenant exists (no stream per guessed slug)."""
        secret = await issue_token("compliance_officer")
        denied = await client.put(
            "/api/v1/tenants/no-such-tenant/contract", json={}, headers={"Authorization": f"Bearer {secret}"}
        )
        assert denied.status_code == 403
        assert _entries(await _export(client, auditor, "platform"), "access.denied", f"token:{prefix_of(secret)}")
        missing = await client.get("/api/v1/audit/export", params={"stream": "no-such-tenant"}, headers=auditor)
        assert missing.status_code == 404


class TestRateLimit:
    async def test_a_flood_of_50_writes_one_entry_and_the_next_counts_the_rest(
        self, client, make_tenant, issue_token, auditor, clock
    ):
        t = await make_tenant()
        secret = await issue_token("merchant_admin", t["slug"])
        merchant = {"Authorization": f"Bearer {secret}"}
        path = f"/api/v1/tenants/{t['slug']}/contract"
        for _ in range(50):
            assert (await client.put(path, json={}, headers=merchant)).status_code == 403
        actor = f"token:{prefix_of(secret)}"
        assert len(_entries(await _export(client, auditor, t["slug"]), "access.denied", actor)) == 1
        clock.now += 61
        assert (await client.put(path, json={}, headers=merchant)).status_code == 403
        first, second = _entries(await _export(client, auditor, t["slug"]), "access.denied", actor)
        assert first["data"]["suppressed"] == 0 and second["data"]["suppressed"] == 49

    async def test_many_targets_are_capped_per_stream_and_counted(
        self, client, make_tenant, issue_token, auditor, clock, app
    ):
        """Five routes ten times (50 refusals) under a cap of three a minute: three entries; the next
        one, a minute on, counts the 9 repeats of its own route and the 20 the cap held back."""
        app.state.refusals = RefusalLimiter(per_stream=3, clock=clock)
        t = await make_tenant()
        secret = await issue_token("merchant_admin", t["slug"])
        merchant = {"Authorization": f"Bearer {secret}"}
        routes = [("PUT", "contract"), ("PUT", "residency"), ("POST", "integrations"), ("POST", "status")]
        routes.append(("POST", "transfer-mechanisms"))
        for _ in range(10):
            for method, tail in routes:
                resp = await client.request(method, f"/api/v1/tenants/{t['slug']}/{tail}", json={}, headers=merchant)
                assert resp.status_code == 403, (tail, resp.text)
        actor = f"token:{prefix_of(secret)}"
        written = _entries(await _export(client, auditor, t["slug"]), "access.denied", actor)
        assert [e["target"].rsplit("/", 1)[1] for e in written] == ["contract", "residency", "integrations"]
        clock.now += 61
        assert (await client.put(f"/api/v1/tenants/{t['slug']}/contract", json={}, headers=merchant)).status_code == 403
        latest = _entries(await _export(client, auditor, t["slug"]), "access.denied", actor)[-1]
        assert (latest["data"]["suppressed"], latest["data"]["suppressed_in_stream"]) == (9, 20)

    def test_the_limiter_counts_what_it_holds_back(self):
        clock = Clock()
        limiter = RefusalLimiter(per_stream=2, clock=clock)
        assert limiter.admit("acme", "u", "access.denied", "a") == {"suppressed": 0, "suppressed_in_stream": 0}
        assert limiter.admit("acme", "u", "access.denied", "a") is None  # same key within a minute
        assert limiter.admit("acme", "u", "access.denied", "b") is not None
        assert limiter.admit("acme", "u", "access.denied", "c") is None  # the stream's cap
        assert limiter.admit("other", "u", "access.denied", "c") is not None  # another stream has its own
        clock.now += 60
        assert limiter.admit("acme", "u", "access.denied", "a") == {"suppressed": 1, "suppressed_in_stream": 1}
        # A held count whose key never comes back is not lost: it moves to its stream's count.
        assert limiter.admit("acme", "v", "access.denied", "d") is not None
        assert limiter.admit("acme", "v", "access.denied", "d") is None
        clock.now += 700
        assert limiter.admit("acme", "w", "access.denied", "e") == {"suppressed": 0, "suppressed_in_stream": 1}


class TestBestEffort:
    async def test_an_audit_write_that_fails_leaves_the_403_as_it_was(self, client, make_tenant, issue_token, app):
        def broken_clock() -> float:
            raise RuntimeError("the limiter cannot tell the time")

        app.state.refusals = RefusalLimiter(clock=broken_clock)
        t = await make_tenant()
        merchant = {"Authorization": f"Bearer {await issue_token('merchant_admin', t['slug'])}"}
        denied = await client.put(f"/api/v1/tenants/{t['slug']}/contract", json={}, headers=merchant)
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"


class TestWebhookSignature:
    async def test_a_refused_signature_is_recorded_in_the_tenant_stream(
        self, client, make_tenant, staff_headers, auditor
    ):
        t = await make_tenant()
        created = await client.post(
            f"/api/v1/tenants/{t['slug']}/integrations",
            json={
                "kind": "zendesk",
                "processing_region": "eu",
                "credentials": {"token": "x"},
                "webhook_secret": "whk-test-secret-0001",
            },
            headers=staff_headers,
        )
        assert created.status_code == 201, created.text
        integration = created.json()["id"]
        body = b'{"id": "evt-1"}'
        stamp = "2026-11-30T12:00:00Z"
        forged = await client.post(
            f"/api/v1/webhooks/zendesk/{integration}",
            content=body,
            headers={
                "X-Zendesk-Webhook-Signature": sign_zendesk(body, "a-guess", stamp),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                "Content-Type": "application/json",
            },
        )
        assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
        [entry] = _entries(await _export(client, auditor, t["slug"]), "webhook.signature_refused")
        assert (entry["actor"], entry["role"]) == ("anonymous", "anonymous")
        assert entry["target"] == f"tenant:{t['slug']}/integration/{integration}"
        assert entry["data"]["source"] == "zendesk" and entry["data"]["status"] == 401
        assert entry["data"]["reason"] == forged.json()["detail"] and "whk-test-secret-0001" not in json.dumps(entry)
