"""Bad bodies stop at the gate (400/413/415 problem JSON), secure web defaults on every response, OPTIONS
per CORS rules, and outbound webhooks to private addresses refused."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient

from control_plane.auth import Principal
from control_plane.errors import InvalidInput
from control_plane.outbound import check_destination, private_destination
from control_plane.security_headers import CSP
from tests.conftest import tenant_body


def nested(levels: int) -> bytes:
    return b'{"name": ' + b"[" * levels + b"]" * levels + b"}"


class TestBodyGate:
    @pytest.mark.parametrize(
        ("body", "headers", "status", "says"),
        [
            (b'{"name": "x",', {}, 400, "not valid JSON"),
            (b'{"name": "\xff\xfe"}', {}, 400, "not UTF-8"),
            (nested(5000), {}, 400, "nested more than 32 levels"),
            (nested(40), {}, 400, "nested more than 32 levels"),
            (b'{"name": NaN}', {}, 400, "NaN, which is not JSON"),
            (b'{"name": -Infinity}', {}, 400, "-Infinity, which is not JSON"),
            (b'{"name": "x"}', {"content-type": "text/plain"}, 415, "Content-Type: application/json"),
            (b'{"name": "x"}', {"content-type": ""}, 415, "Content-Type: application/json"),
            (b'{"name": "x"}', {"content-encoding": "gzip"}, 415, "Content-Encoding 'gzip'"),
            (gzip.compress(b'{"name": "x"}', mtime=0), {"content-encoding": "gzip"}, 415, "uncompressed"),
            (b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'"}', {}, 413, "at most"),
        ],
    )
    async def test_a_bad_body_is_refused_before_any_handler(
        self, client, make_tenant, staff_headers, body, headers, status, says
    ):
        t = await make_tenant()
        sent = {"content-type": "application/json"} | staff_headers | headers
        for path, method in [
            (f"/api/v1/tenants/{t['slug']}", "PATCH"),
            ("/api/v1/invoices/00000000-0000-0000-0000-000000000000/void", "POST"),
            ("/api/v1/invoices/00000000-0000-0000-0000-000000000000/credit-notes", "POST"),
            ("/api/v1/tenants", "POST"),
        ]:
            resp = await client.request(method, path, content=body, headers=sent)
            assert resp.status_code == status, (path, resp.status_code, resp.text[:200])
            assert resp.headers["content-type"] == "application/problem+json"
            assert says in resp.json()["detail"], resp.json()
        assert (await client.get(f"/api/v1/tenants/{t['slug']}", headers=staff_headers)).json()["name"] == t["name"]

    async def test_a_good_body_still_passes(self, client, staff_headers):
        resp = await client.post(
            "/api/v1/tenants",
            content=json.dumps(tenant_body()).encode(),
            headers=staff_headers | {"content-type": "application/json; charset=utf-8"},
        )
        assert resp.status_code == 201, resp.text


class TestWebDefaults:
    async def test_html_answers_carry_the_security_headers(self, client):
        page = await client.get("/login")
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in page.headers
        error = await client.get("/nowhere", headers={"accept": "text/html"})
        assert error.status_code == 404 and error.headers["content-security-policy"] == CSP
        api = await client.get("/health")
        assert api.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in api.headers

    async def test_hsts_when_cookies_are_secure(self, settings, dbs):
        from control_plane.app import create_app

        async with AsyncTestClient(app=create_app(replace(settings, secure_cookies=True), db=dbs)) as secure:
            resp = await secure.get("/login")
            assert resp.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"

    async def test_options_is_answered_and_allows_no_foreign_origin(self, client):
        for path in ("/health", "/api/v1/tenants", "/tenants"):
            resp = await client.options(path)
            assert resp.status_code in (200, 204), (path, resp.status_code)
            assert "OPTIONS" in resp.headers.get("allow", ""), path
        preflight = await client.options(
            "/api/v1/tenants",
            headers={"origin": "https://evil.example.com", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers

    async def test_a_configured_origin_may_call_the_api(self, settings, dbs):
        from control_plane.app import create_app

        app = create_app(replace(settings, cors_origins=("https://console.example.com",)), db=dbs)
        async with AsyncTestClient(app=app) as c:
            ok = await c.options(
                "/api/v1/tenants",
                headers={"origin": "https://console.example.com", "access-control-request-method": "GET"},
            )
            assert ok.headers.get("access-control-allow-origin") == "https://console.example.com"
            other = await c.options(
                "/api/v1/tenants",
                headers={"origin": "https://evil.example.com", "access-control-request-method": "GET"},
            )
            assert other.headers.get("access-control-allow-origin") != "https://evil.example.com"

    def test_the_server_runs_without_a_banner(self):
        from control_plane.cli import server_config

        assert server_config(object(), "127.0.0.1", 8000).server_header is False


class TestOutboundAddresses:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/hook",
            "http://localhost:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
        ],
    )
    async def test_private_addresses_are_refused(self, url):
        reason = await private_destination(url)
        assert reason is not None and "public addresses only" in reason
        with pytest.raises(InvalidInput) as caught:
            await check_destination(url, allow_private=False)
        assert caught.value.errors[0].field == "url"
        await check_destination(url, allow_private=True)  # lifted by BPO_ALLOW_PRIVATE_WEBHOOKS=1

    async def test_a_public_address_passes_and_an_unknown_name_is_refused(self):
        assert await private_destination("https://93.184.216.34/hook") is None
        assert "cannot be resolved" in await private_destination("https://no-such-host.invalid/hook")

    async def test_a_webhook_endpoint_refuses_a_private_address(self, dbs, keyring, make_tenant):
        from webhooks import service

        t = await make_tenant()
        actor = Principal("user", "am@bpo.test", "account_manager")
        async with dbs.control_transaction() as session:
            with pytest.raises(InvalidInput) as caught:
                await service.create_endpoint(
                    session,
                    actor,
                    t["slug"],
                    {"url": "http://127.0.0.1:9/hook", "events": ["sla.breached"]},
                    keyring=keyring,
                    allow_private=False,
                )
        assert caught.value.errors[0].field == "url" and "127.0.0.1" in caught.value.errors[0].message
