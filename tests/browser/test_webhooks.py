"""A merchant admin, in Debian's Chromium, adds a webhook endpoint on the tenant's Webhooks tab (an
endpoint without events refused beside the field, the URL kept), copies its secret — shown once —
sees a delivery to a loopback receiver in the log, replays it, and adds a usage threshold. The page is
saved as ``test-output/webhooks.png`` and fits a 390 px phone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from playwright.async_api import expect
from standardwebhooks import Webhook

from control_plane.auth import Principal
from control_plane.events import publish
from control_plane.outbox import dispatch_due
from control_plane.periodic import JobContext
from control_plane.plugins import outbox_handlers
from tenants import service as tenants
from tests.browser.conftest import password_user, sign_in_with_password
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_merchant_admin_adds_an_endpoint_sees_the_secret_once_and_a_delivery(
    settings, live, dbs, keyring, page, output_dir
):
    slug = f"hooks-{uuid.uuid4().hex[:6]}"
    async with dbs.control_transaction() as session:
        spec = {"slug": slug, "name": "Hooked Apparel", "home_region": "eu", "timezone": "Europe/Berlin"}
        spec |= {"currency": "EUR", "markets": ["DE"]}
        staff = Principal("user", "am@bpo.test", "account_manager")
        tenant = await tenants.create_tenant(session, staff, spec, regions=settings.regions, keyring=keyring)
        tenant_id = tenant.id
    receiver = WebhookReceiver().start()
    try:
        email, password = await password_user(dbs, "merchant_admin", slug)
        await sign_in_with_password(page, live.url, email, password, f"/tenants/{slug}")
        await page.locator("nav.tabs").get_by_role("link", name="Webhooks").click()
        await expect(page).to_have_url(f"{live.url}/tenants/{slug}/webhooks")
        await expect(page.locator("#endpoints-table")).to_contain_text("No endpoints yet")

        # No event chosen: refused beside the events, the URL kept.
        await page.get_by_label("Endpoint URL").fill(receiver.url + "/bpo")
        await page.get_by_role("button", name="Add endpoint").click()
        await expect(page.locator("#endpoint-events-error")).to_have_text("Name at least one event type.")
        await expect(page.get_by_label("Endpoint URL")).to_have_value(receiver.url + "/bpo")

        await page.get_by_label("invoice.paid").check()
        await page.get_by_label("invoice.finalized").check()
        await page.get_by_role("button", name="Add endpoint").click()
        await expect(page.locator("#secret-title")).to_have_text("Endpoint added: copy its secret now")
        secret = await page.get_by_label("Signing secret").input_value()
        assert secret.startswith("whsec_")
        await expect(page.locator("#endpoint-state")).to_have_text("Enabled")

        # An event arrives and the worker delivers it.
        async with dbs.control_transaction() as session:
            await publish(session, type="invoice.paid", tenant_id=tenant_id, key=f"invoice.paid:{slug}",
                          data={"number": "INV-2026-000001"}, now=datetime.now(UTC))  # fmt: skip
        await dispatch_due(dbs, outbox_handlers(JobContext(settings, dbs, keyring)), kinds=["webhook"])
        [got] = receiver.received
        assert Webhook(secret).verify(got.body, got.headers)["data"] == {"number": "INV-2026-000001"}

        await page.reload()  # the secret is gone; the delivery is in the log
        assert secret not in await page.content()
        row = page.locator("#deliveries-table tbody tr").first
        await expect(row.locator(".delivery-status")).to_have_text("succeeded")
        await expect(row.locator(".delivery-code")).to_have_text("200")
        await expect(row.locator(".delivery-attempts")).to_have_text("1")
        await row.get_by_role("button", name="Replay").click()
        await expect(page.locator(".flash")).to_have_text("Delivery queued again, with the same webhook-id")
        await expect(page.locator("#deliveries-table tbody tr")).to_have_count(2)
        await expect(page.locator("#deliveries-table tbody tr").first.locator(".delivery-status")).to_have_text(
            "pending"
        )

        # A usage threshold on the list page.
        await page.get_by_role("link", name="All endpoints").click()
        await page.get_by_label("Measure").select_option("contacts")
        await page.get_by_label("Threshold", exact=True).fill("ten")
        await page.get_by_role("button", name="Add threshold").click()
        await expect(page.locator("#threshold-value-error")).to_have_text("A whole number of contacts above 0.")
        await page.get_by_label("Threshold", exact=True).fill("10000")
        await page.get_by_role("button", name="Add threshold").click()
        await expect(page.locator(".flash")).to_have_text("Threshold added: contacts at 10000")
        await expect(page.locator("#thresholds-table")).to_contain_text("10000")
        await expect(page.locator("#endpoints-table")).to_contain_text("invoice.finalized, invoice.paid")
        await page.screenshot(path=str(output_dir / "webhooks.png"), full_page=True)

        await page.set_viewport_size({"width": 390, "height": 900})
        await page.reload()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        receiver.stop()
