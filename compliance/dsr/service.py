"""Data-subject request rules: intake, lookup in the tenant's cells, access, erasure, deadlines.

Services take the control session and the acting principal and never commit it. Cell work (reading
or erasing contacts) runs in the cells' own transactions, opened here as ingest does: an erasure is
committed in every cell before its audit entry is written, and re-running it is harmless (it finds
nothing left to erase).

Who acts: merchant admins (the controller) and compliance officers and platform admins open requests
and carry them out; account managers and merchant viewers may read them (the guard lets them, or not,
reach the pages), never act (:func:`may_act`). What may happen next depends on the request's stage
(:func:`stage`): an open access request may be exported, extended, completed or rejected; an open
erasure request may be exported (what it will erase), erased, extended or rejected, and once erased
only completed; a closed request never changes. :func:`refusal` says why an action is refused (409),
:func:`allowed_actions` lists the others, and the pages show exactly those.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering.models import Contact, WebhookEvent
from billing.metering.schemas import FIELDS
from billing.metering.service import hash_customer_ref
from compliance.dsr import deadlines
from compliance.dsr.models import DsrPolicy, SubjectRequest
from compliance.dsr.schemas import Closing, Extension, Kind, PolicyPut, RejectionIn, RequestCreate
from compliance.models import AuditEntry
from compliance.service import Actor, append_audit_entry, entries_for_target
from control_plane.auth import Principal, Role
from control_plane.database import Databases, utcnow
from control_plane.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from control_plane.keyring import KeyRing
from control_plane.validation import parse
from tenants import service as tenants
from tenants.models import Tenant

ERASED = "[erased]"
# What an access request exports of each contact: its fields as sent, but the reference (stored only
# as its HMAC), and when it was received.
CONTACT_FIELDS = (*(f for f in FIELDS if f != "customer_ref"), "received_at")
HANDLER_ROLES = frozenset({Role.platform_admin, Role.compliance_officer, Role.merchant_admin})
ACTIONS = ("export", "erase", "extend", "complete", "reject")


def may_act(actor: Actor | None) -> bool:
    """Whether ``actor`` may open requests and act on them (account managers only read them)."""
    return actor is not None and actor.role in HANDLER_ROLES


def _require_handler(actor: Actor) -> None:
    if not may_act(actor):
        raise Forbidden(f"role {actor.role} may read data-subject requests but not open or act on them")


def tenant_today(tenant: Tenant, now: datetime) -> date:
    return now.astimezone(ZoneInfo(tenant.timezone)).date()


# --- policy ------------------------------------------------------------------------------------
async def dsr_policy(session: AsyncSession, tenant_id: uuid.UUID) -> DsrPolicy:
    """The tenant's policy, or the defaults (unsaved) when it has none."""
    policy = await session.get(DsrPolicy, tenant_id)
    return policy or DsrPolicy(tenant_id=tenant_id, pipl_days=deadlines.DEFAULT_PIPL_DAYS)


async def set_dsr_policy(session: AsyncSession, actor: Principal, slug: str, data: Any) -> DsrPolicy:
    tenant = await tenants.find_tenant(session, actor, slug)
    spec = parse(PolicyPut, data)
    policy = await session.get(DsrPolicy, tenant.id)
    if policy is None:
        policy = DsrPolicy(tenant_id=tenant.id)
        session.add(policy)
    policy.pipl_days, policy.updated_at, policy.updated_by = spec.pipl_days, utcnow(), actor.actor
    await session.flush()
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action="dsr.policy_updated",
        target=f"tenant:{slug}/subject-request-policy",
        data={"pipl_days": spec.pipl_days},
    )
    return policy


# --- cells -------------------------------------------------------------------------------------
async def tenant_cells(session: AsyncSession, tenant: Tenant, regions: Mapping[str, str]) -> list[str]:
    """The regions whose cells may hold the tenant's contacts under its residency policy."""
    return sorted((await tenants.residency_view(session, tenant, regions)).cells)


async def _subject_hash(tenant: Tenant, keyring: KeyRing, subject: str) -> str:
    # Exactly as ingest pseudonymises customer_ref, under the tenant's own key.
    return hash_customer_ref(tenants.customer_hash_key(tenant, keyring), subject)


async def _count_in_cells(db: Databases, tenant_id: uuid.UUID, digest: str, cells: list[str]) -> dict[str, int]:
    found = {}
    for region in cells:  # every cell of the region: a region may have several (control_plane.cells)
        found[region] = 0
        for name in db.cells_of(region):
            async with db.cell_session(name) as cell:
                found[region] += int(
                    await cell.scalar(
                        sa.select(sa.func.count())
                        .select_from(Contact)
                        .where(Contact.tenant_id == tenant_id, Contact.customer_hash == digest)
                    )
                    or 0
                )
    return found


