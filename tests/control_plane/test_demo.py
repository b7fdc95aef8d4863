"""``make demo`` on a fresh data directory: the three demo people's invitation links work, each sets a
password, signs in with no token, and reaches the pages of its job; a second run issues fresh links
only to those who have not set a password."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.demo import seed_demo
from control_plane.settings import load_settings

PASSWORD = "demo person passphrase 2026"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_the_demo_invites_three_people_who_each_do_their_job(tmp_path, settings):
    from control_plane.migrate import upgrade_all

    demo = load_settings({"BPO_DATA_DIR": str(tmp_path / "var")})
    upgrade_all(demo)
    report = await seed_demo(demo)
    assert report.admin_password
    links = {role: (email, link) for role, email, link in report.invitations}
    assert set(links) == {"account_manager", "merchant_admin", "compliance_officer"}
    first, other = report.tenants[0], report.tenants[1]

    app = create_app(demo)
    pages = {
        "account_manager": ("/tenants", ["/billing/drafts", "/sla/alerts", f"/tenants/{first}/users", "/users"]),
        "merchant_admin": (f"/tenants/{first}", [f"/tenants/{first}/sla", f"/tenants/{first}/invoices"]),
        "compliance_officer": ("/tenants", ["/compliance", "/compliance/audit"]),
    }
    for role, (email, link) in links.items():
        path = link.split("8000", 1)[1]
        async with AsyncTestClient(app=app) as client:
            assert (await client.get(path)).status_code == 200
            csrf = {"x-csrftoken": client.cookies.get("bpo_csrf", "")}
            done = await client.post(
                path, data={"password": PASSWORD, "confirm": PASSWORD}, headers=csrf, follow_redirects=False
            )
            assert done.status_code in (302, 303), done.text
            signed = await client.post(
                "/login", data={"email": email, "password": PASSWORD}, headers=csrf, follow_redirects=False
            )
            assert signed.status_code in (302, 303), signed.text
            landing, reachable = pages[role]
            home = await client.get("/", follow_redirects=False)
            assert home.headers["location"] == landing, role
            html = {"accept": "text/html"}
            for page in [landing, *reachable]:
                resp = await client.get(page, headers=html)
                assert resp.status_code == 200, (role, page, resp.status_code)
                assert resp.headers["content-type"].startswith("text/html"), (role, page)
                assert "/api/v1/" not in resp.text.replace('href="/api/v1/', ""), (role, page)
            if role == "merchant_admin":
                assert (await client.get(f"/tenants/{other}", headers=html)).status_code == 404

    again = await seed_demo(demo)
    assert [link for _, _, link in again.invitations] == ["has set a password: sign in at /login"] * 3
