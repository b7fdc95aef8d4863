"""Issuer, billing-profile and tax-rate API routes (thin; rules in ``billing.finance.service``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, patch, post, put
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from billing.finance import service
from billing.invoices.controllers import now_of
from control_plane.auth import EVERYONE, ONBOARDING, STAFF, Principal, Role, policy

STAFF_READ = policy(roles=STAFF)
ADMIN = policy(roles=(Role.platform_admin,))
PROFILE_WRITERS = policy(roles=(*ONBOARDING, Role.merchant_admin))
PROFILE_READERS = policy(roles=EVERYONE)


class AddressIn(msgspec.Struct):
    lines: list[str]
    city: str
    country: str
    postal_code: str | None = None


class TaxRegistrationIn(msgspec.Struct):
    country: str
    tax_id: str


class IssuerIn(msgspec.Struct):
    """The body of ``POST /api/v1/issuers`` (``PATCH /api/v1/issuers/{code}``: any of its fields but ``code``)."""

    code: str
    legal_name: str
    address: AddressIn
    invoice_prefix: str
    tax_registrations: list[TaxRegistrationIn] = []
    credit_note_prefix: str | None = None
    payment_instructions: str | None = None
    regions: list[str] = []


class IssuerPatch(msgspec.Struct):
    legal_name: str | None = None
    address: AddressIn | None = None
    tax_registrations: list[TaxRegistrationIn] | None = None
    invoice_prefix: str | None = None
    credit_note_prefix: str | None = None
    payment_instructions: str | None = None
    regions: list[str] | None = None


class BillingProfileIn(msgspec.Struct):
    """The body of ``PUT /api/v1/tenants/{slug}/billing-profile`` (the whole profile)."""

    legal_name: str
    address: AddressIn
    billing_emails: list[str]
    tax_id: str | None = None
    purchase_order: str | None = None
    locale: str = "en"
    issuer: str | None = None


class TaxRateIn(msgspec.Struct):
    """The body of ``POST /api/v1/tax-rates``: a new version of a country's rate."""

    code: str
    country: str
    name: str
    rate: str
    valid_from: str
    valid_to: str | None = None
    note: str | None = None


@get("/api/v1/issuers", opt=STAFF_READ, tags=["issuers"])
async def list_issuers(session: AsyncSession) -> list[dict[str, Any]]:
    return [service.issuer_json(i) for i in await service.list_issuers(session)]


@post("/api/v1/issuers", opt=ADMIN, status_code=201, tags=["issuers"])
async def create_issuer(session: AsyncSession, principal: Principal, state: State, data: dict[str, Any]) -> dict:
    return service.issuer_json(await service.create_issuer(session, principal, data, now=now_of(state)))


@get("/api/v1/issuers/{code:str}", opt=STAFF_READ, tags=["issuers"])
async def read_issuer(session: AsyncSession, code: str) -> dict[str, Any]:
    return service.issuer_json(await service.get_issuer(session, code))


@patch("/api/v1/issuers/{code:str}", opt=ADMIN, tags=["issuers"])
async def update_issuer(
    session: AsyncSession, principal: Principal, state: State, code: str, data: dict[str, Any]
) -> dict[str, Any]:
    return service.issuer_json(await service.update_issuer(session, principal, code, data, now=now_of(state)))


@get("/api/v1/tenants/{slug:str}/billing-profile", opt=PROFILE_READERS, tags=["billing profiles"])
async def read_profile(session: AsyncSession, principal: Principal, slug: str) -> dict[str, Any] | None:
    """The tenant's billing profile; ``null`` while it has none."""
    tenant, profile = await service.get_profile(session, principal, slug)
    return service.profile_json(profile, tenant.slug)


@put("/api/v1/tenants/{slug:str}/billing-profile", opt=PROFILE_WRITERS, tags=["billing profiles"])
async def put_profile(
    session: AsyncSession, principal: Principal, state: State, slug: str, data: dict[str, Any]
) -> dict[str, Any] | None:
    profile = await service.put_profile(session, principal, slug, data, now=now_of(state))
    return service.profile_json(profile, slug)


@get("/api/v1/tax-rates", opt=STAFF_READ, tags=["tax rates"])
async def list_tax_rates(session: AsyncSession, country: str | None = None) -> list[dict[str, Any]]:
    return [service.tax_rate_json(r) for r in await service.list_tax_rates(session, country)]


@post("/api/v1/tax-rates", opt=ADMIN, status_code=201, tags=["tax rates"])
async def create_tax_rate(session: AsyncSession, principal: Principal, state: State, data: dict[str, Any]) -> dict:
    return service.tax_rate_json(await service.create_tax_rate(session, principal, data, now=now_of(state)))


ROUTES = [list_issuers, create_issuer, read_issuer, update_issuer, read_profile, put_profile, list_tax_rates,
          create_tax_rate]  # fmt: skip
