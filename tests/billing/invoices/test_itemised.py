"""Itemised usage (``GET /api/v1/invoices/{id}/usage.csv``): the invoice's billed contacts, read from the
tenant's cells at request time; rows per resolution equal the invoice's quantities, reopened contacts,
late updates, stale versions and month bounds in the tenant's zone included, over two cells."""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from billing.invoices.usage_rows import COLUMNS
from control_plane.database import ControlBase
from tests.billing.invoices.conftest import contact, ingest
from tests.conftest import contract_body

OCT = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
PLAIN = {"minimum_monthly_fee": None, "deflection_floor": None, "csat_target": None, "response_targets": [],
         "credits": {}, "total_credit_cap_percent": None}  # fmt: skip
TIERS = {
    "ai_resolved": {"tiers": [{"up_to": 3, "unit_price": "1.40"}, {"up_to": None, "unit_price": "0.90"}]},
    "human_resolved": {"unit_price": "5.20"},
}
_n = itertools.count()


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def version(external_id: str, opened: datetime, updated: datetime, resolution: str = "ai_resolved",
            resolved: datetime | None = None, **kw: Any) -> dict[str, Any]:  # fmt: skip
    """One version of a contact: ``resolved`` None with an open resolution drops resolved_at."""
    body = contact(external_id, opened=opened, resolution=resolution, updated_at=ts(updated), **kw)
    if resolution in ("ai_resolved", "human_resolved"):
        body["resolved_at"] = ts(resolved or opened + timedelta(minutes=4))
    else:
        body.pop("resolved_at", None)
        body.pop("csat", None)
    if resolution == "human_resolved":
        body["handoff_at"] = ts(opened + timedelta(minutes=1))
    return body


@pytest.fixture
async def two_cell_tenant(client, staff_headers, ingest_tenant):
    """DE contacts in the eu cell, CN contacts in the cn cell; a contract with AI tiers and no extras."""
    t = await ingest_tenant(markets=["DE", "CN"], residency={"DE": "eu"})
    body = contract_body() | PLAIN | TIERS
    resp = await client.put(f"/api/v1/tenants/{t.slug}/contract", json=body, headers=staff_headers)
    assert resp.status_code in (200, 201), resp.text
    return t