# --- intake ------------------------------------------------------------------------------------
async def file_request(
    session: AsyncSession,
    db: Databases,
    keyring: KeyRing,
    actor: Principal,
    slug: str,
    data: Any,
    *,
    regions: dict[str, str],
    now: datetime | None = None,
) -> SubjectRequest:
    """Record a request with its regime's deadline, after looking the subject up in the tenant's cells."""
    tenant = await tenants.find_tenant(session, actor, slug)
    _require_handler(actor)
    spec = parse(RequestCreate, data)
    regime = spec.regime or regions.get(tenant.home_region)
    if regime not in deadlines.REGIMES:
        raise InvalidInput([FieldError("regime", f"the home region's regime {regime!r} has no rule; name one")])
    if spec.kind == Kind.opt_out_sale_share and regime != "CCPA":
        raise InvalidInput([FieldError("kind", "opt-out of sale or sharing is a CCPA/CPRA request")])
    now = now or utcnow()
    received_on = tenant_today(tenant, now)
    policy = await dsr_policy(session, tenant.id)
    digest = await _subject_hash(tenant, keyring, spec.subject)
    cells = await tenant_cells(session, tenant, db.regions)
    found = await _count_in_cells(db, tenant.id, digest, cells)
    number = (
        await session.scalar(
            sa.select(sa.func.coalesce(sa.func.max(SubjectRequest.number), 0)).where(
                SubjectRequest.tenant_id == tenant.id
            )
        )
    ) + 1
    details: dict[str, Any] = {}
    if spec.note:
        details["note"] = spec.note
    if spec.correction:
        # The corrected values are the subject's data: kept on the request only, never in the audit log.
        details["correction"] = spec.correction
    if spec.kind == Kind.opt_out_sale_share:
        details["opt_out"] = {"sale": True, "share": True, "recorded_on": received_on.isoformat()}
    req = SubjectRequest(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        number=number,
        kind=spec.kind.value,
        regime=regime,
        status="open",
        subject_hash=digest,
        cells=found,
        details=details,
        received_at=now,
        received_on=received_on,
        due_on=deadlines.due_on(regime, received_on, policy.pipl_days),
        created_by=actor.actor,
    )
    session.add(req)
    await session.flush()
    await _audit(
        session,
        actor,
        slug,
        req,
        "dsr.received",
        {
            "kind": req.kind,
            "regime": regime,
            "due_on": req.due_on,
            "cells_searched": cells,
            "contacts_found": found,
            "correction_fields": sorted(spec.correction or {}),
        },
        now,
    )
    return req


def request_target(slug: str, req: SubjectRequest) -> str:
    return f"tenant:{slug}/subject-request/{req.number}"


async def _audit(
    session: AsyncSession, actor: Actor, slug: str, req: SubjectRequest, action: str, data: dict, now: datetime
) -> None:
    await append_audit_entry(
        session,
        stream=slug,
        actor=actor,
        action=action,
        target=request_target(slug, req),
        data={"request_id": str(req.id), **data},
        now=now,
    )


async def request_history(session: AsyncSession, slug: str, req: SubjectRequest) -> list[AuditEntry]:
    """The request's steps as its tenant's audit stream recorded them, oldest first."""
    return await entries_for_target(session, slug, request_target(slug, req))


