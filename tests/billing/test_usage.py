"""The merchant usage page and its JSON, read from the rollups."""

from __future__ import annotations

from datetime import timedelta

from tests.billing.conftest import T0, contact, ts


class TestUsage:
    async def test_usage_counts_per_day_resolution_channel_and_intent(self, client, staff_headers, ingest_tenant):
        t = await ingest_tenant()
        batch = [
            contact("u1"),
            contact(
                "u2",
                channel="email",
                intent="refund",
                resolution="human_resolved",
                handoff_at=ts(T0 + timedelta(minutes=1)),
            ),
            contact("u3", opened=T0 + timedelta(days=1), resolution="open", resolved_at=None),
            contact("bad", market="XX"),
        ]
        await client.post(t.path(), json=batch, headers=t.headers)
        data = (await client.get(f"/api/v1/tenants/{t.slug}/usage?month=2026-10", headers=staff_headers)).json()
        assert data["contacts"] == 3
        assert data["by_resolution"] == {"ai_resolved": 1, "human_resolved": 1, "open": 1, "abandoned": 0}
        assert data["days"][0] == {
            "day": "2026-10-14",
            "by_resolution": {"ai_resolved": 1, "human_resolved": 1, "open": 0, "abandoned": 0},
        }
        assert data["by_channel"] == {"chat": 2, "email": 1} and data["by_intent"] == {"wismo": 2, "refund": 1}
        page = await client.get(f"/tenants/{t.slug}/usage?month=2026-10", headers=staff_headers)
        assert page.status_code == 200
        assert '<svg id="usage-chart"' in page.text and "2026-10-14 ai_resolved: 1" in page.text
        assert "must be an ISO 3166-1 alpha-2 country code" in page.text  # the latest ingest error

    async def test_another_tenants_usage_is_404_for_a_merchant(self, client, issue_token, ingest_tenant):
        t, other = await ingest_tenant(), await ingest_tenant()
        merchant = {"Authorization": f"Bearer {await issue_token('merchant_viewer', other.slug)}"}
        assert (await client.get(f"/api/v1/tenants/{t.slug}/usage", headers=merchant)).status_code == 404
        assert (await client.get(f"/api/v1/tenants/{other.slug}/usage", headers=merchant)).status_code == 200
