"""A compliance officer answers an erasure request in Debian's Chromium, then exports the tenant's
audit log: Privacy tab -> open the request -> download what it will erase -> erase (after the
confirmation step) -> complete -> Audit tab -> signed export, verified offline. The last page is
saved as ``test-output/privacy-journey.png``."""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.async_api import Page, expect

from compliance.verify import verify_file
from control_plane.auth import Principal
from control_plane.database import utcnow
from tenants import service as tenants
from tests.browser.conftest import password_user, sign_in_with_password
from tests.compliance.conftest import OTHER, SUBJECT, contact

pytestmark = pytest.mark.browser


async def cell_tenant_with_contacts(page: Page, live, dbs, keyring, settings) -> tuple[str, list[dict], list[dict]]:
    """A tenant whose DE, US and SG contacts live in the eu, us and sg cells, with contacts of the
    subject (DE, SG) and of someone else (US, DE) ingested through the API as a merchant's system does."""
    slug = f"priv-{uuid.uuid4().hex[:6]}"
    staff = Principal("user", "am@bpo.test", "account_manager")
    async with dbs.control_transaction() as session:
        body = {"slug": slug, "name": "Acme Privacy", "home_region": "eu", "timezone": "Europe/Berlin"}
        body |= {"currency": "EUR", "markets": ["DE", "US", "SG"]}
        await tenants.create_tenant(session, staff, body, regions=settings.regions, keyring=keyring)
        await tenants.set_residency(
            session,
            staff,
            slug,
            {"markets": {"DE": "eu", "US": "us", "SG": "sg"}},
            regions=settings.regions,
            today=utcnow().date(),
        )
        _, secret = await tenants.issue_api_key(session, staff, slug, {"scopes": ["contacts:write"]})
    mine = [contact("DE", SUBJECT), contact("SG", SUBJECT)]
    theirs = [contact("US", OTHER), contact("DE", OTHER)]
    r = await page.request.post(
        f"{live.url}/api/v1/tenants/{slug}/contacts",
        data=json.dumps(mine + theirs),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert r.status == 200 and (await r.json())["accepted"] == 4, await r.text()
    return slug, mine, theirs


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_compliance_officer_answers_an_erasure_request_and_exports_the_audit_log(
    settings, live, dbs, keyring, page, output_dir, tmp_path
):
    slug, mine, theirs = await cell_tenant_with_contacts(page, live, dbs, keyring, settings)
    email, password = await password_user(dbs, "compliance_officer")
    await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}")
    tabs = page.get_by_role("navigation", name="Tenant")
    await tabs.get_by_role("link", name="Privacy").click()
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/privacy")
    await expect(page.locator("#privacy-requests")).to_contain_text("No data-subject requests yet.")

    # Open an erasure request for the subject.
    await page.get_by_label("Kind").select_option("erasure")
    await page.get_by_label("Subject reference").fill(SUBJECT)
    await page.get_by_role("button", name="Open request").click()
    await expect(page.get_by_role("heading", name="Request 1: erasure")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("Request 1 opened: erasure under GDPR")
    await expect(page.get_by_role("status")).to_contain_text("2 contacts of the subject found")
    await expect(page.locator("#request-stage")).to_have_text("open")
    request_url = page.url

    # Download what the erasure will remove: exactly the subject's contacts.
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Export the subject's data").click()
    download = await info.value
    exported = json.loads((await download.path()).read_text())
    assert {(c["region"], c["external_id"]) for c in exported["contacts"]} == {
        ("eu", mine[0]["external_id"]),
        ("sg", mine[1]["external_id"]),
    }
    assert not {c["external_id"] for c in theirs} & {c["external_id"] for c in exported["contacts"]}

    # Erase, through the confirmation step.
    await page.get_by_role("link", name="Erase…").click()
    await expect(page).to_have_url(f"{request_url}/erase")
    await expect(page.get_by_role("heading", name="Erase the subject's data for request 1?")).to_be_visible()
    await page.get_by_role("button", name="Erase now").click()
    await expect(page).to_have_url(request_url)
    await expect(page.get_by_role("status")).to_contain_text("erased from 2 contacts in eu, sg, us")
    await expect(page.locator("#request-stage")).to_have_text("erased")
    await expect(page.locator("#request-actions form")).to_have_count(1)  # only completing is left
    await page.screenshot(path=str(output_dir / "privacy-request.png"), full_page=True)

    # Complete it once the subject is told.
    await page.get_by_label("Closing note (optional)").fill("Confirmation sent to the subject")
    await page.get_by_role("button", name="Complete request").click()
    await expect(page.get_by_role("status")).to_have_text("Request 1 completed")
    await expect(page.locator("#request-stage")).to_have_text("completed")
    await expect(page.locator("#request-history td.action")).to_have_text(
        ["dsr.received", "dsr.access_exported", "dsr.erased", "dsr.completed"]
    )
    await page.get_by_role("link", name=f"← All requests of {slug}").click()
    await expect(page.locator("#privacy-requests tbody tr").first).to_contain_text("completed")

    # The tenant's Audit tab: its stream, an entry expanded, and the signed export verified offline.
    await tabs.get_by_role("link", name="Audit").click()
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/audit")
    await expect(page.locator("#audit-range")).to_contain_text("newest first")
    await expect(page.locator("#audit-results td.action").first).to_have_text("dsr.completed")
    await page.locator("#audit-results details summary").first.click()
    await expect(page.locator("#audit-results details").first).to_contain_text("Previous hash")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="signed JSON Lines").click()
    download = await info.value
    path = tmp_path / "audit.jsonl"
    await download.save_as(path)
    keys = await (await page.request.get(f"{live.url}/api/v1/audit/keys")).json()
    verdict = verify_file(str(path), keys)
    assert verdict.ok, verdict
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["stream"] == slug
    actions = [x["action"] for x in lines if x["type"] == "entry"]
    assert actions[-4:] == ["dsr.received", "dsr.access_exported", "dsr.erased", "dsr.completed"]
    assert SUBJECT.lower() not in path.read_text().lower()  # the identifier never reaches the log
    await page.screenshot(path=str(output_dir / "privacy-journey.png"), full_page=True)

    # At a phone's width the pages do not scroll sideways (wide tables scroll inside their box).
    await page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/tenants/{slug}/privacy", request_url.removeprefix(live.url), f"/tenants/{slug}/audit"):
        await page.goto(f"{live.url}{path}")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390, path
    await page.screenshot(path=str(output_dir / "privacy-journey-390.png"), full_page=True)
