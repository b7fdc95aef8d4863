"""E-mail without an SMTP server, in Debian's Chromium: a platform admin invites a user on the Users
page; the invitation is rendered and kept (not sent), listed on the Mail page with its status, and its
detail shows the same one-time link the Users page flashed; on a 390 px phone the list fits."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from tests.browser.conftest import new_page, password_user, sign_in_with_password
from tests.browser.test_identity_journeys import fits

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_unsent_mail_is_kept_and_shown_to_staff(settings, live, dbs, keyring, page: Page, chromium: Browser):
    assert settings.smtp_url is None
    admin, password = await password_user(dbs, "platform_admin")
    await sign_in_with_password(page, live.url, admin, password, "/users")
    invitee = f"new-{uuid.uuid4().hex[:8]}@example.com"
    await page.get_by_label("Email").fill(invitee)
    await page.get_by_label("Role", exact=True).select_option("account_manager")
    await page.get_by_role("button", name="Invite").click()
    notice = await page.locator(".flash.invitation").inner_text()
    link = re.search(r"http://\S+/invitations/[\w-]+", notice).group(0)

    # The worker's outbox run (here: once, now) renders the message and keeps it.
    counts = await dispatch_due(dbs, outbox_handlers(JobContext(settings, dbs, keyring)), kinds={"mail"})
    assert counts["sent"] >= 1 and counts["retry"] == 0

    await page.get_by_role("link", name="Mail", exact=True).click()
    await expect(page).to_have_url(f"{live.url}/mail")
    row = page.locator("#mail tr", has_text=invitee)
    await expect(row).to_have_count(1)
    await expect(row.locator(".badge")).to_have_text("kept")
    await row.get_by_role("link", name="You are invited to the BPO Control Plane").click()
    await expect(page.locator("h1")).to_have_text("You are invited to the BPO Control Plane")
    await expect(page.locator("#mail-text")).to_contain_text(link)

    await page.goto(f"{live.url}/mail?status=sent")
    await expect(page.locator("#mail tr", has_text=invitee)).to_have_count(0)

    # An account manager sees the page too, on a phone, and it fits.
    manager, manager_password = await password_user(dbs, "account_manager")
    phone = await new_page(chromium, width=390)
    await sign_in_with_password(phone, live.url, manager, manager_password, "/mail")
    await expect(phone.locator("h1")).to_have_text("Mail")
    await expect(phone.locator("#mail tr", has_text=invitee)).to_have_count(1)
    await fits(phone, 390)
    await phone.close()
