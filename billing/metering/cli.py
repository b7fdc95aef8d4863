"""The metering commands of ``bpoctl`` (rollups rebuild / apply-pending, webhooks replay, tenants move)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import click
import sqlalchemy as sa

from billing.metering import contact_keys, deltas, moves, rollups
from billing.metering.webhooks.service import replay_events
from compliance.retention import has_purged_contacts
from control_plane.actors import SYSTEM
from control_plane.database import Databases
from control_plane.keystore import load_keyring
from control_plane.settings import Settings, load_settings
from tenants.models import Tenant


async def rebuild_rollups(
    settings: Settings, slug: str | None, *, check: bool, echo: Callable[[str], None], force: bool = False
) -> bool:
    """Recount (``check``: compare) or rebuild the rollups of one tenant or all.

    A recount sees only the contacts the cells still hold. Retention purges contacts but keeps their
    counts (invoices and SLA reports of those months stay as they were), so for a tenant with purged
    contacts a rebuild would erase those counts: it is refused unless ``force``.
    """
    dbs = Databases(settings.database)
    ok = True
    try:
        async with dbs.control_session() as session:
            stmt = sa.select(Tenant.id, Tenant.slug, Tenant.timezone).order_by(Tenant.slug)
            if slug:
                stmt = stmt.where(Tenant.slug == slug)
            targets = (await session.execute(stmt)).all()
        if slug and not targets:
            echo(f"no tenant {slug!r}")
            return False
        for tenant_id, tenant_slug, timezone in targets:
            async with dbs.control_session() as session:
                purged = await has_purged_contacts(session, tenant_slug)
            if purged and not check and not force:
                echo(
                    f"{tenant_slug}: not rebuilt: retention has purged some of its contacts, whose counts the "
                    "rollups keep (invoices and SLA reports of those months); a recount cannot see them and a "
                    "rebuild would erase them. --force rebuilds anyway"
                )
                ok = False
                continue
            if check:
                recount = await rollups.recount(dbs, tenant_id, timezone)
                async with dbs.control_session() as session:
                    stored = await rollups.stored_rollups(session, tenant_id)
                    months = await rollups.stored_months(session, tenant_id)
                # The month totals against the stored daily rows (whatever the recount says of those).
                expected = rollups.month_totals(stored.items())
                if months != expected:
                    ok = False
                    drifted = sorted(k for k in expected.keys() | months.keys() if expected.get(k) != months.get(k))
                    basis, month, *dims = drifted[0]
                    echo(
                        f"{tenant_slug}: month totals DIFFER from the daily rows in {len(drifted)} rows "
                        f"(first: {basis} {month:%Y-%m} {'/'.join(dims)}: "
                        f"{months.get(drifted[0])} stored, {expected.get(drifted[0])} from the daily rows)"
                    )
                else:
                    echo(f"{tenant_slug}: {len(months)} month rows, match the daily rows")
                for cell in sorted(dbs.cells):  # PostgreSQL: every contact has its key (contact_keys)
                    async with dbs.cell_session(cell) as session:
                        missing = await contact_keys.missing_keys(session, tenant_id)
                    if missing:
                        ok = False
                        echo(f"{tenant_slug}: {missing} contacts in cell {cell} lack a contact key")
                same = recount == stored
                ok &= same
                verdict = "match the recount" if same else "DIFFER from the recount"
                if purged and not same:
                    verdict += " (retention has purged contacts that the rollups still count)"
                echo(f"{tenant_slug}: {len(stored)} rows, {verdict}")
            else:
                rows = await rollups.rebuild(dbs, tenant_id, timezone)
                echo(f"{tenant_slug}: rebuilt {rows} rollup rows (and their month totals)")
    finally:
        await dbs.dispose()
    return ok


async def apply_pending_deltas(settings: Settings) -> int:
    dbs = Databases(settings.database)
    try:
        return await deltas.apply_pending(dbs)
    finally:
        await dbs.dispose()


async def replay_webhooks(settings: Settings) -> int:
    dbs = Databases(settings.database)
    try:
        return await replay_events(dbs, await load_keyring(settings, dbs.control))
    finally:
        await dbs.dispose()


@click.group("rollups")
def rollups_group() -> None:
    """Contact rollups in the control database (counts only, from the region cells)."""


@rollups_group.command("rebuild")
@click.option("--tenant", "slug", default=None, help="one tenant (default: every tenant)")
@click.option("--check", is_flag=True, help="compare a recount with the stored rollups, change nothing")
@click.option("--force", is_flag=True, help="rebuild even a tenant whose contacts retention has purged")
def rollups_rebuild(slug: str | None, check: bool, force: bool) -> None:
    """Recount every contact of the cells and replace the tenant's rollups with it (or --check them)."""
    ok = asyncio.run(rebuild_rollups(load_settings(), slug, check=check, echo=click.echo, force=force))
    if not ok:
        sys.exit(1)


@rollups_group.command("apply-pending")
def rollups_apply_pending() -> None:
    """Apply rollup deltas a cell still holds (written while the control database was unavailable)."""
    click.echo(f"{asyncio.run(apply_pending_deltas(load_settings()))} pending deltas applied")


@click.group("webhooks")
def webhooks_group() -> None:
    """Stored helpdesk webhook events."""


@webhooks_group.command("replay")
def webhooks_replay() -> None:
    """Map stored events that failed (or were never mapped) again, after a mapping fix."""
    click.echo(f"{asyncio.run(replay_webhooks(load_settings()))} events mapped")


async def move_tenant(settings: Settings, slug: str, region: str, target: str) -> moves.MoveReport:
    dbs = Databases(settings.database)
    try:
        return await moves.move_tenant(dbs, SYSTEM, slug, region, target)
    finally:
        await dbs.dispose()


@click.group("tenants")
def tenants_group() -> None:
    """Tenants across cells."""


@tenants_group.command("move")
@click.argument("slug")
@click.option("--region", required=True, help="the region whose cell changes, e.g. eu")
@click.option("--to", "target", required=True, help="the target cell of that region, e.g. eu-2")
def tenants_move(slug: str, region: str, target: str) -> None:
    """Move the tenant's contacts and pending rollup deltas in REGION to another cell, while it ingests."""
    try:
        r = asyncio.run(move_tenant(load_settings(), slug, region, target))
    except moves.MoveRefused as exc:
        click.echo(f"not moved: {exc.message}", err=True)
        sys.exit(1)
    click.echo(
        f"{r.slug} {r.region}: {r.source} -> {r.target}: {r.contacts} contacts ({r.copied} bulk, {r.caught_up} "
        f"under the fence), {r.deltas} pending deltas, {r.removed} source rows removed; rollups "
        f"{'match the recount' if r.rollups_match else 'not checked' if r.rollups_match is None else 'DIFFER'}"
    )
    for note in r.notes:
        click.echo(f"  {note}")
