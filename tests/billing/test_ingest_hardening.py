"""Issue 14, ingest: no contact and no body turns a batch into a 5xx; each bad contact is named by index and field.

One test per reproducer of the issue, over HTTP against the real databases.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from billing.metering import rollups
from billing.metering.service import settle_rollups
from tests.billing.conftest import T0, cell_contacts, contact, ts
from tests.billing.test_service import HookedDatabases, rollups_of


def fields_of(rejection: dict) -> set[str]:
    return {e["field"] for e in rejection["errors"]}


async def post(client, t, batch):
    resp = await client.post(t.path(), json=batch, headers=t.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


class TestTimestampsOutOfRange:
    @pytest.mark.parametrize(
        "value",
        ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z"],
    )
    async def test_an_implausible_opened_at_is_rejected_and_the_rest_of_the_batch_kept(
        self, client, dbs, ingest_tenant, value
    ):
        t = await ingest_tenant()
        body = await post(client, t, [contact("ok-1"), contact("bad", opened_at=value), contact("ok-2")])
        assert body["accepted"] == 2
        (rejected,) = body["rejected"]
        assert rejected["index"] == 1 and rejected["external_id"] == "bad"
        assert "opened_at" in fields_of(rejected)
        message = next(e["message"] for e in rejected["errors"] if e["field"] == "opened_at")
        assert "2000-01-01" in message or "one day" in message
        assert sorted((await cell_contacts(dbs, t.id))["eu"]) == ["ok-1", "ok-2"]

    @pytest.mark.parametrize("name", ["first_response_at", "handoff_at", "resolved_at", "updated_at"])
    async def test_every_timestamp_more_than_a_day_ahead_is_named(self, client, ingest_tenant, name):
        t = await ingest_tenant()
        ahead = ts(datetime.now(UTC) + timedelta(days=1, hours=1))
        extra = {"resolution": "human_resolved"} if name == "handoff_at" else {}
        body = await post(client, t, [contact("x", **extra, **{name: ahead})])
        assert body["accepted"] == 0
        (rejected,) = body["rejected"]
        assert name in fields_of(rejected), rejected
        assert any("one day" in e["message"] for e in rejected["errors"] if e["field"] == name)

    async def test_a_contact_opened_an_hour_from_now_is_still_accepted(self, client, ingest_tenant):
        t = await ingest_tenant()
        soon = datetime.now(UTC) + timedelta(hours=1)
        body = await post(client, t, [contact("soon", opened=soon)])
        assert (body["accepted"], body["rejected"]) == (1, [])

    async def test_updated_at_before_opened_at_is_rejected(self, client, ingest_tenant):
        t = await ingest_tenant()
        body = await post(client, t, [contact("early", updated_at=ts(T0 - timedelta(seconds=1)))])
        assert body["rejected"] == [
            {
                "index": 0,
                "external_id": "early",
                "errors": [{"field": "updated_at", "message": "must not be before opened_at"}],
            }
        ]


class TestControlCharacters:
    @pytest.mark.parametrize("char", ["\x00", "\x1f", "\n", "\x7f", "\x85"])
    async def test_control_characters_in_identifiers_are_rejected(self, client, dbs, ingest_tenant, char):
        t = await ingest_tenant()
        batch = [contact(f"a{char}b"), contact("clean", customer_ref=f"anna{char}@example.de"), contact("fine")]
        body = await post(client, t, batch)
        assert body["accepted"] == 1
        assert [(r["index"], fields_of(r)) for r in body["rejected"]] == [(0, {"external_id"}), (1, {"customer_ref"})]
        assert all("control character" in e["message"] for r in body["rejected"] for e in r["errors"])
        assert body["rejected"][0]["external_id"] is None  # a bad identifier is not echoed
        assert list((await cell_contacts(dbs, t.id))["eu"]) == ["fine"]


class TestConflictingVersions:
    async def test_same_updated_at_with_other_content_in_one_batch_is_a_conflict(self, client, dbs, ingest_tenant):
        t = await ingest_tenant()
        batch = [contact("v", csat=5), contact("v", csat=2), contact("v", csat=5)]
        body = await post(client, t, batch)
        assert (body["accepted"], body["updated"], body["duplicates"]) == (1, 0, 1)
        (rejected,) = body["rejected"]
        assert rejected["index"] == 1 and rejected["external_id"] == "v"
        (error,) = rejected["errors"]
        assert error["field"] == "updated_at" and error["code"] == "conflicting_version"
        assert (await cell_contacts(dbs, t.id))["eu"]["v"].csat == 5

    async def test_same_updated_at_with_other_content_than_stored_is_a_conflict(self, client, dbs, ingest_tenant):
        t = await ingest_tenant()
        assert (await post(client, t, [contact("s"), contact("same")]))["accepted"] == 2
        body = await post(client, t, [contact("s", intent="refund"), contact("same"), contact("new")])
        assert (body["accepted"], body["updated"], body["duplicates"]) == (1, 0, 1)
        (rejected,) = body["rejected"]
        assert rejected["index"] == 0 and rejected["errors"][0]["code"] == "conflicting_version"
        stored = (await cell_contacts(dbs, t.id))["eu"]
        assert stored["s"].intent == "wismo" and sorted(stored) == ["new", "s", "same"]
        # a later version of the same contact is an ordinary update
        later = ts(T0 + timedelta(hours=1))
        body = await post(client, t, [contact("s", intent="refund", updated_at=later)])
        assert (body["updated"], body["rejected"]) == (1, [])

    async def test_another_customer_ref_is_other_content_and_its_spelling_is_not(self, client, ingest_tenant):
        t = await ingest_tenant()
        await post(client, t, [contact("r", customer_ref="Anna@Example.de")])
        same = await post(client, t, [contact("r", customer_ref=" anna@example.de ")])
        assert (same["duplicates"], same["rejected"]) == (1, [])
        other = await post(client, t, [contact("r", customer_ref="bob@example.de")])
        assert other["rejected"][0]["errors"][0]["code"] == "conflicting_version"


class TestBodies:
    async def test_text_plain_or_no_content_type_is_415(self, client, ingest_tenant):
        t = await ingest_tenant()
        raw = json.dumps([contact("ct")]).encode()
        for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
            resp = await client.post(t.path(), content=raw, headers=t.headers | headers)
            assert resp.status_code == 415, (headers, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["code"] == "unsupported_media_type" and "application/json" in resp.json()["detail"]
        ok = await client.post(
            t.path(), content=raw, headers=t.headers | {"Content-Type": "application/json; charset=UTF-8"}
        )
        assert ok.status_code == 200 and ok.json()["accepted"] == 1

    async def test_a_content_encoding_is_415(self, client, ingest_tenant):
        t = await ingest_tenant()
        raw = json.dumps([contact("enc")]).encode()
        for body, encoding in ((raw, "gzip"), (gzip.compress(raw), "gzip"), (raw, "br"), (raw, "identity, gzip")):
            headers = t.headers | {"Content-Type": "application/json", "Content-Encoding": encoding}
            resp = await client.post(t.path(), content=body, headers=headers)
            assert resp.status_code == 415, (encoding, resp.text)
            assert resp.json()["code"] == "unsupported_content_encoding"
            assert resp.headers["accept-encoding"] == "identity"
        identity = await client.post(
            t.path(),
            content=raw,
            headers=t.headers | {"Content-Type": "application/json", "Content-Encoding": "identity"},
        )
        assert identity.status_code == 200 and identity.json()["accepted"] == 1

    @pytest.mark.parametrize(
        "raw",
        [b"[" * 5000 + b"]" * 5000, b'{"contacts": ' + b"[" * 5000 + b"]" * 5000 + b"}", b"[\xff\xfe]", b"[NaN]"],
    )
    async def test_malformed_json_is_400(self, client, ingest_tenant, raw):
        t = await ingest_tenant()
        resp = await client.post(t.path(), content=raw, headers=t.headers | {"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "malformed_json"

    @pytest.mark.parametrize("field", ["channel", "intent", "resolution", "market", "language", "opened_at", "csat"])
    async def test_a_field_of_the_wrong_json_type_is_named(self, client, ingest_tenant, field):
        t = await ingest_tenant()
        for value in ([1], {"a": 1}, 1e308, -(2**63), True):
            body = await post(client, t, [contact("w", **{field: value})])
            assert body["accepted"] == 0 and field in fields_of(body["rejected"][0]), (value, body)


class BrokenDatabases(HookedDatabases):
    """Test double of the cell sessions: a fault of ours (not of the database, not of the client)
    right before the contacts are written, every time."""

    async def before_contacts_write(self) -> None:
        raise ZeroDivisionError("injected: a bug in the write path")


class TestFaultsAnswer:
    async def test_a_fault_that_retrying_cannot_help_is_500_without_advice_to_retry(
        self, client, app, dbs, ingest_tenant
    ):
        t = await ingest_tenant()
        real = app.state.db
        app.state.db = BrokenDatabases(dbs)
        try:
            resp = await client.post(t.path(), json=[contact("b1")], headers=t.headers)
        finally:
            app.state.db = real
        assert resp.status_code == 500 and resp.json()["code"] == "internal_error", resp.text
        assert "retry" not in resp.json() and "retry-after" not in resp.headers
        assert (await cell_contacts(dbs, t.id))["eu"] == {}

    async def test_rollups_equal_a_recount_after_refused_conflicts(self, client, dbs, ingest_tenant):
        t = await ingest_tenant()
        first = [contact("k1", csat=5), contact("k2", resolution="open", resolved_at=None, csat=None)]
        await post(client, t, first)
        later = ts(T0 + timedelta(hours=2))
        batch = [
            contact("k1", csat=1),  # conflicts with the stored version
            contact("k1", csat=3, updated_at=later),  # a later version: an update
            contact("k2", resolved_at=ts(T0 + timedelta(minutes=1))),  # conflicts: resolved now, same version
            contact("k3"),
        ]
        body = await post(client, t, batch)
        assert [r["index"] for r in body["rejected"]] == [0, 2]
        assert (body["accepted"], body["updated"]) == (1, 1)
        await settle_rollups(dbs, tenant_id=t.id)
        stored = await rollups_of(dbs, t.id)
        assert stored == await rollups.recount(dbs, t.id, t.timezone)
        k2 = (await cell_contacts(dbs, t.id))["eu"]["k2"]
        assert (k2.resolution, k2.first_resolved_at, k2.reopens) == ("open", None, 0)
