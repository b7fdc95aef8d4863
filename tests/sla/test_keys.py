"""Key rotation re-seals the SLA alert webhook secret, and the old key-ring key goes once nothing uses it."""

from __future__ import annotations

import sqlalchemy as sa

from control_plane.keyring import KeyRing
from control_plane.service import rotate_keys
from sla import configuration
from sla.models import AlertWebhook


class TestKeyRotation:
    async def test_rotation_reseals_the_webhook_secret_and_keeps_it_readable(
        self, app, client, staff_headers, sla_tenant, dbs, settings
    ):
        t = await sla_tenant()
        secret = "whsec_" + "s" * 30
        resp = await client.put(
            f"/api/v1/tenants/{t.slug}/sla/webhook",
            json={"url": "https://hooks.example.com/sla", "secret": secret},
            headers=staff_headers,
        )
        assert resp.status_code == 200, resp.text
        ring: KeyRing = app.state.keyring
        old = ring.active
        async with dbs.control_session() as session:
            assert old in await configuration.webhook_key_ids_in_use(session)

        changed, retired = await rotate_keys(settings, ring)

        assert ring.active != old and old in retired and changed >= 1
        on_disk = KeyRing.from_json(settings.keyring_path.read_text())
        async with dbs.control_session() as session:
            row = await session.scalar(sa.select(AlertWebhook).where(AlertWebhook.tenant_id == t.id))
            assert KeyRing.key_id_of(row.secret) == ring.active
            assert configuration.alert_webhook_secret(row, on_disk) == secret
            assert await configuration.webhook_key_ids_in_use(session) <= {ring.active}

    async def test_kept_old_keys_stay_in_use_only_while_a_secret_needs_them(
        self, app, client, staff_headers, sla_tenant, dbs
    ):
        t = await sla_tenant()
        resp = await client.put(
            f"/api/v1/tenants/{t.slug}/sla/webhook", json={"url": "https://hooks.example.com/a"}, headers=staff_headers
        )
        assert resp.status_code == 200, resp.text
        ring: KeyRing = app.state.keyring
        before = ring.active
        ring.add_key()
        async with dbs.control_transaction() as session:
            assert before in await configuration.webhook_key_ids_in_use(session)
            assert await configuration.reseal_webhook_secrets(session, ring) >= 1
            assert await configuration.reseal_webhook_secrets(session, ring) == 0  # already under the active key
            assert await configuration.webhook_key_ids_in_use(session) == {ring.active}
