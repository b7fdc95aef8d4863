"""Demo data for ``make demo``: the bootstrap admin, then each domain's demo seeder in domain order
(tenants onboarded in four regions, a month of contacts, last month's invoices), then three demo
people invited: an account manager, a merchant admin of the first demo tenant and a compliance
officer. Seeding goes through the same services as the API, so the demo's audit log is a real one.
Running it again changes nothing, except that a demo person who has not set a password yet gets a
fresh invitation link (the earlier one stops working).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from control_plane import identity
from control_plane.actors import SYSTEM
from control_plane.database import Databases
from control_plane.keyring import KeyRing
from control_plane.keystore import load_keyring
from control_plane.models import User
from control_plane.plugins import domains
from control_plane.service import ensure_bootstrap_admin
from control_plane.settings import Settings

ADMIN_EMAIL = "admin@bpo.local"
DEMO_PEOPLE = (  # (e-mail, role, on the first demo tenant?)
    ("am@bpo.example.com", "account_manager", False),
    ("merchant@demo.example.com", "merchant_admin", True),
    ("compliance@bpo.example.com", "compliance_officer", False),
)


@dataclass
class DemoReport:
    admin_email: str
    admin_password: str | None
    tenants: list[str] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)
    invitations: list[tuple[str, str, str]] = field(default_factory=list)  # (role, e-mail, link or state)


@dataclass
class DemoContext:
    """What a domain's demo seeder gets: the databases, the key ring, and what earlier seeders made."""

    settings: Settings
    db: Databases
    keyring: KeyRing
    report: DemoReport
    tenants: list[dict[str, Any]] = field(default_factory=list)  # the demo tenants' specs (slug, zone, ...)


async def seed_demo(settings: Settings) -> DemoReport:
    db = Databases(settings.database)
    try:
        keyring = await load_keyring(settings, db.control)
        async with db.control_transaction() as session:
            password = await ensure_bootstrap_admin(session, ADMIN_EMAIL)
        ctx = DemoContext(settings, db, keyring, DemoReport(ADMIN_EMAIL, password))
        for seed in (s for d in domains() for s in d.demo_seeders):
            await seed(ctx)
        await invite_demo_people(ctx)
        return ctx.report
    finally:
        await db.dispose()


async def invite_demo_people(ctx: DemoContext) -> None:
    """Each demo person gets an invitation link until it has set a password."""
    tenant = ctx.report.tenants[0] if ctx.report.tenants else None
    for email, role, on_tenant in DEMO_PEOPLE:
        async with ctx.db.control_transaction() as session:
            user = await session.scalar(sa.select(User).where(User.email == email))
            if user is None:
                body = {"email": email, "role": role, "tenant": tenant if on_tenant else None}
                user = await identity.create_user(session, SYSTEM, body)
            if identity.status_of(user) != "invited":
                ctx.report.invitations.append((role, email, "has set a password: sign in at /login"))
                continue
            link = await identity.issue_link(session, SYSTEM, user, "invitation", public_url=ctx.settings.public_url)
            ctx.report.invitations.append((role, email, link.url))
