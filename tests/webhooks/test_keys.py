"""Key rotation re-seals webhook endpoint secrets (SLA alert endpoints included), and the old key-ring
key goes once nothing uses it."""

from __future__ import annotations

import uuid

from control_plane.keyring import KeyRing
from control_plane.keystore import load_keyring_sync
from control_plane.service import rotate_keys
from webhooks import service
from webhooks.models import WebhookEndpoint

HOOK = {"url": "https://hooks.example.com/sla", "events": ["sla.at_risk", "sla.breached"]}


class TestKeyRotation:
    async def test_rotation_reseals_the_endpoint_secret_and_keeps_it_readable(
        self, app, client, staff_headers, make_tenant, dbs, settings
    ):
        t = await make_tenant()
        resp = await client.post(f"/api/v1/tenants/{t['slug']}/webhook-endpoints", json=HOOK, headers=staff_headers)
        assert resp.status_code == 201, resp.text
        secret, endpoint_id = resp.json()["secret"], uuid.UUID(resp.json()["id"])
        ring: KeyRing = app.state.keyring
        old = ring.active
        async with dbs.control_session() as session:
            assert old in await service.endpoint_key_ids_in_use(session)

        changed, retired = await rotate_keys(settings, ring)

        assert ring.active != old and old in retired and changed >= 1
        on_disk = load_keyring_sync(settings)
        async with dbs.control_session() as session:
            row = await session.get_one(WebhookEndpoint, endpoint_id)
            assert KeyRing.key_id_of(row.secret) == ring.active
            assert service.endpoint_secret(row, on_disk) == secret
            assert await service.endpoint_key_ids_in_use(session) <= {ring.active}

    async def test_kept_old_keys_stay_in_use_only_while_a_secret_needs_them(
        self, app, client, staff_headers, make_tenant, dbs
    ):
        t = await make_tenant()
        resp = await client.post(f"/api/v1/tenants/{t['slug']}/webhook-endpoints", json=HOOK, headers=staff_headers)
        assert resp.status_code == 201, resp.text
        ring: KeyRing = app.state.keyring
        before = ring.active
        ring.add_key()
        async with dbs.control_transaction() as session:
            assert before in await service.endpoint_key_ids_in_use(session)
            assert await service.reseal_endpoint_secrets(session, ring) >= 1
            assert await service.reseal_endpoint_secrets(session, ring) == 0  # already under the active key
            assert await service.endpoint_key_ids_in_use(session) == {ring.active}
