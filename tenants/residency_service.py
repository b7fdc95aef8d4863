"""A tenant's residency policy and its list of transfer mechanisms: rules, no HTTP.

The policy (one row per tenant) maps markets to regions and keeps the recorded transfer
mechanisms, each with an ``id``, who added it and when. Mechanisms are added and revoked one at a
time (:func:`add_mechanism`, :func:`revoke_mechanism`); ``PUT .../residency`` sets the markets
and, when it carries a mechanism list, replaces the list, keeping the ids of the entries it
repeats. Whatever the path, a change that would strand a routed market or an active integration
(covered by a mechanism before, not after: ``tenants.residency.stranded``) is refused with 409
``mechanism_in_use`` naming each one, and nothing is written. A mechanism counts through its
``valid_until`` day and is expired from the next day on (``tenants.residency``); a new one must be
valid today (422 on ``valid_until``), and its market must be one the tenant sells in (422 on
``market``). Every change locks the tenant row and appends an audit entry; a change the rules
refuse (409) carries a ``residency.change_refused`` refusal, which the kernel records in the tenant's
audit stream after the request's own transaction has rolled back (``control_plane.errors.Refusal``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.audit import append_audit_entry
from control_plane.auth import Principal, Role
from control_plane.database import utcnow
from control_plane.errors import Conflict, FieldError, InvalidInput, NotFound, Refusal
from tenants import regimes, residency
from tenants.catalogue import INTEGRATION_KINDS
from tenants.inputs import one_of, parse_input
from tenants.models import Integration, ResidencyPolicy, Tenant
from tenants.repository import find_tenant, writable_tenant
from tenants.residency_schemas import ResidencyPut, TransferMechanism

# Ids of mechanisms recorded before they had one: derived from their content, so they are stable.
LEGACY_IDS = uuid.UUID("6f0d54c4-4d3c-4a51-9a43-2d1b8f3b7a10")
IDENTITY = ("regime", "market", "to_region", "mechanism", "reference", "valid_until")


def mechanism_id(entry: Mapping[str, Any]) -> str:
    if entry.get("id"):
        return str(entry["id"])
    return str(uuid.uuid5(LEGACY_IDS, json.dumps({k: entry.get(k) for k in IDENTITY}, sort_keys=True)))


def _identity(entry: Mapping[str, Any]) -> tuple:
    return tuple(str(entry.get(k)) if entry.get(k) is not None else None for k in IDENTITY)


def _stored(policy: ResidencyPolicy | None) -> list[dict[str, Any]]:
    return [dict(m, id=mechanism_id(m)) for m in (policy.transfer_mechanisms if policy else [])]


def describe(m: Mapping[str, Any]) -> str:
    """``the GDPR standard contractual clauses (SCC-2026-7) for DE to 'us'``."""
    regime = regimes.REGIMES.get(str(m.get("regime")))
    label = next((x.label for x in regime.mechanisms if x.code == m.get("mechanism")), None) if regime else None
    markets = m.get("market") or f"every {m.get('regime')} market"
    what = (label or str(m.get("mechanism"))).removeprefix("an ").removeprefix("a ").removeprefix("the ")
    return f"the {m.get('regime')} {what} ({m.get('reference')}) for {markets} to {m.get('to_region')!r}"


def status(m: Mapping[str, Any], today: date) -> str:
    return "expired" if residency.is_expired(m, today) else "active"


def mechanism_out(m: Mapping[str, Any], today: date, used_by: list[str] | None = None) -> dict[str, Any]:
    out = {k: m.get(k) for k in ("id", *IDENTITY, "added_at", "added_by")}
    out["status"] = status(m, today)
    if used_by is not None:
        out["used_by"] = used_by
    if m.get("revoked_at"):
        out |= {"status": "revoked", "revoked_at": m["revoked_at"], "revoked_by": m.get("revoked_by")}
    return out


# --- the state a change is checked against -----------------------------------------------------
async def _active_integrations(
    session: AsyncSession, tenant: Tenant, *, named: bool = True
) -> list[residency.IntegrationRef]:
    """``named``: with their names, for those who may list integrations (staff, merchant admins)."""
    stmt = sa.select(Integration).where(Integration.tenant_id == tenant.id, Integration.status == "active")
    return [
        residency.IntegrationRef(
            str(i.id),
            INTEGRATION_KINDS.get(i.kind, {}).get("label", i.kind),
            i.name if named else "",
            i.processing_region,
        )
        for i in (await session.scalars(stmt.order_by(Integration.created_at))).all()
    ]


@dataclass(frozen=True)
class _State:
    tenant: Tenant
    integrations: list[residency.IntegrationRef]
    regions: Mapping[str, str]
    today: date

    def dependants(self, markets: Mapping[str, str], mechanisms: list[dict[str, Any]]) -> dict:
        return residency.dependants(
            tenant_markets=self.tenant.markets,
            home_region=self.tenant.home_region,
            markets=markets,
            mechanisms=mechanisms,
            integrations=self.integrations,
            regions=self.regions,
            today=self.today,
        )


async def _state(
    session: AsyncSession, tenant: Tenant, regions: Mapping[str, str], today: date, *, named: bool = True
) -> _State:
    return _State(tenant, await _active_integrations(session, tenant, named=named), regions, today)


def _refused(slug: str, target: str, **data: Any) -> Refusal:
    """What the audit log records of a refused residency change (``target``: under ``tenant:{slug}/``)."""
    return Refusal("residency.change_refused", f"tenant:{slug}/{target}", stream=slug, data=data)


def _in_use(what: str, stranded: list[str], refusal: Refusal) -> Conflict:
    """409 ``mechanism_in_use``: ``what`` the change would do, then what it would strand."""
    them = "them" if len(stranded) > 1 else "it"
    return Conflict(
        f"{what[:1].upper()}{what[1:]} would leave {one_of(stranded)} without a transfer mechanism, "
        f"and {'they depend' if them == 'them' else 'it depends'} on one. Record another mechanism "
        f"that covers {them} first, or change what depends on it.",
        code="mechanism_in_use",
        refusal=refusal,
    )


def _new_entry(spec: TransferMechanism, actor: Principal) -> dict[str, Any]:
    return spec.model_dump(mode="json") | {
        "id": str(uuid.uuid4()),
        "added_at": utcnow().isoformat(timespec="seconds"),
        "added_by": actor.actor,
    }


def _expired_error(field: str, spec: TransferMechanism, today: date) -> FieldError | None:
    if spec.valid_until is not None and spec.valid_until < today:
        return FieldError(
            field,
            f"This mechanism expired on {spec.valid_until.isoformat()}; an expired mechanism covers no transfer. "
            f"Give the date it is valid until, today ({today.isoformat()}) or later.",
        )
    return None


async def _policy(session: AsyncSession, tenant: Tenant, actor: Principal) -> ResidencyPolicy:
    policy = await session.get(ResidencyPolicy, tenant.id)
    if policy is None:
        policy = ResidencyPolicy(tenant_id=tenant.id, markets={}, transfer_mechanisms=[])
        session.add(policy)
    policy.updated_at = utcnow()
    policy.updated_by = actor.actor
    return policy


# --- reading -----------------------------------------------------------------------------------
async def get_residency(session: AsyncSession, tenant: Tenant) -> ResidencyPolicy | None:
    return await session.get(ResidencyPolicy, tenant.id)


@dataclass(frozen=True)
class ResidencyView:
    cells: dict[str, list[str]]
    markets: dict[str, str]
    transfer_mechanisms: list[dict[str, Any]]


async def residency_view(session: AsyncSession, tenant: Tenant, regions: Mapping[str, str]) -> ResidencyView:
    """The tenant's cells under its policy and the region registry ``regions``; its mechanisms
    (expired ones too: whoever reads them asks ``tenants.residency`` whether one still counts)."""
    policy = await session.get(ResidencyPolicy, tenant.id)
    markets = dict(policy.markets) if policy else {}
    cells = residency.cells_in_use(tenant.markets, markets, tenant.home_region, regions)
    return ResidencyView(cells, markets, _stored(policy))


async def list_mechanisms(
    session: AsyncSession, actor: Principal, slug: str, *, regions: Mapping[str, str], today: date
) -> list[dict[str, Any]]:
    """The recorded mechanisms, each with its status and what would be stranded without it."""
    tenant = await find_tenant(session, actor, slug)
    policy = await session.get(ResidencyPolicy, tenant.id)
    markets, stored = (dict(policy.markets) if policy else {}), _stored(policy)
    named = actor.is_staff or actor.role == Role.merchant_admin  # as for the list of integrations
    state = await _state(session, tenant, regions, today, named=named)
    before = state.dependants(markets, stored)
    return [
        mechanism_out(
            m, today, residency.stranded(before, state.dependants(markets, [x for x in stored if x is not m]))
        )
        for m in stored
    ]


# --- changing ----------------------------------------------------------------------------------
async def add_mechanism(
    session: AsyncSession, actor: Principal, slug: str, data: Any, *, regions: Mapping[str, str], today: date
) -> dict[str, Any]:
    """Record one more mechanism; the others stay as they are."""
    tenant = await writable_tenant(session, actor, slug, lock=True)
    spec = parse_input(TransferMechanism, data, {"regions": regions, "tenant_markets": tenant.markets})
    if error := _expired_error("valid_until", spec, today):
        raise InvalidInput([error])
    policy = await _policy(session, tenant, actor)
    stored = _stored(policy)
    entry = _new_entry(spec, actor)
    if any(_identity(m) == _identity(entry) for m in stored):
        what = describe(entry)
        raise Conflict(
            f"{what[:1].upper()}{what[1:]} is recorded already.",
            code="mechanism_exists",
            refusal=_refused(slug, "residency", mechanism={k: entry[k] for k in IDENTITY}),
        )
    policy.transfer_mechanisms = [*stored, entry]
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="residency.mechanism_added",
        target=f"tenant:{slug}/transfer-mechanism/{entry['id']}",
        data=entry,
    )
    return entry


async def revoke_mechanism(
    session: AsyncSession, actor: Principal, slug: str, mechanism_id_: str, *, regions: Mapping[str, str], today: date
) -> dict[str, Any]:
    """Take one mechanism off the list, unless a routed market or an active integration rests on it
    (409 ``mechanism_in_use`` naming them). Its record stays in the audit log."""
    tenant = await writable_tenant(session, actor, slug, lock=True)
    policy = await session.get(ResidencyPolicy, tenant.id)
    stored = _stored(policy)
    entry = next((m for m in stored if m["id"] == mechanism_id_), None)
    if policy is None or entry is None:
        raise NotFound(f"no transfer mechanism {mechanism_id_} for tenant {slug!r}")
    rest = [m for m in stored if m is not entry]
    state = await _state(session, tenant, regions, today)
    stranded = residency.stranded(state.dependants(policy.markets, stored), state.dependants(policy.markets, rest))
    if stranded:
        raise _in_use(
            f"revoking {describe(entry)}",
            stranded,
            _refused(slug, f"transfer-mechanism/{entry['id']}", stranded=stranded),
        )
    policy.transfer_mechanisms = rest
    policy.updated_at, policy.updated_by = utcnow(), actor.actor
    await session.flush()
    revoked = entry | {"revoked_at": utcnow().isoformat(timespec="seconds"), "revoked_by": actor.actor}
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="residency.mechanism_revoked",
        target=f"tenant:{slug}/transfer-mechanism/{entry['id']}",
        data=revoked,
    )
    return revoked


async def set_residency(
    session: AsyncSession, actor: Principal, slug: str, data: Any, *, regions: Mapping[str, str], today: date
) -> ResidencyPolicy:
    """Set the markets -> regions map; a ``transfer_mechanisms`` list, when given, replaces the
    recorded one (an entry it repeats keeps its id; a new one must be valid today)."""
    tenant = await writable_tenant(session, actor, slug, lock=True)
    spec = parse_input(ResidencyPut, data, {"regions": regions, "tenant_markets": tenant.markets})
    policy = await session.get(ResidencyPolicy, tenant.id)
    old_markets, stored = (dict(policy.markets) if policy else {}), _stored(policy)
    mechanisms = stored
    if spec.transfer_mechanisms is not None:
        known = {_identity(m): m for m in stored}
        mechanisms, errors = [], []
        for i, m in enumerate(spec.transfer_mechanisms):
            entry = known.get(_identity(m.model_dump(mode="json")))
            if entry is None:
                errors.append(_expired_error(f"transfer_mechanisms.{i}.valid_until", m, today))
                entry = _new_entry(m, actor)
            if all(_identity(x) != _identity(entry) for x in mechanisms):
                mechanisms.append(entry)
        if errors := [e for e in errors if e]:
            raise InvalidInput(errors)
    state = await _state(session, tenant, regions, today)
    before, after = state.dependants(old_markets, stored), state.dependants(spec.markets, mechanisms)
    # A route that was covered and is no longer is stranded (below); a new one is refused outright.
    refusals = [
        r.reason
        for r in residency.policy_refusals(spec.markets, mechanisms, today, regions)
        if not before.get(_route_key(r.field, spec.markets), _UNCOVERED).covered
    ]
    refused = _refused(slug, "residency", markets=dict(spec.markets))
    if refusals:
        raise Conflict(" ".join(refusals), code="residency_refused", refusal=refused)
    if stranded := residency.stranded(before, after):
        dropped = [describe(m) for m in stored if all(m["id"] != x["id"] for x in mechanisms)]
        what = f"removing {one_of(dropped)}" if dropped else "this change of markets"
        raise _in_use(what, stranded, _refused(slug, "residency", markets=dict(spec.markets), stranded=stranded))
    policy = await _policy(session, tenant, actor)
    policy.markets = dict(spec.markets)
    policy.transfer_mechanisms = mechanisms
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="residency.updated",
        target=f"tenant:{slug}/residency",
        data={"markets": policy.markets, "transfer_mechanisms": mechanisms},
    )
    return policy


_UNCOVERED = residency.Dependant("", covered=False)


def _route_key(field: str, markets: Mapping[str, str]) -> str:
    market = field.removeprefix("markets.")
    return f"market:{market}->{markets[market]}"
