"""The tenants domain as the app sees it: its routes and pages (tenants, contracts, residency, integrations, keys),
the tenant directory and API-key credentials the kernel asks for, its re-sealer and its demo tenants."""

from __future__ import annotations

from control_plane.auth import EVERYONE, STAFF
from control_plane.plugins import Domain, NavLink
from tenants.controllers import ROUTES
from tenants.demo import seed_demo_tenants
from tenants.directory import TenantDirectory, api_key_principal
from tenants.pages import PAGES
from tenants.residency_schemas import ResidencyPut, TransferMechanism
from tenants.schemas import ApiKeyCreate, Contract, IntegrationCreate, TenantCreate, TenantTransition, TenantUpdate
from tenants.service import key_ids_in_use, reencrypt_secrets

DOMAIN = Domain(
    "tenants",
    routes=[*ROUTES, *PAGES],
    tenant_directory=TenantDirectory,
    credentials={"bpo_live_": api_key_principal},
    resealers=[reencrypt_secrets],
    key_ids_in_use=[key_ids_in_use],
    demo_seeders=[seed_demo_tenants],
    request_bodies={
        "POST /api/v1/tenants": TenantCreate,
        "PATCH /api/v1/tenants/{slug}": TenantUpdate,
        "POST /api/v1/tenants/{slug}/status": TenantTransition,
        "PUT /api/v1/tenants/{slug}/contract": Contract,
        "PUT /api/v1/tenants/{slug}/residency": ResidencyPut,
        "POST /api/v1/tenants/{slug}/transfer-mechanisms": TransferMechanism,
        "POST /api/v1/tenants/{slug}/integrations": IntegrationCreate,
        "POST /api/v1/tenants/{slug}/api-keys": ApiKeyCreate,
    },
    nav=[NavLink("tenants", "Tenants", "/tenants", frozenset(STAFF), order=10)],
    tenant_tabs=[NavLink("overview", "Overview", "/tenants/{slug}", frozenset(EVERYONE), order=10)],
)