# --- reading -----------------------------------------------------------------------------------
async def list_requests(
    session: AsyncSession, actor: Principal, slug: str, *, status: str | None = None
) -> tuple[Tenant, list[SubjectRequest]]:
    tenant = await tenants.find_tenant(session, actor, slug)
    stmt = sa.select(SubjectRequest).where(SubjectRequest.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(SubjectRequest.status == status)
    return tenant, list((await session.scalars(stmt.order_by(SubjectRequest.number.desc()))).all())


async def get_request(
    session: AsyncSession, actor: Principal, slug: str, request_id: str
) -> tuple[Tenant, SubjectRequest]:
    tenant = await tenants.find_tenant(session, actor, slug)
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError:
        raise NotFound(f"no subject request {request_id!r}") from None
    req = await session.get(SubjectRequest, rid)
    if req is None or req.tenant_id != tenant.id:
        raise NotFound(f"no subject request {request_id!r}")
    return tenant, req


async def all_requests(session: AsyncSession) -> list[tuple[Tenant, SubjectRequest]]:
    """Every request with its tenant (newest first), for the compliance pages."""
    rows = await session.execute(
        sa.select(Tenant, SubjectRequest)
        .join(Tenant, Tenant.id == SubjectRequest.tenant_id)
        .order_by(SubjectRequest.received_at.desc())
        .limit(500)
    )
    return [(r.Tenant, r.SubjectRequest) for r in rows]


def stage(req: SubjectRequest) -> str:
    """``open`` | ``erased`` (an erasure carried out, not yet completed) | ``completed`` | ``rejected``."""
    if req.status != "open":
        return req.status
    return "erased" if req.kind == Kind.erasure and "erased" in (req.details or {}) else "open"


def refusal(req: SubjectRequest, action: str) -> Conflict | None:
    """Why ``action`` may not happen to ``req`` in its stage (a 409), or ``None`` when it may."""
    n, current = req.number, stage(req)
    if req.status != "open" or req.subject_hash is None:
        return Conflict(f"subject request {n} is {req.status}; it can no longer change", code="request_closed")
    erased = current == "erased"
    if erased and action != "complete":
        return Conflict(
            f"subject request {n} was carried out (the subject's data is erased); it can only be completed",
            code="erased_already",
        )
    if action == "export" and req.kind not in (Kind.access, Kind.erasure):
        return Conflict(
            f"subject request {n} is a {req.kind} request; only access and erasure requests export the subject's data",
            code="not_exportable",
        )
    if action == "erase" and req.kind != Kind.erasure:
        return Conflict(f"subject request {n} is a {req.kind} request, not an erasure request", code="not_erasure")
    if action == "extend":
        if not deadlines.rule_for(req.regime).extendable:
            return Conflict(f"{req.regime} deadlines cannot be extended", code="not_extendable")
        if req.extended_due_on is not None:
            return Conflict(f"subject request {n} was extended already", code="extended_already")
    if action == "complete" and req.kind == Kind.erasure and not erased:
        return Conflict(
            f"subject request {n} is an erasure request: carry out the erasure before completing it",
            code="erase_first",
        )
    return None


def allowed_actions(req: SubjectRequest) -> list[str]:
    return [a for a in ACTIONS if refusal(req, a) is None]


def _check(req: SubjectRequest, action: str) -> None:
    problem = refusal(req, action)
    if problem is not None:
        raise problem


async def _actionable(
    session: AsyncSession, actor: Principal, slug: str, request_id: str, action: str
) -> tuple[Tenant, SubjectRequest]:
    """The request, once the actor may act on it and its stage allows ``action`` (else 403 or 409)."""
    tenant, req = await get_request(session, actor, slug, request_id)
    _require_handler(actor)
    _check(req, action)
    return tenant, req


# --- access ------------------------------------------------------------------------------------
def _contact_out(region: str, row: Any) -> dict[str, Any]:
    out = {"region": region}
    for name in CONTACT_FIELDS:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def access_export(
    session: AsyncSession, db: Databases, actor: Principal, slug: str, request_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The subject's contacts from the tenant's cells (an audited sensitive read): the answer to an access
    request, or what an erasure request is about to erase."""
    tenant, req = await _actionable(session, actor, slug, request_id, "export")
    now = now or utcnow()
    cells = await tenant_cells(session, tenant, db.regions)
    contacts: list[dict[str, Any]] = []
    for region, name in ((r, n) for r in cells for n in db.cells_of(r)):
        async with db.cell_session(name) as cell:
            rows = await cell.scalars(
                sa.select(Contact)
                .where(Contact.tenant_id == tenant.id, Contact.customer_hash == req.subject_hash)
                .order_by(Contact.opened_at, Contact.external_id)
            )
            contacts.extend(_contact_out(region, r) for r in rows)
    per_cell = {r: sum(c["region"] == r for c in contacts) for r in cells}
    await _audit(session, actor, slug, req, "dsr.access_exported", {"contacts": per_cell}, now)
    return {
        "request": {"id": str(req.id), "number": req.number, "regime": req.regime},
        "tenant": slug,
        "generated_at": now.isoformat(),
        "cells_searched": cells,
        "contacts": contacts,
    }


# --- erasure -----------------------------------------------------------------------------------
def _scrub(value: Any, digest: str) -> tuple[Any, int]:
    """``value`` with every occurrence of ``digest`` replaced; returns how many were replaced."""
    if value == digest:
        return ERASED, 1
    if isinstance(value, dict):
        out, n = {}, 0
        for k, v in value.items():
            out[k], m = _scrub(v, digest)
            n += m
        return out, n
    if isinstance(value, list):
        items = [_scrub(v, digest) for v in value]
        return [v for v, _ in items], sum(m for _, m in items)
    return value, 0


ERASE_ROUNDS = 3


async def erase_in_region(db: Databases, region: str, tenant_id: uuid.UUID, digest: str) -> dict[str, int]:
    """Erase in every cell of the region. A tenant move running meanwhile may copy a row before it was
    erased into its new cell: the cells are searched again and erased again until none holds it."""
    total = {"contacts": 0, "webhook_events": 0}
    for _ in range(ERASE_ROUNDS):
        for name in db.cells_of(region):
            for k, v in (await erase_in_cell(db, name, tenant_id, digest)).items():
                total[k] += v
        if not (await _count_in_cells(db, tenant_id, digest, [region]))[region]:
            break
    return total


async def erase_in_cell(db: Databases, region: str, tenant_id: uuid.UUID, digest: str) -> dict[str, int]:
    """Remove the reference from the cell's contacts and stored webhook events (one transaction).

    Only ``customer_hash`` changes: contacts keep counting in rollups and invoices (which never held it).
    """
    async with db.cell_session(region) as cell, cell.begin():
        contacts = await cell.execute(
            sa.update(Contact)
            .where(Contact.tenant_id == tenant_id, Contact.customer_hash == digest)
            .values(customer_hash=None)
            .execution_options(synchronize_session=False)
        )
        events = 0
        candidates = await cell.scalars(
            sa.select(WebhookEvent).where(
                WebhookEvent.tenant_id == tenant_id, sa.cast(WebhookEvent.payload, sa.Text).contains(digest)
            )
        )
        for event in candidates.all():
            scrubbed, n = _scrub(event.payload, digest)
            if n:
                event.payload = scrubbed
                events += 1
        return {"contacts": contacts.rowcount or 0, "webhook_events": events}


async def erase_subject(
    session: AsyncSession, db: Databases, actor: Principal, slug: str, request_id: str, now: datetime | None = None
) -> SubjectRequest:
    """Carry out an erasure request in every cell of the tenant; completing it (telling the subject)
    is the next step, and closes it."""
    tenant, req = await _actionable(session, actor, slug, request_id, "erase")
    now = now or utcnow()
    digest = req.subject_hash
    result = {
        region: await erase_in_region(db, region, tenant.id, digest)
        for region in await tenant_cells(session, tenant, db.regions)
    }
    req.details = {**req.details, "erased": result, "erased_at": now.isoformat()}
    await session.flush()
    await _audit(session, actor, slug, req, "dsr.erased", {"erased": result}, now)
    return req


# --- deadlines and closing -----------------------------------------------------------------------
def _close(req: SubjectRequest, status: str, now: datetime) -> None:
    req.status, req.closed_at, req.subject_hash = status, now, None


async def extend_request(
    session: AsyncSession, actor: Principal, slug: str, request_id: str, data: Any, now: datetime | None = None
) -> SubjectRequest:
    """Extend the deadline once, where the regime allows it, with the notice given to the subject."""
    _, req = await _actionable(session, actor, slug, request_id, "extend")
    spec = parse(Extension, data)
    now = now or utcnow()
    req.extended_due_on = deadlines.extended_due_on(req.regime, req.due_on)
    req.extension_reason = spec.reason
    await session.flush()
    await _audit(
        session, actor, slug, req, "dsr.extended", {"due_on": req.due_on, "extended_due_on": req.extended_due_on}, now
    )
    return req


async def complete_request(
    session: AsyncSession, actor: Principal, slug: str, request_id: str, data: Any, now: datetime | None = None
) -> SubjectRequest:
    """Close a request as answered; an erasure request only once it is carried out."""
    _, req = await _actionable(session, actor, slug, request_id, "complete")
    spec = parse(Closing, data or {})
    now = now or utcnow()
    if spec.note:
        req.details = {**req.details, "closing_note": spec.note}
    _close(req, "completed", now)
    await session.flush()
    await _audit(session, actor, slug, req, "dsr.completed", {"kind": req.kind}, now)
    return req


async def reject_request(
    session: AsyncSession, actor: Principal, slug: str, request_id: str, data: Any, now: datetime | None = None
) -> SubjectRequest:
    _, req = await _actionable(session, actor, slug, request_id, "reject")
    spec = parse(RejectionIn, data)
    now = now or utcnow()
    req.details = {**req.details, "rejection_reason": spec.reason}
    _close(req, "rejected", now)
    await session.flush()
    await _audit(session, actor, slug, req, "dsr.rejected", {"reason": spec.reason}, now)
    return req
