"""A compliance officer, in Debian's Chromium: overview, audit search, signed export, records; a
merchant user is refused (403). Reuses the onboarding test's live server and OIDC harness."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page, expect

from compliance.dsr import service as dsr
from compliance.service import SystemActor
from compliance.verify import verify_file
from control_plane import service
from control_plane.auth import Principal
from control_plane.database import utcnow

pytestmark = pytest.mark.browser


async def sign_in(tab: Page, app, idp, email: str, next_path: str) -> None:
    sub = f"idp-{uuid.uuid4().hex[:8]}"
    idp.set_user(sub, email=email, email_verified=True, name=email.split("@")[0])
    await tab.goto(f"{app.url}{next_path}")
    await expect(tab).to_have_url(f"{app.url}/login?next={next_path}")
    await tab.click("#sso")
    await tab.fill('input[name="sub"]', sub)
    await tab.get_by_role("button", name="Authorize").click()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_compliance_officer_uses_the_pages_and_a_merchant_cannot(
    settings,
    live,
    provider,
    dbs,
    keyring,
    page,
    chromium: Browser,
    output_dir,
    tmp_path,
):
    officer = f"co-{uuid.uuid4().hex[:8]}@staff.example.com"
    merchant = f"ma-{uuid.uuid4().hex[:8]}@merchant.example.com"
    slug = f"comp-{uuid.uuid4().hex[:6]}"
    staff = Principal("user", "am@bpo.test", "account_manager")
    async with dbs.control_transaction() as session:
        from tenants import service as tenants

        await tenants.create_tenant(
            session,
            staff,
            {
                "slug": slug,
                "name": "Acme Compliance",
                "home_region": "eu",
                "timezone": "Europe/Berlin",
                "currency": "EUR",
                "markets": ["DE", "SG"],
            },
            regions=settings.regions,
            keyring=keyring,
        )
        await tenants.set_residency(
            session, staff, slug, {"markets": {"DE": "eu", "SG": "sg"}}, regions=settings.regions, today=utcnow().date()
        )
        await service.create_user(session, SystemActor("tests"), {"email": officer, "role": "compliance_officer"})
        await service.create_user(
            session, SystemActor("tests"), {"email": merchant, "role": "merchant_admin", "tenant": slug}
        )
        # A PDPA request received 40 days ago (30-day deadline): overdue today.
        late = await dsr.file_request(
            session,
            dbs,
            keyring,
            Principal("user", officer, "compliance_officer"),
            slug,
            {"kind": "access", "subject": "ben@example.sg", "regime": "PDPA"},
            regions=settings.regions,
            now=utcnow() - timedelta(days=40),
        )

    await sign_in(page, live, provider, officer, "/compliance")
    await expect(page).to_have_url(f"{live.url}/compliance")
    await expect(page.locator("header .who")).to_have_text(f"{officer} · compliance_officer")
    card = page.locator(f'.tenant-residency[data-tenant="{slug}"]')
    await expect(card.locator(".regions tbody tr")).to_have_count(2)
    await expect(card.locator(".regions")).to_contain_text("PDPA")
    await expect(card.locator(".retention")).to_have_text("730 days")
    row = page.locator(f'#subject-requests tr[data-request="{late.id}"]')
    await expect(row.locator(".badge")).to_have_text("overdue")

    # Search the audit log: the tenant's stream, its data-subject actions.
    await page.click("#audit-search-link")
    await page.select_option("#audit-tenant", slug)
    await page.fill("#audit-action", "dsr.")
    await page.click("#search")
    await expect(page.locator("#audit-results td.action")).to_have_text(["dsr.received"])
    await page.fill("#audit-action", "")
    await page.fill("#audit-actor", officer)
    await page.click("#search")
    await expect(page.locator("#audit-results td.action")).to_have_count(1)
    await page.fill("#audit-actor", "")
    await page.click("#search")
    await expect(page.locator("#audit-results td.action")).to_have_count(
        4
    )  # tenant.created, residency.updated, user.created, dsr.received
    await page.screenshot(path=str(output_dir / "compliance-audit.png"), full_page=True)

    # Export the stream from the page and verify the download offline with the published keys.
    async with page.expect_download() as info:
        await page.click("#export-jsonl")
    download = await info.value
    path = tmp_path / "export.jsonl"
    await download.save_as(path)
    keys = await (await page.request.get(f"{live.url}/api/v1/audit/keys")).json()
    verdict = verify_file(str(path), keys)
    assert verdict.ok and verdict.entries == 4, verdict
    assert json.loads(path.read_text().splitlines()[0])["stream"] == slug

    # The record of processing, from the overview.
    await page.goto(f"{live.url}/compliance")
    await card.get_by_role("link", name="HTML").click()
    await expect(page.get_by_role("heading", name=f"Record of processing: Acme Compliance {slug}")).to_be_visible()
    await expect(page.locator("#record-regions")).to_contain_text("sg")
    await page.screenshot(path=str(output_dir / "compliance-record.png"), full_page=True)

    # A merchant user, signed in, is refused every compliance page.
    context = await chromium.new_context()
    other = await context.new_page()
    await sign_in(other, live, provider, merchant, "/compliance")
    for path in ("/compliance", "/compliance/audit"):
        response = await other.goto(f"{live.url}{path}")
        assert response.status == 403, path
    await context.close()
