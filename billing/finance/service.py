"""Issuers, billing profiles and tax rates: use cases (no HTTP). Each change is audited.

Issuers and tax rates are platform configuration (audit stream ``platform``); a billing profile
belongs to its tenant's stream. A tenant is billed by its profile's issuer, else by the issuer
whose ``regions`` hold its home region, else by the default issuer (the one that kept the
original ``INV`` / ``CN`` series). An invoice records the issuer it was issued by, so changing a
tenant's issuer changes only invoices finalized from then on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance.inputs import issuer_fields, missing_of, profile_fields, tax_rate_fields
from billing.finance.models import BillingProfile, Issuer, TaxRate
from compliance.service import append_audit_entry
from control_plane.errors import Conflict, FieldError, InvalidInput, NotFound
from tenants.models import Tenant
from tenants.service import find_tenant

PLATFORM = "platform"


def issuer_json(issuer: Issuer) -> dict[str, Any]:
    return {
        "code": issuer.code,
        "legal_name": issuer.legal_name,
        "address": issuer.address,
        "tax_registrations": issuer.tax_registrations,
        "invoice_prefix": issuer.invoice_prefix,
        "credit_note_prefix": issuer.credit_note_prefix,
        "payment_instructions": issuer.payment_instructions,
        "regions": issuer.regions,
        "default": issuer.is_default,
    }


def profile_json(profile: BillingProfile | None, slug: str) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {
        "tenant": slug,
        "legal_name": profile.legal_name,
        "address": profile.address,
        "tax_id": profile.tax_id,
        "billing_emails": profile.billing_emails,
        "purchase_order": profile.purchase_order,
        "locale": profile.locale,
        "issuer": profile.issuer_code,
        "missing": missing_of(profile),
        "updated_at": profile.updated_at.isoformat(),
    }


def tax_rate_json(rate: TaxRate) -> dict[str, Any]:
    return {
        "code": rate.code,
        "country": rate.country,
        "name": rate.name,
        "rate": format(rate.rate.normalize(), "f"),
        "valid_from": rate.valid_from.isoformat(),
        "valid_to": rate.valid_to.isoformat() if rate.valid_to else None,
        "note": rate.note,
    }


# --- issuers -------------------------------------------------------------------------------------


async def list_issuers(session: AsyncSession) -> list[Issuer]:
    return list((await session.scalars(sa.select(Issuer).order_by(Issuer.is_default.desc(), Issuer.code))).all())


async def get_issuer(session: AsyncSession, code: str) -> Issuer:
    issuer = await session.get(Issuer, code)
    if issuer is None:
        raise NotFound(f"no issuer {code!r}")
    return issuer


async def _check_unique(session: AsyncSession, fields: dict[str, Any], code: str | None) -> None:
    errors = []
    for key in ("invoice_prefix", "credit_note_prefix"):
        if key in fields:
            prefix = fields[key]
            clash = await session.scalar(
                sa.select(Issuer.code).where(
                    sa.or_(Issuer.invoice_prefix == prefix, Issuer.credit_note_prefix == prefix), Issuer.code != code
                )
            )
            if clash:
                errors.append(FieldError(key, f"{prefix} is already a prefix of issuer {clash}"))
    if "invoice_prefix" in fields and fields.get("invoice_prefix") == fields.get("credit_note_prefix"):
        errors.append(FieldError("credit_note_prefix", "differs from invoice_prefix"))
    if errors:
        raise InvalidInput(errors)


async def create_issuer(session: AsyncSession, actor: Any, data: Any, *, now: datetime) -> Issuer:
    fields = issuer_fields(data, creating=True)
    if await session.get(Issuer, fields["code"]) is not None:
        raise Conflict(f"issuer {fields['code']!r} exists", code="issuer_exists")
    await _check_unique(session, fields, None)
    issuer = Issuer(**fields, is_default=False, created_at=now, updated_at=now)
    session.add(issuer)
    await session.flush()
    await append_audit_entry(
        session, stream=PLATFORM, actor=actor, action="issuer.created", target=f"issuer:{issuer.code}",
        data=issuer_json(issuer), now=now,
    )  # fmt: skip
    return issuer


async def update_issuer(session: AsyncSession, actor: Any, code: str, data: Any, *, now: datetime) -> Issuer:
    """Change an issuer's details; invoices already issued keep the details they were issued with.
    A prefix changes only while the issuer has issued nothing (its series must stay one series)."""
    issuer = await get_issuer(session, code)
    fields = issuer_fields(data, creating=False)
    await _check_unique(session, fields, code)
    from billing.invoices.models import Invoice  # the invoices sub-package depends on this one

    for key in ("invoice_prefix", "credit_note_prefix"):
        if key in fields and fields[key] != getattr(issuer, key):
            used = await session.scalar(sa.select(Invoice.id).where(Invoice.issuer_code == code).limit(1))
            if used is not None:
                raise Conflict(f"issuer {code} has issued invoices; its prefixes can no longer change",
                               code="issuer_in_use")  # fmt: skip
    for key, value in fields.items():
        setattr(issuer, key, value)
    issuer.updated_at = now
    await session.flush()
    await append_audit_entry(
        session, stream=PLATFORM, actor=actor, action="issuer.updated", target=f"issuer:{code}",
        data={"fields": sorted(fields)}, now=now,
    )  # fmt: skip
    return issuer


# --- billing profiles ----------------------------------------------------------------------------


async def profile_of(session: AsyncSession, tenant_id: Any) -> BillingProfile | None:
    return await session.get(BillingProfile, tenant_id)


async def get_profile(session: AsyncSession, actor: Any, slug: str) -> tuple[Tenant, BillingProfile | None]:
    tenant = await find_tenant(session, actor, slug)
    return tenant, await profile_of(session, tenant.id)


async def put_profile(session: AsyncSession, actor: Any, slug: str, data: Any, *, now: datetime) -> BillingProfile:
    """Replace the tenant's billing profile. The tax ID is checked for the address's country."""
    tenant = await find_tenant(session, actor, slug)
    fields = profile_fields(data)
    if fields["issuer"] is not None and await session.get(Issuer, fields["issuer"]) is None:
        raise InvalidInput([FieldError("issuer", f"no issuer {fields['issuer']!r}")])
    profile = await profile_of(session, tenant.id)
    issuer = fields.pop("issuer")
    if profile is None:
        profile = BillingProfile(tenant_id=tenant.id, issuer_code=issuer, updated_at=now, **fields)
        session.add(profile)
    else:
        for key, value in fields.items():
            setattr(profile, key, value)
        profile.issuer_code, profile.updated_at = issuer, now
    await session.flush()
    await append_audit_entry(
        session, stream=tenant.slug, actor=actor, action="billing_profile.updated", target=f"tenant:{tenant.slug}",
        data={"country": profile.address.get("country"), "issuer": issuer, "tax_id": bool(profile.tax_id)}, now=now,
    )  # fmt: skip
    return profile


async def issuer_for(session: AsyncSession, tenant: Tenant, profile: BillingProfile | None) -> Issuer:
    """The issuer that bills ``tenant`` now (see the module docstring)."""
    if profile is not None and profile.issuer_code:
        return await get_issuer(session, profile.issuer_code)
    for issuer in await list_issuers(session):
        if tenant.home_region in (issuer.regions or []):
            return issuer
    default = await session.scalar(sa.select(Issuer).where(Issuer.is_default.is_(True)))
    if default is None:
        raise Conflict("no issuer bills this tenant; add one at /api/v1/issuers", code="no_issuer")
    return default


# --- tax rates -----------------------------------------------------------------------------------


async def list_tax_rates(session: AsyncSession, country: str | None = None) -> list[TaxRate]:
    stmt = sa.select(TaxRate).order_by(TaxRate.country, TaxRate.valid_from)
    if country:
        stmt = stmt.where(TaxRate.country == country.upper())
    return list((await session.scalars(stmt)).all())


async def create_tax_rate(session: AsyncSession, actor: Any, data: Any, *, now: datetime) -> TaxRate:
    """A new version of a country's rate. Versions of one country may not overlap: end the current
    one (``valid_to``) by posting the new version with a later ``valid_from`` — the open version is
    closed the day before."""
    fields = tax_rate_fields(data)
    if await session.get(TaxRate, fields["code"]) is not None:
        raise Conflict(f"tax rate {fields['code']!r} exists; rates are versioned, post a new code",
                       code="tax_rate_exists")  # fmt: skip
    for other in await list_tax_rates(session, fields["country"]):
        end = fields["valid_to"]
        if other.valid_to is None and other.valid_from < fields["valid_from"]:
            other.valid_to = fields["valid_from"] - timedelta(days=1)
            continue
        if (other.valid_to is None or other.valid_to >= fields["valid_from"]) and (
            end is None or other.valid_from <= end
        ):
            raise InvalidInput([FieldError("valid_from", f"overlaps {other.code} ({other.valid_from} onwards)")])
    rate = TaxRate(**fields)
    session.add(rate)
    await session.flush()
    await append_audit_entry(
        session, stream=PLATFORM, actor=actor, action="tax_rate.created", target=f"tax_rate:{rate.code}",
        data=tax_rate_json(rate), now=now,
    )  # fmt: skip
    return rate
