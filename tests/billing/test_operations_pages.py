"""The platform admins' Cells and Keys pages, in Debian's Chromium, on an app with two cells in eu
(`test_cell_moves.two_eu_cells`): a tenant moved to the other cell from the Cells page (its contacts,
keys and rollups follow), a move without a target refused on the page naming the field, the page
refused to an account manager; then every key rotated from the Keys page (the active key changes, the
rotation is audited with the admin as actor, sealed secrets still open)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from compliance.models import AuditEntry
from control_plane.cells import read_placement
from tests.billing import test_cell_moves as cells_module
from tests.billing.conftest import cell_keys, contact
from tests.browser import conftest as browser
from tests.browser.conftest import password_user, sign_in_with_password
from tests.browser.test_identity_journeys import fits

# The fixtures of an app with two cells in eu, and those of the browser journeys.
settings, dbs, app = cells_module.settings, cells_module.dbs, cells_module.app
provider, live, chromium, page = browser.provider, browser.live, browser.chromium, browser.page
tenant_rows = cells_module.tenant_rows

pytestmark = pytest.mark.browser
SQLITE = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


@SQLITE
async def test_a_tenant_moved_to_another_cell_from_the_cells_page(live, dbs, client, ingest_tenant, page: Page):
    t = await ingest_tenant()
    resp = await client.post(t.path(), json=[contact(f"p{i}") for i in range(5)], headers=t.headers)
    assert resp.status_code == 200 and resp.json()["accepted"] == 5
    home = await read_placement(dbs, t.id, "eu")
    away = "eu-2" if home == "eu-1" else "eu-1"

    admin, password = await password_user(dbs, "platform_admin")
    await sign_in_with_password(page, live.url, admin, password)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Cells", exact=True).click()
    await expect(page).to_have_url(f"{live.url}/cells")
    row = page.locator(f"#region-eu tr[data-tenant='{t.slug}']")
    await expect(row.locator(".cell")).to_have_text(home)

    await row.get_by_role("button", name="Move").click()  # no target chosen
    await expect(page.locator("[data-field=target]")).to_have_text("Target cell: choose one.")
    # A cell of another region (a form altered in the browser): refused by the move itself, beside the field.
    select = page.get_by_label(f"Target cell for {t.slug}")
    await select.evaluate("s => s.add(new Option('sg', 'sg', true, true))")
    await page.locator(f"#region-eu tr[data-tenant='{t.slug}']").get_by_role("button", name="Move").click()
    await expect(page.locator("[data-field=target]")).to_contain_text("Target cell: 'sg' is not a cell of region 'eu'")
    assert await read_placement(dbs, t.id, "eu") == home

    await row.get_by_label(f"Target cell for {t.slug}").select_option(away)
    await row.get_by_role("button", name="Move").click()
    await expect(page).to_have_url(f"{live.url}/cells")
    notice = page.locator(".flash")
    await expect(notice).to_contain_text(f"Moved {t.slug} in eu from {home} to {away}: 5 contacts")
    await expect(notice).to_contain_text("the rollups match a recount")
    await expect(page.locator(f"#region-eu tr[data-tenant='{t.slug}'] .cell")).to_have_text(away)
    assert await read_placement(dbs, t.id, "eu") == away
    assert sorted(await tenant_rows(dbs, away, t.id)) == [f"p{i}" for i in range(5)]
    assert await tenant_rows(dbs, home, t.id) == {}
    assert await cell_keys(dbs, away, t.id) == set()  # SQLite: no keys table in use

    phone = await browser.new_page(page.context.browser, width=390)  # the admin on a phone: both pages fit
    await sign_in_with_password(phone, live.url, admin, password, "/cells")
    await expect(phone.locator(f"#region-eu tr[data-tenant='{t.slug}'] .cell")).to_have_text(away)
    await fits(phone, 390)
    await phone.goto(f"{live.url}/keys")
    await fits(phone, 390)
    await phone.context.close()

    manager, manager_password = await password_user(dbs, "account_manager")
    other = await page.context.browser.new_context()
    tab = await other.new_page()
    await sign_in_with_password(tab, live.url, manager, manager_password)
    await expect(tab.get_by_role("link", name="Cells", exact=True)).to_have_count(0)
    refused = await tab.goto(f"{live.url}/cells")
    assert refused.status == 403
    await other.close()


@SQLITE
async def test_every_key_rotated_from_the_keys_page(live, dbs, page: Page):
    admin, password = await password_user(dbs, "platform_admin")
    await sign_in_with_password(page, live.url, admin, password)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys", exact=True).click()
    before = await page.locator("#active-key").inner_text()
    version = int(await page.locator("#ring-version").inner_text())

    await page.get_by_role("link", name="Rotate keys…").click()
    await expect(page.get_by_role("heading", name="Rotate every key?")).to_be_visible()
    await page.get_by_role("button", name="Rotate keys").click()

    await expect(page).to_have_url(f"{live.url}/keys")
    await expect(page.locator(".flash")).to_contain_text("Keys rotated: the active key is now k")
    after = await page.locator("#active-key").inner_text()
    assert after != before and after in await page.locator(".flash").inner_text()
    assert int(await page.locator("#ring-version").inner_text()) > version
    async with dbs.control_session() as session:
        entry = await session.scalar(
            sa.select(AuditEntry).where(AuditEntry.action == "keys.rotated").order_by(AuditEntry.id.desc()).limit(1)
        )
    assert entry.target == f"keyring:{after}" and admin in str(entry.actor)
    # Sealed secrets still open after the rotation: the admin signs in again (the session key is sealed).
    await page.context.clear_cookies()
    await sign_in_with_password(page, live.url, admin, password, "/keys")
    await expect(page.locator("#active-key")).to_have_text(after)
