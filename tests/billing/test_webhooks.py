"""Helpdesk webhooks: signatures and replays refused before anything is stored; stored by delivery id."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing.metering.models import WebhookEvent
from billing.metering.webhooks.signatures import sign_generic, sign_gorgias, sign_zendesk
from tests.billing.conftest import cell_contacts, contact

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whk-test-secret-1"


async def events_of(dbs, integration_id: str) -> list[WebhookEvent]:
    async with dbs.cell_session("eu") as cell:
        stmt = sa.select(WebhookEvent).where(WebhookEvent.integration_id == uuid.UUID(integration_id))
        return list((await cell.scalars(stmt)).all())


@pytest.fixture
async def helpdesk(client, staff_headers, ingest_tenant):
    async def make(kind: str):
        t = await ingest_tenant()
        resp = await client.post(
            f"/api/v1/tenants/{t.slug}/integrations",
            json={"kind": kind, "processing_region": "eu", "credentials": {"token": "x"}, "webhook_secret": SECRET},
            headers=staff_headers,
        )
        assert resp.status_code == 201, resp.text
        return t, resp.json()["id"]

    return make


def zendesk_headers(body: bytes, stamp: str | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = stamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": sign_zendesk(body, secret, stamp),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }


class TestZendesk:
    async def test_a_signed_ticket_event_becomes_a_contact_once(self, client, dbs, helpdesk):
        t, integration = await helpdesk("zendesk")
        body = (FIXTURES / "zendesk_ticket_solved.json").read_bytes()
        path = f"/api/v1/webhooks/zendesk/{integration}"
        resp = await client.post(path, content=body, headers=zendesk_headers(body))
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "mapped" and resp.json()["result"]["accepted"] == 1
        stored = (await cell_contacts(dbs, t.id))["eu"]["zendesk:5158"]
        assert (stored.resolution, stored.intent, stored.channel, stored.language) == (
            "ai_resolved",
            "wismo",
            "email",
            "de",
        )
        assert stored.customer_hash and stored.customer_hash != "8447388090494"
        again = await client.post(path, content=body, headers=zendesk_headers(body))
        assert again.json() == {"status": "duplicate", "delivery_id": "cbe4028c-7239-495d-b020-f22348516046"}
        (event,) = await events_of(dbs, integration)
        assert event.status == "mapped"
        assert "subject" not in event.payload["detail"] and "description" not in event.payload["detail"]
        assert event.payload["detail"]["requester_id"] != "8447388090494"

    async def test_bad_signature_and_stale_timestamp_are_401_and_store_nothing(self, client, dbs, helpdesk):
        _, integration = await helpdesk("zendesk")
        body = (FIXTURES / "zendesk_ticket_solved.json").read_bytes()
        path = f"/api/v1/webhooks/zendesk/{integration}"
        forged = await client.post(path, content=body, headers=zendesk_headers(body, secret="guess"))
        assert forged.status_code == 401 and "does not match" in forged.json()["detail"]
        old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stale = await client.post(path, content=body, headers=zendesk_headers(body, stamp=old))
        assert stale.status_code == 401 and "replay" in stale.json()["detail"]
        tampered = await client.post(path, content=body.replace(b"SOLVED", b"OPEN"), headers=zendesk_headers(body))
        assert tampered.status_code == 401
        unsigned = await client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401
        assert await events_of(dbs, integration) == []

    async def test_wrong_receiver_for_the_integration_is_404(self, client, helpdesk):
        _, integration = await helpdesk("zendesk")
        body = (FIXTURES / "gorgias_ticket_closed.json").read_bytes()
        resp = await client.post(f"/api/v1/webhooks/gorgias/{integration}", content=body)
        assert resp.status_code == 404


class TestGorgias:
    async def test_a_closed_ticket_handed_over_is_human_resolved(self, client, dbs, helpdesk):
        t, integration = await helpdesk("gorgias")
        body = (FIXTURES / "gorgias_ticket_closed.json").read_bytes()
        stamp = str(int(time.time()))
        headers = {"X-Gorgias-Timestamp": stamp, "X-Gorgias-Signature": sign_gorgias(body, SECRET, stamp)}
        resp = await client.post(f"/api/v1/webhooks/gorgias/{integration}", content=body, headers=headers)
        assert resp.status_code == 200 and resp.json()["status"] == "mapped", resp.text
        stored = (await cell_contacts(dbs, t.id))["eu"]["gorgias:7730241"]
        assert (stored.resolution, stored.intent, stored.market, stored.csat) == (
            "human_resolved",
            "damaged_item",
            "FR",
            4,
        )
        assert stored.first_response_at == datetime(2026, 10, 14, 10, 0, 40, tzinfo=UTC)
        (event,) = await events_of(dbs, integration)
        assert "camille" not in json.dumps(event.payload).lower()
        again = await client.post(f"/api/v1/webhooks/gorgias/{integration}", content=body, headers=headers)
        assert again.json()["status"] == "duplicate"


class TestGeneric:
    async def test_standard_webhooks_signature(self, client, dbs, helpdesk):
        t, integration = await helpdesk("zendesk")
        body = json.dumps({"type": "contact.upserted", "contact": contact("g1")}).encode()
        stamp, msg_id = str(int(time.time())), "msg_2k1"
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": sign_generic(msg_id, stamp, body, SECRET),
        }
        path = f"/api/v1/webhooks/generic/{integration}"
        ok = await client.post(path, content=body, headers=headers)
        assert ok.json()["status"] == "mapped"
        assert "g1" in (await cell_contacts(dbs, t.id))["eu"]
        replay = await client.post(path, content=body, headers=headers)
        assert replay.json()["status"] == "duplicate"
        stale = str(int(time.time()) - 3600)
        old = headers | {
            "webhook-id": "msg_2",
            "webhook-timestamp": stale,
            "webhook-signature": sign_generic("msg_2", stale, body, SECRET),
        }
        assert (await client.post(path, content=body, headers=old)).status_code == 401
        assert len(await events_of(dbs, integration)) == 1


class TestTimestampHeadersOutOfRange:
    """Issue 14: any timestamp header, signed or not, is a 401 problem JSON, never a 500."""

    async def _refused(self, client, dbs, path, integration, body, headers, reason):
        resp = await client.post(path, content=body, headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == "bad_signature" and reason in resp.json()["detail"].lower(), resp.json()
        assert await events_of(dbs, integration) == []

    @pytest.mark.parametrize("stamp", ["99999999999999", "-99999999999999", "9" * 400, "²", "1e9", " "])
    async def test_generic_and_gorgias_unix_timestamps(self, client, dbs, helpdesk, stamp):
        _, integration = await helpdesk("gorgias")
        body = (FIXTURES / "gorgias_ticket_closed.json").read_bytes()
        gorgias = f"/api/v1/webhooks/gorgias/{integration}"
        raw = stamp.encode("latin-1")  # sent as the bytes a client would put on the wire
        unsigned = {"X-Gorgias-Timestamp": raw, "X-Gorgias-Signature": "sha256=00"}
        await self._refused(client, dbs, gorgias, integration, body, unsigned, "does not match")
        if not stamp.isascii():  # signed over other bytes than were sent: refused as unsigned above
            return
        signed = {"X-Gorgias-Timestamp": raw, "X-Gorgias-Signature": sign_gorgias(body, SECRET, stamp)}
        await self._refused(client, dbs, gorgias, integration, body, signed, "timestamp")

        generic = f"/api/v1/webhooks/generic/{integration}"
        headers = {"webhook-id": "msg_x", "webhook-timestamp": raw, "webhook-signature": "v1,AAAA"}
        await self._refused(client, dbs, generic, integration, body, headers, "matches")
        headers["webhook-signature"] = sign_generic("msg_x", stamp, body, SECRET)
        await self._refused(client, dbs, generic, integration, body, headers, "timestamp")

    @pytest.mark.parametrize(
        "stamp",
        ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z", "soon", "2026-10-14"],
    )
    async def test_zendesk_rfc3339_timestamps(self, client, dbs, helpdesk, stamp):
        _, integration = await helpdesk("zendesk")
        body = (FIXTURES / "zendesk_ticket_solved.json").read_bytes()
        path = f"/api/v1/webhooks/zendesk/{integration}"
        forged = zendesk_headers(body, stamp=stamp, secret="guess")
        await self._refused(client, dbs, path, integration, body, forged, "does not match")
        await self._refused(client, dbs, path, integration, body, zendesk_headers(body, stamp=stamp), "timestamp")

    async def test_a_signature_header_outside_ascii_is_401(self, client, dbs, helpdesk):
        _, integration = await helpdesk("gorgias")
        body = (FIXTURES / "gorgias_ticket_closed.json").read_bytes()
        stamp = str(int(time.time()))
        headers = {"X-Gorgias-Timestamp": stamp, "X-Gorgias-Signature": "sha256=\xe9t\xe9".encode("latin-1")}
        path = f"/api/v1/webhooks/gorgias/{integration}"
        await self._refused(client, dbs, path, integration, body, headers, "does not match")


class TestSignedButOddBodies:
    """A correctly signed delivery with an odd body is a 4xx or a failed event, never a 500."""

    def _signed(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {"X-Gorgias-Timestamp": stamp, "X-Gorgias-Signature": sign_gorgias(body, SECRET, stamp)}

    @pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"ticket": {"id": "\\ud800"}}', b"\xff{}"])
    async def test_malformed_json_is_400(self, client, dbs, helpdesk, body):
        _, integration = await helpdesk("gorgias")
        resp = await client.post(f"/api/v1/webhooks/gorgias/{integration}", content=body, headers=self._signed(body))
        assert resp.status_code == 400 and resp.json()["code"] == "malformed_json", resp.text
        assert await events_of(dbs, integration) == []

    async def test_a_delivery_id_with_control_characters_is_422(self, client, dbs, helpdesk):
        _, integration = await helpdesk("gorgias")
        body = json.dumps({"ticket": {"id": "7\u00001", "updated_datetime": "2026-10-14T10:00:00Z"}}).encode()
        resp = await client.post(f"/api/v1/webhooks/gorgias/{integration}", content=body, headers=self._signed(body))
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["field"] == "id"

    async def test_fields_of_unexpected_types_make_a_failed_event(self, client, dbs, helpdesk):
        _, integration = await helpdesk("gorgias")
        ticket = {"id": 9, "updated_datetime": "2026-10-14T10:00:00Z", "tags": 5, "customer": "someone"}
        body = json.dumps({"ticket": ticket}).encode()
        resp = await client.post(f"/api/v1/webhooks/gorgias/{integration}", content=body, headers=self._signed(body))
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "failed" and "expected shape" in resp.json()["error"]
        (event,) = await events_of(dbs, integration)
        assert event.status == "failed"
