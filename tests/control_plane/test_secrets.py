"""Secrets never leave the database in clear, and key rotation re-seals every one of them."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa

from control_plane.keyring import KeyRing
from control_plane.keystore import load_keyring_sync
from control_plane.service import rotate_keys
from tenants import service as tenants
from tenants.models import Integration, Tenant


def _database_bytes(settings) -> bytes:
    """Every byte of the SQLite control database, WAL included."""
    path = Path(sa.engine.make_url(settings.database.control_url).database)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def _dump_integrations(dbs) -> str:
    async with dbs.control.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM integrations"))).all()
    return repr(rows)


class TestSecretsStayHidden:
    async def test_no_secret_in_responses_pages_logs_or_storage(
        self, app, client, staff_headers, make_tenant, dbs, settings, backend, capsys
    ):
        marker = f"SECRET-{uuid.uuid4().hex}"
        hook = f"HOOK-{uuid.uuid4().hex}"
        t = await make_tenant(onboard=True)
        slug = t["slug"]
        created = await client.post(
            f"/api/v1/tenants/{slug}/integrations",
            json={
                "kind": "shopify",
                "processing_region": "eu",
                "credentials": {"access_token": marker},
                "webhook_secret": hook,
            },
            headers=staff_headers,
        )
        assert created.status_code == 201
        key = (
            await client.post(
                f"/api/v1/tenants/{slug}/api-keys", json={"scopes": ["contacts:write"]}, headers=staff_headers
            )
        ).json()
        secrets = [marker, hook, key["secret"]]
        assert key["secret"] in created.text + key["secret"]  # the one time it is shown

        seen = [created.text]
        for path in ("", "/integrations", "/api-keys", "/audit", "/contract", "/residency"):
            resp = await client.get(f"/api/v1/tenants/{slug}{path}", headers=staff_headers)
            assert resp.status_code == 200
            seen.append(resp.text)
        await client.get("/login")
        page = await client.get(f"/tenants/{slug}", headers=staff_headers)
        assert page.status_code == 200 and "credentials set" in page.text
        seen.append(page.text)
        seen.append(capsys.readouterr().out)
        for text in seen:
            for secret in secrets:
                assert secret not in text

        stored = await _dump_integrations(dbs)
        assert marker not in stored and hook not in stored
        assert f"v1.{app.state.keyring.active}." in stored
        if backend == "sqlite":
            raw = _database_bytes(settings)
            for secret in secrets:
                assert secret.encode() not in raw

    async def test_ciphertext_is_bound_to_its_row(self, keyring):
        sealed = keyring.encrypt(b"token", "integration:1:credentials")
        assert keyring.decrypt(sealed, "integration:1:credentials") == b"token"
        try:
            keyring.decrypt(sealed, "integration:2:credentials")
        except Exception as exc:
            assert type(exc).__name__ == "InvalidTag"
        else:
            raise AssertionError("a ciphertext moved to another row must not decrypt")


class TestKeyRotation:
    async def test_rotate_reencrypts_everything_and_the_old_key_can_go(
        self, app, client, staff_headers, make_tenant, dbs, settings
    ):
        marker = f"ROTATE-{uuid.uuid4().hex}"
        t = await make_tenant()
        await client.post(
            f"/api/v1/tenants/{t['slug']}/integrations",
            json={
                "kind": "shopify",
                "processing_region": "eu",
                "credentials": {"token": marker},
                "webhook_secret": "w" * 20,
            },
            headers=staff_headers,
        )
        ring: KeyRing = app.state.keyring
        old = ring.active

        changed, retired = await rotate_keys(settings, ring)

        assert ring.active != old and old in retired and old not in ring.keys
        assert changed >= 3
        on_disk = load_keyring_sync(settings)
        assert on_disk.active == ring.active and old not in on_disk.keys
        async with dbs.control_session() as session:
            integ = await session.scalar(
                sa.select(Integration).join(Tenant, Tenant.id == Integration.tenant_id).where(Tenant.slug == t["slug"])
            )
            tenant = await session.scalar(sa.select(Tenant).where(Tenant.slug == t["slug"]))
            assert KeyRing.key_id_of(integ.credentials) == ring.active
            assert tenants.integration_credentials(integ, on_disk) == {"token": marker}
            assert tenants.integration_webhook_secret(integ, on_disk) == "w" * 20
            assert len(tenants.customer_hash_key(tenant, on_disk)) == 32
            assert await tenants.key_ids_in_use(session) == {ring.active}


async def test_rotation_reseals_totp_secrets_so_the_old_key_can_go(app, dbs, settings):
    """A user's second factor survives ``bpoctl keys rotate``: sealed again, never stranded on a dropped key."""
    import pyotp

    from control_plane.identity import set_totp_secret, totp_aad
    from control_plane.models import User
    from tests.control_plane.test_identity import new_user

    ring: KeyRing = app.state.keyring
    address = await new_user(dbs)
    secret = pyotp.random_base32()
    async with dbs.control_transaction() as session:
        user = await session.scalar(sa.select(User).where(User.email == address))
        await set_totp_secret(session, ring, user, secret)
    old = ring.active
    await rotate_keys(settings, ring)
    assert old not in ring.keys
    async with dbs.control_session() as session:
        user = await session.scalar(sa.select(User).where(User.email == address))
        assert KeyRing.key_id_of(user.totp_secret) == ring.active
        assert ring.decrypt(user.totp_secret, totp_aad(user.id)).decode() == secret
