"""Tenant business rules: creation and lifecycle, contract versions, integrations, API keys.

Every function takes the session and the acting principal, never commits, and appends an audit
entry to the tenant's stream for every change it makes. The residency policy and its transfer
mechanisms are ``tenants.residency_service``'s; the names other domains read (``residency_view``,
``set_residency``…) are part of this module's API too, as are ``find_tenant`` and ``visible``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.actors import Actor
from control_plane.audit import append_audit_entry
from control_plane.auth import Principal, hash_secret, new_secret
from control_plane.database import utcnow
from control_plane.errors import Conflict, FieldError, InvalidInput, NotFound, Refusal
from control_plane.keyring import KeyRing
from control_plane.validation import parse
from tenants import residency
from tenants.catalogue import INTEGRATION_KINDS
from tenants.inputs import parse_input
from tenants.models import ApiKey, ContractVersion, Integration, ResidencyPolicy, Tenant
from tenants.repository import find_tenant, writable_tenant
from tenants.repository import visible as visible
from tenants.residency_service import ResidencyView as ResidencyView
from tenants.residency_service import get_residency as get_residency
from tenants.residency_service import residency_view
from tenants.residency_service import set_residency as set_residency
from tenants.schemas import (
    ApiKeyCreate,
    Contract,
    IntegrationCreate,
    TenantCreate,
    TenantStatus,
    TenantTransition,
    TenantUpdate,
)

TRANSITIONS: dict[str, frozenset[str]] = {
    "onboarding": frozenset({"active", "offboarded"}),
    "active": frozenset({"suspended", "offboarded"}),
    "suspended": frozenset({"active", "offboarded"}),
    "offboarded": frozenset(),
}


def _hash_key_aad(tenant_id: uuid.UUID) -> str:
    return f"tenant:{tenant_id}:customer_hash_key"


def _integration_aad(integration_id: uuid.UUID, part: str) -> str:
    return f"integration:{integration_id}:{part}"


# --- reading -----------------------------------------------------------------------------------
async def list_tenants(session: AsyncSession, actor: Principal, status: str | None = None) -> list[Tenant]:
    stmt = sa.select(Tenant).order_by(Tenant.slug)
    if actor.tenant_bound:
        stmt = stmt.where(Tenant.id == actor.tenant_id)
    if status:
        stmt = stmt.where(Tenant.status == status)
    return list((await session.scalars(stmt)).all())


# --- tenants -----------------------------------------------------------------------------------
async def create_tenant(
    session: AsyncSession, actor: Actor, data: Any, *, regions: Mapping[str, str], keyring: KeyRing
) -> Tenant:
    spec = parse(TenantCreate, data, {"regions": regions})
    if await session.scalar(sa.select(Tenant.id).where(Tenant.slug == spec.slug)):
        raise Conflict(f"a tenant with slug {spec.slug!r} exists already", code="slug_taken")
    tenant_id = uuid.uuid4()
    tenant = Tenant(
        id=tenant_id,
        slug=spec.slug,
        name=spec.name,
        status=TenantStatus.onboarding,
        home_region=spec.home_region,
        timezone=spec.timezone,
        currency=spec.currency,
        markets=spec.markets,
        retention_days=spec.retention_days,
        customer_hash_key=keyring.encrypt(os.urandom(32), _hash_key_aad(tenant_id)),
    )
    session.add(tenant)
    await session.flush()
    await append_audit_entry(
        session,
        stream=tenant.slug,
        actor=actor,
        action="tenant.created",
        target=f"tenant:{tenant.slug}",
        data=spec.model_dump(mode="json"),
    )
    return tenant


async def update_tenant(session: AsyncSession, actor: Principal, slug: str, data: Any) -> Tenant:
    tenant = await writable_tenant(session, actor, slug)
    spec = parse(TenantUpdate, data)
    changes = spec.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    for key, value in changes.items():
        setattr(tenant, key, value)
    await session.flush()
    await append_audit_entry(
        session, stream=slug, actor=actor, action="tenant.updated", target=f"tenant:{slug}", data=changes
    )
    return tenant


async def checklist(session: AsyncSession, tenant: Tenant) -> dict[str, bool]:
    """The onboarding checklist: what must exist before the tenant can go live."""

    async def exists(stmt: sa.Select) -> bool:
        return (await session.scalar(stmt)) is not None

    return {
        "contract": await exists(sa.select(ContractVersion.id).where(ContractVersion.tenant_id == tenant.id).limit(1)),
        "residency": await exists(sa.select(ResidencyPolicy.tenant_id).where(ResidencyPolicy.tenant_id == tenant.id)),
        "integration": await exists(sa.select(Integration.id).where(Integration.tenant_id == tenant.id).limit(1)),
        "api_key": await exists(
            sa.select(ApiKey.id).where(ApiKey.tenant_id == tenant.id, ApiKey.revoked_at.is_(None)).limit(1)
        ),
    }


async def transition_tenant(session: AsyncSession, actor: Principal, slug: str, data: Any) -> Tenant:
    spec = parse_input(TenantTransition, data)
    tenant = await find_tenant(session, actor, slug)
    current, target = tenant.status, spec.to.value
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (offboarded is final)"
        raise Conflict(
            f"a tenant cannot go from {current} to {target}; allowed from {current}: {allowed}",
            code="invalid_transition",
        )
    if target == TenantStatus.active and current == TenantStatus.onboarding:
        missing = [item for item, done in (await checklist(session, tenant)).items() if not done]
        if missing:
            raise Conflict(
                f"onboarding is not complete; still missing: {', '.join(missing)}", code="onboarding_incomplete"
            )
    tenant.status = target
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="tenant.status_changed",
        target=f"tenant:{slug}",
        data={"from": current, "to": target, "reason": spec.reason},
    )
    return tenant


# --- contracts ---------------------------------------------------------------------------------
async def add_contract_version(session: AsyncSession, actor: Principal, slug: str, data: Any) -> ContractVersion:
    tenant = await writable_tenant(session, actor, slug)
    spec = parse(Contract, data, {"currency": tenant.currency})
    latest = await session.scalar(
        sa.select(sa.func.max(ContractVersion.version)).where(ContractVersion.tenant_id == tenant.id)
    )
    version = ContractVersion(
        tenant_id=tenant.id,
        version=(latest or 0) + 1,
        effective_from=spec.effective_from,
        terms=spec.terms(),
        created_at=utcnow(),
        created_by=actor.actor,
    )
    session.add(version)
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="contract.version_added",
        target=f"tenant:{slug}/contract/v{version.version}",
        data=version.terms,
    )
    return version


async def contract_versions(session: AsyncSession, actor: Principal, slug: str) -> list[ContractVersion]:
    tenant = await find_tenant(session, actor, slug)
    stmt = (
        sa.select(ContractVersion)
        .where(ContractVersion.tenant_id == tenant.id)
        .order_by(ContractVersion.version.desc())
    )
    return list((await session.scalars(stmt)).all())


async def contract_in_force(session: AsyncSession, tenant_id: uuid.UUID, period_start: date) -> ContractVersion | None:
    """The version in force at ``period_start``: latest effective_from on or before it, newest version first."""
    stmt = (
        sa.select(ContractVersion)
        .where(ContractVersion.tenant_id == tenant_id, ContractVersion.effective_from <= period_start)
        .order_by(ContractVersion.effective_from.desc(), ContractVersion.version.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


# --- integrations ------------------------------------------------------------------------------
async def add_integration(
    session: AsyncSession,
    actor: Principal,
    slug: str,
    data: Any,
    *,
    regions: Mapping[str, str],
    keyring: KeyRing,
    today: date,
) -> Integration:
    tenant = await writable_tenant(session, actor, slug, lock=True)  # checked against the policy one at a time
    spec = parse_input(IntegrationCreate, data, {"regions": regions})
    region = spec.processing_region or INTEGRATION_KINDS[spec.kind]["processing_region"]
    view = await residency_view(session, tenant, regions)
    reason = residency.integration_refusal(
        processing_region=region,
        cells=view.cells,
        regions=regions,
        mechanisms=view.transfer_mechanisms,
        today=today,
        kind=spec.kind,
    )
    if reason:  # recorded in the tenant's audit stream once this transaction has rolled back
        refusal = Refusal(
            "integration.change_refused",
            f"tenant:{slug}/integrations",
            stream=slug,
            data={"kind": spec.kind, "processing_region": region},
        )
        raise Conflict(reason, code="cross_border_transfer_refused", refusal=refusal)
    integration_id = uuid.uuid4()
    integration = Integration(
        id=integration_id,
        tenant_id=tenant.id,
        kind=spec.kind,
        name=spec.name or INTEGRATION_KINDS[spec.kind]["label"],
        processing_region=region,
        credentials=keyring.encrypt(json.dumps(spec.credentials), _integration_aad(integration_id, "credentials")),
        webhook_secret=(
            keyring.encrypt(spec.webhook_secret, _integration_aad(integration_id, "webhook_secret"))
            if spec.webhook_secret
            else None
        ),
    )
    session.add(integration)
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="integration.added",
        target=f"tenant:{slug}/integration/{integration.id}",
        # Names of the credential fields only: values never reach the audit log.
        data={
            "kind": spec.kind,
            "processing_region": region,
            "credential_fields": sorted(spec.credentials),
            "webhook_secret": spec.webhook_secret is not None,
        },
    )
    return integration


async def list_integrations(session: AsyncSession, actor: Principal, slug: str) -> list[Integration]:
    tenant = await find_tenant(session, actor, slug)
    stmt = sa.select(Integration).where(Integration.tenant_id == tenant.id).order_by(Integration.created_at)
    return list((await session.scalars(stmt)).all())


def integration_credentials(integration: Integration, keyring: KeyRing) -> dict[str, str]:
    """Decrypted credentials, for the connectors only: never returned by a route."""
    return json.loads(keyring.decrypt(integration.credentials, _integration_aad(integration.id, "credentials")))


def integration_webhook_secret(integration: Integration, keyring: KeyRing) -> str | None:
    if integration.webhook_secret is None:
        return None
    return keyring.decrypt(integration.webhook_secret, _integration_aad(integration.id, "webhook_secret")).decode()


def customer_hash_key(tenant: Tenant, keyring: KeyRing) -> bytes:
    return keyring.decrypt(tenant.customer_hash_key, _hash_key_aad(tenant.id))


async def reencrypt_secrets(session: AsyncSession, keyring: KeyRing) -> int:
    """Seal every stored secret again under the ring's active key; returns how many changed."""
    changed = 0
    for tenant in (await session.scalars(sa.select(Tenant))).all():
        new = keyring.reencrypt(tenant.customer_hash_key, _hash_key_aad(tenant.id))
        changed += new != tenant.customer_hash_key
        tenant.customer_hash_key = new
    for integ in (await session.scalars(sa.select(Integration))).all():
        new = keyring.reencrypt(integ.credentials, _integration_aad(integ.id, "credentials"))
        changed += new != integ.credentials
        integ.credentials = new
        if integ.webhook_secret:
            new = keyring.reencrypt(integ.webhook_secret, _integration_aad(integ.id, "webhook_secret"))
            changed += new != integ.webhook_secret
            integ.webhook_secret = new
    await session.flush()
    return changed


