"""The SLA/usage figures cache across instances (issue 17): two apps on one database, each with its own
engines. The cache key carries the tenant's rollup marker (``billing.metering.counts.rollup_marker``,
read from the control database on every report), so a delta applied through one instance changes the
key every other instance computes: its next report shows the new contacts, not its cached figures."""

from __future__ import annotations

from datetime import timedelta

from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.database import Databases
from tests.faults.harness import T0, ts


def contacts(prefix: str, n: int, resolution: str = "ai_resolved") -> list[dict]:
    rows = []
    for i in range(n):
        opened = T0 + timedelta(hours=i)
        row = {
            "external_id": f"{prefix}{i}",
            "channel": "chat",
            "language": "de",
            "market": "DE",
            "intent": "wismo",
            "opened_at": ts(opened),
            "resolved_at": ts(opened + timedelta(minutes=4)),
            "resolution": resolution,
            "updated_at": ts(opened + timedelta(minutes=5)),
        }
        if resolution == "human_resolved":
            row["handoff_at"] = ts(opened + timedelta(minutes=2))
        rows.append(row)
    return rows


async def test_a_rollup_applied_through_one_instance_shows_in_the_others_next_report(
    settings, client, make_tenant, staff_headers
):
    slug = (await make_tenant(onboard=True))["slug"]
    made = await client.post(
        f"/api/v1/tenants/{slug}/api-keys", json={"scopes": ["contacts:write"]}, headers=staff_headers
    )
    key = {"Authorization": f"Bearer {made.json()['secret']}"}
    other_db = Databases(settings.database)  # the second instance: its own engines on the same databases
    try:
        async with AsyncTestClient(app=create_app(settings, db=other_db)) as other:

            async def resolved_seen_by_the_other() -> int:
                resp = await other.get(
                    f"/api/v1/tenants/{slug}/sla", params={"period": "2026-10"}, headers=staff_headers
                )
                assert resp.status_code == 200, resp.text
                return resp.json()["metrics"]["contacts_resolved"]

            first = await client.post(f"/api/v1/tenants/{slug}/contacts", json=contacts("a", 4), headers=key)
            assert first.json()["accepted"] == 4
            assert await resolved_seen_by_the_other() == 4
            assert await resolved_seen_by_the_other() == 4  # now in the cache

            more = contacts("b", 3, "human_resolved")
            assert (await client.post(f"/api/v1/tenants/{slug}/contacts", json=more, headers=key)).json()[
                "accepted"
            ] == 3
            # Applied by the first instance (its rollup applier after the answer, or settled before the read).
            assert await resolved_seen_by_the_other() == 7
    finally:
        await other_db.dispose()
