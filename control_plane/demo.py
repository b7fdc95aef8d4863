"""Demo data for ``make demo``: the bootstrap admin, then each domain's demo seeder in domain order
(tenants onboarded in four regions, a month of contacts, last month's invoices). Seeding goes through
the same services as the API, so the demo's audit log is a real one. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from control_plane.database import Databases
from control_plane.keyring import KeyRing
from control_plane.plugins import domains
from control_plane.service import ensure_bootstrap_admin
from control_plane.settings import Settings

ADMIN_EMAIL = "admin@bpo.local"


@dataclass
class DemoReport:
    admin_email: str
    admin_password: str | None
    tenants: list[str] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)


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
    keyring = KeyRing.load_or_create(settings.keyring_path)
    try:
        async with db.control_transaction() as session:
            password = await ensure_bootstrap_admin(session, ADMIN_EMAIL)
        ctx = DemoContext(settings, db, keyring, DemoReport(ADMIN_EMAIL, password))
        for seed in (s for d in domains() for s in d.demo_seeders):
            await seed(ctx)
        return ctx.report
    finally:
        await db.dispose()
