"""``bpoctl payments reconcile [--period YYYY-MM]``: differences with the providers, exit 1 when any."""

from __future__ import annotations

import asyncio
import sys

import click

from billing.providers.port import ProviderConfig
from billing.providers.reconcile import PERIOD, Difference, reconcile
from control_plane.database import Databases
from control_plane.settings import Settings, load_settings


async def run_reconcile(settings: Settings, period: str | None) -> list[Difference]:
    db = Databases(settings.database)
    try:
        return await reconcile(db, ProviderConfig.load(settings.extra), period=period)
    finally:
        await db.dispose()


@click.group("payments")
def payments_group() -> None:
    """Payment providers (Stripe, Polar)."""


@payments_group.command("reconcile")
@click.option("--period", default=None, help="one month, YYYY-MM (default: every month)")
def payments_reconcile(period: str | None) -> None:
    """List every difference between local invoices/credit notes and the providers' records."""
    if period is not None and not PERIOD.match(period):
        raise click.BadParameter("a month such as 2026-10 (YYYY-MM)", param_hint="--period")
    differences = asyncio.run(run_reconcile(load_settings(), period))
    for difference in differences:
        click.echo(str(difference))
    click.echo(f"{len(differences)} difference{'' if len(differences) == 1 else 's'}")
    if differences:
        sys.exit(1)
