"""``bpoctl audit``: verify an export offline, sign checkpoints."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from compliance.checkpoints import checkpoint_all_streams, jwks
from compliance.verify import verify_file
from control_plane.database import Databases
from control_plane.keystore import load_keyring
from control_plane.settings import load_settings


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JWK set file (GET /api/v1/audit/keys); default: the public keys of the local database",
)
def audit_verify(file: str, keys_file: str | None) -> None:
    """Check an export offline; names the first bad line. Exit 0 when it verifies, 1 when not."""
    if keys_file:
        with open(keys_file, encoding="utf-8") as fh:
            jwks = json.load(fh)
    else:
        jwks = asyncio.run(_local_jwks())
    verdict = verify_file(file, jwks)
    click.echo(str(verdict))
    sys.exit(0 if verdict.ok else 1)


async def _local_jwks() -> dict:
    dbs = Databases(load_settings().database)
    try:
        async with dbs.control_session() as session:
            return await jwks(session)
    finally:
        await dbs.dispose()


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint over the head of every stream that moved (the scheduler does this too)."""

    async def go() -> int:
        settings = load_settings()
        dbs = Databases(settings.database)
        try:
            async with dbs.control_transaction() as session:
                return await checkpoint_all_streams(session, await load_keyring(settings, dbs.control))
        finally:
            await dbs.dispose()

    click.echo(f"{asyncio.run(go())} checkpoints signed")
