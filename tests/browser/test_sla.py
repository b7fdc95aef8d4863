"""A merchant, in Debian's Chromium, reads its SLA page: KPI cards equal to the API's figures, daily
trend charts drawn as SVG, breakdowns; the PDF's first page is not blank; another merchant's page
answers 404. Reuses the onboarding test's live server and OIDC harness; the page is saved as
``test-output/sla-merchant.png``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
import pytest
from playwright.async_api import Browser, expect

from billing.metering.service import ingest_contacts
from compliance.service import SystemActor
from control_plane import service
from control_plane.auth import Principal
from control_plane.database import utcnow
from tenants.demo import CONTRACT
from tests.browser.test_compliance import sign_in
from tests.sla.conftest import contact

pytestmark = pytest.mark.browser

ZONE = "Europe/Berlin"


def pct(value: str | None) -> str:
    """The page's rendering of a rate string (the template's ``pct`` macro)."""
    return "n/a" if value is None else f"{float(Decimal(value)) * 100:.2f}%"


async def _merchant_tenant(session, settings, keyring, slug: str, name: str) -> None:
    from tenants import service as tenants

    staff = Principal("user", "am@bpo.test", "account_manager")
    spec = {"slug": slug, "name": name, "home_region": "eu", "timezone": ZONE, "currency": "EUR", "markets": ["DE"]}
    await tenants.create_tenant(session, staff, spec, regions=settings.regions, keyring=keyring)
    await tenants.add_contract_version(
        session, staff, slug, CONTRACT | {"currency": "EUR", "effective_from": "2020-01-01", "csat_min_sample": 10}
    )
    await tenants.set_residency(
        session, staff, slug, {"markets": {"DE": "eu"}}, regions=settings.regions, today=utcnow().date()
    )


def _last_month_contacts() -> tuple[str, list[dict]]:
    """Last month (Berlin): chat and e-mail over ten days, mostly AI, some escalated, some slow, ratings."""
    zone = ZoneInfo(ZONE)
    first = datetime.now(zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    out = []
    for day in range(10):
        for i in range(6):
            opened = start + timedelta(days=day * 2, hours=9 + i)
            human = i == 5 or (day % 3 == 0 and i == 4)
            overrides: dict = {"csat": [5, 4, 5, 2, 5, 3][i]}
            if human:
                overrides |= {"resolution": "human_resolved", "handoff_at": contact(opened)["first_response_at"]}
            if i in (1, 3):
                slow = 30 * 60 if day % 2 else 5 * 3600  # e-mail inside or outside the 4 h target
                overrides |= {
                    "channel": "email",
                    "first_response_at": contact(opened + timedelta(seconds=slow))["opened_at"],
                    "resolved_at": contact(opened + timedelta(seconds=slow + 600))["opened_at"],
                    "updated_at": contact(opened + timedelta(seconds=slow + 600))["opened_at"],
                }
            if day == 4 and i == 2:
                overrides |= {"first_response_at": None}  # never answered: a miss
            out.append(contact(opened, **overrides))
    return f"{start:%Y-%m}", out


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_merchant_sees_its_sla_page_equal_to_the_api_and_not_another_tenants(
    settings,
    live,
    provider,
    dbs,
    keyring,
    page,
    chromium: Browser,
    output_dir,
):
    slug, other = f"slab-{uuid.uuid4().hex[:6]}", f"slao-{uuid.uuid4().hex[:6]}"
    merchant = f"ma-{uuid.uuid4().hex[:8]}@merchant.example.com"
    async with dbs.control_transaction() as session:
        await _merchant_tenant(session, settings, keyring, slug, "Brisk Outfitters")
        await _merchant_tenant(session, settings, keyring, other, "Other Merchant")
        await service.create_user(
            session, SystemActor("tests"), {"email": merchant, "role": "merchant_admin", "tenant": slug}
        )
    period, contacts = _last_month_contacts()
    result = await ingest_contacts(dbs, keyring, None, slug, contacts)
    assert not result.rejected and result.accepted == len(contacts), result.rejected[:3]
    # One AI contact comes back and a human resolves it two hours later: a reopen.
    back = contacts[0]["resolved_at"][:11] + "14:00:00+00:00"
    again = contacts[0] | {"resolution": "human_resolved", "handoff_at": back, "resolved_at": back, "updated_at": back}
    assert (await ingest_contacts(dbs, keyring, None, slug, [again])).updated == 1
    await ingest_contacts(dbs, keyring, None, other, _last_month_contacts()[1][:5])

    await sign_in(page, live, provider, merchant, f"/tenants/{slug}/sla")
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/sla")
    # The month selector: last month (the page opens on the running month).
    await page.fill("#period", period)
    await page.click("#month-selector button[type=submit]")
    await expect(page).to_have_url(f"{live.url}/tenants/{slug}/sla?period={period}")
    await expect(page.locator("h1")).to_have_text(f"Brisk Outfitters · SLA {period}")

    # The API's answer, asked with the same signed-in browser session.
    resp = await page.request.get(f"{live.url}/api/v1/tenants/{slug}/sla?period={period}")
    assert resp.status == 200
    api = await resp.json()
    assert [s["sla"] for s in api["slas"]] == ["deflection", "csat", "response:chat", "response:email"]
    assert api["metrics"]["contacts_opened"] == len(contacts)
    assert any(s["met"] is False for s in api["slas"]) and any(s["met"] for s in api["slas"])

    cards = page.locator("#kpis .kpi")
    await expect(cards).to_have_count(len(api["slas"]))
    for s in api["slas"]:
        card = page.locator(f'#kpis .kpi[data-sla="{s["sla"]}"]')
        await expect(card).to_have_attribute("data-status", s["status"])
        await expect(card.locator('[data-field="actual"]')).to_have_text(pct(s["actual"]))
        await expect(card.locator('[data-field="target"]')).to_have_text(pct(s["target"]))
        await expect(card.locator('[data-field="numerator"]')).to_have_text(str(s["numerator"]))
        await expect(card.locator('[data-field="denominator"]')).to_have_text(str(s["denominator"]))
        await expect(card.locator('[data-field="credit"]')).to_have_text(s["credit"]["amount"])
    await expect(page.locator("#credit-total")).to_have_text(api["credits"]["total"])
    await expect(page.locator("#m-opened")).to_have_text(str(api["metrics"]["contacts_opened"]))
    await expect(page.locator("#m-resolved")).to_have_text(str(api["metrics"]["contacts_resolved"]))
    await expect(page.locator("#m-handoff")).to_have_text(pct(api["metrics"]["handoff_rate"]))
    await expect(page.locator("#m-reopen")).to_have_text(pct(api["metrics"]["reopen_rate"]))
    assert api["metrics"]["reopen_rate"] == str(
        (Decimal(1) / api["metrics"]["contacts_resolved"]).quantize(Decimal("0.0001"))
    )
    for row in api["breakdowns"]["intent"]:
        await expect(page.locator(f'#by-intent tr[data-key="{row["key"]}"] td').nth(1)).to_have_text(
            str(row["resolved"])
        )

    # Charts: one server-rendered SVG per daily series, each with a line and a point per measured day.
    charts = page.locator("#charts svg.trend")
    await expect(charts).to_have_count(4)
    days_with_data = sum(1 for d in api["daily"] if d["deflection"] is not None)
    for i in range(4):
        await expect(charts.nth(i).locator("path")).to_have_count(1)
        await expect(charts.nth(i)).to_be_visible()
    await expect(charts.nth(0).locator("circle")).to_have_count(days_with_data)
    await expect(charts.nth(0).locator("line.target")).to_have_count(1)
    await page.screenshot(path=str(output_dir / "sla-merchant.png"), full_page=True)

    # The PDF from the page's link renders a first page that is not blank.
    href = await page.locator("#download-pdf").get_attribute("href")
    pdf = await page.request.get(f"{live.url}{href}")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    doc = pdfium.PdfDocument(await pdf.body())
    first = doc[0]
    image = first.render(scale=1).to_pil().convert("L")
    dark = sum(1 for px in image.get_flattened_data() if px < 128)
    assert dark > 2000, "the first page of the SLA PDF is blank"
    assert slug in first.get_textpage().get_text_range()

    # Another merchant's SLA page, report and PDF do not exist for this merchant.
    response = await page.goto(f"{live.url}/tenants/{other}/sla?period={period}")
    assert response.status == 404
    for suffix in ("sla", "sla.pdf", "sla.csv"):
        resp = await page.request.get(f"{live.url}/api/v1/tenants/{other}/{suffix}?period={period}")
        assert resp.status == 404, suffix
