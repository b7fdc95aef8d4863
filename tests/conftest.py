"""Test fixtures: real databases (SQLite always, PostgreSQL when BPO_TEST_POSTGRES_URL is set).

Each backend is migrated once per session through Alembic (the same path as production, so the
audit triggers exist); tests isolate themselves by creating their own tenants with unique slugs.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from control_plane.auth import Principal
from control_plane.database import Databases
from control_plane.migrate import upgrade_all
from control_plane.settings import Settings, load_settings

PG_URL = os.environ.get("BPO_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
REGIONS = ["eu", "us", "sg", "cn"]
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def _pg_admin_dsn() -> str:
    return sa.engine.make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_url(name: str) -> str:
    return sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


def build_settings(backend: str, tmp: Path) -> tuple[Settings, list[str]]:
    """Settings for one backend; PostgreSQL gets fresh databases named after this run."""
    # The fake webhook receivers listen on loopback: the outbound-address rule is lifted (and tested
    # on its own with settings that keep it).
    # Rollups are applied after each answer at once (BPO_ROLLUP_INTERVAL 0): a test client waits for an
    # answer's background work, so the product's interval would make every quick series of batches wait
    # (the interval has its own test, tests/billing/test_service.py).
    env: dict[str, str] = {"BPO_DATA_DIR": str(tmp), "BPO_ALLOW_PRIVATE_WEBHOOKS": "1", "BPO_ROLLUP_INTERVAL": "0"}
    created: list[str] = []
    if backend == "postgres":
        stem = f"bpo_t_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            for name in ["control", *REGIONS]:
                conn.execute(f'CREATE DATABASE "{stem}_{name}"')
                created.append(f"{stem}_{name}")
        env["BPO_DATABASE_URL"] = _pg_url(f"{stem}_control")
        env["BPO_CELL_URLS"] = ",".join(f"{r}={_pg_url(f'{stem}_{r}')}" for r in REGIONS)
    return load_settings(env), created


def drop_databases(names: list[str]) -> None:
    if not names:
        return
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    backend = request.param
    settings, created = build_settings(backend, tmp_path_factory.mktemp(f"data-{backend}"))
    upgrade_all(settings)
    try:
        yield replace(settings, extra={"backend": backend})
    finally:
        drop_databases(created)


@pytest.fixture(scope="session")
def backend(settings: Settings) -> str:
    return settings.extra["backend"]


@pytest.fixture(scope="session")
async def dbs(settings: Settings) -> AsyncIterator[Databases]:
    databases = Databases(settings.database)
    yield databases
    await databases.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings, dbs: Databases):
    from control_plane.app import create_app

    return create_app(settings, db=dbs)


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app) as c:
        yield c


@pytest.fixture
def keyring(app):
    return app.state.keyring


STAFF = Principal("user", "am@bpo.test", "account_manager")


def unique_slug(stem: str = "t") -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def tenant_body(slug: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "slug": slug or unique_slug(),
        "name": "Acme Apparel EU",
        "home_region": "eu",
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "markets": ["DE", "FR", "ES"],
    }
    return body | overrides


def contract_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "effective_from": "2026-10-01",
        "currency": "EUR",
        "ai_resolved": {"unit_price": "1.40"},
        "human_resolved": {"tiers": [{"up_to": 20000, "unit_price": "5.20"}, {"up_to": None, "unit_price": "4.80"}]},
        "minimum_monthly_fee": "5000.00",
        "deflection_floor": "0.70",
        "csat_target": "0.87",
        "response_targets": [{"channel": "chat", "first_response_seconds": 60, "attainment": "0.90"}],
        "credits": {"deflection": {"percent_per_point": "2.0", "cap_percent": "10.0"}},
        "total_credit_cap_percent": "15.0",
    }
    return body | overrides


@pytest.fixture
async def issue_token(dbs: Databases):
    """``await issue_token(role, tenant=None)`` -> a real bearer token secret."""
    from compliance.service import SystemActor
    from control_plane.service import issue_token as issue

    async def make(role: str, tenant: str | None = None) -> str:
        async with dbs.control_transaction() as session:
            _, secret = await issue(session, SystemActor("tests"), role=role, tenant=tenant)
        return secret

    return make


@pytest.fixture
async def staff_headers(issue_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token('account_manager')}"}


@pytest.fixture
async def make_tenant(client: AsyncTestClient, staff_headers: dict[str, str]):
    """Create a tenant through the API (optionally fully onboarded); returns its JSON."""

    async def make(*, onboard: bool = False, **overrides: Any) -> dict[str, Any]:
        resp = await client.post("/api/v1/tenants", json=tenant_body(**overrides), headers=staff_headers)
        assert resp.status_code == 201, resp.text
        tenant = resp.json()
        if onboard:
            slug = tenant["slug"]
            for method, path, body in [
                ("PUT", "contract", contract_body(currency=tenant["currency"])),
                (
                    "PUT",
                    "residency",
                    {"markets": {m: tenant["home_region"] for m in tenant["markets"] if m not in ("CN",)}},
                ),
                (
                    "POST",
                    "integrations",
                    {
                        "kind": "shopify",
                        "processing_region": tenant["home_region"],
                        "credentials": {"access_token": "shpat-test"},
                    },
                ),
                ("POST", "api-keys", {"scopes": ["contacts:write"]}),
            ]:
                r = await client.request(method, f"/api/v1/tenants/{slug}/{path}", json=body, headers=staff_headers)
                assert r.status_code in (200, 201), (path, r.text)
            r = await client.post(f"/api/v1/tenants/{slug}/status", json={"to": "active"}, headers=staff_headers)
            assert r.status_code == 200, r.text
            tenant = r.json()
        return tenant

    return make
