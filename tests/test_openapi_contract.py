"""The OpenAPI document is a contract: schemathesis (PyPI) loads ``/schema/openapi.json`` from the real
app under uvicorn and sends generated requests to every operation, as a platform admin and as a merchant
viewer, checking that no answer is a server error and that every status code, content type and body is
the one documented. A bounded number of examples per operation keeps it fast enough for CI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as examples
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from compliance.service import SystemActor
from control_plane import service
from tests.live import LiveApp, serve_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 25


@pytest.fixture(scope="module")
def live(settings) -> Iterator[LiveApp]:
    with serve_app(settings, None) as app:
        yield app


def _onboarded_tenant(live: LiveApp, staff: dict[str, str]) -> str:
    from tests.conftest import contract_body, tenant_body

    body = tenant_body()
    assert requests.post(f"{live.url}/api/v1/tenants", json=body, headers=staff, timeout=30).status_code == 201
    slug = body["slug"]
    for method, path, payload in [
        ("PUT", "contract", contract_body(currency=body["currency"])),
        ("PUT", "residency", {"markets": dict.fromkeys(body["markets"], "eu")}),
        ("POST", "integrations", {"kind": "shopify", "processing_region": "eu", "credentials": {"t": "x"}}),
        ("POST", "api-keys", {"scopes": ["contacts:write"]}),
    ]:
        resp = requests.request(method, f"{live.url}/api/v1/tenants/{slug}/{path}", json=payload, headers=staff)
        assert resp.status_code in (200, 201), resp.text
    return slug


def _token(dbs, role: str, tenant: str | None = None) -> str:
    async def issue() -> str:
        async with dbs.control_transaction() as session:
            _, secret = await service.issue_token(session, SystemActor("schemathesis"), role=role, tenant=tenant)
        return secret

    return asyncio.run(issue())


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ["platform_admin", "merchant_viewer"])
def test_every_operation_keeps_its_contract(settings, live, role):
    from control_plane.database import Databases

    dbs = Databases(settings.database)
    try:
        staff = {"Authorization": f"Bearer {_token(dbs, 'account_manager')}"}
        slug = _onboarded_tenant(live, staff)
        token = _token(dbs, role, slug if role.startswith("merchant") else None)
    finally:
        asyncio.run(dbs.dispose())
    schema = schemathesis.openapi.from_url(f"{live.url}/schema/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 60
    for operation in operations:

        @given(case=operation.as_strategy())
        @examples(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case) -> None:
            if "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = slug  # the caller's own tenant: deeper than a 404
            case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, reported together
            failures.append(f"{operation.label}: {str(exc)[:900]}")
    assert failures == [], "\n\n".join(failures)
