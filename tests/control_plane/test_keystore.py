"""The key ring and the session secret in the control database (``control_plane.keystore``), on fresh
databases of each backend: import of a single-host ``keyring.json``, creation by instances starting
together, a rotation reaching another instance's ring, and the master key that seals it all."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from control_plane.database import Databases
from control_plane.keyring import KeyRing, KeyRingError
from control_plane.keystore import load_keyring_sync, open_ring, open_ring_sync
from control_plane.migrate import upgrade_all
from control_plane.models import KeyRingKey, SealedSecret
from control_plane.service import rotate_keys
from tests.conftest import BACKENDS, build_settings, drop_databases


def master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


@pytest.fixture(params=BACKENDS)
def fresh(request, tmp_path, monkeypatch) -> Iterator:
    """Settings on empty, migrated databases (no key ring yet) and one master key."""
    monkeypatch.setenv("BPO_MASTER_KEY", master_key())
    monkeypatch.delenv("BPO_SESSION_SECRET", raising=False)
    settings, created = build_settings(request.param, tmp_path)
    try:
        upgrade_all(settings)
        yield settings
    finally:
        drop_databases(created)


class TestCreation:
    def test_a_keyring_json_is_imported_once_then_no_longer_read(self, fresh):
        legacy = KeyRing.generate()
        legacy.add_key()
        legacy.save(fresh.keyring_path)

        ring = load_keyring_sync(fresh)
        assert ring.keys == legacy.keys and ring.active == legacy.active
        KeyRing.generate().save(fresh.keyring_path)  # a later change to the file is ignored
        again = load_keyring_sync(fresh)
        assert again.keys == legacy.keys and again.active == legacy.active

    def test_instances_starting_together_share_one_ring_and_one_session_secret(self, fresh):
        with ThreadPoolExecutor(4) as pool:
            opened = list(pool.map(lambda _: open_ring_sync(fresh), range(4)))
        rings = {(w.ring.active, tuple(sorted(w.ring.keys.items()))) for w, _ in opened}
        assert len(rings) == 1
        assert len({secret for _, secret in opened}) == 1 and len(opened[0][1]) == 32

    def test_keys_and_the_session_secret_are_stored_sealed(self, fresh):
        watcher, secret = open_ring_sync(fresh)
        engine = sa.create_engine(fresh.database.control_url.replace("sqlite+aiosqlite", "sqlite"))
        try:
            with engine.connect() as conn:
                stored = dict(conn.execute(sa.select(KeyRingKey.kid, KeyRingKey.sealed)).all())
                sealed_secret = conn.scalar(sa.select(SealedSecret.sealed))
        finally:
            engine.dispose()
        assert set(stored) == set(watcher.ring.keys)
        for kid, sealed in stored.items():
            assert sealed.startswith("m1.")
            raw = watcher.ring.keys[kid]
            assert raw not in sealed.encode() and base64.urlsafe_b64encode(raw).rstrip(b"=").decode() not in sealed
        assert sealed_secret.startswith("m1.") and secret.hex() not in sealed_secret

    def test_another_master_key_cannot_open_the_ring(self, fresh, monkeypatch):
        load_keyring_sync(fresh)
        monkeypatch.setenv("BPO_MASTER_KEY", master_key())
        with pytest.raises(KeyRingError, match="BPO_MASTER_KEY"):
            load_keyring_sync(fresh)

    def test_without_a_master_key_a_development_key_file_is_made(self, fresh, monkeypatch):
        monkeypatch.delenv("BPO_MASTER_KEY")
        ring = load_keyring_sync(fresh)
        assert (fresh.data_dir / "master.key").exists()
        assert (fresh.data_dir / "master.key").stat().st_mode & 0o077 == 0
        assert load_keyring_sync(fresh).keys == ring.keys


class TestRotation:
    async def test_a_rotation_through_one_instance_reaches_another(self, fresh):
        one, two = Databases(fresh.database), Databases(fresh.database)
        try:
            first = await open_ring(fresh, one.control)
            second = await open_ring(fresh, two.control)
            old = first.ring.active
            assert not await second.refresh(two.control)  # nothing changed yet

            _, retired = await rotate_keys(fresh, first.ring)

            assert old in retired
            assert await second.refresh(two.control)
            assert second.ring.active == first.ring.active != old
            assert second.ring.keys == first.ring.keys and old not in second.ring.keys
            assert not await second.refresh(two.control)
        finally:
            await one.dispose()
            await two.dispose()

    async def test_a_secret_sealed_under_a_key_not_loaded_yet_reloads_the_ring_at_once(self, fresh):
        one, two = Databases(fresh.database), Databases(fresh.database)
        try:
            first = await open_ring(fresh, one.control)
            second = await open_ring(fresh, two.control)
            await rotate_keys(fresh, first.ring)
            sealed = first.ring.encrypt(b"webhook secret", "aad")  # under the new key, before second polls

            assert second.ring.decrypt(sealed, "aad") == b"webhook secret"  # reloaded there and then
            assert second.ring.active == first.ring.active
            assert not await second.refresh(two.control)  # the poll finds nothing new any more
            stray = sealed.replace(first.ring.active, "kdeadbeef", 1)
            with pytest.raises(KeyRingError, match="'kdeadbeef' is not in the key ring"):
                second.ring.decrypt(stray, "aad")
        finally:
            await one.dispose()
            await two.dispose()
