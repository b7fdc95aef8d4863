"""Invoice fixtures: a frozen clock on the app, and a tenant with contacts ingested through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.billing.conftest import contact, ingest_tenant  # noqa: F401  (fixture re-exported)

# Well after October 2026 has settled (Nov 1 + 72 h reopen window + 24 h grace).
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen(app) -> Iterator[list[datetime]]:
    """The app's clock, frozen at ``NOW``; tests move it by assigning ``frozen[0]``."""
    moment = [NOW]
    app.state.clock = lambda: moment[0]
    yield moment
    app.state.clock = None


async def ingest(client, tenant, contacts: list[dict]) -> dict:
    resp = await client.post(tenant.path(), json=contacts, headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rejected"] == [], body
    return body


__all__ = ["NOW", "contact", "ingest"]
