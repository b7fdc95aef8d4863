"""The SLA settings page (/tenants/{slug}/settings) and SLA navigation, through HTTP as a browser posts
its forms: each form's success (post-redirect-get, flash, stored, audited) and its 422 (the field named,
a sentence, the typed value kept); withdrawing a window; alerts sent to webhook endpoints (a link to the
Webhooks page; tests/webhooks cover them); merchant admins reading without forms; every page served as
text/html."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from compliance.service import list_entries
from control_plane.database import utcnow
from sla.models import ExcludedWindow, SlaAlert
from tenants.calendar import load_calendar

WEEK = {f"{d}_{k}": v for d in ("mon", "tue", "wed", "thu", "fri") for k, v in (("open", "09:00"), ("close", "17:00"))}
CLOSED_WEEKEND = {"sat_closed": "on", "sun_closed": "on"}


@pytest.fixture
async def tenant(make_tenant):
    return await make_tenant(onboard=True)


@pytest.fixture
async def browser(client, issue_token):
    """``await browser(role, tenant=None)`` -> headers of a signed-in user posting a page form."""

    async def make(role: str, tenant: str | None = None) -> dict[str, str]:
        token = await issue_token(role, tenant)
        await client.get("/login")
        return {
            "Authorization": f"Bearer {token}",
            "x-csrftoken": client.cookies.get("bpo_csrf", ""),
            "Accept": "text/html",
        }

    return make


def html_of(resp) -> str:
    assert resp.headers["content-type"].startswith("text/html"), resp.headers["content-type"]
    return resp.text


def error_beside(html: str, field_id: str) -> str:
    """The error sentence the page shows for the field ``field_id`` (its aria-describedby element)."""
    tag = re.search(rf'<(?:input|select|textarea)[^>]*id="{re.escape(field_id)}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    assert 'aria-invalid="true"' in tag.group(0) and f'aria-describedby="{field_id}-error"' in tag.group(0)
    error = re.search(rf'<p class="error" id="{re.escape(field_id)}-error"[^>]*>([^<]*)</p>', html)
    assert error, f"no error beside {field_id}"
    text = error.group(1).strip()
    assert text[:1].isupper() and text.endswith("."), text
    return text


def value_of(html: str, field_id: str) -> str:
    tag = re.search(rf'<input[^>]*id="{re.escape(field_id)}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else ""


async def audit_actions(dbs, slug: str) -> list[str]:
    async with dbs.control_session() as session:
        return [e.action for e in await list_entries(session, slug)]


class TestSettingsPage:
    async def test_an_account_manager_sees_three_forms_the_zone_and_the_tabs(self, client, browser, tenant):
        headers = await browser("account_manager")
        html = html_of(await client.get(f"/tenants/{tenant['slug']}/settings", headers=headers))
        for action in ("business-hours", "excluded-windows"):
            assert f'action="/tenants/{tenant["slug"]}/settings/{action}"' in html
        assert f'<a href="/tenants/{tenant["slug"]}/webhooks" id="webhooks-link">' in html
        assert '<strong id="timezone">Europe/Berlin</strong>' in html
        assert re.search(r'data-tab="settings"\s+aria-current="page"', html)
        assert "No excluded windows." in html

    async def test_a_merchant_admin_reads_the_settings_without_forms_and_may_not_post(
        self, client, browser, tenant, staff_headers
    ):
        slug = tenant["slug"]
        week = {"weekly": {"mon": [["08:30", "16:00"]]}, "holidays": ["2026-12-25"]}
        assert (await client.put(f"/api/v1/tenants/{slug}/sla/calendar", json=week, headers=staff_headers)).is_success
        window = {"first_day": "2026-10-10", "last_day": "2026-10-11", "kind": "client_outage", "reason": "Shop down"}
        resp = await client.post(f"/api/v1/tenants/{slug}/sla/excluded-windows", json=window, headers=staff_headers)
        assert resp.status_code == 201

        headers = await browser("merchant_admin", slug)
        resp = await client.get(f"/tenants/{slug}/settings", headers=headers)
        assert resp.status_code == 200
        html = html_of(resp)
        assert f"/tenants/{slug}/settings/" not in html  # no form posts anywhere here
        assert "<input" not in html.split("</header>")[1] and "Withdraw" not in html
        assert re.search(r'<tr data-day="mon"><th scope="row">Monday</th><td>08:30\u201316:00</td>', html)
        assert re.search(r'<tr data-day="tue"><th scope="row">Tuesday</th><td>Closed</td>', html)
        assert "Holidays: 2026-12-25" in html and "Shop down" in html
        assert f'href="/tenants/{slug}/webhooks"' in html
        for path, data in [
            ("business-hours", {"mon_open": "09:00", "mon_close": "17:00"}),
            ("excluded-windows", window),
            (f"excluded-windows/{uuid.uuid4()}/withdraw", {}),
        ]:
            resp = await client.post(
                f"/tenants/{slug}/settings/{path}", data=data, headers=headers, follow_redirects=False
            )
            assert resp.status_code == 403, path
        viewer = await browser("merchant_viewer", slug)
        assert (await client.get(f"/tenants/{slug}/settings", headers=viewer)).status_code == 403


class TestBusinessHours:
    async def test_saving_the_week_stores_it_audits_it_and_redirects_with_a_flash(self, client, browser, tenant, dbs):
        slug = tenant["slug"]
        headers = await browser("account_manager")
        form = WEEK | CLOSED_WEEKEND | {"fri_close": "00:00", "holidays": "2026-12-25\n2026-12-26"}
        resp = await client.post(
            f"/tenants/{slug}/settings/business-hours", data=form, headers=headers, follow_redirects=False
        )
        assert (resp.status_code, resp.headers["location"]) == (303, f"/tenants/{slug}/settings#hours")

        async with dbs.control_session() as session:
            tenant_id = uuid.UUID(tenant["id"])
            calendar = (await load_calendar(session, tenant_id)).to_json()
        assert calendar["weekly"]["mon"] == [["09:00", "17:00"]] and calendar["weekly"]["fri"] == [["09:00", "24:00"]]
        assert "sat" not in calendar["weekly"] and calendar["holidays"] == ["2026-12-25", "2026-12-26"]
        assert "sla.support_calendar_set" in await audit_actions(dbs, slug)

        html = html_of(await client.get(f"/tenants/{slug}/settings", headers=headers))
        assert "Business hours saved" in html
        assert value_of(html, "hours-mon_open") == "09:00" and value_of(html, "hours-fri_close") == "00:00"
        assert re.search(r'id="hours-sun_closed"[^>]*checked', html)

    async def test_a_day_closing_before_it_opens_and_a_bad_holiday_answer_422_beside_the_fields(
        self, client, browser, tenant, dbs
    ):
        slug = tenant["slug"]
        headers = await browser("account_manager")
        form = (
            WEEK
            | CLOSED_WEEKEND
            | {"mon_open": "17:00", "mon_close": "09:00", "tue_close": "", "sat_open": "10:00"}
            | {"holidays": "25.12.2026"}
        )
        resp = await client.post(
            f"/tenants/{slug}/settings/business-hours", data=form, headers=headers, follow_redirects=False
        )
        assert resp.status_code == 422
        html = html_of(resp)
        assert (
            error_beside(html, "hours-mon_close") == "Monday must close after it opens (17:00); 00:00 means midnight."
        )
        assert error_beside(html, "hours-tue_close") == "Enter the time Tuesday closes, or tick Closed."
        assert "25.12.2026" in error_beside(html, "hours-holidays")
        assert error_beside(html, "hours-sat_closed") == (
            "Saturday is ticked Closed but has hours: clear the times or untick Closed."
        )
        assert value_of(html, "hours-mon_open") == "17:00" and value_of(html, "hours-mon_close") == "09:00"
        assert value_of(html, "hours-wed_open") == "09:00" and ">25.12.2026</textarea>" in html
        async with dbs.control_session() as session:
            assert await load_calendar(session, uuid.UUID(tenant["id"])) is None


class TestExcludedWindows:
    async def test_adding_then_withdrawing_a_window(self, client, browser, tenant, dbs):
        slug = tenant["slug"]
        headers = await browser("account_manager")
        form = {
            "first_day": "2026-10-10",
            "last_day": "2026-10-12",
            "kind": "force_majeure",
            "reason": "Flood at the site",
        }
        resp = await client.post(
            f"/tenants/{slug}/settings/excluded-windows", data=form, headers=headers, follow_redirects=False
        )
        assert (resp.status_code, resp.headers["location"]) == (303, f"/tenants/{slug}/settings#window")
        async with dbs.control_session() as session:
            row = await session.scalar(
                sa.select(ExcludedWindow).where(ExcludedWindow.tenant_id == uuid.UUID(tenant["id"]))
            )
        assert (row.first_day, row.last_day, row.kind, row.reason) == (
            date(2026, 10, 10),
            date(2026, 10, 12),
            "force_majeure",
            "Flood at the site",
        )
        html = html_of(await client.get(f"/tenants/{slug}/settings", headers=headers))
        assert "Excluded window added" in html and "Flood at the site" in html
        assert "Withdraw the window 2026-10-10 \u2013 2026-10-12?" in html
        action = f"/tenants/{slug}/settings/excluded-windows/{row.id}/withdraw"
        assert f'action="{action}"' in html

        resp = await client.post(action, headers=headers, follow_redirects=False)
        assert (resp.status_code, resp.headers["location"]) == (303, f"/tenants/{slug}/settings#windows")
        html = html_of(await client.get(f"/tenants/{slug}/settings", headers=headers))
        assert "Excluded window withdrawn" in html and f'action="{action}"' not in html
        assert re.search(rf'data-window="{row.id}" class="withdrawn">', html)
        assert {"sla.excluded_window_added", "sla.excluded_window_withdrawn"} <= set(await audit_actions(dbs, slug))

        again = await client.post(action, headers=headers, follow_redirects=False)
        assert again.status_code == 409
        assert "This excluded window was withdrawn already." in html_of(again)
        missing = await client.post(
            f"/tenants/{slug}/settings/excluded-windows/{uuid.uuid4()}/withdraw",
            headers=headers,
            follow_redirects=False,
        )
        assert missing.status_code == 404

    async def test_a_short_reason_and_days_in_the_wrong_order_answer_422_with_the_values_kept(
        self, client, browser, tenant, dbs
    ):
        slug = tenant["slug"]
        headers = await browser("account_manager")
        form = {"first_day": "2026-10-12", "last_day": "2026-10-10", "kind": "client_outage", "reason": "x"}
        resp = await client.post(
            f"/tenants/{slug}/settings/excluded-windows", data=form, headers=headers, follow_redirects=False
        )
        assert resp.status_code == 422
        html = html_of(resp)
        assert error_beside(html, "window-reason") == "The reason needs at least 3 characters."
        assert value_of(html, "window-first_day") == "2026-10-12" and value_of(html, "window-last_day") == "2026-10-10"
        assert '<option value="client_outage" selected>' in html and ">x</textarea>" in html

        form |= {"reason": "Shop platform down", "kind": ""}
        resp = await client.post(
            f"/tenants/{slug}/settings/excluded-windows", data=form, headers=headers, follow_redirects=False
        )
        html = html_of(resp)
        assert resp.status_code == 422 and error_beside(html, "window-kind") == "The cause is required."
        form |= {"kind": "client_outage"}
        resp = await client.post(
            f"/tenants/{slug}/settings/excluded-windows", data=form, headers=headers, follow_redirects=False
        )
        html = html_of(resp)
        assert resp.status_code == 422
        assert error_beside(html, "window-last_day") == "The last day must be on or after the first day."
        async with dbs.control_session() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).where(ExcludedWindow.tenant_id == uuid.UUID(tenant["id"]))
            )
        assert count == 0


class TestSlaNavigation:
    async def test_the_sla_page_shows_the_tabs_and_its_download_links_answer(self, client, browser, tenant):
        slug = tenant["slug"]
        headers = await browser("account_manager")
        html = html_of(await client.get(f"/tenants/{slug}/sla?period=2026-10", headers=headers))
        assert re.search(r'data-tab="sla"\s+aria-current="page"', html)
        assert f'href="/tenants/{slug}/settings"' in html
        for link, kind in (("download-csv", "text/csv"), ("download-pdf", "application/pdf")):
            href = re.search(rf'id="{link}" href="([^"]+)"', html).group(1).replace("&amp;", "&")
            resp = await client.get(href, headers={"Authorization": headers["Authorization"]})
            assert resp.status_code == 200 and resp.headers["content-type"].startswith(kind), href

    async def test_each_alert_links_to_the_tenants_sla_page_and_settings(self, client, browser, tenant, dbs):
        slug = tenant["slug"]
        async with dbs.control_transaction() as session:
            session.add(
                SlaAlert(
                    tenant_id=uuid.UUID(tenant["id"]),
                    period="2026-10",
                    sla="deflection",
                    previous_status="on_track",
                    status="at_risk",
                    target="0.70",
                    message=f"{slug}: deflection at risk",
                    created_at=utcnow(),
                )
            )
        headers = await browser("account_manager")
        html = html_of(await client.get("/sla/alerts", headers=headers))
        row = next(r for r in html.split("<tr")[1:] if f"{slug}: deflection at risk" in r)
        assert f'href="/tenants/{slug}/sla?period=2026-10" data-link="sla"' in row
        assert f'href="/tenants/{slug}/settings" data-link="settings"' in row
        assert '<a href="/sla/alerts">SLA alerts</a>' in html  # in the header