async def key_ids_in_use(session: AsyncSession) -> set[str]:
    tokens = list((await session.scalars(sa.select(Tenant.customer_hash_key))).all())
    tokens += list((await session.scalars(sa.select(Integration.credentials))).all())
    tokens += [t for t in (await session.scalars(sa.select(Integration.webhook_secret))).all() if t]
    return {KeyRing.key_id_of(t) for t in tokens}


# --- API keys ----------------------------------------------------------------------------------
async def issue_api_key(session: AsyncSession, actor: Principal, slug: str, data: Any) -> tuple[ApiKey, str]:
    """A new key and its secret: the secret is returned once and only its hash is stored."""
    tenant = await writable_tenant(session, actor, slug)
    spec = parse_input(ApiKeyCreate, data)
    prefix, secret = new_secret("live")
    key = ApiKey(
        tenant_id=tenant.id,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=spec.scopes,
        label=spec.label,
        created_at=utcnow(),
        created_by=actor.actor,
    )
    session.add(key)
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="api_key.issued",
        target=f"tenant:{slug}/api-key/{prefix}",
        data={"scopes": spec.scopes, "label": spec.label},
    )
    return key, secret


async def list_api_keys(session: AsyncSession, actor: Principal, slug: str) -> list[ApiKey]:
    tenant = await find_tenant(session, actor, slug)
    stmt = sa.select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.created_at)
    return list((await session.scalars(stmt)).all())


async def revoke_api_key(session: AsyncSession, actor: Principal, slug: str, key_id: str) -> ApiKey:
    tenant = await find_tenant(session, actor, slug)
    try:
        kid = uuid.UUID(key_id)
    except ValueError:
        raise InvalidInput([FieldError("key_id", "is not a UUID")]) from None
    key = await session.scalar(sa.select(ApiKey).where(ApiKey.id == kid, ApiKey.tenant_id == tenant.id))
    if key is None:
        raise NotFound(f"no API key {key_id} for tenant {slug!r}")
    if key.revoked_at is not None:
        raise Conflict("this API key is revoked already", code="already_revoked")
    key.revoked_at = utcnow()
    await session.flush()
    await append_audit_entry(
        session, stream=slug, actor=actor, action="api_key.revoked", target=f"tenant:{slug}/api-key/{key.prefix}"
    )
    return key
