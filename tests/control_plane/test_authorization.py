"""Tenant isolation and role checks, derived from the app's own route table.

Every route whose path names a tenant (``{slug}``) is called by tenant A's merchant users and API
key with tenant B's slug: each must answer 404. Every staff-only route is called by them with
their own slug: each must answer 403. A new route is covered without editing this test.
"""

from __future__ import annotations

import re
import uuid

import pytest
from litestar.routes import HTTPRoute

from control_plane.auth import MERCHANT_ROLES

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def route_table(app) -> list[tuple[str, str, dict]]:
    """``(method, path template, opt)`` for every HTTP handler of the app."""
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                out.append((method, route.path_format if hasattr(route, "path_format") else route.path, handler.opt))
    return out


def fill(path: str, slug: str) -> str:
    return PARAM.sub(lambda m: slug if m.group(1) == "slug" else str(uuid.uuid4()), path)


def staff_only(opt: dict) -> bool:
    return (
        not opt.get("public")
        and not set(opt.get("roles", ())) & {str(r) for r in MERCHANT_ROLES}
        and not opt.get("scopes")
    )


@pytest.fixture
async def two_tenants(make_tenant, client, staff_headers, issue_token):
    a = await make_tenant(onboard=True)
    b = await make_tenant(onboard=True)
    key = await client.post(
        f"/api/v1/tenants/{a['slug']}/api-keys",
        json={"scopes": ["contacts:write", "sla:read", "invoices:read"]},
        headers=staff_headers,
    )
    callers = {
        "merchant_admin": await issue_token("merchant_admin", a["slug"]),
        "merchant_viewer": await issue_token("merchant_viewer", a["slug"]),
        "api_key": key.json()["secret"],
    }
    return a, b, callers


async def _call(client, method: str, path: str, secret: str):
    headers = {"Authorization": f"Bearer {secret}"}
    if method in UNSAFE and not path.startswith("/api/"):
        await client.get("/login")  # the CSRF cookie, so that a page form reaches its guard
        headers["x-csrftoken"] = client.cookies.get("bpo_csrf", "")
    kwargs = {"json": {}} if method in UNSAFE and path.startswith("/api/") else {}
    return await client.request(method, path, headers=headers, **kwargs)


async def test_route_table_is_not_empty(app):
    table = route_table(app)
    scoped = [r for r in table if "{slug" in r[1]]
    assert len(scoped) >= 15 and any(staff_only(opt) for _, _, opt in table)


async def test_another_tenants_routes_answer_404(app, client, two_tenants):
    _a, b, callers = two_tenants
    scoped = [(m, p) for m, p, opt in route_table(app) if "{slug" in p and not opt.get("public")]
    failures = []
    for name, secret in callers.items():
        for method, template in scoped:
            path = fill(template, b["slug"])
            resp = await _call(client, method, path, secret)
            if resp.status_code != 404 or (b["name"] in resp.text and b["slug"] not in path):
                failures.append((name, method, path, resp.status_code))
            assert b["id"] not in resp.text
    assert failures == []


async def test_staff_only_routes_answer_403(app, client, two_tenants):
    a, _, callers = two_tenants
    routes = [(m, p) for m, p, opt in route_table(app) if staff_only(opt)]
    assert routes, "there are staff-only routes"
    failures = []
    for name, secret in callers.items():
        for method, template in routes:
            resp = await _call(client, method, fill(template, a["slug"]), secret)
            if resp.status_code != 403:
                failures.append((name, method, template, resp.status_code))
    assert failures == []


async def test_anonymous_gets_401_on_api(app, client):
    failures = []
    for method, template, opt in route_table(app):
        if opt.get("public") or not template.startswith("/api/"):
            continue
        resp = await client.request(method, fill(template, "acme"), **({"json": {}} if method in UNSAFE else {}))
        if resp.status_code != 401:
            failures.append((method, template, resp.status_code))
    assert failures == []


async def test_merchant_sees_only_its_own_tenant_in_lists(client, two_tenants):
    a, _b, callers = two_tenants
    resp = await client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {callers['merchant_viewer']}"})
    assert [t["slug"] for t in resp.json()] == [a["slug"]]


async def test_every_page_answers_html_and_every_api_route_problem_json(app, client, make_tenant, issue_token):
    """Content negotiation over the route table: a browser gets HTML from every page, whatever the
    status (a random id is an HTML 404); an API client gets problem JSON from the same page's errors."""
    t = await make_tenant(onboard=True)
    admin = f"Bearer {await issue_token('platform_admin')}"
    browser = {"Authorization": admin, "accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    failures = []
    pages = [
        p
        for m, p, opt in route_table(app)
        if m == "GET" and not p.startswith(("/api/", "/schema", "/static")) and p not in ("/health", "/ready")
    ]
    assert len(pages) >= 15
    for template in pages:
        resp = await client.get(fill(template, t["slug"]), headers=browser, follow_redirects=False)
        if resp.status_code in (301, 302, 303, 307):
            continue
        if not resp.headers.get("content-type", "").startswith("text/html"):
            failures.append((template, resp.status_code, resp.headers.get("content-type")))
    assert failures == []
    missing = await client.get(f"/tenants/{uuid.uuid4().hex}", headers={"Authorization": admin})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    html = await client.get(f"/tenants/{uuid.uuid4().hex}", headers=browser)
    assert html.status_code == 404 and "<h1>Not found</h1>" in html.text


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(client):
    resp = await client.get("/tenants?x=1", headers={"accept": "text/html"}, follow_redirects=False)
    assert resp.status_code in (302, 303) and resp.headers["location"] == "/login?next=/tenants%3Fx%3D1"
    page = await client.get("/login?next=//evil.example.com/x")
    assert 'name="next" value="/"' in page.text