async def control_row_counts(dbs) -> dict[str, int]:
    async with dbs.control_session() as session:
        return {
            table.name: int(await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for table in ControlBase.metadata.sorted_tables
        }


def parse(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def invoice_quantities(invoice: dict) -> dict[str, int]:
    out: Counter[str] = Counter()
    for line in invoice["lines"]:
        if line["kind"] in ("ai_resolved", "human_resolved"):
            out[line["kind"]] += line["quantity"]
    return dict(out)


async def draft(client, staff_headers, slug: str) -> dict:
    resp = await client.post(f"/api/v1/tenants/{slug}/invoices?period=2026-10", headers=staff_headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def usage_csv(client, headers, invoice_id: str) -> list[dict[str, str]]:
    resp = await client.get(f"/api/v1/invoices/{invoice_id}/usage.csv", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith('attachment; filename="usage-')
    return parse(resp.text)


class TestRowsEqualTheInvoice:
    async def test_reopens_late_updates_and_zone_bounds_over_two_cells(
        self, client, staff_headers, two_cell_tenant, frozen, dbs
    ):
        t = two_cell_tenant
        t1 = OCT + timedelta(days=1)
        contacts = [
            version("ai-de-1", OCT, OCT + timedelta(minutes=4), market="DE"),
            version("ai-cn-1", OCT + timedelta(hours=1), OCT + timedelta(hours=2), market="CN"),
            version("hu-de-1", OCT + timedelta(hours=2), OCT + timedelta(hours=3), "human_resolved", market="DE"),
            version("hu-cn-1", OCT + timedelta(hours=3), OCT + timedelta(hours=4), "human_resolved", market="CN"),
            # 00:30 on Nov 1 in Berlin (23:30 UTC Oct 31): November's, not October's.
            version("edge-nov", datetime(2026, 10, 31, 23, 0, tzinfo=UTC), datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
                    resolved=datetime(2026, 10, 31, 23, 30, tzinfo=UTC), market="DE"),
            # 00:30 on Oct 1 in Berlin (22:30 UTC Sep 30): October's.
            version("edge-oct", datetime(2026, 9, 30, 22, 0, tzinfo=UTC), datetime(2026, 9, 30, 22, 30, tzinfo=UTC),
                    resolved=datetime(2026, 9, 30, 22, 30, tzinfo=UTC), market="CN"),
            version("reopened", OCT + timedelta(hours=5), OCT + timedelta(hours=6), market="DE"),
            version("moved", OCT + timedelta(hours=6), OCT + timedelta(hours=7), market="CN"),
            version("late", OCT + timedelta(hours=7), OCT + timedelta(hours=8), market="DE"),
            version("abandoned", OCT + timedelta(hours=8), OCT + timedelta(hours=9), "abandoned", market="DE"),
            version("ai-de-2", OCT + timedelta(hours=9), OCT + timedelta(hours=10), market="DE"),
            version("again", OCT + timedelta(hours=10), OCT + timedelta(hours=11), market="CN"),
        ]  # fmt: skip
        await ingest(client, t, contacts)
        # Reopened and still open; reopened and resolved again in November; a late update that makes
        # an AI resolution a human one; and a stale version of the latter (older updated_at), ignored.
        await ingest(client, t, [
            version("reopened", OCT + timedelta(hours=5), t1, "open", market="DE"),
            version("moved", OCT + timedelta(hours=6), datetime(2026, 11, 3, tzinfo=UTC),
                    resolved=datetime(2026, 11, 2, 12, tzinfo=UTC), market="CN"),
            version("late", OCT + timedelta(hours=7), datetime(2026, 11, 3, 12, tzinfo=UTC), "human_resolved",
                    resolved=OCT + timedelta(hours=7, minutes=30), market="DE"),
            # Reopened, then resolved again later in October: one contact, billed once, at its new time.
            version("again", OCT + timedelta(hours=10), OCT + timedelta(days=3), "human_resolved",
                    resolved=OCT + timedelta(days=2), market="CN"),
        ])  # fmt: skip
        await ingest(client, t, [version("late", OCT + timedelta(hours=7), OCT + timedelta(hours=7, minutes=10),
                                         market="DE")])  # fmt: skip
        invoice = await draft(client, staff_headers, t.slug)
        rows = await usage_csv(client, staff_headers, invoice["id"])

        per_resolution = Counter(r["resolution"] for r in rows)
        assert dict(per_resolution) == invoice_quantities(invoice) == {"ai_resolved": 4, "human_resolved": 4}
        assert sorted(r["external_id"] for r in rows) == sorted(
            ["ai-de-1", "ai-cn-1", "hu-de-1", "hu-cn-1", "edge-oct", "late", "ai-de-2", "again"]
        )
        again = next(r for r in rows if r["external_id"] == "again")
        assert again["resolution"] == "human_resolved" and again["resolved_at"] == "2026-10-16T11:00:00+02:00"
        assert {r["market"] for r in rows} == {"DE", "CN"}  # both cells
        # Resolved-at in the tenant's zone, in resolution order across the cells.
        assert rows[0]["external_id"] == "edge-oct" and rows[0]["resolved_at"] == "2026-10-01T00:30:00+02:00"
        assert [r["resolved_at"] for r in rows] == sorted(r["resolved_at"] for r in rows)
        # The charge each fell into: AI units 1-3 in tier 1, the 4th in tier 2; the lines' own words.
        ai = [r for r in rows if r["resolution"] == "ai_resolved"]
        descriptions = [line["description"] for line in invoice["lines"] if line["kind"] == "ai_resolved"]
        assert [r["charge"] for r in ai] == [descriptions[0]] * 3 + [descriptions[1]]
        assert [r["unit_price"] for r in ai] == ["1.40", "1.40", "1.40", "0.90"]
        assert {r["charge"] for r in rows if r["resolution"] == "human_resolved"} == {"Human-resolved contacts"}
        late = next(r for r in rows if r["external_id"] == "late")
        assert late["resolution"] == "human_resolved" and late["channel"] == "chat" and late["intent"] == "wismo"
        # No customer reference, and nothing of the contacts in the control database.
        assert "anna.schmidt" not in "".join(",".join(r.values()) for r in rows)
        assert "customer" not in ",".join(COLUMNS)
        # Nothing is written to the control database by a download: every table's rows are as before.
        before = await control_row_counts(dbs)
        await usage_csv(client, staff_headers, invoice["id"])
        assert await control_row_counts(dbs) == before

    async def test_a_late_contact_changes_both_after_a_redraft(self, client, staff_headers, two_cell_tenant, frozen):
        t = two_cell_tenant
        await ingest(client, t, [version(f"a{i}", OCT + timedelta(hours=i), OCT + timedelta(hours=i, minutes=5))
                                 for i in range(3)])  # fmt: skip
        invoice = await draft(client, staff_headers, t.slug)
        assert len(await usage_csv(client, staff_headers, invoice["id"])) == 3
        await ingest(client, t, [version("a9", OCT, OCT + timedelta(days=20), "human_resolved", market="CN")])
        invoice = await draft(client, staff_headers, t.slug)
        rows = await usage_csv(client, staff_headers, invoice["id"])
        assert dict(Counter(r["resolution"] for r in rows)) == invoice_quantities(invoice)
        assert invoice_quantities(invoice) == {"ai_resolved": 3, "human_resolved": 1}

    async def test_an_empty_month_is_a_header_only(self, client, staff_headers, two_cell_tenant, frozen):
        invoice = await draft(client, staff_headers, two_cell_tenant.slug)
        assert await usage_csv(client, staff_headers, invoice["id"]) == []


class TestAccess:
    async def test_merchant_reads_its_own_and_not_anothers(
        self, client, staff_headers, two_cell_tenant, make_tenant, issue_token, frozen
    ):
        t = two_cell_tenant
        await ingest(client, t, [version("x1", OCT, OCT + timedelta(minutes=5))])
        invoice = await draft(client, staff_headers, t.slug)
        own = await issue_token("merchant_viewer", t.slug)
        rows = await usage_csv(client, {"Authorization": f"Bearer {own}"}, invoice["id"])
        assert [r["external_id"] for r in rows] == ["x1"]
        other = await make_tenant()
        stranger = await issue_token("merchant_viewer", other["slug"])
        resp = await client.get(f"/api/v1/invoices/{invoice['id']}/usage.csv",
                                headers={"Authorization": f"Bearer {stranger}"})  # fmt: skip
        assert resp.status_code == 404
        resp = await client.get("/api/v1/invoices/not-a-uuid/usage.csv", headers=staff_headers)
        assert resp.status_code == 404

    async def test_an_api_key_needs_invoices_read(self, client, staff_headers, two_cell_tenant, frozen):
        t = two_cell_tenant
        invoice = await draft(client, staff_headers, t.slug)
        resp = await client.get(f"/api/v1/invoices/{invoice['id']}/usage.csv", headers=t.headers)
        assert resp.status_code == 403  # a contacts:write key
        key = await client.post(f"/api/v1/tenants/{t.slug}/api-keys", json={"scopes": ["invoices:read"]},
                                headers=staff_headers)  # fmt: skip
        assert key.status_code == 201, key.text
        rows = await usage_csv(client, {"Authorization": f"Bearer {key.json()['secret']}"}, invoice["id"])
        assert rows == []
